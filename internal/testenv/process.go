package testenv

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// WaitForPort waits until something accepts connections on addr.
func WaitForPort(t testing.TB, addr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s after %s", addr, within)
}

// RedisServer is a throwaway redis-server owned by one test, for tests that stop,
// restart or break Redis.
type RedisServer struct {
	Port int
	Dir  string // its working directory: a SAVE writes dump.rdb here, a start loads it
	cmd  *exec.Cmd
	bin  string
	args []string
}

// URL returns the server's redis:// URL.
func (r *RedisServer) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.Port) }

// StartRedis starts redis-server on a free loopback port; it is stopped after the test.
func StartRedis(t testing.TB, extraArgs ...string) *RedisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		missing(t, "Redis", fmt.Errorf("redis-server is not installed: %w", err))
	}
	r := &RedisServer{Port: FreePort(t), Dir: t.TempDir(), bin: bin}
	r.args = append([]string{"--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1", "--dir", r.Dir,
		"--save", "", "--appendonly", "no"}, extraArgs...)
	r.start(t)
	t.Cleanup(r.Stop)
	return r
}

// Restart starts a stopped server again on the same port and directory; it loads the
// last snapshot (dump.rdb) saved there, as a Redis restored from a backup would.
func (r *RedisServer) Restart(t testing.TB) {
	t.Helper()
	r.Stop()
	r.start(t)
}

func (r *RedisServer) start(t testing.TB) {
	r.cmd = exec.Command(r.bin, r.args...)
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	WaitForPort(t, fmt.Sprintf("127.0.0.1:%d", r.Port), 10*time.Second)
}

// Stop kills the server (no graceful save).
func (r *RedisServer) Stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}
