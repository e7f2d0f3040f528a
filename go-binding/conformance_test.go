package mapcore

import (
	"errors"
	"testing"
)

// Statuses of the library checked directly against include/mapcore.h,
// through paths the binding's normal logic does not exercise.

// mc_iter_decode: "MC_ERR_BAD_TOKEN (malformed or tampered); MC_ERR_WRONG_MAP
// (encoded for another map)". Every single-character change to a token text
// encoded for this map is tampering and must give BAD_TOKEN.
//
// (Found by this test against the library of 7244065: a change in the
// plaintext source-id characters gave MC_ERR_WRONG_MAP, because the source
// id was compared before the MAC was verified. Through the Go API a changed
// token text is caught as ErrBadToken by the binding's own tag anyway.)
func TestLibraryDecodeTamperedTextIsBadToken(t *testing.T) {
	m := newMap(t)
	fill(t, m, 10)
	it := m.Cursor()
	it.Next()
	tok, err := it.Token()
	if err != nil {
		t.Fatal(err)
	}
	var wrong []int
	for i := 3; i < len(tok.text); i++ {
		forged := Token{mode: ModeCursor, text: tok.text[:i] + flip(tok.text[i:i+1]) + tok.text[i+1:]}
		err := m.Resume(forged).Err()
		switch {
		case errors.Is(err, ErrBadToken):
		case errors.Is(err, ErrWrongMap):
			wrong = append(wrong, i)
		default:
			t.Errorf("text changed at %d: %v", i, err)
		}
	}
	if len(wrong) > 0 {
		t.Errorf("mc_iter_decode of a text for THIS map with one character changed at offsets %v returned MC_ERR_WRONG_MAP, header says tampered text is MC_ERR_BAD_TOKEN", wrong)
	}
}

// mc_iter_remove / mc_iter_set_value on a stale strict token:
// ITER_INVALIDATED and nothing deleted or changed.
func TestLibraryRemoveWithStaleStrictToken(t *testing.T) {
	m := newMap(t)
	fill(t, m, 10)
	it := m.Strict(WithBatchEntries(1))
	it.Next()
	k := append([]byte(nil), it.Key()...)
	m.Set([]byte("new"), nil) // structural, behind the iterator
	wantErr(t, it.Remove(), ErrIterInvalidated)
	wantErr(t, it.SetValue([]byte("x")), ErrIterInvalidated)
	if v, err := m.Get(k); err != nil || string(v) == "x" {
		t.Fatalf("the stale token changed the map: %q %v", v, err)
	}
	if n := mustLen(t, m); n != 11 {
		t.Fatal(n)
	}
}

// mc_map_free from inside a retain predicate of the same map: "MC_ERR_REENTRANT
// when called from a callback of this same map (nothing freed)". Close then
// reports ErrReentrant, the map stays open (and its cleanup armed), and a
// later Close works.
func TestLibraryCloseInsideDeleteFunc(t *testing.T) {
	m, _ := New()
	fill(t, m, 1000)
	calls := 0
	var closeErr error
	n, err := m.DeleteFunc(func(k, v []byte) bool {
		if calls == 0 {
			closeErr = m.Close()
		}
		calls++
		return true
	})
	if err != nil || calls != 1000 || n != 1000 {
		t.Fatalf("DeleteFunc = %d, %v after %d calls", n, err, calls)
	}
	wantErr(t, closeErr, ErrReentrant)
	if _, err := m.Set([]byte("still"), []byte("open")); err != nil {
		t.Fatal("map unusable after a refused Close:", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = m.Len()
	wantErr(t, err, ErrClosed)
}

// Inside a retain predicate, every call into the same map is refused
// (REENTRANT), snapshots of it and other maps work.
func TestLibraryReentrancy(t *testing.T) {
	m := newMap(t)
	fill(t, m, 10)
	snap, _ := m.Snapshot()
	defer snap.Close()
	var errs []error
	var snapErr error
	_, err := m.DeleteFunc(func(k, v []byte) bool {
		if errs != nil {
			return false
		}
		_, e1 := m.Set([]byte("x"), nil)
		_, e2 := m.Snapshot()
		e3 := m.Strict().Err()
		_, e4 := m.GetMany([][]byte{k})
		_, e5 := m.DeleteFunc(func(_, _ []byte) bool { return true })
		e6 := m.Clear()
		errs = []error{e1, e2, e3, e4, e5, e6}
		_, snapErr = snap.Get(k)
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errs {
		if !errors.Is(e, ErrReentrant) {
			t.Errorf("call %d inside the predicate: %v", i+1, e)
		}
	}
	if snapErr != nil {
		t.Errorf("snapshot Get inside the predicate: %v", snapErr)
	}
	if n := mustLen(t, m); n != 10 {
		t.Fatal(n)
	}
}

// Snapshot iteration in strict mode behaves as cursor mode ("both modes
// behave the same") and is never invalidated.
func TestLibrarySnapshotStrictNeverInvalidated(t *testing.T) {
	m := newMap(t)
	fill(t, m, 500)
	snap, _ := m.Snapshot()
	defer snap.Close()
	it := newIterator(nil, snap, ModeStrict, nil, []IterOption{WithBatchEntries(3)})
	n := 0
	for it.Next() {
		if n == 0 {
			m.Clear()
			m.Reserve(1000)
		}
		n++
	}
	if it.Err() != nil || n != 500 {
		t.Fatal(it.Err(), n)
	}
}
