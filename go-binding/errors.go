package mapcore

import "fmt"

// Status is a libmapcore status code (enum mc_status in mapcore.h).
type Status int32

// Status codes, with the values of include/mapcore.h.
const (
	StatusOK              Status = 0
	StatusNotFound        Status = 1
	StatusBadHandle       Status = 2
	StatusIterInvalidated Status = 3
	StatusBadToken        Status = 4
	StatusWrongMap        Status = 5
	StatusBufferTooSmall  Status = 6
	StatusNullArgument    Status = 7
	StatusTooLarge        Status = 8
	StatusOutOfMemory     Status = 9
	StatusInternal        Status = 10
	StatusInvalidArgument Status = 11
	StatusReentrant       Status = 12
	StatusPoisoned        Status = 13
	StatusDone            Status = 14
	statusCount                  = 15 // number of known codes
)

var statusNames = [statusCount]string{
	"MC_OK",
	"MC_ERR_NOT_FOUND",
	"MC_ERR_BAD_HANDLE",
	"MC_ERR_ITER_INVALIDATED",
	"MC_ERR_BAD_TOKEN",
	"MC_ERR_WRONG_MAP",
	"MC_ERR_BUFFER_TOO_SMALL",
	"MC_ERR_NULL_ARGUMENT",
	"MC_ERR_TOO_LARGE",
	"MC_ERR_OUT_OF_MEMORY",
	"MC_ERR_INTERNAL",
	"MC_ERR_INVALID_ARGUMENT",
	"MC_ERR_REENTRANT",
	"MC_ERR_POISONED",
	"MC_DONE",
}

// String returns the C name of the status ("MC_ERR_NOT_FOUND"), for
// diagnostics; Error messages use Go wording instead.
func (s Status) String() string {
	if s >= 0 && int(s) < statusCount {
		return statusNames[s]
	}
	return fmt.Sprintf("MC_UNKNOWN_STATUS(%d)", int32(s))
}

// Description returns the library's one-line description of the status.
func (s Status) Description() string { return cStatusDescribe(int32(s)) }

// goMessages words each status the way this package's errors print it.
var goMessages = [statusCount]string{
	"ok",
	"key not found",
	"map or snapshot is closed",
	"iterator invalidated by a change to the map",
	"invalid iteration token",
	"token belongs to another map or snapshot",
	"buffer too small",
	"nil argument",
	"too large",
	"out of memory",
	"internal error",
	"invalid argument",
	"callback called back into its own map",
	"map is unusable after an internal error or a fork",
	"iteration done",
}

// message returns the Go wording of the status.
func (s Status) message() string {
	if s >= 0 && int(s) < statusCount {
		return goMessages[s]
	}
	return "unknown status " + s.String()
}

// Error is the error type of this package: the operation, the library
// status and the library's detail message for this failure.
//
// Error() reads "mapcore: <Op>: <detail>", or "mapcore: <what>" for a
// sentinel (ErrClosed prints "mapcore: map or snapshot is closed"). The
// library's status name stays in Status for diagnostics (Status.String
// gives "MC_ERR_BAD_HANDLE").
//
// Compare with the sentinels using errors.Is: errors.Is(err, ErrNotFound).
type Error struct {
	Op     string // the method that failed, e.g. "Map.Set"
	Status Status // the library status (StatusBadHandle for ErrClosed)
	Detail string // detail message, captured in the same C call as the failure
}

func (e *Error) Error() string {
	msg := e.Detail
	if msg == "" {
		msg = e.Status.message()
	}
	if e.Op == "" {
		return "mapcore: " + msg
	}
	return "mapcore: " + e.Op + ": " + msg
}

// Is reports whether target is the sentinel for e's status (an *Error with
// no Op and no Detail, such as ErrNotFound), or an *Error equal to e.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	if t.Op == "" && t.Detail == "" {
		return t.Status == e.Status
	}
	return *t == *e
}

// Sentinel errors, one per failure status. Test with errors.Is.
var (
	// ErrNotFound: the key (or the entry an iterator points at) does not exist.
	ErrNotFound error = &Error{Status: StatusNotFound}
	// ErrClosed: the map or snapshot was closed (the library's MC_ERR_BAD_HANDLE).
	ErrClosed error = &Error{Status: StatusBadHandle}
	// ErrIterInvalidated: a strict iterator saw a structural change it did not make.
	ErrIterInvalidated error = &Error{Status: StatusIterInvalidated}
	// ErrBadToken: an iterator token is corrupted, forged, malformed or zero.
	ErrBadToken error = &Error{Status: StatusBadToken}
	// ErrWrongMap: an iterator token belongs to another (or a closed) map or snapshot.
	ErrWrongMap error = &Error{Status: StatusWrongMap}
	// ErrBufferTooSmall is never returned by this package (it grows its
	// buffers itself); it exists so that every library status has a sentinel.
	ErrBufferTooSmall error = &Error{Status: StatusBufferTooSmall}
	// ErrNullArgument: a required pointer was NULL. The binding never passes
	// NULL where it is not allowed, so seeing it means a binding bug.
	ErrNullArgument error = &Error{Status: StatusNullArgument}
	// ErrTooLarge: a key, value, batch or capacity exceeds a documented limit
	// (MaxKeyLen, MaxValueLen, MaxBatch).
	ErrTooLarge error = &Error{Status: StatusTooLarge}
	// ErrOutOfMemory: the library could not allocate; the map is unchanged.
	ErrOutOfMemory error = &Error{Status: StatusOutOfMemory}
	// ErrInternal: an internal library error (a caught panic); the map is
	// then poisoned. Also used for inconsistencies the binding detects.
	ErrInternal error = &Error{Status: StatusInternal}
	// ErrInvalidArgument: an argument has an unknown or out-of-range value.
	ErrInvalidArgument error = &Error{Status: StatusInvalidArgument}
	// ErrReentrant: a DeleteFunc callback called back into the map running it.
	ErrReentrant error = &Error{Status: StatusReentrant}
	// ErrPoisoned: an earlier internal error poisoned the map (or, in a forked
	// child, the fork caught it in use); only Close works.
	ErrPoisoned error = &Error{Status: StatusPoisoned}
)

var sentinels = map[Status]error{
	StatusNotFound:        ErrNotFound,
	StatusBadHandle:       ErrClosed,
	StatusIterInvalidated: ErrIterInvalidated,
	StatusBadToken:        ErrBadToken,
	StatusWrongMap:        ErrWrongMap,
	StatusBufferTooSmall:  ErrBufferTooSmall,
	StatusNullArgument:    ErrNullArgument,
	StatusTooLarge:        ErrTooLarge,
	StatusOutOfMemory:     ErrOutOfMemory,
	StatusInternal:        ErrInternal,
	StatusInvalidArgument: ErrInvalidArgument,
	StatusReentrant:       ErrReentrant,
	StatusPoisoned:        ErrPoisoned,
}

// goErr builds an error detected by the binding itself (no C call failed).
func goErr(op string, s Status, format string, args ...any) error {
	return &Error{Op: op, Status: s, Detail: fmt.Sprintf(format, args...)}
}

func closedErr(op string) error {
	return &Error{Op: op, Status: StatusBadHandle, Detail: "use of a closed map or snapshot"}
}
