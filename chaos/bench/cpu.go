package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times; it is
// 100 on every Linux architecture Go builds for.
const clockTicks = 100

// cpuTime is the CPU (user + system) the cluster's running members have
// used since they started. The difference across a row, per operation,
// shows what each system spends on one op, which is what bounds a row
// once the machine's cores are busy.
func (c *Cluster) cpuTime() (time.Duration, error) {
	var total time.Duration
	for _, m := range c.Members {
		if !m.running() {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", m.cmd.Process.Pid))
		if err != nil {
			return 0, fmt.Errorf("cpu of %s: %w", m.Name, err)
		}
		d, err := parseStatCPU(string(stat))
		if err != nil {
			return 0, fmt.Errorf("cpu of %s: %w", m.Name, err)
		}
		total += d
	}
	return total, nil
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a
// /proc/<pid>/stat line. The command name (field 2) is in parentheses and
// may hold spaces, so fields are counted from the last ')'.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat line %q: no command name", stat)
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state), so utime (14) is f[11] and stime (15) f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("stat line %q: %d fields after the name, want at least 13", stat, len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat line %q: %w", stat, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// pidCPU is the CPU (user + system) process pid has used so far.
func pidCPU(pid int) (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(stat))
}
