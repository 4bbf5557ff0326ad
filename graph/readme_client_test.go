package graph_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/graph"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/platform/bus"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// The exact versions the README's client example is tested with (and says so).
var readmeClientPackages = []string{"graphql-ws@6.4.2", "ws@8.23.1", "graphql@16.11.0"}

// readmeClient is the README's Node subscriber, verbatim but for the server's URL,
// installed next to its packages (under the repository's .tmp/, like the conformance
// tools) so that Node finds them.
func readmeClient(t *testing.T, url string) (dir, file string) {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			msg := "!!! " + tool + " is not installed: the README's Node client example is not run (Debian: apt-get install nodejs npm)"
			if testenv.RequireServices() {
				t.Fatal(msg + " — required because CI=true or GATEHOUSE_TEST_REQUIRE_SERVICES=1")
			}
			t.Skip("SKIPPING: " + msg)
		}
	}
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)A subscriber in Node with .*?```js\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no ```js block after \"A subscriber in Node with\"")
	}
	const placeholder = `"wss://id.example.com/graphql"`
	if !bytes.Contains(m[1], []byte(placeholder)) {
		t.Fatalf("the README's client does not connect to %s", placeholder)
	}
	src := bytes.Replace(m[1], []byte(placeholder), []byte(strconv.Quote(url)), 1)

	dir, err = filepath.Abs(filepath.Join("..", ".tmp", "readme-client"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	installed := true
	for _, p := range readmeClientPackages {
		name, version, _ := strings.Cut(p, "@")
		var pkg struct{ Version string }
		b, err := os.ReadFile(filepath.Join(dir, "node_modules", name, "package.json"))
		if err != nil || json.Unmarshal(b, &pkg) != nil || pkg.Version != version {
			installed = false
		}
	}
	if !installed {
		cmd := exec.Command("npm", append([]string{"install", "--no-save", "--no-audit", "--no-fund", "--loglevel=error"}, readmeClientPackages...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm install %v: %v\n%s", readmeClientPackages, err, out)
		}
	}
	f, err := os.CreateTemp(dir, "client-*.mjs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(f.Name()) })
	if _, err := f.Write(src); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return dir, f.Name()
}

// nodeRun is a running `node client.mjs`.
type nodeRun struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []string // stdout
	stderr bytes.Buffer
	exited chan struct{}
}

func startNode(t *testing.T, dir, file, token string) *nodeRun {
	t.Helper()
	r := &nodeRun{cmd: exec.Command("node", file), exited: make(chan struct{})}
	r.cmd.Dir = dir
	r.cmd.Env = append(os.Environ(), "GATEHOUSE_TOKEN="+token)
	r.cmd.Env = withoutEnv(r.cmd.Env, "CURSOR")
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	r.cmd.Stderr = &syncWriter{mu: &r.mu, w: &r.stderr}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			r.mu.Lock()
			r.lines = append(r.lines, sc.Text())
			r.mu.Unlock()
		}
		r.cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		<-r.exited
		if t.Failed() {
			t.Logf("node stdout:\n%s\nnode stderr:\n%s", strings.Join(r.output(), "\n"), r.errors())
		}
	})
	return r
}

func withoutEnv(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

type syncWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (r *nodeRun) output() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

func (r *nodeRun) errors() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stderr.String()
}

// seqs are the seqs the client printed ("<seq> <action> <display>" per event).
func (r *nodeRun) seqs(t *testing.T) []int64 {
	t.Helper()
	var out []int64
	for _, l := range r.output() {
		f := strings.Fields(l)
		if len(f) < 2 {
			t.Fatalf("the client printed %q", l)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			t.Fatalf("the client printed %q", l)
		}
		out = append(out, n)
	}
	return out
}

// waitForSeq waits until the client has printed the event seq.
func (r *nodeRun) waitForSeq(t *testing.T, seq int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if s := r.seqs(t); len(s) > 0 && s[len(s)-1] >= seq {
			return
		}
		select {
		case <-r.exited:
			t.Fatalf("the client exited before printing #%d", seq)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the client did not print #%d within 30s", seq)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitForExit waits for the client to stop by itself and returns its stderr.
func (r *nodeRun) waitForExit(t *testing.T) string {
	t.Helper()
	select {
	case <-r.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the client is still running (retrying?) 30s later")
	}
	return r.errors()
}

// proxy forwards TCP connections to a server and reads the graphql-transport-ws
// messages each client sends; cut drops every connection abruptly.
type proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	conns []net.Conn
	sent  [][]map[string]any // per connection, the client's messages
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.sent = append(p.sent, nil)
			i := len(p.sent) - 1
			p.mu.Unlock()
			go func() { io.Copy(c, s); c.Close() }()
			go func() {
				pr, pw := io.Pipe()
				go p.read(i, pr)
				io.Copy(io.MultiWriter(s, pw), c)
				pw.Close()
				s.Close()
			}()
		}
	}()
	return p
}

