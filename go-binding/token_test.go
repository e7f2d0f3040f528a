package mapcore

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// page is what a paginated HTTP handler would send: entries and the token
// of the next page, empty on the last page.
type page struct {
	Keys []string `json:"keys"`
	Next Token    `json:"next"`
}

// getPage reads up to n entries from tok on m, as a handler would.
func getPage(t *testing.T, m *Map, tok Token, n int) page {
	t.Helper()
	it := m.Resume(tok, WithBatchEntries(n))
	var p page
	for len(p.Keys) < n && it.Next() {
		p.Keys = append(p.Keys, string(it.Key()))
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	if len(p.Keys) == n {
		next, err := it.Token()
		if err != nil {
			t.Fatal(err)
		}
		p.Next = next
	}
	return p
}

func TestTokenJSON(t *testing.T) {
	m := newMap(t)
	fill(t, m, 25)
	seen := map[string]int{}
	var tok Token // zero: from the beginning
	pages := 0
	for {
		b, err := json.Marshal(getPage(t, m, tok, 10))
		if err != nil {
			t.Fatalf("json.Marshal of page %d: %v", pages, err)
		}
		var p page
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("json.Unmarshal of %s: %v", b, err)
		}
		pages++
		for _, k := range p.Keys {
			seen[k]++
		}
		if p.Next.IsZero() {
			if !strings.HasSuffix(string(b), `],"next":""}`) {
				t.Fatalf("last page encoded as %s, want an empty next token", b)
			}
			break
		}
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		tok = p.Next
	}
	if pages != 3 || len(seen) != 25 {
		t.Fatalf("%d pages, %d distinct keys; want 3 pages and 25 keys", pages, len(seen))
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("key %q returned %d times", k, n)
		}
	}
}

func TestZeroToken(t *testing.T) {
	var z Token
	b, err := z.MarshalText()
	if err != nil || len(b) != 0 {
		t.Fatalf("zero Token MarshalText = %q, %v; want empty text", b, err)
	}
	if z.String() != "" || z.Mode() != ModeCursor {
		t.Fatalf("zero Token: String %q, Mode %v", z.String(), z.Mode())
	}
	// Empty text decodes to the zero token, also over a real one.
	m := newMap(t)
	fill(t, m, 30)
	it := m.Strict()
	it.Next()
	tok, err := it.Token()
	if err != nil || tok.IsZero() {
		t.Fatalf("Token = %v, %v", tok, err)
	}
	if err := tok.UnmarshalText(nil); err != nil || !tok.IsZero() {
		t.Fatalf("UnmarshalText(empty) = %v, token zero %v", err, tok.IsZero())
	}
	// Resuming the zero token walks the whole map, on a map and on a snapshot.
	want := contents(t, m)
	s, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, it := range map[string]*Iterator{"map": m.Resume(Token{}), "snapshot": s.Resume(Token{})} {
		if it.Mode() != ModeCursor {
			t.Errorf("%s: Resume(Token{}) mode %v, want cursor", name, it.Mode())
		}
		got := map[string]string{}
		for it.Next() {
			got[string(it.Key())] = string(it.Value())
		}
		if err := it.Err(); err != nil {
			t.Fatalf("%s: Resume(Token{}): %v", name, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: Resume(Token{}) returned %d entries, want %d", name, len(got), len(want))
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("%s: Resume(Token{}): %q = %q, want %q", name, k, got[k], v)
			}
		}
	}
	// A real token still round-trips through JSON.
	it = m.Cursor()
	it.Next()
	it.Next()
	real, err := it.Token()
	if err != nil {
		t.Fatal(err)
	}
	b, err = json.Marshal(struct{ T Token }{real})
	if err != nil {
		t.Fatal(err)
	}
	var back struct{ T Token }
	if err := json.Unmarshal(b, &back); err != nil || back.T != real {
		t.Fatalf("json round trip of %v gave %v, %v", real, back.T, err)
	}
	// A bad one is refused through JSON too.
	if err := json.Unmarshal([]byte(`{"T":"c.x.y"}`), &back); !errors.Is(err, ErrBadToken) {
		t.Fatalf("json.Unmarshal of a bad token: %v, want ErrBadToken", err)
	}
}
