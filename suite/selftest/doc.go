// Package selftest proves that the conformance suite can fail: it runs the
// built echoadd-conform binary against deliberately faulty servers (package
// faulty), one process per target, and checks that each fails exactly the
// requirements its fault breaks, and that the bundled reference passes
// everything in every framing. It also checks traceability between
// PROTOCOL.md, the specs' labels and the faults, and that
// docs/REQUIREMENTS.md is current.
//
// Regenerate docs/REQUIREMENTS.md with `go generate ./suite/selftest`.
package selftest

//go:generate sh -c "{ go run ../../cmd/echoadd-conform --list --framing raw && go run ../../cmd/echoadd-conform --list --framing len32 && go run ../../cmd/echoadd-conform --list --framing varint; } | go run ./gendocs -o ../../docs/REQUIREMENTS.md"
