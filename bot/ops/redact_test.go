package ops

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	token  = "123456:AAHsecretTokenPart_xyz"
	cookie = "cf_clearance=CapturedCookieValue123; consent=1"
)

type stringer struct{ s string }

func (s stringer) String() string { return s.s }

type carrier struct{ Header string }

// Every place a secret can sit in a record is redacted, in text and in JSON.
func TestRedactorRemovesSecretsEverywhere(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			var next slog.Handler = slog.NewTextHandler(&buf, nil)
			if format == "json" {
				next = slog.NewJSONHandler(&buf, nil)
			}
			r := NewRedactor(next, TokenSecrets(token)...)
			log := slog.New(r).With("bound", "url /bot"+token+"/getMe").WithGroup("g")
			// Learned after the logger was built: still removed, in bound attributes too.
			r.Add(CookieSecrets(cookie)...)
			log.Warn("message with "+token,
				"err", fmt.Errorf("wrapped: %w", errors.New("Cookie: "+cookie)),
				"str", "secret part AAHsecretTokenPart_xyz alone",
				"stringer", stringer{"cookie value CapturedCookieValue123"},
				"bytes", []byte("raw "+token),
				"struct", carrier{Header: cookie},
				slog.Group("nested", "deep", "x "+token),
				"key "+token, 1,
				"count", 42,
				"short", "consent=1 is no secret",
			)
			out := buf.String()
			for _, secret := range []string{token, "AAHsecretTokenPart_xyz", "CapturedCookieValue123", cookie} {
				if strings.Contains(out, secret) {
					t.Errorf("got %s, want no %q", out, secret)
				}
			}
			if !strings.Contains(out, Redacted) || !strings.Contains(out, "42") || !strings.Contains(out, "consent=1") {
				t.Errorf("got %s, want the redacted line with the rest kept", out)
			}
		})
	}
}

// Short values are not secrets worth garbling a line for; the rest of a line is kept as it was.
func TestRedactorKeepsWhatIsNoSecret(t *testing.T) {
	var buf bytes.Buffer
	r := NewRedactor(slog.NewTextHandler(&buf, nil), "abc", "", "  ")
	slog.New(r).Info("abc is fine", "n", 3, "d", time.Second, "s", "plain")
	if got := buf.String(); !strings.Contains(got, "abc is fine") || !strings.Contains(got, "s=plain") || strings.Contains(got, Redacted) {
		t.Errorf("got %q, want the line untouched", got)
	}
}

// Secrets added while lines are written: no race, and every line after Add is clean.
func TestRedactorConcurrentAdd(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	r := NewRedactor(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil))
	log := slog.New(r)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				log.Info("line", "i", i, "j", j, "v", "value-"+fmt.Sprint(j))
			}
		})
	}
	for j := range 100 {
		r.Add(fmt.Sprintf("secret-%06d", j))
	}
	wg.Wait()
	log.Info("after", "v", "secret-000042")
	if strings.Contains(buf.String(), "secret-000042") {
		t.Error("a secret added before the line was written")
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func FuzzRedact(f *testing.F) {
	f.Add("a secret here", "secret here")
	f.Add("xxxxxx", "xxx")
	f.Fuzz(func(t *testing.T, text, secret string) {
		r := NewRedactor(slog.DiscardHandler, secret)
		got := r.Redact(text)
		if s := strings.TrimSpace(secret); len(s) >= MinSecret && strings.Contains(got, s) && !strings.Contains(Redacted, s) {
			t.Errorf("Redact(%q) with secret %q = %q", text, secret, got)
		}
	})
}

// An error that leaves the process (/healthz, the exit message) passes the same redaction: the
// token in a URL's path, a secret escaped for a query or a path, the half of the token alone;
// errors.Is and As still see the original.
func TestRedactorError(t *testing.T) {
	const key = "sk-key+with/special=chars"
	r := NewRedactor(slog.DiscardHandler, append(TokenSecrets(token), key)...)
	cause := &os.PathError{Op: "open", Path: "/srv/" + token + "/file", Err: os.ErrNotExist}
	err := r.Error(fmt.Errorf("post https://api.telegram.org/bot%s/getMe?key=%s&k2=%s, then half %s: %w",
		token, url.QueryEscape(key), url.PathEscape(key), "AAHsecretTokenPart_xyz", cause))
	for _, secret := range []string{token, "AAHsecretTokenPart_xyz", key, url.QueryEscape(key), url.PathEscape(key)} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("got %q, want it without %q", err, secret)
		}
	}
	var pe *os.PathError
	if !errors.Is(err, os.ErrNotExist) || !errors.As(err, &pe) || pe != cause {
		t.Errorf("got %v, want errors.Is and As to see the original", err)
	}
	if plain := errors.New("nothing secret"); r.Error(plain) != plain || r.Error(nil) != nil {
		t.Error("an error without a secret, or nil, should come back as it is")
	}
}

// Every secret setting is registered, with what of it can leak alone: the token's secret half,
// each configured cookie's value (a captured one's only from 8 bytes), a URL's user and password.
func TestSettingSecrets(t *testing.T) {
	vars := map[string]string{
		"TELEGRAM_TOKEN": " 123456:AAHsettingsToken\n", "AURA_KEY": "sk-settings-key", "TRANSCRIBE_KEY": "tr-settings-key",
		"AURA_COOKIES": "sess=7chars!; consent=1", "WEBHOOK_SECRET": "hook-secret", "METRICS_TOKEN": "metrics-token-0123456789",
		"AURA_PROXY": "http://proxyuser:proxypass@proxy:3128",
	}
	r := NewRedactor(slog.DiscardHandler, SettingSecrets(vars)...)
	line := r.Redact("AAHsettingsToken sk-settings-key tr-settings-key 7chars! hook-secret metrics-token-0123456789 proxyuser proxypass consent=1")
	if want := strings.Repeat(Redacted+" ", 8) + "consent=1"; line != want {
		t.Errorf("got %q, want %q", line, want)
	}
	if got := CookieSecrets("s=7chars!; t=8chars!!"); !slices.Equal(got, []string{"s=7chars!; t=8chars!!", "8chars!!"}) {
		t.Errorf("CookieSecrets: got %q, want the header and the 8-byte value alone", got)
	}
}
