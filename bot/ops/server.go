package ops

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// Server is the bot's HTTP listener: GET /healthz, GET /metrics and, in webhook mode, the
// webhook.
type Server struct {
	srv  *http.Server
	done chan struct{} // closed when Serve returns
	err  error         // what Serve returned, once done is closed
	addr string
}

// Listen opens addr and serves mux on it.
func Listen(addr string, mux http.Handler, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on LISTEN_ADDR %s: %w", addr, err)
	}
	s := &Server{
		done: make(chan struct{}),
		addr: ln.Addr().String(),
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second, // answers are small: an ok, a metrics page
			IdleTimeout:       2 * time.Minute,
		},
	}
	log.Info("listening", "addr", s.addr)
	go func() {
		s.err = s.srv.Serve(ln)
		close(s.done)
	}()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.addr }

// Err is why the server stopped, once Stopped is closed.
func (s *Server) Err() error { return s.err }

// Stopped is closed when the server stops on its own (a nil server never stops).
func (s *Server) Stopped() <-chan struct{} {
	if s == nil {
		return nil
	}
	return s.done
}

// Shutdown stops the server gracefully: requests in progress get a few seconds. A nil server
// (none listening) has nothing to stop.
func (s *Server) Shutdown(log *slog.Logger) {
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

// Bearer lets a request through to next only with "Authorization: Bearer <token>" (METRICS_TOKEN),
// and answers any other 401. An empty token lets every request through.
func Bearer(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); !ok || !SameSecret(got, token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="aurabot metrics"`)
			http.Error(w, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// SameSecret reports whether a secret a request carries is want, in constant time: hashing
// first makes the comparison constant-time in the length too.
func SameSecret(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
