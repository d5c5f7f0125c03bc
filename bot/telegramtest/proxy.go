package telegramtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"
)

// ProxyCall is one Bot API call passing through a Proxy.
type ProxyCall struct {
	// Method is the Bot API method ("sendMessage"), or "file" for a file download.
	Method string
	// Params are the call's parameters, decoded as the fake Server decodes them.
	Params map[string]string
	// N is the ordinal of this call among the calls of Method through the proxy, from 1.
	N int
	// Answered is false when OnCall sees the call arrive and true when it sees the upstream
	// answer come back. The rule always sees the call on arrival.
	Answered bool
	// Status and Body are the upstream answer, once Answered (Status 0 when upstream failed).
	Status int
	Body   []byte
}

// Action says what a Proxy does with one call. The zero Action forwards the call and its
// answer unchanged. The steps run in this order: Reset or Respond (which end the call), then
// DelayForward and HoldForward, the forward, DelayAnswer and HoldAnswer, then Drop or Rewrite.
//
// A call the proxy has read is forwarded even when its client goes away meanwhile, as Telegram
// carries out a call whose client died; only getUpdates is cancelled with its client. Delays
// and holds end early when the proxy is closed.
type Action struct {
	// Reset closes the connection with a TCP reset without forwarding the call.
	Reset bool
	// RespondStatus, when not 0, answers RespondStatus and RespondBody without forwarding.
	RespondStatus int
	RespondBody   string

	// DelayForward waits before forwarding; HoldForward waits until the channel is closed.
	DelayForward time.Duration
	HoldForward  <-chan struct{}
	// DelayAnswer waits after the upstream answer has come back, before answering;
	// HoldAnswer waits until the channel is closed.
	DelayAnswer time.Duration
	HoldAnswer  <-chan struct{}

	// Drop forwards the call, then resets the connection instead of answering: upstream
	// carried the call out, the client never learns it.
	Drop bool
	// Rewrite, when set, replaces the upstream answer's body (see ReplaceUpdate).
	Rewrite func(body []byte) []byte
}

// Gate is a hold a test releases: give C to Action.HoldForward or Action.HoldAnswer and call
// Release (any number of times) to let the held calls go on.
type Gate struct {
	once sync.Once
	ch   chan struct{}
}

// NewGate returns a gate that holds until Release.
func NewGate() *Gate { return &Gate{ch: make(chan struct{})} }

// C is closed once the gate is released.
func (g *Gate) C() <-chan struct{} { return g.ch }

// Release opens the gate.
func (g *Gate) Release() { g.once.Do(func() { close(g.ch) }) }

// Proxy is an HTTP server that forwards Bot API calls to an upstream server (a Server's URL, or
// another proxy) and injects faults into them: latency, held calls, lost answers, connection
// resets, made-up answers and rewritten updates. Create it with NewProxy; it is safe for
// concurrent use.
type Proxy struct {
	upstream string
	srv      *httptest.Server
	client   *http.Client
	done     chan struct{} // closed by Close

	mu     sync.Mutex
	rule   func(ProxyCall) Action
	onCall func(ProxyCall)
	counts map[string]int
	closed bool
}

// NewProxy starts a proxy in front of upstream (a base URL such as Server.URL()). Close it with
// Close.
func NewProxy(upstream string) *Proxy {
	p := &Proxy{
		upstream: strings.TrimRight(upstream, "/"),
		client:   &http.Client{Transport: &http.Transport{}},
		done:     make(chan struct{}),
		counts:   map[string]int{},
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	return p
}

// URL is the value for TELEGRAM_API_URL.
func (p *Proxy) URL() string { return p.srv.URL }

// Close ends held and delayed calls, drops the connections and stops the proxy.
func (p *Proxy) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.done)
	}
	p.mu.Unlock()
	p.srv.CloseClientConnections()
	p.srv.Close()
	p.client.CloseIdleConnections()
}

// SetRule installs the function that decides each call's Action (nil forwards every call).
// It runs on the call's own goroutine, so it may block to hold that call.
func (p *Proxy) SetRule(rule func(c ProxyCall) Action) {
	p.mu.Lock()
	p.rule = rule
	p.mu.Unlock()
}

