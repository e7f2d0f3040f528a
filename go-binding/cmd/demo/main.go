// Command demo shows safe iteration under modification with mapcore, next to
// what a plain Go map does. It exits with status 1 if anything behaves
// differently from what mapcore guarantees.
//
//	cd go-binding && go run ./cmd/demo
//
// The go command does not notice a rebuilt libmapcore.a (it does not hash
// files named in #cgo LDFLAGS), so `go run` may reuse an executable linked
// with the previous library. Passing the library's checksum forces a relink:
//
//	go run -ldflags "-X main.libID=$(cksum < ../target/release/libmapcore.a | cut -d' ' -f1)" ./cmd/demo
package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	mapcore "github.com/mapcore/mapcore-go"
)

const n = 100_000

// libID identifies the libmapcore.a build (set with -ldflags -X; see above).
var libID = "not set"

var failures int

func expect(ok bool, format string, args ...any) {
	status := "ok  "
	if !ok {
		status = "FAIL"
		failures++
	}
	fmt.Printf("  [%s] %s\n", status, fmt.Sprintf(format, args...))
}

func must(err error) {
	if err != nil {
		fmt.Println("unexpected error:", err)
		os.Exit(1)
	}
}

func key(i int) []byte { return []byte("key-" + strconv.Itoa(i)) }

// index returns i for key(i), -1 for any other key.
func index(k []byte) int {
	s, ok := strings.CutPrefix(string(k), "key-")
	if !ok {
		return -1
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || i >= n {
		return -1
	}
	return i
}

func fill(m *mapcore.Map) {
	must(m.Clear())
	keys := make([][]byte, n)
	vals := make([][]byte, n)
	for i := range n {
		keys[i], vals[i] = key(i), []byte(strconv.Itoa(i))
	}
	_, err := m.SetMany(keys, vals)
	must(err)
}

func length(m *mapcore.Map) int {
	l, err := m.Len()
	must(err)
	return l
}

func main() {
	fmt.Printf("mapcore Go demo (libmapcore ABI %d, %s link, library id %s)\n\n", mapcore.LibraryABIVersion(), mapcore.LinkMode, libID)

	fmt.Println("0. A plain Go map: delete the visited key and insert a new one during range.")
	var counts []int
	for range 5 {
		g := make(map[int]bool, n)
		for i := range n {
			g[i] = true
		}
		visited := 0
		for k := range g {
			visited++
			delete(g, k)
			if k < n {
				g[k+n] = true // "may be produced or skipped" (Go spec)
			}
		}
		counts = append(counts, visited)
	}
	fmt.Printf("  the same loop, 5 runs: visited %v entries: defined, but not predictable\n\n", counts)

	m, err := mapcore.New()
	must(err)
	defer m.Close()

	fmt.Printf("1. mapcore, strict iterator, Remove through the iterator (%d entries, remove the odd ones).\n", n)
	fill(m)
	it := m.Strict()
	visits := make([]int, n)
	for k := range it.Keys() {
		i := index(k)
		visits[i]++
		if i%2 == 1 {
			must(it.Remove())
		}
	}
	expect(it.Err() == nil, "iteration ended without error (%v)", it.Err())
	expect(allOnce(visits), "every entry visited exactly once")
	expect(length(m) == n/2, "%d entries left", length(m))

	fmt.Println("2. DeleteFunc: bulk delete with a predicate, no iterator.")
	fill(m)
	removed, err := m.DeleteFunc(func(k, _ []byte) bool { return index(k)%2 == 1 })
	expect(err == nil && removed == n/2, "removed %d entries (%v)", removed, err)

	fmt.Println("3. Cursor scan + plain Delete, while another goroutine inserts new keys.")
	fill(m)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for j := 0; ; j++ {
			select {
			case <-stop:
				return
			default:
			}
			m.SetString("new-"+strconv.Itoa(j), "x")
		}
	}()
	clear(visits)
	newSeen := map[string]int{}
	cur := m.Cursor()
	for k := range cur.Keys() {
		if i := index(k); i >= 0 {
			visits[i]++
			if i%2 == 1 {
				_, err := m.Delete(k)
				must(err)
			}
		} else {
			newSeen[string(k)]++
		}
	}
	close(stop)
	wg.Wait()
	expect(cur.Err() == nil, "scan ended without error (%v)", cur.Err())
	expect(allOnce(visits), "every original key visited exactly once")
	dups := 0
	for _, c := range newSeen {
		if c > 1 {
			dups++
		}
	}
	expect(dups == 0, "%d keys inserted during the scan were seen, each at most once", len(newSeen))

	fmt.Println("4. The unsafe way: a strict iterator while the map is changed behind its back.")
	fill(m)
	it = m.Strict()
	visited := 0
	for k := range it.Keys() {
		visited++
		_, err := m.Delete(k) // not through the iterator
		must(err)
	}
	fmt.Printf("  error after the loop: %v\n", it.Err())
	expect(errors.Is(it.Err(), mapcore.ErrIterInvalidated), "the iteration failed with ErrIterInvalidated")
	expect(visited == 1, "after exactly %d entry (no stale entry from the prefetched batch)", visited)

	fmt.Println("5. A snapshot iterated while the map is cleared and refilled.")
	fill(m)
	snap, err := m.Snapshot()
	must(err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Clear()
		for i := range 1000 {
			m.SetString("other-"+strconv.Itoa(i), "")
		}
	}()
	clear(visits)
	for k, v := range snap.All() {
		if i := index(k); i >= 0 && string(v) == strconv.Itoa(i) {
			visits[i]++
		} else {
			failures++
		}
	}
	<-done
	expect(allOnce(visits), "the snapshot showed all %d original entries, once each", n)
	must(snap.Close())

	fmt.Println("6. Pagination with resumable token text, while the map changes between pages.")
	fill(m)
	clear(visits)
	text := ""
	pages := 0
	start := time.Now()
	for {
		var it *mapcore.Iterator
		if text == "" {
			it = m.Cursor(mapcore.WithBatchEntries(1000))
		} else {
			var tok mapcore.Token
			must(tok.UnmarshalText([]byte(text)))
			it = m.Resume(tok, mapcore.WithBatchEntries(1000))
		}
		got := 0
		for got < 1000 && it.Next() {
			if i := index(it.Key()); i >= 0 {
				visits[i]++
			}
			got++
		}
		must(it.Err())
		pages++
		m.SetString("between-pages-"+strconv.Itoa(pages), "")
		if got < 1000 {
			break
		}
		tok, err := it.Token()
		must(err)
		b, _ := tok.MarshalText()
		text = string(b)
	}
	fmt.Printf("  %d pages in %v; a token looks like %.40s...\n", pages, time.Since(start).Round(time.Millisecond), text)
	expect(allOnce(visits), "every original key on exactly one page")
	var bad mapcore.Token
	expect(errors.Is(bad.UnmarshalText([]byte(text[:len(text)-1]+"x")), mapcore.ErrBadToken), "a tampered token is rejected (ErrBadToken)")

	fmt.Println()
	if failures > 0 {
		fmt.Printf("%d unexpected behaviour(s)\n", failures)
		os.Exit(1)
	}
	fmt.Println("all guarantees held")
}

func allOnce(visits []int) bool {
	bad := map[int]int{}
	for _, c := range visits {
		if c != 1 {
			bad[c]++
		}
	}
	if len(bad) > 0 {
		ks := make([]int, 0, len(bad))
		for c := range bad {
			ks = append(ks, c)
		}
		sort.Ints(ks)
		for _, c := range ks {
			fmt.Printf("  %d entries visited %d times\n", bad[c], c)
		}
		return false
	}
	return true
}
