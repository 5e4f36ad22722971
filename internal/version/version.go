// Package version names the build a binary comes from, for --version and
// for the reports that should say which tool produced them.
package version

import (
	"runtime/debug"
	"strings"
)

// Override replaces the version read from the build, for a release built
// with -ldflags "-X echoadd/internal/version.Override=v1.2.3".
var Override string

// String is Override, or the main module's version as the go command
// recorded it, or "devel" for a build from a work tree; followed by the
// first 12 hex digits of the VCS revision, and "+dirty" for uncommitted
// changes, when the build recorded them (it does not with -buildvcs=false)
// and the version does not already name them.
func String() string {
	info, ok := debug.ReadBuildInfo()
	return describe(Override, info, ok)
}

func describe(override string, info *debug.BuildInfo, ok bool) string {
	if override != "" {
		return override
	}
	v := "devel"
	if !ok {
		return v
	}
	if m := info.Main.Version; m != "" && m != "(devel)" {
		v = m
	}
	var revision, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	// A pseudo-version (v0.0.0-20261127024925-2248df7a3aeb+dirty) already
	// names the revision.
	if short := revision[:min(12, len(revision))]; short != "" && !strings.Contains(v, short) {
		v += " " + short
		if modified == "true" {
			v += "+dirty"
		}
	}
	return v
}
