// Package runtime is the host side of the Crosscast plugin ABI v1 (sdk/ABI.md): it runs sandboxed WebAssembly
// plugins on wazero, in-process.
//
// It owns the wazero runtime (one per process, with WithCloseOnContextDone so a runaway guest is stopped at its
// deadline), the compilation cache, the crosscast_v1 host module, the checks a module must pass at load, a bounded
// pool of initialised instances per plugin, the call protocol (cc_alloc, cc_call, packed output, status byte), and
// the containment of hostile guests: any trap, timeout, out-of-memory or protocol violation discards the instance
// that did it and surfaces as a typed error (ErrTimeout, ErrTrap, ErrProtocol, ErrOutputTooLarge; at load
// *ABIError and ErrInvalidWasm; a plugin's own error answer is a *GuestError and keeps the instance). Guests get
// real clocks (sleeps end at the call's deadline) and randomness, but no filesystem, environment, arguments or
// sockets; their stdout and stderr go to bounded buffers that are logged when an instance fails.
//
// It knows nothing of channels, scorers or connectors: adapting plugins to the interfaces core declares is the
// plugin manager's job, above this package. It imports wazero, which core must never do, so core must never import
// this package either (deps_test.go walks the dependency graph to keep it so).
package runtime
