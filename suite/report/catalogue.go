package report

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strings"
)

//go:generate go run gen_catalogue.go ../../PROTOCOL.md catalogue_gen.go

// Requirement is one line of PROTOCOL.md's requirement catalogue.
type Requirement struct {
	ID    string `json:"id"`    // e.g. "EA-ECHO-1"
	Level string `json:"level"` // "must", "should" or "may", as spec labels spell it
	Text  string `json:"text"`  // the requirement's sentence
}

// Levels are the requirement levels, strongest first, as spec labels spell them.
var Levels = []string{"must", "should", "may"}

// idPattern is what a requirement ID looks like, in PROTOCOL.md and in spec labels.
var idPattern = regexp.MustCompile(`^EA-[A-Z]+-[0-9]+$`)

// IsID reports whether a spec label is a requirement ID.
func IsID(label string) bool { return idPattern.MatchString(label) }

// IsLevel reports whether a spec label is a requirement level.
func IsLevel(label string) bool {
	for _, l := range Levels {
		if label == l {
			return true
		}
	}
	return false
}

// requirementLine is PROTOCOL.md's machine-readable form: `- **ID** (LEVEL) text`.
var requirementLine = regexp.MustCompile(`^- \*\*(EA-[A-Z]+-[0-9]+)\*\* \((MUST|SHOULD|MAY)\) (.+)$`)

// ParseCatalogue reads the requirement lines of PROTOCOL.md, in document
// order. A line that starts like a requirement but does not parse, and an ID
// given twice, are errors: tools would otherwise lose a requirement silently.
func ParseCatalogue(r io.Reader) ([]Requirement, error) {
	var reqs []Requirement
	seen := map[string]int{}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if !strings.HasPrefix(text, "- **EA-") {
			continue
		}
		m := requirementLine.FindStringSubmatch(text)
		if m == nil {
			return nil, fmt.Errorf("line %d: looks like a requirement but is not `- **ID** (MUST|SHOULD|MAY) text`: %q", line, text)
		}
		if prev, dup := seen[m[1]]; dup {
			return nil, fmt.Errorf("line %d: %s already defined on line %d", line, m[1], prev)
		}
		seen[m[1]] = line
		reqs = append(reqs, Requirement{ID: m[1], Level: strings.ToLower(m[2]), Text: m[3]})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(reqs) == 0 {
		return nil, fmt.Errorf("no requirement lines found")
	}
	return reqs, nil
}

// Lookup returns the requirement with id from cat.
func Lookup(cat []Requirement, id string) (Requirement, bool) {
	for _, r := range cat {
		if r.ID == id {
			return r, true
		}
	}
	return Requirement{}, false
}
