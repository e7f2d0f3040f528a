package mapcore

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
)

// Mode is an iteration mode.
type Mode uint32

const (
	// ModeStrict is fail-fast iteration: any structural change (insert of a
	// new key, delete, Clear, Reserve, ShrinkToFit, ...) not made through the
	// iterator itself makes it fail with ErrIterInvalidated. Guaranteed, not
	// best effort. Without changes it yields every entry exactly once.
	// The iterator is stamped when it is created (Map.Strict, Map.Iter,
	// Map.Resume), not at its first Next: a change made in between already
	// invalidates it, so create it just before the loop.
	ModeStrict Mode = 1
	// ModeCursor is resumable, weakly consistent iteration: never
	// invalidated. Every key present from the scan's start to its end is
	// returned exactly once; a key removed before the scan reached it is not
	// returned; a key inserted during the scan is returned at most once.
	ModeCursor Mode = 2
)

func (m Mode) String() string {
	switch m {
	case ModeStrict:
		return "strict"
	case ModeCursor:
		return "cursor"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// Token is a saved iteration position: resume it later with Map.Resume or
// Snapshot.Resume, in this process, on the same map or snapshot. It is a
// plain value (copy it freely; nothing to free) and pins nothing: holding
// one keeps no memory alive.
//
// Its text form (MarshalText) is safe to hand to untrusted clients, e.g. in
// a pagination URL: it reveals no hash values, and any modification is
// detected (ErrBadToken when parsed or resumed). A token resumed on another
// map gives ErrWrongMap.
//
// The zero Token means "from the beginning": resuming it starts a new
// cursor-mode iteration, its text form is empty, and empty text decodes to
// it, so a struct holding a zero Token (a last page with no next token)
// round-trips through encoding/json, as the zero time.Time and netip.Addr do.
type Token struct {
	mode Mode
	text string // the library's encoded token (mc_iter_encode)
}

// Mode returns the iteration mode the token resumes in (ModeCursor for the
// zero Token).
func (t Token) Mode() Mode {
	if t.text == "" {
		return ModeCursor
	}
	return t.mode
}

// IsZero reports whether t is the zero Token.
func (t Token) IsZero() bool { return t.text == "" }

// String returns the text form (as MarshalText; empty for the zero Token).
func (t Token) String() string {
	b, _ := t.MarshalText()
	return string(b)
}

// The text form is "<mode>.<library token>.<tag>": the library's token text
// is authenticated by the library; the tag (HMAC-SHA256 under a per-process
// random key, truncated to 64 bits) binds the mode letter to it.
var tokenKey = func() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic("mapcore: crypto/rand: " + err.Error())
	}
	return k
}()

func tokenTag(mode byte, text string) string {
	h := hmac.New(sha256.New, tokenKey)
	h.Write([]byte{mode, '.'})
	h.Write([]byte(text))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:8])
}

func modeLetter(m Mode) byte {
	if m == ModeStrict {
		return 's'
	}
	return 'c'
}

// MarshalText implements encoding.TextMarshaler. The zero Token marshals
// to empty text.
func (t Token) MarshalText() ([]byte, error) {
	if t.text == "" {
		return []byte{}, nil
	}
	l := modeLetter(t.mode)
	return []byte(string(l) + "." + t.text + "." + tokenTag(l, t.text)), nil
}

// UnmarshalText implements encoding.TextUnmarshaler. Empty text gives the
// zero Token. Malformed or modified text gives ErrBadToken and leaves t
// unchanged; whether the token belongs to a given map is checked when it is
// resumed.
func (t *Token) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*t = Token{}
		return nil
	}
	bad := func(why string) error { return goErr("Token.UnmarshalText", StatusBadToken, "%s", why) }
	parts := strings.Split(string(b), ".")
	if len(parts) != 3 || len(parts[0]) != 1 {
		return bad("malformed token text")
	}
	var mode Mode
	switch parts[0][0] {
	case 's':
		mode = ModeStrict
	case 'c':
		mode = ModeCursor
	default:
		return bad("unknown mode in token text")
	}
	if len(parts[1]) != iterTextLen {
		return bad("malformed token text")
	}
	if !hmac.Equal([]byte(parts[2]), []byte(tokenTag(parts[0][0], parts[1]))) {
		return bad("token text was modified or comes from another process")
	}
	*t = Token{mode: mode, text: parts[1]}
	return nil
}
