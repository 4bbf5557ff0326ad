// Package gqlws is a small graphql-transport-ws client for tests: it speaks the
// protocol a browser library (graphql-ws) speaks, over a real websocket.
package gqlws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Message is one graphql-transport-ws message.
type Message struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Conn is an initialised connection.
type Conn struct {
	ws   *websocket.Conn
	tcp  net.Conn
	mu   sync.Mutex
	subs map[string]chan Message
	// Closed is closed when the server closes the connection; CloseErr says how.
	Closed   chan struct{}
	CloseErr error
	nextID   int
}

// Dial opens a websocket to url (http:// is turned into ws://), sends connection_init
// with initPayload and waits for connection_ack. origin, when set, is sent as Origin.
// A refused connection_init is an error that CloseCode and CloseReason read.
func Dial(ctx context.Context, url, origin string, initPayload map[string]any) (*Conn, error) {
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	var tcp net.Conn
	dialer := &net.Dialer{}
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		tcp = c
		return c, err
	}}}
	ws, _, err := websocket.Dial(ctx, strings.Replace(url, "http", "ws", 1), &websocket.DialOptions{
		Subprotocols: []string{"graphql-transport-ws"}, HTTPHeader: h, HTTPClient: client})
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(16 << 20)
	c := &Conn{ws: ws, tcp: tcp, subs: map[string]chan Message{}, Closed: make(chan struct{})}
	if err := c.write(ctx, Message{Type: "connection_init", Payload: mustJSON(initPayload)}); err != nil {
		return nil, err
	}
	var ack Message
	if err := c.read(ctx, &ack); err != nil {
		return nil, fmt.Errorf("waiting for connection_ack: %w", err)
	}
	if ack.Type != "connection_ack" {
		return nil, fmt.Errorf("got %s instead of connection_ack: %s", ack.Type, ack.Payload)
	}
	go c.loop()
	return c, nil
}

func mustJSON(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, _ := json.Marshal(v)
	return b
}

func (c *Conn) write(ctx context.Context, m Message) error {
	b, _ := json.Marshal(m)
	return c.ws.Write(ctx, websocket.MessageText, b)
}

func (c *Conn) read(ctx context.Context, m *Message) error {
	_, b, err := c.ws.Read(ctx)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, m)
}

func (c *Conn) loop() {
	defer func() {
		c.mu.Lock()
		for _, ch := range c.subs {
			close(ch)
		}
		c.subs = map[string]chan Message{}
		c.mu.Unlock()
		close(c.Closed)
	}()
	for {
		var m Message
		if err := c.read(context.Background(), &m); err != nil {
			c.CloseErr = err
			return
		}
		switch m.Type {
		case "ping":
			_ = c.write(context.Background(), Message{Type: "pong"})
		case "next", "error", "complete":
			c.mu.Lock()
			ch := c.subs[m.ID]
			if m.Type != "next" {
				delete(c.subs, m.ID)
			}
			c.mu.Unlock()
			if ch != nil {
				ch <- m
				if m.Type != "next" {
					close(ch)
				}
			}
		}
	}
}

// Subscribe starts a subscription; its messages ("next", then "error" or "complete")
// arrive on the channel, which closes when the subscription or connection ends.
func (c *Conn) Subscribe(ctx context.Context, query string, vars map[string]any) (<-chan Message, error) {
	c.mu.Lock()
	c.nextID++
	id := fmt.Sprint(c.nextID)
	ch := make(chan Message, 4096)
	c.subs[id] = ch
	c.mu.Unlock()
	return ch, c.write(ctx, Message{ID: id, Type: "subscribe", Payload: mustJSON(map[string]any{"query": query, "variables": vars})})
}

// Close closes the connection from the client side.
func (c *Conn) Close() { c.ws.Close(websocket.StatusNormalClosure, "done") }

// Drop cuts the TCP connection without a close frame, as a network failure or a
// killed client process does.
func (c *Conn) Drop() { c.tcp.Close() }

// CloseCode is the websocket close code the server sent, as err (a Dial error, or
// CloseErr) reports it; -1 when the connection did not end with a close frame.
func CloseCode(err error) int { return int(websocket.CloseStatus(err)) }

// CloseReason is the reason of the server's close frame in err ("" when none).
func CloseReason(err error) string {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Reason
	}
	return ""
}

// Next is a "next" message's payload, or the errors of an "error" message.
type Next struct {
	// Type is the message's type: "next" or "error".
	Type   string         `json:"-"`
	Data   map[string]any `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

// Receive waits up to within for the next message of a subscription.
func Receive(t testing.TB, ch <-chan Message, within time.Duration) (Next, bool) {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			return Next{}, false
		}
		n := Next{Type: m.Type}
		if m.Type == "next" {
			_ = json.Unmarshal(m.Payload, &n)
			return n, true
		}
		if m.Type == "error" {
			var errs []struct {
				Message    string         `json:"message"`
				Extensions map[string]any `json:"extensions"`
			}
			_ = json.Unmarshal(m.Payload, &errs)
			n.Errors = errs
			return n, true
		}
		return Next{}, false
	case <-time.After(within):
		t.Fatalf("no message within %s", within)
		return Next{}, false
	}
}
