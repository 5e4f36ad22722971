package version

import (
	"runtime/debug"
	"testing"
)

func TestDescribe(t *testing.T) {
	build := func(main string, settings ...string) *debug.BuildInfo {
		info := &debug.BuildInfo{Main: debug.Module{Path: "echoadd", Version: main}}
		for i := 0; i < len(settings); i += 2 {
			info.Settings = append(info.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return info
	}
	const rev = "0123456789abcdef0123456789abcdef01234567"
	for _, tc := range []struct {
		name, override string
		info           *debug.BuildInfo
		ok             bool
		want           string
	}{
		{"no build information", "", nil, false, "devel"},
		{"work tree without VCS stamp", "", build("(devel)"), true, "devel"},
		{"work tree", "", build("(devel)", "vcs.revision", rev, "vcs.modified", "false"), true, "devel 0123456789ab"},
		{"uncommitted changes", "", build("(devel)", "vcs.revision", rev, "vcs.modified", "true"), true, "devel 0123456789ab+dirty"},
		{"module version", "", build("v0.3.0", "vcs.revision", rev), true, "v0.3.0 0123456789ab"},
		{"pseudo-version, no VCS", "", build("v0.0.0-20261127020000-0123456789ab"), true, "v0.0.0-20261127020000-0123456789ab"},
		{"pseudo-version names the revision", "", build("v0.0.0-20261127020000-0123456789ab+dirty", "vcs.revision", rev, "vcs.modified", "true"), true, "v0.0.0-20261127020000-0123456789ab+dirty"},
		{"short revision", "", build("", "vcs.revision", "abc"), true, "devel abc"},
		{"override wins", "v1.2.3", build("v0.3.0", "vcs.revision", rev), true, "v1.2.3"},
	} {
		if got := describe(tc.override, tc.info, tc.ok); got != tc.want {
			t.Errorf("%s: describe = %q, want %q", tc.name, got, tc.want)
		}
	}
}
