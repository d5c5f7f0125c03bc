package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"
)

// server is the bot's HTTP listener on ListenAddr: GET /healthz, GET /metrics and, in webhook
// mode, the webhook at the path of WebhookURL.
type server struct {
	srv  *http.Server
	done chan struct{} // closed when Serve returns
	err  error         // what Serve returned, once done is closed
}

// WebhookPath is the path the webhook is served at for a WEBHOOK_URL: the URL's own path, so that
// a reverse proxy can pass requests through unchanged.
func WebhookPath(webhookURL string) (string, error) {
	u, err := url.Parse(webhookURL)
	if err != nil {
		return "", err
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	if p == "/healthz" || p == "/metrics" {
		return "", fmt.Errorf("path %s is taken by the bot's own endpoint", p)
	}
	return p, nil
}

// listen opens ListenAddr and starts serving. It returns nil when ListenAddr is empty.
func (b *Bot) listen() (*server, error) {
	if b.cfg.ListenAddr == "" {
		return nil, nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", b.serveHealth)
	mux.Handle("GET /metrics", b.metrics.handler())
	if b.cfg.WebhookURL != "" {
		p, _ := WebhookPath(b.cfg.WebhookURL) // New has checked it
		if p == "/" {
			p = "/{$}" // only "/" itself, not every path
		}
		mux.HandleFunc("POST "+p, b.serveWebhook)
	}
	ln, err := net.Listen("tcp", b.cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("bot: listen on LISTEN_ADDR %s: %w", b.cfg.ListenAddr, err)
	}
	s := &server{
		done: make(chan struct{}),
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second, // answers are small: an ok, a metrics page
			IdleTimeout:       2 * time.Minute,
		},
	}
	b.addr.Store(ln.Addr().String())
	b.log.Info("listening", "addr", ln.Addr().String(), "webhook", b.cfg.WebhookURL != "")
	go func() {
		s.err = s.srv.Serve(ln)
		close(s.done)
	}()
	return s, nil
}

// stopped is closed when the server stops on its own (a nil server never stops).
func (s *server) stopped() <-chan struct{} {
	if s == nil {
		return nil
	}
	return s.done
}

// shutdown stops the server gracefully: it lets requests in progress finish for a few seconds.
func (s *server) shutdown(log *slog.Logger) {
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		log.Warn("http server did not stop in time; closing it", "err", err)
		_ = s.srv.Close()
	}
	<-s.done
	if s.err != nil && !errors.Is(s.err, http.ErrServerClosed) {
		log.Warn("http server stopped", "err", s.err)
	}
}

// Addr is the address the HTTP listener is bound to ("" before Run listens or when it does not).
func (b *Bot) Addr() string {
	a, _ := b.addr.Load().(string)
	return a
}
