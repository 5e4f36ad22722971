package suite

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"echoadd/protocol"
	"echoadd/suite/harness"
)

// Config says what the suite tests and how. Configure must be called before
// ginkgo.RunSpecs (or PreviewSpecs): the spec tree reads it when it is built,
// e.g. to pick EA-FRAME-3 (raw, SHOULD) or EA-FRAME-6 (len32/varint, MUST).
type Config struct {
	Target         string           // HOST:PORT of an already running server; "" => start ServerCmd
	ServerCmd      string           // shell command containing {port}; harness picks a free port
	Framing        protocol.Framing // default Raw
	MaxMessageSize int              // largest request the target declares (encoded bytes); 0 => 1024, undeclared
	ReadTimeout    time.Duration    // target's declared read timeout; 0 => read-timeout specs skipped
	IdleTimeout    time.Duration    // target's declared idle timeout; 0 => idle-timeout specs (EA-LIM-4) skipped
	MaxConns       int              // target's declared connection limit; 0 => connection-limit spec (EA-LIM-5) skipped
	TimeoutScale   float64          // multiplies every deadline; 0 => 1
	Transcript     io.Writer        // non-nil: stream every spec's wire transcript here (-v)
	Stdout, Stderr io.Writer        // where a started server's output is also echoed, may be nil

	// maxDeclared records that MaxMessageSize was given: without it a
	// request above 1024 bytes may rightly be served, so the EA-LIM-2 specs
	// that send the maximum + 1 are skipped.
	maxDeclared bool
}

// The suite's configuration: set by Configure before the spec tree is
// built, read by every spec. Ginkgo's spec tree is itself global, so this
// is too.
var (
	configMu   sync.Mutex
	current    = normalize(Config{})
	configured bool
)

// Configure validates c and makes it the configuration of the next run.
func Configure(c Config) error {
	if err := validate(c); err != nil {
		return err
	}
	configMu.Lock()
	defer configMu.Unlock()
	current, configured = normalize(c), true
	return nil
}

// Current is the configuration in force, zero values replaced by their
// defaults (MaxMessageSize 1024, TimeoutScale 1).
func Current() Config {
	configMu.Lock()
	defer configMu.Unlock()
	return current
}

func isConfigured() bool {
	configMu.Lock()
	defer configMu.Unlock()
	return configured
}

func validate(c Config) error {
	var errs []error
	switch {
	case c.Target == "" && c.ServerCmd == "":
		errs = append(errs, errors.New("give a target address or a server command"))
	case c.Target != "" && c.ServerCmd != "":
		errs = append(errs, errors.New("give a target address or a server command, not both"))
	case c.ServerCmd != "" && !strings.Contains(c.ServerCmd, "{port}"):
		errs = append(errs, harness.ErrNoPort)
	}
	if c.Framing < protocol.Raw || c.Framing > protocol.Varint {
		errs = append(errs, fmt.Errorf("unknown framing %v", c.Framing))
	}
	if c.MaxMessageSize != 0 && c.MaxMessageSize < protocol.MinMaxMessageSize {
		errs = append(errs, fmt.Errorf("max message size %d is below %d, which every server must accept (EA-LIM-1)", c.MaxMessageSize, protocol.MinMaxMessageSize))
	}
	if c.ReadTimeout < 0 {
		errs = append(errs, fmt.Errorf("read timeout %v is negative", c.ReadTimeout))
	}
	if c.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("idle timeout %v is negative", c.IdleTimeout))
	}
	if c.MaxConns < 0 {
		errs = append(errs, fmt.Errorf("connection limit %d is negative", c.MaxConns))
	}
	if c.TimeoutScale < 0 {
		errs = append(errs, fmt.Errorf("timeout scale %v is negative", c.TimeoutScale))
	}
	return errors.Join(errs...)
}

func normalize(c Config) Config {
	c.maxDeclared = c.MaxMessageSize != 0
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = protocol.MinMaxMessageSize
	}
	if c.TimeoutScale == 0 {
		c.TimeoutScale = 1
	}
	if c.Transcript != nil {
		c.Transcript = &syncWriter{w: c.Transcript}
	}
	return c
}

