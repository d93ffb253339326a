package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CPU per operation, read from /proc (Linux only): the server's and the
// database's utime+stime at the start and at the end of the measured window,
// divided by the operations done in it.

// clockTicks is USER_HZ, the unit of the times in /proc/PID/stat. It is 100
// on every architecture Linux runs Go on (the kernel fixes the value it
// exports to user space; `getconf CLK_TCK` prints it), so it is a constant
// here rather than a cgo call to sysconf(_SC_CLK_TCK).
const clockTicks = 100

// procStat is what we need of /proc/PID/stat (proc(5)).
type procStat struct {
	pid, ppid int
	// ticks is utime+stime of the process (all its threads), plus
	// cutime+cstime: the time of the children it has waited for. The
	// postmaster reaps its backends, so a backend that ends in the window
	// still counts, through its parent, once it is reaped.
	ticks uint64
}

// parseStat reads one /proc/PID/stat line. The second field, comm, is in
// parentheses and may itself contain spaces and parentheses, so the fields
// after it are found from the LAST ')'.
func parseStat(b []byte) (procStat, error) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 1 || end < open {
		return procStat{}, errors.New("proc stat: no (comm)")
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return procStat{}, fmt.Errorf("proc stat: pid: %w", err)
	}
	// After comm: state(3) ppid(4) … utime(14) stime(15) cutime(16) cstime(17).
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 15 {
		return procStat{}, errors.New("proc stat: too few fields")
	}
	s := procStat{pid: pid}
	if s.ppid, err = strconv.Atoi(f[1]); err != nil {
		return procStat{}, fmt.Errorf("proc stat: ppid: %w", err)
	}
	for _, i := range []int{11, 12, 13, 14} {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil || n < 0 {
			return procStat{}, fmt.Errorf("proc stat: field %d: %q", i+3, f[i])
		}
		s.ticks += uint64(n)
	}
	return s, nil
}

// treeTicks is the CPU time, in clock ticks, of root and every process whose
// chain of parents reaches root (PostgreSQL's backends are the postmaster's
// children). A process can end between listing /proc and reading its stat:
// it is skipped (if reaped, its parent's cutime has it).
func treeTicks(root int) (uint64, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	stats := map[int]procStat{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		if s, err := parseStat(b); err == nil {
			stats[pid] = s
		}
	}
	if _, ok := stats[root]; !ok {
		return 0, fmt.Errorf("no process %d", root)
	}
	var sum uint64
	for pid, s := range stats {
		// Walk up to root or to init; a loop cannot happen in /proc, the
		// bound is there for a table read while processes come and go.
		for p, n := pid, 0; p > 0 && n < 64; p, n = stats[p].ppid, n+1 {
			if p == root {
				sum += s.ticks
				break
			}
			if _, ok := stats[p]; !ok {
				break
			}
		}
	}
	return sum, nil
}

// listenerPID finds the process that listens on TCP port (IPv4 or IPv6)
// on this machine: the socket's inode from /proc/net/tcp{,6}, then the
// process holding a descriptor on it (only processes of the same user are
// readable). Of several holders (children that inherited the socket), the
// one whose parent is not also a holder.
func listenerPID(port int) (int, error) {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			// sl local_address rem_address st … uid timeout inode
			x := strings.Fields(line)
			if len(x) < 10 || x[3] != "0A" { // 0A: TCP_LISTEN
				continue
			}
			i := strings.LastIndexByte(x[1], ':')
			if p, err := strconv.ParseUint(x[1][i+1:], 16, 16); err == nil && int(p) == port {
				inodes["socket:["+x[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("nothing listens on port %d", port)
	}
	holders := map[int]int{} // pid → ppid
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range procs {
		fds, err := os.ReadDir(filepath.Join(dir, "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(dir, "fd", fd.Name())); err == nil && inodes[l] {
				b, _ := os.ReadFile(filepath.Join(dir, "stat"))
				if s, err := parseStat(b); err == nil {
					holders[s.pid] = s.ppid
				}
				break
			}
		}
	}
	for pid, ppid := range holders {
		if _, child := holders[ppid]; !child {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("port %d: the listening process is not readable (another user's? pass its PID)", port)
}

// urlPort is the TCP port of a URL (http, https or postgres), with the
// scheme's default; 0 when there is none (sqlite, a Unix socket).
func urlPort(raw string) int {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" || strings.HasPrefix(u.Hostname(), "/") {
		return 0
	}
	if p, err := strconv.Atoi(u.Port()); err == nil {
		return p
	}
	return map[string]int{"http": 80, "https": 443, "postgres": 5432, "postgresql": 5432}[u.Scheme]
}

// cpuProbe measures one process tree over the window.
type cpuProbe struct {
	pid          int
	start, delta uint64
	err          error
}

// cpuMeter measures the server and the database (either may be nil) over
// the window between begin and end.
type cpuMeter struct{ server, db *cpuProbe }

func (m *cpuMeter) probes() []*cpuProbe {
	if m == nil {
		return nil
	}
	return []*cpuProbe{m.server, m.db}
}

func (m *cpuMeter) begin() {
	for _, p := range m.probes() {
		if p != nil {
			p.start, p.err = treeTicks(p.pid)
		}
	}
}

func (m *cpuMeter) end() {
	for _, p := range m.probes() {
		if p != nil && p.err == nil {
			var t uint64
			if t, p.err = treeTicks(p.pid); p.err == nil {
				p.delta = t - p.start
			}
		}
	}
}

// msPerOp is the probe's CPU in milliseconds per operation, or nil when it
// was not measured.
func (p *cpuProbe) msPerOp(ops int64) *float64 {
	if p == nil || p.err != nil || ops <= 0 {
		return nil
	}
	v := round3(float64(p.delta) * 1000 / clockTicks / float64(ops))
	return &v
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

// newCPUMeter finds the PIDs not given: the server as the listener on the
// issuer's port, the database as the listener on the database URL's port.
// A PID that cannot be found is reported on warn and not measured; -1 turns
// a probe off.
func newCPUMeter(serverPID, dbPID int, issuer, dbURL string, warn func(string)) *cpuMeter {
	find := func(what string, pid int, raw string) *cpuProbe {
		if pid < 0 {
			return nil
		}
		if pid == 0 {
			port := urlPort(raw)
			if port == 0 {
				if what == "server" || raw != "" && !strings.HasPrefix(raw, "sqlite") {
					warn(fmt.Sprintf("%s CPU not measured: no TCP port in %q (pass -%s-pid)", what, raw, what))
				}
				return nil
			}
			var err error
			if pid, err = listenerPID(port); err != nil {
				warn(fmt.Sprintf("%s CPU not measured: %v (pass -%s-pid)", what, err, what))
				return nil
			}
		}
		return &cpuProbe{pid: pid}
	}
	return &cpuMeter{server: find("server", serverPID, issuer), db: find("db", dbPID, dbURL)}
}
