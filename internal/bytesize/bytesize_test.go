package bytesize

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// TestParse: sizes up to a limit of 1GiB, as --max-message-size takes them.
func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"1024", 1024, true},
		{"1048576", 1 << 20, true},
		{"64KiB", 64 << 10, true},
		{"1MiB", 1 << 20, true},
		{"2mib", 2 << 20, true},
		{"1024MiB", 1 << 30, true},
		{"1025MiB", 0, false},
		{"1073741824", 1 << 30, true},
		{"1073741825", 0, false},
		{"1048576KiB", 1 << 30, true},
		{"1048577KiB", 0, false},
		{"1GiB", 1 << 30, true},
		{"1gib", 1 << 30, true},
		{"1GIB", 1 << 30, true},
		{"64kib", 64 << 10, true},
		{"64KIB", 64 << 10, true},
		{"2GiB", 0, false},
		{"0GiB", 0, true},
		{"GiB", 0, false},
		{"1GB", 0, false},
		{"2000000000", 0, false},
		{"99999999999999999999", 0, false},
		{"", 0, false},
		{"MiB", 0, false},
		{"-5", 0, false},
		{"1.5MiB", 0, false},
		{"1MB", 0, false},
		{"0x400", 0, false},
	}
	for _, tt := range tests {
		var b int
		err := Var(&b, 1<<30).Set(tt.in)
		if (err == nil) != tt.ok || (tt.ok && b != tt.want) {
			t.Errorf("Set(%q) = %d, %v; want %d, ok %v", tt.in, b, err, tt.want, tt.ok)
		}
	}
}

// TestFormat: sizes up to 1TiB, as --max-buffered takes and prints them.
func TestFormat(t *testing.T) {
	for _, tt := range []struct {
		in, out string
		ok      bool
	}{
		{"0", "0", true},
		{"268435456", "256MiB", true},
		{"256mib", "256MiB", true},
		{"1536MiB", "1536MiB", true},
		{"1000", "1000", true},
		{"2048", "2KiB", true},
		{"1TiB", "1TiB", true},
		{"1025GiB", "", false},
		{"1099511627777", "", false},
		{"99999999999999999999", "", false},
		{"-1", "", false},
		{"1GB", "", false},
		{"", "", false},
	} {
		var b int64
		v := Var(&b, 1<<40)
		err := v.Set(tt.in)
		if (err == nil) != tt.ok || (tt.ok && v.String() != tt.out) {
			t.Errorf("Set(%q) = %v, %v; want %s, ok %v", tt.in, v, err, tt.out, tt.ok)
		}
	}
}

// TestStatedMaximum: the maximum that the error message states is
// accepted, in every spelling.
func TestStatedMaximum(t *testing.T) {
	var b int
	v := Var(&b, 1<<30)
	err := v.Set("x")
	m := regexp.MustCompile(`up to (\w+)`).FindStringSubmatch(fmt.Sprint(err))
	if m == nil {
		t.Fatalf("Set(\"x\") = %v, want an error stating the maximum", err)
	}
	for _, s := range []string{m[1], strings.ToLower(m[1]), strings.ToUpper(m[1])} {
		if err := v.Set(s); err != nil || b != 1<<30 {
			t.Errorf("Set(%q) = %d, %v; want the stated maximum, %d", s, b, err, 1<<30)
		}
	}
}
