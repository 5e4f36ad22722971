package outfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "old")
	if err := os.WriteFile(existing, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "new", "sub", "f")
	for _, tt := range []struct {
		path     string
		makeDirs bool
		err      string // in the error; "" for accepted
	}{
		{"/proc/nope/f", true, "cannot be created"},
		{dir, true, "is a directory"},
		{filepath.Join(existing, "f"), true, "not a directory"},
		{existing, false, ""},
		{filepath.Join(dir, "f"), false, ""},
		{missing, true, ""},
		{missing, false, "its directory " + filepath.Dir(missing) + " does not exist"},
	} {
		err := Check(tt.path, tt.makeDirs)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("Check(%s, %v) = %v, want nil", tt.path, tt.makeDirs, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("Check(%s, %v) = %v, want an error saying %q", tt.path, tt.makeDirs, err, tt.err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "old" {
		t.Errorf("Check left %v in %s, want only old", entries, dir)
	}
	if b, err := os.ReadFile(existing); err != nil || string(b) != "old" {
		t.Errorf("the existing file holds %q, %v; want it untouched", b, err)
	}
}
