// Package outfile checks, before a long run, that the file it ends by
// writing can be written, so that a bad path is a usage error at once
// rather than a failure after the run.
package outfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Check reports why path could not be written, or nil. With makeDirs, a
// missing parent directory is fine if it can be made (the writer makes
// it); without, it is an error. Check leaves nothing behind and changes no
// existing file.
func Check(path string, makeDirs bool) error {
	parent := filepath.Dir(path)
	existing := parent // the nearest directory that exists
	for {
		fi, err := os.Stat(existing)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%s is not a directory", existing)
			}
			break
		}
		up := filepath.Dir(existing)
		if up == existing || !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("cannot be created: %v", errText(err))
		}
		existing = up
	}
	if existing != parent {
		if !makeDirs {
			return fmt.Errorf("cannot be created: its directory %s does not exist", parent)
		}
		// Probe with what the writing will do: make a directory.
		d, err := os.MkdirTemp(existing, ".echoadd-check-")
		if err != nil {
			return fmt.Errorf("cannot be created: its directory %s does not exist, and making it in %s failed (%v)", parent, existing, errText(err))
		}
		return os.Remove(d)
	}
	switch fi, err := os.Stat(path); {
	case err == nil && fi.IsDir():
		return errors.New("is a directory; give a file name")
	case err == nil:
		f, err := os.OpenFile(path, os.O_WRONLY, 0) // no O_TRUNC: the old file stays until the new one is written
		if err != nil {
			return fmt.Errorf("cannot be written: %v", errText(err))
		}
		return f.Close()
	default:
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("cannot be created: %v", errText(err))
		}
		cerr := f.Close()
		if err := os.Remove(path); err != nil {
			return err
		}
		return cerr
	}
}

// errText is err without the operation and path that the message around
// it already gives.
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