// read parses what a client sends: the HTTP upgrade request, then websocket frames
// (masked, unfragmented, uncompressed: what the ws package sends).
func (p *proxy) read(i int, r io.Reader) {
	defer io.Copy(io.Discard, r)
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		if line == "\r\n" {
			break
		}
	}
	for {
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(br, b[:]); err != nil {
				return
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(br, b[:]); err != nil {
				return
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		var mask [4]byte
		if h[1]&0x80 != 0 {
			if _, err := io.ReadFull(br, mask[:]); err != nil {
				return
			}
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(br, payload); err != nil {
			return
		}
		for j := range payload {
			payload[j] ^= mask[j%4]
		}
		var m map[string]any
		if h[0]&0x0f == 1 && json.Unmarshal(payload, &m) == nil {
			p.mu.Lock()
			p.sent[i] = append(p.sent[i], m)
			p.mu.Unlock()
		}
	}
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.(*net.TCPConn).SetLinger(0) // a reset, as when the network fails
		c.Close()
	}
	p.conns = nil
}

// subscribeAfters is, per connection, the `after` of each subscribe the client sent.
func (p *proxy) subscribeAfters() [][]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out [][]any
	for _, msgs := range p.sent {
		var afters []any
		for _, m := range msgs {
			if m["type"] == "subscribe" {
				afters = append(afters, dig(m, "payload.variables.after"))
			}
		}
		out = append(out, afters)
	}
	return out
}

// The README's Node subscriber, run as written against the real server (PostgreSQL +
// Redis) through a TCP proxy: it prints the whole log; when the network drops it while
// events are being recorded, it reconnects and resumes right after the last event it
// printed, so every event is printed exactly once and in order; when its session is
// revoked it stops by itself (no reconnecting with a dead token), and started with the
// revoked token it stops at once too.
func TestREADMEClientExample(t *testing.T) {
	a := newAPIOn(t, testenv.Postgres(t), bus.NewRedis(testenv.Redis(t).Client(), fmt.Sprintf("gh-readme-%d:", time.Now().UnixNano())))
	o := a.newOrg("acme", tenancy.ProvisioningManual)
	owner := o.tokens["owner"]
	p := newProxy(t, strings.TrimPrefix(a.srv.URL, "http://"))
	dir, file := readmeClient(t, "ws://"+p.ln.Addr().String()+"/")
	latest := func() int64 {
		n, err := a.audit.Latest(context.Background(), a.db, o.tenant.ID)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	client := startNode(t, dir, file, owner)
	client.waitForSeq(t, latest()) // the whole log from the start
	a.record(o.tenant.ID, 20)
	processed := latest()
	client.waitForSeq(t, processed) // live

	p.cut()
	a.record(o.tenant.ID, 30) // while the client is away (it waits a second or more to retry)
	client.waitForSeq(t, latest())
	a.record(o.tenant.ID, 10)
	client.waitForSeq(t, latest()) // live again after resuming

	seqs := client.seqs(t)
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("the client printed %v; want 1..%d, each once, in order", seqs, latest())
		}
	}
	if int64(len(seqs)) != latest() {
		t.Fatalf("the client printed %d events; the log has %d", len(seqs), latest())
	}
	afters := p.subscribeAfters()
	if len(afters) < 2 || len(afters[0]) != 1 || afters[0][0] != "" || len(afters[1]) != 1 || afters[1][0] != graph.AuditCursor(processed) {
		t.Fatalf("the client subscribed with after = %q per connection; want \"\", then the cursor of #%d (%s)", afters, processed, graph.AuditCursor(processed))
	}

	if _, err := a.sessions.RevokeUser(context.Background(), o.tenant.ID, o.ids["owner"]); err != nil {
		t.Fatal(err)
	}
	if msg := client.waitForExit(t); !strings.Contains(msg, "UNAUTHENTICATED") {
		t.Fatalf("the client stopped saying:\n%s", msg)
	}
	again := startNode(t, dir, file, owner)
	if msg := again.waitForExit(t); !strings.Contains(msg, "ended: 4403 Forbidden: ") {
		t.Fatalf("with a revoked token the client stopped saying:\n%s", msg)
	}
}
