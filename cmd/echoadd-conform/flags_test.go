package main

import (
	"bytes"
	"errors"
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
		{"empty server-cmd", []string{"--server-cmd", ""}, "--server-cmd is empty"},
		{"blank target", []string{"--target", " "}, "--target is empty"},
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
		{"max message size above the server's", []string{"--max-message-size", "2000000000"}, "up to 1GiB"},
		{"json report unwritable", []string{"--json-report", "/proc/nope/r.json"}, "--json-report"},
		{"junit report unwritable", []string{"--junit-report", "/proc/nope/r.xml"}, "--junit-report"},
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

// TestMaxMessageSizeForms: --max-message-size takes the forms and bounds
// echoadd-server's does, and refuses the rest as a usage error.
func TestMaxMessageSizeForms(t *testing.T) {
	tests := []struct {
		in   string
		want int    // 0: refused
		err  string // in the error
	}{
		{"1024", 1024, ""},
		{"1MiB", 1 << 20, ""},
		{"64kib", 64 << 10, ""},
		{"1GiB", 1 << 30, ""},
		{"1gib", 1 << 30, ""},
		{"1073741824", 1 << 30, ""},
		{"1073741825", 0, "up to 1GiB"},
		{"2000000000", 0, "up to 1GiB"},
		{"2GiB", 0, "up to 1GiB"},
		{"1MB", 0, "e.g. 1048576, 64KiB"},
		{"512", 0, "below 1024"},
		{"1KiB", 1024, ""},
	}
	for _, tt := range tests {
		for _, target := range [][]string{nil, {"--target", "127.0.0.1:7878"}} {
			o, _, err := parseArgs(append([]string{"--max-message-size", tt.in}, target...))
			switch {
			case tt.want == 0 && (!errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.err)):
				t.Errorf("--max-message-size %s %v: %v; want a usage error saying %q", tt.in, target, err, tt.err)
			case tt.want != 0 && (err != nil || o.maxMessageSize != tt.want):
				t.Errorf("--max-message-size %s %v: %+v, %v; want %d", tt.in, target, o, err, tt.want)
			}
		}
	}
	o, _, err := parseArgs([]string{"--max-message-size", "1MiB"})
	if err != nil {
		t.Fatal(err)
	}
	if cmd, err := bundledServerCmd(o); err != nil || !strings.Contains(cmd, " --max-message-size 1048576 ") {
		t.Errorf("bundled server command %q, %v; want the size in bytes", cmd, err)
	}
}

// TestLabelFilterError: a bad --label-filter is explained in plain text
// (Ginkgo's message has colour codes), with where and an example.
func TestLabelFilterError(t *testing.T) {
	for filter, want := range map[string][]string{
		"(((":           {`--label-filter "((("`, "Mismatched '('", "\n  (((\n  ^\n", "e.g. 'must && !concurrency'"},
		"must & should": {"Invalid token '&'.  Did you mean '&&'?", "\n  must & should\n       ^\n"},
		"must &&":       {"Unexpected EOF"},
	} {
		_, _, err := parseArgs([]string{"--label-filter", filter})
		if !errors.Is(err, errUsage) {
			t.Errorf("--label-filter %q: %v, want a usage error", filter, err)
			continue
		}
		if strings.Contains(err.Error(), "\x1b") || strings.Contains(err.Error(), "{{") {
			t.Errorf("--label-filter %q: %q has colour codes", filter, err)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("--label-filter %q: %q lacks %q", filter, err, w)
			}
		}
	}
}

// TestReportPathChecked: a report that cannot be written is a usage error
// found before anything runs, and the check leaves nothing behind.
func TestReportPathChecked(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "old.json")
	if err := os.WriteFile(existing, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		err  string // in the error; "" for accepted
	}{
		{"/proc/nope/r.json", "cannot be created"},
		{dir, "is a directory"},
		{filepath.Join(existing, "r.json"), "not a directory"},
		{existing, ""},
		{filepath.Join(dir, "r.json"), ""},
		{filepath.Join(dir, "new", "sub", "r.json"), ""},
	}
	for _, flag := range []string{"--json-report", "--junit-report"} {
		for _, tt := range tests {
			_, _, err := parseArgs([]string{flag, tt.path})
			switch {
			case tt.err == "" && err != nil:
				t.Errorf("%s %s: %v, want it accepted", flag, tt.path, err)
			case tt.err != "" && (!errors.Is(err, errUsage) || !strings.Contains(err.Error(), flag) || !strings.Contains(err.Error(), tt.err)):
				t.Errorf("%s %s: %v; want a usage error naming the flag and saying %q", flag, tt.path, err, tt.err)
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "old.json" {
		t.Errorf("the checks left %v in %s, want only old.json", entries, dir)
	}
	if b, err := os.ReadFile(existing); err != nil || string(b) != "old" {
		t.Errorf("an existing report file holds %q, %v after the check; want it untouched", b, err)
	}
}

// TestMaxConnsWarning: a connection limit below EA-CONC-1's 100 clients is
// allowed, with a warning that the run will fail.
func TestMaxConnsWarning(t *testing.T) {
	for _, tt := range []struct {
		args []string
		warn string // "": none
	}{
		{[]string{"--max-conns", "99"}, "--max-conns 99 is below the 100 clients EA-CONC-1 needs at once"},
		{[]string{"--max-conns", "1", "--target", "127.0.0.1:7878"}, "--max-conns 1 is below the 100 clients EA-CONC-1 needs at once"},
		{[]string{"--max-conns", "100"}, ""},
		{[]string{"--max-conns", "8", "--label-filter", "EA-LIM-5"}, ""},
		{[]string{"--max-conns", "8", "--label-filter", "must"}, "--max-conns 8 is below"},
		{[]string{"--max-conns", "8", "--list"}, ""},
		{[]string{"--max-conns", "0"}, ""},
		{nil, ""},
	} {
		o, _, err := parseArgs(tt.args)
		if err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		var buf bytes.Buffer
		if err := writeWarnings(&buf, o); err != nil {
			t.Fatal(err)
		}
		got := buf.String()
		switch {
		case tt.warn == "" && got != "":
			t.Errorf("%v: warned %q, want nothing", tt.args, got)
		case tt.warn != "" && (!strings.HasPrefix(got, "echoadd-conform: warning: "+tt.warn) || !strings.Contains(got, "NOT CONFORMANT on EA-CONC-1") || !strings.HasSuffix(got, "\n")):
			t.Errorf("%v: warned %q, want a line saying %q and NOT CONFORMANT on EA-CONC-1", tt.args, got, tt.warn)
		}
	}
}
