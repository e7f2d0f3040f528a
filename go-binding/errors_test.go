package mapcore

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// Every status code: the Go name equals the C name (mc_status_name), and the
// sentinel for it matches an *Error of that status and no other sentinel.
func TestStatusCodesMatchC(t *testing.T) {
	for code := int32(-3); code < statusCount+3; code++ {
		cname := cStatusName(code)
		if code < 0 || code >= statusCount {
			if cname != "MC_UNKNOWN_STATUS" {
				t.Errorf("C name of unknown code %d = %q", code, cname)
			}
			err := &Error{Status: Status(code)}
			for s, sent := range sentinels {
				if errors.Is(err, sent) {
					t.Errorf("unknown status %d matches sentinel of %v", code, s)
				}
			}
			continue
		}
		if got := Status(code).String(); got != cname {
			t.Errorf("Status(%d).String() = %q, C says %q", code, got, cname)
		}
		if d := Status(code).Description(); d == "" || d == "unknown status code" {
			t.Errorf("Status(%d).Description() = %q", code, d)
		}
	}

	// The sentinel each C status maps to, by C name.
	want := []struct {
		sentinel error
		cname    string
	}{
		{ErrNotFound, "MC_ERR_NOT_FOUND"},
		{ErrClosed, "MC_ERR_BAD_HANDLE"},
		{ErrIterInvalidated, "MC_ERR_ITER_INVALIDATED"},
		{ErrBadToken, "MC_ERR_BAD_TOKEN"},
		{ErrWrongMap, "MC_ERR_WRONG_MAP"},
		{ErrBufferTooSmall, "MC_ERR_BUFFER_TOO_SMALL"},
		{ErrNullArgument, "MC_ERR_NULL_ARGUMENT"},
		{ErrTooLarge, "MC_ERR_TOO_LARGE"},
		{ErrOutOfMemory, "MC_ERR_OUT_OF_MEMORY"},
		{ErrInternal, "MC_ERR_INTERNAL"},
		{ErrInvalidArgument, "MC_ERR_INVALID_ARGUMENT"},
		{ErrReentrant, "MC_ERR_REENTRANT"},
		{ErrPoisoned, "MC_ERR_POISONED"},
	}
	if len(want) != len(sentinels) || len(want) != statusCount-2 {
		t.Fatalf("%d sentinels, %d expected, %d failure codes", len(sentinels), len(want), statusCount-2)
	}
	for code := int32(1); code <= 13; code++ {
		cname := cStatusName(code)
		var w error
		for _, x := range want {
			if x.cname == cname {
				w = x.sentinel
			}
		}
		if w == nil {
			t.Fatalf("no sentinel for C status %d (%s)", code, cname)
		}
		if sentinels[Status(code)] != w {
			t.Errorf("status %d (%s): sentinels table has %v", code, cname, sentinels[Status(code)])
		}
		// An error as the binding builds it from a failed C call.
		err := error(&Error{Op: "Op", Status: Status(code), Detail: "detail"})
		for _, x := range want {
			if got := errors.Is(err, x.sentinel); got != (x.sentinel == w) {
				t.Errorf("errors.Is(status %s, %s sentinel) = %v", cname, x.cname, got)
			}
		}
		// Wrapped errors still match.
		if !errors.Is(fmt.Errorf("wrapped: %w", err), w) {
			t.Errorf("wrapped %s does not match", cname)
		}
		var e *Error
		if !errors.As(err, &e) || e.Status.String() != cname {
			t.Errorf("errors.As on %s", cname)
		}
	}
}

func TestErrorFormat(t *testing.T) {
	err := &Error{Op: "Map.Set", Status: StatusTooLarge, Detail: "key too long"}
	if got := err.Error(); got != "mapcore: Map.Set: key too long" {
		t.Errorf("Error() = %q", got)
	}
	// Sentinels read in Go terms; the C status name stays in Status.
	for _, c := range []struct {
		err  error
		want string
	}{
		{ErrNotFound, "mapcore: key not found"},
		{ErrClosed, "mapcore: map or snapshot is closed"},
		{ErrIterInvalidated, "mapcore: iterator invalidated by a change to the map"},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("sentinel Error() = %q, want %q", got, c.want)
		}
	}
	for s := range Status(statusCount) {
		e := &Error{Status: s}
		if got := e.Error(); strings.Contains(got, "MC_") || got == "mapcore: " {
			t.Errorf("status %s prints %q: want Go wording", s, got)
		}
	}
	var e *Error
	if !errors.As(ErrClosed, &e) || e.Status.String() != "MC_ERR_BAD_HANDLE" {
		t.Errorf("ErrClosed's status is %v", e.Status)
	}
	// A bad handle seen by the library (a map the binding did not close
	// first) reads as a closed map too, not in the library's C words.
	_, gerr := (&Map{id: 12345}).Get([]byte("k"))
	if !errors.Is(gerr, ErrClosed) || gerr.Error() != "mapcore: Map.Get: use of a closed map or snapshot" {
		t.Errorf("Get on a bad handle: %v", gerr)
	}
	// An *Error with an Op is not a sentinel: it matches only an equal error.
	other := &Error{Op: "Map.Get", Status: StatusTooLarge, Detail: "key too long"}
	if errors.Is(err, other) {
		t.Error("errors with different Op match")
	}
}

// Real failures carry the library's detail message, captured in the same C
// call; goroutines moving between OS threads never see another call's detail.
func TestErrorDetailFromSameCall(t *testing.T) {
	m1 := newMap(t)
	m2 := newMap(t)
	it := m2.Cursor()
	tok, err := it.Token()
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, MaxKeyLen+1)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if (g+i)%2 == 0 {
					_, err := m1.Set(big, nil)
					if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "key") {
						errs <- fmt.Errorf("Set: %v", err)
						return
					}
				} else {
					err := m1.Resume(tok).Err()
					var e *Error
					if !errors.As(err, &e) || e.Status != StatusWrongMap || e.Detail == "" || strings.Contains(e.Detail, "key") {
						errs <- fmt.Errorf("Resume: %v", err)
						return
					}
				}
				if i%16 == 0 {
					runtime.Gosched()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
