#!/usr/bin/env bash
# Proves that a Go program OUTSIDE this repository can import the binding and
# build with plain `go build`, and that the binary runs with an empty
# environment (no LD_LIBRARY_PATH): libmapcore is linked statically.
#
# It creates a temporary module (mktemp -d) whose go.mod replaces
# github.com/mapcore/mapcore-go with this directory, builds it, checks that
# the binary does not depend on libmapcore.so, runs it under `env -i`, and
# checks its output. Needs target/release/libmapcore.a (`make lib`).
set -euo pipefail

binding="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo="$(cd "$binding/.." && pwd)"
GO="${GO:-go}"

if [ ! -f "$repo/target/release/libmapcore.a" ]; then
	echo "outside-module-test: $repo/target/release/libmapcore.a is missing; run 'make lib' first" >&2
	exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
case "$tmp/" in
"$repo"/*) echo "outside-module-test: temporary directory $tmp is inside the repository" >&2; exit 1 ;;
esac

cat >"$tmp/go.mod" <<MOD
module example.com/outside

go 1.24

require github.com/mapcore/mapcore-go v0.0.0

replace github.com/mapcore/mapcore-go => $binding
MOD

cat >"$tmp/main.go" <<'SRC'
package main

import (
	"errors"
	"fmt"
	"os"

	mapcore "github.com/mapcore/mapcore-go"
)

func main() {
	m, err := mapcore.New()
	if err != nil {
		fmt.Println("New:", err)
		os.Exit(1)
	}
	defer m.Close()
	for i := range 1000 {
		m.SetString(fmt.Sprint("key-", i), fmt.Sprint(i))
	}
	it := m.Strict()
	visited := 0
	for _, v := range it.All() {
		visited++
		if v[len(v)-1]%2 == 1 {
			if err := it.Remove(); err != nil {
				fmt.Println("Remove:", err)
				os.Exit(1)
			}
		}
	}
	n, _ := m.Len()
	v, _ := m.GetString("key-42")
	_, err = m.GetString("key-43")
	fmt.Printf("visited=%d left=%d key-42=%s key-43-removed=%v err=%v link=%s\n",
		visited, n, v, errors.Is(err, mapcore.ErrNotFound), it.Err(), mapcore.LinkMode)
}
SRC

echo "outside-module-test: building in $tmp (outside the repository) with plain 'go build'"
(cd "$tmp" && "$GO" build -o outside .)

if ldd "$tmp/outside" 2>/dev/null | grep -q libmapcore; then
	echo "outside-module-test: FAIL: the binary depends on a shared libmapcore:" >&2
	ldd "$tmp/outside" >&2
	exit 1
fi

# Run with an empty environment: nothing but PATH and HOME.
out="$(cd "$tmp" && env -i PATH=/usr/bin:/bin HOME="$tmp" ./outside)"
echo "outside-module-test: output: $out"
want="visited=1000 left=500 key-42=42 key-43-removed=true err=<nil> link=static"
if [ "$out" != "$want" ]; then
	echo "outside-module-test: FAIL: want: $want" >&2
	exit 1
fi
echo "outside-module-test: ok"
