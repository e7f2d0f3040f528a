package mapcore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"slices"
	"strings"

	mapcore "github.com/mapcore/mapcore-go"
)

// Quick start: create, set, get, delete, close.
func Example() {
	m, err := mapcore.New()
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	inserted, _ := m.SetString("alice", "admin")
	fmt.Println("inserted:", inserted)
	inserted, _ = m.SetString("alice", "owner") // overwrite
	fmt.Println("inserted:", inserted)

	role, err := m.GetString("alice")
	fmt.Println(role, err)

	_, err = m.GetString("bob")
	fmt.Println(errors.Is(err, mapcore.ErrNotFound))

	deleted, _ := m.DeleteString("alice")
	n, _ := m.Len()
	fmt.Println("deleted:", deleted, "len:", n)
	// Output:
	// inserted: true
	// inserted: false
	// owner <nil>
	// true
	// deleted: true len: 0
}

func fillNumbers(m *mapcore.Map, n int) {
	for i := range n {
		m.SetString(fmt.Sprintf("k%02d", i), fmt.Sprint(i))
	}
}

func keysOf(m *mapcore.Map) []string {
	var ks []string
	for k := range m.Keys() {
		ks = append(ks, string(k))
	}
	slices.Sort(ks)
	return ks
}

// Strict iteration with removal through the iterator: the iterator stays
// valid and still visits every entry exactly once. The error, if any, is
// checked after the loop (like bufio.Scanner).
func ExampleMap_Strict() {
	m, _ := mapcore.New()
	defer m.Close()
	fillNumbers(m, 10)

	it := m.Strict()
	visited := 0
	for _, v := range it.All() {
		visited++
		if v[0]%2 == 1 { // odd values
			if err := it.Remove(); err != nil {
				log.Fatal(err)
			}
		}
	}
	if err := it.Err(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("visited:", visited)
	fmt.Println("left:", keysOf(m))
	// Output:
	// visited: 10
	// left: [k00 k02 k04 k06 k08]
}

// A strict iterator fails fast when the map changes behind its back.
func ExampleMap_Strict_invalidated() {
	m, _ := mapcore.New()
	defer m.Close()
	fillNumbers(m, 10)

	it := m.Strict()
	for range it.Keys() {
		m.SetString("new key", "!") // a structural change not made through it
	}
	fmt.Println(errors.Is(it.Err(), mapcore.ErrIterInvalidated))
	// Output:
	// true
}

// Bulk deletion with a predicate: no iterator involved.
func ExampleMap_DeleteFunc() {
	m, _ := mapcore.New()
	defer m.Close()
	fillNumbers(m, 10)

	removed, err := m.DeleteFunc(func(key, val []byte) bool {
		return strings.HasSuffix(string(key), "5") || string(val) == "7"
	})
	fmt.Println(removed, err)
	fmt.Println(keysOf(m))
	// Output:
	// 2 <nil>
	// [k00 k01 k02 k03 k04 k06 k08 k09]
}

// A cursor scan is never invalidated: the loop may change the map freely.
func ExampleMap_Cursor() {
	m, _ := mapcore.New()
	defer m.Close()
	fillNumbers(m, 10)

	it := m.Cursor()
	for k, v := range it.All() {
		if v[0] >= '5' {
			m.Delete(k)
		}
	}
	fmt.Println(it.Err(), keysOf(m))
	// Output:
	// <nil> [k00 k01 k02 k03 k04]
}

// All is the shortest way to range over a map (cursor mode, copies).
func ExampleMap_All() {
	m, _ := mapcore.New()
	defer m.Close()
	fillNumbers(m, 3)

	var lines []string
	for k, v := range m.All() {
		lines = append(lines, string(k)+"="+string(v))
	}
	slices.Sort(lines)
	fmt.Println(lines)
	// Output:
	// [k00=0 k01=1 k02=2]
}

// Pagination: a page per request, the position carried by an opaque token
// text that is safe to give to clients.
func ExampleIterator_Token() {
	m, _ := mapcore.New()
	defer m.Close()
	fillNumbers(m, 25)

	const pageSize = 10
	page := func(cursor string) (keys []string, next string) {
		var it *mapcore.Iterator
		if cursor == "" {
			it = m.Cursor(mapcore.WithBatchEntries(pageSize))
		} else {
			var tok mapcore.Token
			if err := tok.UnmarshalText([]byte(cursor)); err != nil {
				log.Fatal(err)
			}
			it = m.Resume(tok, mapcore.WithBatchEntries(pageSize))
		}
		for len(keys) < pageSize && it.Next() {
			keys = append(keys, string(it.Key()))
		}
		if it.Err() != nil {
			log.Fatal(it.Err())
		}
		if len(keys) < pageSize {
			return keys, "" // last page
		}
		tok, err := it.Token()
		if err != nil {
			log.Fatal(err)
		}
		text, _ := tok.MarshalText()
		return keys, string(text)
	}

	var all []string
	cursor := ""
	for pages := 1; ; pages++ {
		keys, next := page(cursor)
		all = append(all, keys...)
		fmt.Printf("page %d: %d keys\n", pages, len(keys))
		if next == "" {
			break
		}
		cursor = next
	}
	slices.Sort(all)
	fmt.Println(len(slices.Compact(all)), "distinct keys")
	// Output:
	// page 1: 10 keys
	// page 2: 10 keys
	// page 3: 5 keys
	// 25 distinct keys
}

// A snapshot is a frozen view; the map goes on changing.
func ExampleMap_Snapshot() {
	m, _ := mapcore.New()
	defer m.Close()
	fillNumbers(m, 5)

	snap, _ := m.Snapshot()
	defer snap.Close()
	m.Clear()

	n, _ := snap.Len()
	v, _ := snap.GetString("k03")
	mapLen, _ := m.Len()
	fmt.Println(n, v, mapLen)
	// Output:
	// 5 3 0
}

// A scan that stops when its context is done.
func ExampleMap_Scan() {
	m, _ := mapcore.New()
	defer m.Close()
	fillNumbers(m, 50)

	ctx, cancel := context.WithCancel(context.Background())
	seen := 0
	err := m.Scan(ctx, func(key, val []byte) error {
		seen++
		if seen == 20 {
			cancel() // e.g. the client went away
		}
		return nil
	})
	fmt.Println(seen, err)
	// Output:
	// 20 context canceled
}

// Batch operations: one library call for many keys.
func ExampleMap_GetMany() {
	m, _ := mapcore.New()
	defer m.Close()
	m.SetMany(
		[][]byte{[]byte("a"), []byte("b")},
		[][]byte{[]byte("1"), []byte("2")},
	)
	vals, _ := m.GetMany([][]byte{[]byte("a"), []byte("zzz"), []byte("b")})
	for _, v := range vals {
		if v == nil {
			fmt.Println("absent")
		} else {
			fmt.Println(string(v))
		}
	}
	// Output:
	// 1
	// absent
	// 2
}

// AppendMany reuses one buffer and one slice of values across batches, so a
// lookup loop allocates nothing once they have grown.
func ExampleMap_AppendMany() {
	m, _ := mapcore.New()
	defer m.Close()
	m.SetString("a", "1")
	m.SetString("b", "22")
	var buf []byte
	vals := make([][]byte, 2)
	for _, batch := range [][][]byte{
		{[]byte("a"), []byte("b")},
		{[]byte("zzz"), []byte("a")},
	} {
		var err error
		buf, err = m.AppendMany(buf[:0], vals, batch)
		if err != nil {
			panic(err)
		}
		for i, v := range vals {
			if i > 0 {
				fmt.Print(" ")
			}
			if v == nil {
				fmt.Print("absent")
			} else {
				fmt.Printf("%q", v)
			}
		}
		fmt.Println()
	}
	// Output:
	// "1" "22"
	// absent "1"
}

// Deleting while iterating: a plain Go map versus mapcore's three safe ways.
func Example_deleteWhileIterating() {
	// A plain Go map: deleting during range is allowed, and inserting too,
	// but an entry inserted during the loop "may be produced or skipped":
	// how many entries this loop visits changes from run to run.
	goMap := map[int]bool{}
	for i := range 100 {
		goMap[i] = true
	}
	visited := 0
	for k := range goMap {
		visited++
		delete(goMap, k)
		if k < 100 {
			goMap[k+1000] = true // may or may not be visited
		}
	}
	fmt.Println("go map: visited between 100 and 200:", visited >= 100 && visited <= 200)

	m, _ := mapcore.New()
	defer m.Close()
	reset := func() { m.Clear(); fillNumbers(m, 20) }

	// 1. Remove through a strict iterator.
	reset()
	it := m.Strict()
	for _, v := range it.All() {
		if v[len(v)-1]%2 == 1 {
			it.Remove()
		}
	}
	n, _ := m.Len()
	fmt.Println("1. strict iterator Remove:", it.Err(), n, "left")

	// 2. DeleteFunc.
	reset()
	removed, err := m.DeleteFunc(func(_, v []byte) bool { return v[len(v)-1]%2 == 1 })
	fmt.Println("2. DeleteFunc:", err, removed, "removed")

	// 3. A cursor scan with plain Delete calls.
	reset()
	cur := m.Cursor()
	for k, v := range cur.All() {
		if v[len(v)-1]%2 == 1 {
			m.Delete(k)
		}
	}
	n, _ = m.Len()
	fmt.Println("3. cursor scan + Delete:", cur.Err(), n, "left")

	// And what a strict iterator does when the map changes behind it.
	reset()
	it = m.Strict()
	for k := range it.Keys() {
		m.Delete(k) // not through the iterator
	}
	fmt.Println("strict + Delete behind its back:", errors.Is(it.Err(), mapcore.ErrIterInvalidated))
	// Output:
	// go map: visited between 100 and 200: true
	// 1. strict iterator Remove: <nil> 10 left
	// 2. DeleteFunc: <nil> 10 removed
	// 3. cursor scan + Delete: <nil> 10 left
	// strict + Delete behind its back: true
}
