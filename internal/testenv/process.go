package testenv

import (
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
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

// StartRedisCluster starts a Redis Cluster of three masters (no replicas) on loopback
// from the installed redis-server and redis-cli, and returns its URL in the form
// GATEHOUSE_REDIS_URL takes. It is stopped after the test.
func StartRedisCluster(t testing.TB) string {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		missing(t, "Redis Cluster", fmt.Errorf("redis-cli is not installed: %w", err))
	}
	var nodes []*RedisServer
	var addrs []string
	for range 3 {
		n := StartRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
		nodes = append(nodes, n)
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", n.Port))
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range nodes {
		for {
			out, _ := exec.Command(cli, "-p", strconv.Itoa(n.Port), "cluster", "info").Output()
			if strings.Contains(string(out), "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Redis Cluster did not become ready: %s", out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return "redis://" + addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2]
}

// Proxy is a loopback TCP proxy in front of a server, for tests that cut one client's
// path to it (a network partition) while others still reach it.
type Proxy struct {
	Addr   string // host:port to connect to instead of the target
	target string
	ln     net.Listener

	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

// StartProxy forwards connections on a free loopback port to target until the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln}
	t.Cleanup(func() { ln.Close(); p.Cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *Proxy) serve(c net.Conn) {
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		c.Close()
		return
	}
	up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.conns = append(p.conns, c, up)
	p.mu.Unlock()
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
	c.Close()
}

// Cut drops every open connection and refuses new ones until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Restore lets connections through again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}
