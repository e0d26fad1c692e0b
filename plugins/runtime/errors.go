package runtime

import (
	"errors"
	"strings"
)

// Errors a call or a load can return, wrapped with the plugin's name and the entry point. Test them with
// errors.Is; *GuestError and *ABIError also carry details for errors.As.
var (
	// ErrTimeout means the call ran past its deadline (Options.Timeout or the caller's); the instance was stopped
	// and discarded.
	ErrTimeout = errors.New("plugin call timed out")
	// ErrTrap means the guest aborted: a wasm trap (unreachable, out-of-bounds access, stack overflow), a Go panic or
	// fatal error such as running out of its memory limit, or a misuse of a host function. The instance was
	// discarded; its stderr tail was logged.
	ErrTrap = errors.New("plugin trapped")
	// ErrProtocol means the guest broke the call protocol: cc_alloc gave a null or out-of-memory buffer, or cc_call
	// returned a pointer and length outside its memory, an empty output or an unknown status byte. The instance was
	// discarded.
	ErrProtocol = errors.New("plugin broke the call protocol")
	// ErrOutputTooLarge means the output was longer than Options.MaxOutput. The instance was discarded.
	ErrOutputTooLarge = errors.New("plugin output too large")
	// ErrGuest is matched by every *GuestError: the plugin ran fine and answered with an error (status 1). The
	// instance stays in the pool.
	ErrGuest = errors.New("plugin returned an error")
	// ErrBadABI is matched by every *ABIError: the module does not implement ABI v1.
	ErrBadABI = errors.New("plugin does not implement ABI v1")
	// ErrInvalidWasm means the bytes are not a WebAssembly module this runtime accepts (corrupt, or declaring more
	// memory than Options.MemoryLimit).
	ErrInvalidWasm = errors.New("invalid wasm module")
	// ErrClosed means the plugin or the runtime was closed.
	ErrClosed = errors.New("plugin runtime closed")
)

// GuestError is a plugin's own error answer (status byte 1). Message is the guest's UTF-8 text, at most 4 KiB; it
// comes from plugin code and may quote the input, so callers should not log it above debug level when inputs carry
// personal data.
type GuestError struct {
	Message string
}

func (e *GuestError) Error() string { return "plugin returned an error: " + e.Message }

// Is makes errors.Is(err, ErrGuest) true.
func (e *GuestError) Is(target error) bool { return target == ErrGuest }

// ABIError lists what a module lacks or does wrong to be an ABI v1 plugin: missing or mistyped exports, imports
// from modules other than crosscast_v1 and wasi_snapshot_preview1.
type ABIError struct {
	Problems []string
}

func (e *ABIError) Error() string {
	return "plugin does not implement ABI v1: " + strings.Join(e.Problems, "; ")
}

// Is makes errors.Is(err, ErrBadABI) true.
func (e *ABIError) Is(target error) bool { return target == ErrBadABI }
