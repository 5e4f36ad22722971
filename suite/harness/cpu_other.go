//go:build unix && !linux

package harness

import "time"

// CPUTime needs Linux's /proc: elsewhere it returns ErrCPUTimeUnsupported.
func (p *Process) CPUTime() (time.Duration, error) { return 0, ErrCPUTimeUnsupported }
