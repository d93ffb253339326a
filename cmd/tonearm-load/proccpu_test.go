package main

import (
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// comm may hold spaces and parentheses: the fields start after the last ')'.
	line := "4242 (post gres: (x) idle) S 17 4242 4242 0 -1 4194560 1 0 0 0 150 25 7 3 20 0 1 0 12345 1000 100 18446744073709551615\n"
	s, err := parseStat([]byte(line))
	if err != nil || s.pid != 4242 || s.ppid != 17 || s.ticks != 150+25+7+3 {
		t.Fatalf("%+v %v", s, err)
	}
	for _, bad := range []string{"", "12 no comm S 1", "x (a) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14", "1 (a) S 1 2", "1 (a) S 1 2 3 4 5 6 7 8 9 10 x 12 13 14"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	b, _ := os.ReadFile("/proc/self/stat")
	if s, err := parseStat(b); err != nil || s.pid != os.Getpid() || s.ppid != os.Getppid() {
		t.Fatalf("own stat: %+v %v", s, err)
	}
}

// The tree of this process holds its child; a child that burns CPU and
// ends is still counted, through our cutime once we have waited for it.
func TestTreeTicks(t *testing.T) {
	sleep := exec.Command("sleep", "30")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleep.Process.Kill(); sleep.Wait() }()
	if _, err := treeTicks(sleep.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if _, err := treeTicks(1 << 30); err == nil {
		t.Fatal("a missing root measured")
	}
	before, err := treeTicks(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	burn := exec.Command("sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done")
	if err := burn.Run(); err != nil {
		t.Fatal(err)
	}
	child := burn.ProcessState.UserTime() + burn.ProcessState.SystemTime()
	after, err := treeTicks(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	got := time.Duration(after-before) * time.Second / clockTicks
	if child < 50*time.Millisecond || got < child-20*time.Millisecond {
		t.Fatalf("tree grew by %v, the ended child used %v", got, child)
	}
}

func TestListenerPID(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	if pid, err := listenerPID(port); err != nil || pid != os.Getpid() {
		t.Fatalf("listener of %d: %d %v", port, pid, err)
	}
	ln.Close()
	if _, err := listenerPID(port); err == nil {
		t.Fatal("a closed port has a listener")
	}
	for raw, want := range map[string]int{"http://127.0.0.1:8080": 8080, "postgres://u@localhost/db": 5432,
		"postgres://u@[::1]:5433/db?sslmode=disable": 5433, "sqlite://t.db": 0, "postgres://u@%2Ftmp/db": 0} {
		if got := urlPort(raw); got != want {
			t.Errorf("urlPort(%s) = %d, want %d", raw, got, want)
		}
	}
}
