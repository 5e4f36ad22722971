package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ProcessGroupRSS returns the summed resident set size (VmRSS) in bytes of
// the live processes of process group pgid.
func ProcessGroupRSS(pgid int) (int64, error) {
	var total int64
	var firstErr error
	err := forGroup(pgid, func(pid int) {
		rss, err := processRSS(pid)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		total += rss
	})
	if err == nil {
		err = firstErr
	}
	return total, err
}

func processRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest) // "1234 kB"
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, nil // a zombie has no VmRSS line
}

// forGroup calls fn with every process whose process group is pgid.
func forGroup(pgid int, fn func(pid int)) error {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return fmt.Errorf("reading /proc (server memory is measured on Linux only): %w", err)
	}
	found := false
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fields, err := statFields(pid)
		if err != nil || len(fields) < 13 {
			continue // exited meanwhile
		}
		if pg, _ := strconv.Atoi(fields[2]); pg != pgid {
			continue
		}
		found = true
		fn(pid)
	}
	if !found {
		return fmt.Errorf("no process in process group %d", pgid)
	}
	return nil
}

// statFields returns /proc/PID/stat's fields after the command name, which
// may itself hold spaces and parentheses.
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	return strings.Fields(string(b[i+1:])), nil
}

// RaiseOpenFileLimit raises this process's soft RLIMIT_NOFILE to the hard
// limit and returns the new soft limit. Children started afterwards inherit
// it.
func RaiseOpenFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, err
		}
	}
	return uint64(lim.Cur), nil // int64 on some BSDs
}
