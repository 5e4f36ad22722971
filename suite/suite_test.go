package suite

import (
	"flag"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"

	"echoadd/protocol"
)

// Flags of `go test ./suite -args ...` (and `go tool ginkgo ./suite -- ...`).
// By default the suite builds the reference server and runs every spec
// against it.
var (
	flagFraming     = protocol.Raw
	flagTarget      = flag.String("echoadd.target", "", "HOST:PORT of a running server to test instead of the reference")
	flagServerCmd   = flag.String("echoadd.server-cmd", "", "command starting the server to test, with {port}, instead of the reference")
	flagMax         = flag.Int("echoadd.max-message-size", protocol.DefaultMaxMessageSize, "the server's declared maximum message size")
	flagReadTimeout = flag.Duration("echoadd.read-timeout", time.Second, "the server's declared read timeout (the reference is started with it)")
	flagIdleTimeout = flag.Duration("echoadd.idle-timeout", 0, "the server's declared idle timeout, for the EA-LIM-4 specs; 0 skips them (the reference is started with it)")
	flagMaxConns    = flag.Int("echoadd.max-conns", 0, "the server's declared connection limit, for the EA-LIM-5 spec; 0 skips it (the reference is started with it)")
	flagScale       = flag.Float64("echoadd.timeout-scale", 0, "multiplies every deadline (default 1, or 3 under the race detector)")
	flagTranscript  = flag.Bool("echoadd.transcript", false, "stream every spec's wire transcript (shown with ginkgo -v)")
)

func init() {
	flag.Var(&flagFraming, "echoadd.framing", "framing: raw, len32 or varint")
}

func TestSuite(t *testing.T) {
	RegisterFailHandler(Fail)
	cfg := Config{
		Target:         *flagTarget,
		ServerCmd:      *flagServerCmd,
		Framing:        flagFraming,
		MaxMessageSize: *flagMax,
		ReadTimeout:    *flagReadTimeout,
		IdleTimeout:    *flagIdleTimeout,
		MaxConns:       *flagMaxConns,
		TimeoutScale:   *flagScale,
	}
	if cfg.TimeoutScale == 0 {
		// Under -race the harness, not the server, is what is slow: a reply
		// it reads late would count against the server's 1 s bound
		// (EA-CONN-6). The self-test runs the uninstrumented runner at 1.
		cfg.TimeoutScale = 1
		if raceDetector {
			cfg.TimeoutScale = 3
		}
	}
	if cfg.Target == "" && cfg.ServerCmd == "" {
		bin, err := gexec.Build("echoadd/cmd/echoadd-server")
		if err != nil {
			t.Fatalf("building the reference server: %v", err)
		}
		defer gexec.CleanupBuildArtifacts()
		cfg.ServerCmd = fmt.Sprintf("exec %s --listen 127.0.0.1:{port} --framing %s --max-message-size %d --read-timeout %s --idle-timeout %s --max-conns %d --log-level warn",
			bin, cfg.Framing, cfg.MaxMessageSize, cfg.ReadTimeout, cfg.IdleTimeout, cfg.MaxConns)
	}
	if *flagTranscript {
		cfg.Transcript = GinkgoWriter
		cfg.Stdout, cfg.Stderr = GinkgoWriter, GinkgoWriter
	}
	if err := Configure(cfg); err != nil {
		t.Fatal(err)
	}
	RunSpecs(t, fmt.Sprintf("Echo/Add conformance (%s)", cfg.Framing))
}
