// Package malformed is the conformance suite's malformed-input corpus: one
// file per case, embedded so that a runner binary is self-contained. The
// format is described in ../README.md ("malformed").
package malformed

import (
	"bufio"
	"bytes"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"echoadd/protocol"
)

// Files are the case files, *.case.
//
//go:embed *.case
var Files embed.FS

// Case is one malformed input.
type Case struct {
	Name         string             // the file name without ".case"
	Exercises    string             // what the case exercises, for people
	Framings     []protocol.Framing // the framings it applies to
	Body         []byte             // the bytes ("hex:")
	Frame        bool               // "wrap: frame": Body goes behind the framing's length prefix
	Declare      *uint64            // "declare:": the length the prefix declares instead of len(Body)
	CloseWrite   bool               // "after: close-write": the client half-closes after sending
	Codes        []protocol.Code    // the Error replies a server should send, in order ("codes: none": no reply is due)
	Optional     []protocol.Code    // "optional:": an Error reply with one of these codes may come before the close
	Requirements []string           // the requirement IDs the case exercises
}

// AppliesTo reports whether the case is defined for framing f.
func (c Case) AppliesTo(f protocol.Framing) bool { return slices.Contains(c.Framings, f) }

// Wire is what the client sends in framing f: Body as it is, or behind f's
// length prefix (declaring Declare, if set). Raw framing has no prefix.
func (c Case) Wire(f protocol.Framing) []byte {
	if !c.Frame {
		return c.Body
	}
	var b bytes.Buffer
	declared := uint64(len(c.Body))
	if c.Declare != nil {
		declared = *c.Declare
	}
	(protocol.IllegalWriter{W: &b}).WriteFrame(f, declared, c.Body) //nolint:errcheck // a bytes.Buffer does not fail
	return b.Bytes()
}

// Load parses every *.case file of fsys, in name order.
func Load(fsys fs.FS) ([]Case, error) {
	names, err := fs.Glob(fsys, "*.case")
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no *.case files")
	}
	var cases []Case
	for _, name := range names {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		c, err := Parse(strings.TrimSuffix(path.Base(name), ".case"), data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		cases = append(cases, c)
	}
	return cases, nil
}

// Embedded loads the embedded corpus.
func Embedded() ([]Case, error) { return Load(Files) }

// Parse reads one case file: "key: value" lines; '#' starts a comment line.
func Parse(name string, data []byte) (Case, error) {
	c := Case{Name: name}
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		key, value, ok := strings.Cut(text, ":")
		if !ok {
			return c, fmt.Errorf("line %d: want \"key: value\", got %q", line, text)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if seen[key] {
			return c, fmt.Errorf("line %d: %s given twice", line, key)
		}
		seen[key] = true
		if err := c.set(key, value); err != nil {
			return c, fmt.Errorf("line %d: %s: %w", line, key, err)
		}
	}
	for _, key := range []string{"exercises", "framings", "hex", "codes", "requirements"} {
		if !seen[key] {
			return c, fmt.Errorf("no %s line", key)
		}
	}
	if c.Declare != nil && !c.Frame {
		return c, fmt.Errorf("declare needs wrap: frame")
	}
	if len(c.Body) == 0 && !c.Frame {
		return c, fmt.Errorf("an empty body is only meaningful behind a prefix (wrap: frame)")
	}
	return c, nil
}

func (c *Case) set(key, value string) error {
	switch key {
	case "exercises":
		c.Exercises = value
	case "framings":
		for _, name := range strings.Fields(value) {
			f, err := protocol.ParseFraming(name)
			if err != nil {
				return err
			}
			c.Framings = append(c.Framings, f)
		}
		if len(c.Framings) == 0 {
			return fmt.Errorf("no framing")
		}
	case "hex":
		b, err := hex.DecodeString(strings.Join(strings.Fields(value), ""))
		if err != nil {
			return err
		}
		c.Body = b
	case "wrap":
		switch value {
		case "frame":
			c.Frame = true
		case "none":
		default:
			return fmt.Errorf("want frame or none, got %q", value)
		}
	case "declare":
		n, err := strconv.ParseUint(value, 10, 64)
		if err != nil {
			return err
		}
		c.Declare = &n
	case "after":
		if value != "close-write" {
			return fmt.Errorf("want close-write, got %q", value)
		}
		c.CloseWrite = true
	case "codes":
		if value == "none" {
			return nil
		}
		codes, err := parseCodes(value)
		if err != nil {
			return err
		}
		c.Codes = codes
	case "optional":
		codes, err := parseCodes(value)
		if err != nil {
			return err
		}
		c.Optional = codes
	case "requirements":
		c.Requirements = strings.Fields(value)
		for _, id := range c.Requirements {
			if !strings.HasPrefix(id, "EA-") {
				return fmt.Errorf("%q is not a requirement ID", id)
			}
		}
	default:
		return fmt.Errorf("unknown key")
	}
	return nil
}

// parseCodes parses Code names separated by spaces.
func parseCodes(value string) ([]protocol.Code, error) {
	var codes []protocol.Code
	for _, name := range strings.Fields(value) {
		v, ok := protocol.Code_value[name]
		if !ok {
			return nil, fmt.Errorf("unknown code %q", name)
		}
		codes = append(codes, protocol.Code(v))
	}
	if len(codes) == 0 {
		return nil, fmt.Errorf("no code (write none for no reply)")
	}
	return codes, nil
}
