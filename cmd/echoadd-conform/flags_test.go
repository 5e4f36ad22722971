package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/help.golden")

func TestHelpGolden(t *testing.T) {
	for _, arg := range []string{"--help", "-h"} {
		var stdout, stderr bytes.Buffer
		if code := run([]string{arg}, &stdout, &stderr); code != 0 {
			t.Fatalf("%s: exit %d, stderr %q", arg, code, stderr.String())
		}
		golden := filepath.Join("testdata", "help.golden")
		if *update {
			if err := os.WriteFile(golden, stdout.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(stdout.Bytes(), want) {
			t.Errorf("%s output differs from %s (go test ./cmd/echoadd-conform -run TestHelpGolden -update):\n%s", arg, golden, stdout.String())
		}
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"target and server-cmd", []string{"--target", "127.0.0.1:1", "--server-cmd", "srv {port}"}, "mutually exclusive"},
		{"server-cmd without port", []string{"--server-cmd", "srv --listen :7878"}, "does not contain {port}"},
		{"target without port", []string{"--target", "127.0.0.1"}, "--target"},
		{"target bad port", []string{"--target", "127.0.0.1:http"}, "not a number"},
		{"target no host", []string{"--target", ":7878"}, "missing host"},
		{"unknown framing", []string{"--framing", "json"}, "unknown framing"},
		{"unknown flag", []string{"--nope"}, "unknown flag"},
		{"positional argument", []string{"127.0.0.1:7878"}, "unexpected argument"},
		{"small max message size", []string{"--max-message-size", "512"}, "below 1024"},
		{"negative read timeout", []string{"--read-timeout", "-1s"}, "negative"},
		{"negative idle timeout", []string{"--idle-timeout", "-1s"}, "--idle-timeout -1s is negative"},
		{"negative max conns", []string{"--max-conns", "-1"}, "--max-conns -1 is negative"},
		{"zero timeout scale", []string{"--timeout-scale", "0"}, "--timeout-scale"},
		{"bad label filter", []string{"--label-filter", "must &&"}, "--label-filter"},
		{"bad focus", []string{"--focus", "("}, "--focus"},
		{"list with report", []string{"--list", "--json-report", "r.json"}, "--list runs nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr)
			if code != 3 {
				t.Errorf("exit %d, want 3", code)
			}
			if !strings.Contains(stderr.String(), tt.want) || !strings.Contains(stderr.String(), "--help") {
				t.Errorf("stderr %q lacks %q and a pointer to --help", stderr.String(), tt.want)
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
		})
	}
}

func TestBundledDefaults(t *testing.T) {
	o, _, err := parseArgs(nil)
	if err != nil || !o.bundled || o.maxMessageSize != bundledMaxMessageSize || !o.maxDeclared || o.readTimeout != bundledReadTimeout {
		t.Errorf("no flags: %+v, %v; want the bundled reference with its declared limits", o, err)
	}
	o, _, err = parseArgs([]string{"--target", "127.0.0.1:7878"})
	if err != nil || o.bundled || o.maxMessageSize != 1024 || o.maxDeclared || o.readTimeout != 0 {
		t.Errorf("--target: %+v, %v; want 1024 bytes assumed, no maximum and no read timeout declared", o, err)
	}
	o, _, err = parseArgs([]string{"--target", "127.0.0.1:7878", "--max-message-size", "1024"})
	if err != nil || !o.maxDeclared {
		t.Errorf("--target with --max-message-size 1024: %+v, %v; want the maximum declared", o, err)
	}
	o, _, err = parseArgs([]string{"--read-timeout", "0", "--max-message-size", "2048"})
	if err != nil || o.maxMessageSize != 2048 || o.readTimeout != 0 {
		t.Errorf("explicit flags with the bundled reference: %+v, %v", o, err)
	}
	cmd, err := bundledServerCmd(o)
	if err != nil || !strings.HasSuffix(cmd, " __reference-server --listen 127.0.0.1:{port} --framing raw --max-message-size 2048 --read-timeout 0s") {
		t.Errorf("bundled server command %q, %v; want no idle timeout and no connection limit", cmd, err)
	}
	if o.idleTimeout != 0 || o.maxConns != 0 {
		t.Errorf("no --idle-timeout, --max-conns: %+v; want none declared", o)
	}
}

// TestBundledLimits: an idle timeout or connection limit declared for the
// bundled reference is the one it is started with.
func TestBundledLimits(t *testing.T) {
	o, _, err := parseArgs([]string{"--idle-timeout", "1500ms", "--max-conns", "8"})
	if err != nil || !o.bundled || o.idleTimeout != 1500*time.Millisecond || o.maxConns != 8 {
		t.Fatalf("%+v, %v", o, err)
	}
	cmd, err := bundledServerCmd(o)
	if err != nil || !strings.HasSuffix(cmd, " --read-timeout 1s --idle-timeout 1.5s --max-conns 8") {
		t.Errorf("bundled server command %q, %v", cmd, err)
	}
	o, _, err = parseArgs([]string{"--server-cmd", "srv {port}", "--idle-timeout", "2s", "--max-conns", "3"})
	if err != nil || o.bundled || o.idleTimeout != 2*time.Second || o.maxConns != 3 {
		t.Errorf("--server-cmd: %+v, %v; want the declared values", o, err)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/bin/x":       "/usr/bin/x",
		"/tmp/a b/x":       "'/tmp/a b/x'",
		"/tmp/it's/x":      `'/tmp/it'\''s/x'`,
		"/tmp/$(reboot)/x": "'/tmp/$(reboot)/x'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}
