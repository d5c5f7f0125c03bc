package telegramtest

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// NewTLS starts a server that speaks HTTPS with HTTP/2, as api.telegram.org does. Its URL is an
// https URL; Client and TLSConfig trust its certificate.
func NewTLS() *Server {
	s := newServer()
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.EnableHTTP2 = true
	s.srv.StartTLS()
	return s
}

// TLSConfig trusts the certificate of a server started with NewTLS.
func (s *Server) TLSConfig() *tls.Config {
	return s.srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
}

// DrainEvery makes every nth request end its connection, as Telegram's servers drain theirs:
// the answer goes out and, over HTTP/2, the server sends a GOAWAY, so that requests the client
// has already put on that connection but the server has not read are refused and must be sent
// again on a new one (0 stops it).
func (s *Server) DrainEvery(n int) {
	s.drainEvery.Store(int64(n))
}

// Drains counts the connections DrainEvery has ended.
func (s *Server) Drains() int { return int(s.drains.Load()) }

// drain marks the answer of every DrainEvery-th request to end its connection.
func (s *Server) drain(w http.ResponseWriter) {
	n := s.drainEvery.Load()
	if n <= 0 || s.requests.Add(1)%n != 0 {
		return
	}
	s.drains.Add(1)
	// net/http's HTTP/2 server answers "Connection: close" with a GOAWAY (and closes the
	// connection once its streams are done); HTTP/1.1 closes it after the answer.
	w.Header().Set("Connection", "close")
}

// Latency is a TCP relay that delays every byte by half of d on the way to upstream and half on
// the way back, keeping their order: a network with latency between a client and a server
// (TLS passes through it untouched).
type Latency struct {
	ln       net.Listener
	upstream string
	d        time.Duration
	wg       sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]bool
}

// NewLatency starts a relay to the TCP address upstream ("127.0.0.1:port").
func NewLatency(upstream string, d time.Duration) (*Latency, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &Latency{ln: ln, upstream: upstream, d: d, conns: map[net.Conn]bool{}}
	l.wg.Go(l.accept)
	return l, nil
}

// Addr is the relay's address.
func (l *Latency) Addr() string { return l.ln.Addr().String() }

// Close stops the relay and its connections.
func (l *Latency) Close() {
	_ = l.ln.Close()
	l.mu.Lock()
	for c := range l.conns {
		_ = c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
}

func (l *Latency) accept() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", l.upstream)
		if err != nil {
			_ = c.Close()
			continue
		}
		l.mu.Lock()
		l.conns[c], l.conns[up] = true, true
		l.mu.Unlock()
		var once sync.Once
		closeBoth := func() {
			once.Do(func() {
				_ = c.Close()
				_ = up.Close()
				l.mu.Lock()
				delete(l.conns, c)
				delete(l.conns, up)
				l.mu.Unlock()
			})
		}
		l.wg.Go(func() { l.pipe(up, c, closeBoth) })
		l.wg.Go(func() { l.pipe(c, up, closeBoth) })
	}
}

// pipe copies src to dst, each chunk d/2 after it was read.
func (l *Latency) pipe(dst io.Writer, src io.Reader, closeBoth func()) {
	type chunk struct {
		b  []byte
		at time.Time
	}
	ch := make(chan chunk, 1024)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				ch <- chunk{buf[:n], time.Now().Add(l.d / 2)}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range ch {
		time.Sleep(time.Until(c.at))
		if _, err := dst.Write(c.b); err != nil {
			break
		}
	}
	closeBoth()
	for range ch { // let the reader end
	}
}
