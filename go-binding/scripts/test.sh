#!/usr/bin/env bash
# The complete Go test run (a superset of `make go-test`):
#   1. go vet, for the default (static) and the mapcore_dynamic build
#   2. go test -race
#   3. go test under GOEXPERIMENT=cgocheck2 (full checking of the cgo
#      pointer-passing rules; rebuilds the standard library once, slow)
#   4. go test -tags mapcore_dynamic (links build/stage/lib/libmapcore.so)
#   5. the outside-module test
# Every step runs; the script fails if any step failed.
# Needs target/release/libmapcore.a (`make lib`) and, for step 4,
# build/stage (`make stage`).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GO="${GO:-go}"
failed=()

step() {
	local name="$1"
	shift
	printf '\n== %s\n' "$name"
	if ! "$@"; then
		failed+=("$name")
	fi
}

step "go vet" "$GO" vet ./...
step "go vet (mapcore_dynamic)" "$GO" vet -tags mapcore_dynamic ./...
step "go test -race" "$GO" test -race -count=1 ./...
step "go test (GOEXPERIMENT=cgocheck2)" env GOEXPERIMENT=cgocheck2 "$GO" test -count=1 -short ./...
if [ -e ../build/stage/lib/libmapcore.so.1 ]; then
	step "go test (mapcore_dynamic)" "$GO" test -tags mapcore_dynamic -count=1 -short ./...
else
	printf '\n== go test (mapcore_dynamic): skipped, run make stage first\n'
fi
step "outside-module test" ./scripts/outside-module-test.sh

echo
if [ ${#failed[@]} -gt 0 ]; then
	printf 'FAILED: %s\n' "${failed[@]}"
	exit 1
fi
echo "all Go checks passed"