// OnCall installs a hook called when a call arrives (Answered false) and when its upstream
// answer has been received (Answered true), before the proxy goes on with it. A test can, for
// example, kill the bot's process once the first sendMessage has reached Telegram and before
// its answer comes back.
func (p *Proxy) OnCall(hook func(c ProxyCall)) {
	p.mu.Lock()
	p.onCall = hook
	p.mu.Unlock()
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the client went away before its call was complete: nothing reaches upstream
	}
	call := ProxyCall{Method: methodOf(r.URL.Path), Params: map[string]string{}}
	if call.Method != "file" {
		pr := r.Clone(r.Context())
		pr.Body = io.NopCloser(bytes.NewReader(body))
		if ps, _, err := readParams(pr); err == nil {
			call.Params = ps
		}
	}
	p.mu.Lock()
	p.counts[call.Method]++
	call.N = p.counts[call.Method]
	rule, hook := p.rule, p.onCall
	p.mu.Unlock()

	if hook != nil {
		hook(call)
	}
	var a Action
	if rule != nil {
		a = rule(call)
	}
	switch {
	case a.Reset:
		reset(w)
		return
	case a.RespondStatus != 0:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.RespondStatus)
		_, _ = io.WriteString(w, a.RespondBody)
		return
	}
	if !p.wait(a.DelayForward, a.HoldForward) {
		reset(w)
		return
	}

	ctx := context.WithoutCancel(r.Context())
	if call.Method == "getUpdates" {
		ctx = r.Context()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-p.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	status, header, answer, err := p.forward(ctx, r, body)

	answered := call
	answered.Answered, answered.Status, answered.Body = true, status, answer
	p.mu.Lock()
	hook = p.onCall
	p.mu.Unlock()
	if hook != nil {
		hook(answered)
	}
	if err != nil {
		writeJSON(w, http.StatusBadGateway, apiResponse{ErrorCode: http.StatusBadGateway, Description: "Bad Gateway: telegramtest proxy: " + err.Error()})
		return
	}
	if !p.wait(a.DelayAnswer, a.HoldAnswer) || a.Drop {
		reset(w)
		return
	}
	if a.Rewrite != nil {
		answer = a.Rewrite(answer)
	}
	for k, vs := range header {
		if k != "Content-Length" {
			w.Header()[k] = vs
		}
	}
	w.WriteHeader(status)
	_, _ = w.Write(answer)
}

// forward makes the call upstream and reads the whole answer.
func (p *Proxy) forward(ctx context.Context, r *http.Request, body []byte) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, r.Method, p.upstream+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("telegramtest: proxy: %w", err)
	}
	req.Header = r.Header.Clone()
	resp, err := p.client.Do(req)
	if err != nil {
		// The URL holds the bot token; keep it out of the error.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, nil, fmt.Errorf("telegramtest: proxy: forward: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("telegramtest: proxy: read the answer: %w", err)
	}
	return resp.StatusCode, resp.Header, answer, nil
}

// wait sleeps for d and then waits for hold (when not nil); it returns false if the proxy is
// closed meanwhile.
func (p *Proxy) wait(d time.Duration, hold <-chan struct{}) bool {
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-p.done:
			return false
		}
	}
	if hold != nil {
		select {
		case <-hold:
		case <-p.done:
			return false
		}
	}
	return true
}

// reset hijacks the client's connection and closes it with a TCP reset (SO_LINGER 0), so the
// client sees a connection error rather than an HTTP status.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("telegramtest: proxy: the response cannot be hijacked")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

// methodOf returns the Bot API method of a request path: /bot<token>/<method>, or "file" for
// /file/bot<token>/<path>.
func methodOf(path string) string {
	if strings.HasPrefix(path, "/file/") {
		return "file"
	}
	rest, ok := strings.CutPrefix(path, "/bot")
	if !ok {
		return ""
	}
	_, method, _ := strings.Cut(rest, "/")
	return method
}

// ReplaceUpdate returns a Rewrite for getUpdates answers that puts raw (one JSON object, for
// example an update go-telegram/bot cannot decode) in place of the update numbered id, setting
// raw's update_id to id. Answers without that update pass unchanged. Push an ordinary update to
// the Server first and replace it, so that update ids and offsets stay consistent.
func ReplaceUpdate(id int64, raw string) func(body []byte) []byte {
	return func(body []byte) []byte {
		var ans map[string]json.RawMessage
		if json.Unmarshal(body, &ans) != nil {
			return body
		}
		var result []json.RawMessage
		if json.Unmarshal(ans["result"], &result) != nil {
			return body
		}
		replaced := false
		for i, u := range result {
			var head struct {
				ID int64 `json:"update_id"`
			}
			if json.Unmarshal(u, &head) != nil || head.ID != id {
				continue
			}
			var obj map[string]json.RawMessage
			if err := json.Unmarshal([]byte(raw), &obj); err != nil {
				panic("telegramtest: ReplaceUpdate: raw is not a JSON object: " + err.Error())
			}
			obj["update_id"] = json.RawMessage(fmt.Sprint(id))
			result[i], _ = json.Marshal(obj)
			replaced = true
		}
		if !replaced {
			return body
		}
		ans["result"], _ = json.Marshal(result)
		out, _ := json.Marshal(ans)
		return out
	}
}
