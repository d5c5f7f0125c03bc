package ops

import (
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

// BenchmarkLogLine is the cost of one typical log line (a reply's, with an error) written to a
// text handler, alone and through the Redactor with the secrets of a full configuration (a
// token, a key, cookies, a captured cookie header and User-Agent):
//
//	go test -run '^$' -bench LogLine -benchmem ./logging/
func BenchmarkLogLine(b *testing.B) {
	secrets := append(append(TokenSecrets("123456789:AAHsecretsecretsecretsecret_0123"), CookieSecrets("cf_clearance=abcdefghijklmnopqrstuvwxyz0123456789; session=0123456789abcdef")...),
		"sk-0123456789abcdefghijklmnop", "whsec-0123456789abcdef", "metrics-0123456789abcdef",
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36")
	err := errors.New("aura: server answered 503 Service Unavailable")
	for _, tc := range []struct {
		name string
		h    slog.Handler
	}{
		{"text", slog.NewTextHandler(io.Discard, nil)},
		{"text+redactor", NewRedactor(slog.NewTextHandler(io.Discard, nil), secrets...)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			log := slog.New(tc.h)
			b.ReportAllocs()
			for b.Loop() {
				log.Info("reply", "chat_id", int64(-100123), "thread_id", int64(0), "duration", 1234*time.Millisecond,
					"chars", 512, "edits", 7, "outcome", "model", "err", err)
			}
		})
	}
}
