package suite

import (
	"bufio"
	"os"
	"regexp"
	"strings"
	"testing"
)

// The suite's copy of the requirement levels must be PROTOCOL.md's.
func TestLevelsMatchProtocol(t *testing.T) {
	f, err := os.Open("../PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := regexp.MustCompile(`^- \*\*(EA-[A-Z]+-[0-9]+)\*\* \((MUST|SHOULD|MAY)\) `)
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		id, level := m[1], strings.ToLower(m[2])
		seen[id] = true
		if got, ok := levels[id]; !ok {
			t.Errorf("%s (%s) is in PROTOCOL.md but not in the suite's levels", id, level)
		} else if got != level {
			t.Errorf("%s is %s in PROTOCOL.md, %s in the suite", id, level, got)
		}
	}
	for id := range levels {
		if !seen[id] {
			t.Errorf("%s is in the suite's levels but not in PROTOCOL.md", id)
		}
	}
}