// framed reports whether the target speaks a framing with length prefixes.
func (c Config) framed() bool { return c.Framing != protocol.Raw }

// scaled multiplies d by the timeout scale.
func (c Config) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * c.TimeoutScale)
}

// The suite's named windows and bounds, all scaled by TimeoutScale. A window
// that passes quietly means only that nothing arrived within it.
type windows struct {
	latency   harness.Window // EA-CONN-6: every reply within 1 s of its request
	quiet     harness.Window // nothing more arrives after a reply (EA-CONN-1)
	unasked   harness.Window // nothing arrives on a connection left idle: no keep-alive, no late duplicate (EA-CONN-1)
	noReply   harness.Window // malformed input: silence within it is an accepted outcome
	afterErr  harness.Window // after the expected Error replies: nothing more, or a close
	closing   harness.Window // a close that is due now arrives within it
	oneWrite  time.Duration  // EA-FRAME-2: a raw reply arrives whole within it of its first byte
	pause     time.Duration  // between the pieces of a request sent in pieces
	start     time.Duration  // a started server accepts connections within it
	grace     time.Duration  // EA-STOP-4: a stopped server exits within it
	stopping  time.Duration  // EA-STOP-1: a stopped server refuses connections within it
	readLimit harness.Window // EA-LIM-3: the declared read timeout plus a margin
	idleOpen  harness.Window // EA-LIM-4: an idle connection is still open after half the idle timeout (unscaled: a scale must not push it past the timeout)
	idleRest  harness.Window // EA-LIM-4: after idleOpen, the rest of the idle timeout plus a margin, within which the close comes
	idleGap   harness.Window // EA-LIM-4: between the requests of a connection in use, a quarter of the idle timeout (unscaled)
	overload  harness.Window // EA-LIM-5: a connection above the limit gets its Error reply within it
	reopen    time.Duration  // EA-LIM-5: a connection is served within it of a served one closing
	cpuWindow time.Duration  // EA-CONC-4: how long idle CPU time is measured
	alive     harness.Window // after a failed spec: a fresh connection's echo gets anything at all within it, or the target stopped answering
	spec      time.Duration  // no spec runs longer (but those that wait out the idle timeout)
}

func (c Config) windows() windows {
	s := c.scaled
	return windows{
		latency:   harness.Window{Name: "EA-CONN-6 latency", D: s(time.Second)},
		quiet:     harness.Window{Name: "quiet", D: s(50 * time.Millisecond)},
		unasked:   harness.Window{Name: "unasked", D: s(time.Second)},
		noReply:   harness.Window{Name: "no-reply", D: s(300 * time.Millisecond)},
		afterErr:  harness.Window{Name: "after-error", D: s(100 * time.Millisecond)},
		closing:   harness.Window{Name: "close", D: s(time.Second)},
		oneWrite:  s(50 * time.Millisecond),
		pause:     s(20 * time.Millisecond),
		start:     s(10 * time.Second),
		grace:     s(5 * time.Second),
		stopping:  s(time.Second),
		readLimit: harness.Window{Name: "read timeout + margin", D: c.ReadTimeout + s(time.Second)},
		idleOpen:  harness.Window{Name: "half the idle timeout", D: c.IdleTimeout / 2},
		idleRest:  harness.Window{Name: "rest of the idle timeout + margin", D: c.IdleTimeout - c.IdleTimeout/2 + s(time.Second)},
		idleGap:   harness.Window{Name: "quarter of the idle timeout", D: c.IdleTimeout / 4},
		overload:  harness.Window{Name: "overload reply", D: s(time.Second)},
		reopen:    s(2 * time.Second),
		cpuWindow: time.Second,
		alive:     harness.Window{Name: "liveness", D: s(3 * time.Second)},
		spec:      s(30 * time.Second),
	}
}

// syncWriter serialises writes from concurrent clients.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *syncWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(b)
}
