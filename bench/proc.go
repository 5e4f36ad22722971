package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of utime and stime in /proc/PID/stat: USER_HZ,
// which Linux fixes at 100 for user space on every architecture Go supports.
const clockTick = 10 * time.Millisecond

// ProcessGroupCPU returns the user plus system CPU time used so far by the
// live processes of process group pgid (a server started through sh -c is
// the shell and what it runs). Only Linux's /proc is supported.
func ProcessGroupCPU(pgid int) (time.Duration, error) {
	var total time.Duration
	err := forGroup(pgid, func(pid int, fields []string) {
		// fields[0] is field 3 of proc(5) (state): utime is 14, stime 15.
		ut, _ := strconv.ParseUint(fields[11], 10, 64)
		st, _ := strconv.ParseUint(fields[12], 10, 64)
		total += time.Duration(ut+st) * clockTick
	})
	return total, err
}

// ProcessGroupRSS returns the summed resident set size (VmRSS) in bytes of
// the live processes of process group pgid.
func ProcessGroupRSS(pgid int) (int64, error) {
	var total int64
	var firstErr error
	err := forGroup(pgid, func(pid int, _ []string) {
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

// forGroup calls fn with the stat fields (from the state on) of every
// process whose process group is pgid.
func forGroup(pgid int, fn func(pid int, fields []string)) error {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return fmt.Errorf("reading /proc (server CPU and memory are measured on Linux only): %w", err)
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
		fn(pid, fields)
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
	return lim.Cur, nil
}
