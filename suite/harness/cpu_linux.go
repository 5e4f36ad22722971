package harness

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// clockTick is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// CPUTime is the CPU time (user + system) used so far by every live process
// in the server's process group, read from /proc/PID/stat (Linux only). Its
// resolution is a clock tick, 10 ms.
func (p *Process) CPUTime() (time.Duration, error) {
	pgid := p.cmd.Process.Pid
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return 0, err
	}
	var total time.Duration
	found := false
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // exited meanwhile
		}
		group, ticks, err := parseStat(b)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		if group == pgid {
			total += time.Duration(ticks) * clockTick
			found = true
		}
	}
	if !found {
		return 0, fmt.Errorf("no process of group %d is running", pgid)
	}
	return total, nil
}

// parseStat returns the process group and utime+stime (in clock ticks) of
// a /proc/PID/stat line. Fields count from after the command's ')', which
// may itself contain spaces and parentheses.
func parseStat(b []byte) (pgrp int, ticks uint64, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("no ')' in %q", b)
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state): pgrp is field 5, utime 14, stime 15.
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("too few fields in %q", b)
	}
	pgrp, err = strconv.Atoi(string(f[2]))
	if err != nil {
		return 0, 0, err
	}
	utime, err := strconv.ParseUint(string(f[11]), 10, 64)
	if err != nil {
		return 0, 0, err
	}
	stime, err := strconv.ParseUint(string(f[12]), 10, 64)
	if err != nil {
		return 0, 0, err
	}
	return pgrp, utime + stime, nil
}
