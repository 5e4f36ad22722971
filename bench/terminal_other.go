//go:build !linux

package bench

import (
	"io"
	"os"
)

// IsTerminal reports whether w is a terminal, where a live progress line
// belongs (never in a file or a pipe). Without Linux's TCGETS, a character
// device counts as one; /dev/null then gets the progress line too.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
