// Package suite is the Echo/Add conformance suite: Ginkgo specs, one file
// per PROTOCOL.md section (transport.go, framing.go, messages.go, echo.go,
// add.go, ordering.go, errors.go, malformed.go, limits.go, concurrency.go,
// shutdown.go) plus legacy.go, the original exercise's tests. The specs are
// in non-test files so that a binary (cmd/echoadd-conform) can link them;
// suite_test.go runs them under `go test ./suite` against the reference.
//
// # Running the specs
//
// A runner calls Configure, then ginkgo.RunSpecs (or PreviewSpecs to list
// them), once per process:
//
//	if err := suite.Configure(suite.Config{ServerCmd: "srv --listen 127.0.0.1:{port}", Framing: protocol.Len32}); err != nil { ... }
//	gomega.RegisterFailHandler(ginkgo.Fail)
//	ginkgo.RunSpecs(t, "Echo/Add conformance")
//
// Configure must come first: the spec tree reads the configuration when
// RunSpecs builds it (the framing picks EA-FRAME-3 or EA-FRAME-6, and
// which malformed cases and size entries exist). The package declares the
// suite's BeforeSuite (it starts ServerCmd, or checks that Target answers)
// and stops the server when the suite ends, so a runner must not declare a
// BeforeSuite or AfterSuite of its own; ReportAfterSuite is fine.
//
// # How specs reach the target
//
// Every spec but the lifecycle ones talks to one shared server: Target, or
// the process BeforeSuite started from ServerCmd on a free 127.0.0.1 port.
// If that process has exited when a spec begins (it crashed during an
// earlier spec, which failed for it), it is started again and the spec
// records a "shared server restarted" report entry. Lifecycle specs
// (labelled "lifecycle": shutdown, restart, idle CPU) start a fresh process
// each and skip against a Target ("needs --server-cmd").
//
// After a spec that talks to the shared server fails, a fresh connection
// sends it one echo request (session.go, checkAnswering). If that connect
// does not complete, or nothing at all comes back, within the liveness
// window (3 s x scale), the target has stopped answering: the specs after
// it that need the shared server skip at once, "not judged: the target
// stopped answering: <the first failure>", instead of each waiting out its
// own timeouts (a run against a dead target ends in seconds, not ten
// minutes). MUST specs still run until one has failed, so such a run is
// never CONFORMANT. A server that answers anything (late, wrong, an Error,
// a close) is judged on every spec.
//
// # Labels and failure messages
//
// Every spec carries Label(IDs..., level, section): the requirement IDs it
// checks (EA-ECHO-1, ...), their common level ("must", "should", "may") and
// its section ("transport", "framing", "messages", "echo", "add",
// "ordering", "errors", "malformed", "limits", "concurrency", "shutdown", or
// "legacy"). Lifecycle specs also carry "lifecycle".
//
// A failure message's first line is "IDS: got X, want Y". IDS are the
// requirements the observation breaks, which the harness's check knows
// (harness.Failure.Blame): EA-CONN-6 for a late reply, EA-MSG-1 for an
// undecodable one, the framing's EA-FRAME-n for bytes that are not a frame,
// EA-CONN-1 for an extra reply, EA-CONN-2 for the reply to a later request;
// for a wrong echo the one of EA-ECHO-1/2/3 the spec checks (else
// EA-ECHO-1), for a wrong sum the one of EA-ADD-1/2/3; for a close with a
// reply due EA-CONN-3, and for no reply EA-CONN-1, unless the spec checks
// a requirement that the request be served (EA-MAL-1, EA-CONC-3, ...).
// An Error CODE_OVERLOADED to one of EA-CONC-1's 100 clients is EA-CONC-1's
// (the server refused a client at its connection limit).
// "(checking ...)" follows with the spec's own IDs when they differ. A
// spec's own check, or a harness check that cannot tell, names the spec's
// IDs. A framing hint may follow ("try --framing len32"), then the
// wire transcript of the connection (or connections) involved. A failure
// the target is not to blame for starts "HARNESS ERROR" (suite/report
// counts those as harness errors, not verdicts).
//
// # Timing
//
// Every deadline is scaled by Config.TimeoutScale; the named windows are in
// config.go. Every reply is held to EA-CONN-6 (1 s x scale). Windows that
// accept silence say so: silence is "nothing arrived within the window".
// A full run against the reference takes about 5 s per framing.
package suite
