package ops

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Redacted is what a secret is replaced with.
const Redacted = "[redacted]"

// MinSecret is the shortest secret removed: a shorter one would garble every line it happens to
// be part of ("1", "abc"), and is no secret worth the name.
const MinSecret = 6

// Redactor is the one redaction point of the bot. As a slog.Handler it removes every known
// secret from a record's message and attributes (keys and values, in groups and bound with
// WithAttrs too) before next; Error does the same for errors that leave the process. Secrets
// learned later (Add) are removed from what is written after. It is safe for concurrent use.
type Redactor struct {
	next    slog.Handler
	secrets *secrets
	bound   []bound // the WithAttrs and WithGroup calls, applied at Handle with the secrets of then
}

type bound struct { // one WithAttrs (attrs) or WithGroup (group) call
	group string
	attrs []slog.Attr
}

// NewRedactor returns a handler that writes to next without any of the known secrets (see Add).
func NewRedactor(next slog.Handler, known ...string) *Redactor {
	r := &Redactor{next: next, secrets: &secrets{}}
	r.secrets.cur.Store(&[]string{})
	r.Add(known...)
	return r
}

// Add makes the handler and those derived from it remove secrets from now on, escaped for a URL
// too. Surrounding space is ignored; values shorter than MinSecret are not removed.
func (r *Redactor) Add(secrets ...string) { r.secrets.add(secrets) }

// Redact returns s without any known secret.
func (r *Redactor) Redact(s string) string { return redact(r.secrets.list(), s) }

// Error returns err with every known secret removed from its text; errors.Is and As still see err.
func (r *Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	if msg := err.Error(); r.Redact(msg) != msg {
		return &redactedError{msg: r.Redact(msg), err: err}
	}
	return err
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func (r *Redactor) Enabled(ctx context.Context, level slog.Level) bool {
	return r.next.Enabled(ctx, level)
}

func (r *Redactor) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return r
	}
	return r.with(bound{attrs: slices.Clone(attrs)})
}

func (r *Redactor) WithGroup(name string) slog.Handler {
	if name == "" {
		return r
	}
	return r.with(bound{group: name})
}

func (r *Redactor) with(b bound) *Redactor {
	return &Redactor{next: r.next, secrets: r.secrets, bound: append(slices.Clip(r.bound), b)}
}

func (r *Redactor) Handle(ctx context.Context, rec slog.Record) error {
	list := r.secrets.list()
	out := slog.NewRecord(rec.Time, rec.Level, redact(list, rec.Message), rec.PC)
	attrs := make([]slog.Attr, 0, rec.NumAttrs())
	rec.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, redactAttr(list, a))
		return true
	})
	// The bound attributes and groups, innermost last: the record's attributes go in the
	// innermost group, and a group left empty is dropped, as slog's own handlers do.
	for i := len(r.bound) - 1; i >= 0; i-- {
		b := r.bound[i]
		if b.group != "" {
			if len(attrs) > 0 {
				attrs = []slog.Attr{{Key: redact(list, b.group), Value: slog.GroupValue(attrs...)}}
			}
			continue
		}
		outer := make([]slog.Attr, 0, len(b.attrs)+len(attrs))
		for _, a := range b.attrs {
			outer = append(outer, redactAttr(list, a))
		}
		attrs = append(outer, attrs...)
	}
	out.AddAttrs(attrs...)
	return r.next.Handle(ctx, out)
}

func redactAttr(list []string, a slog.Attr) slog.Attr {
	if len(list) == 0 {
		return a
	}
	a.Key = redact(list, a.Key)
	v := a.Value.Resolve()
	a.Value = v
	var text string
	switch v.Kind() {
	case slog.KindString:
		text = v.String()
	case slog.KindGroup:
		group := v.Group()
		out := make([]slog.Attr, len(group))
		for i, g := range group {
			out[i] = redactAttr(list, g)
		}
		a.Value = slog.GroupValue(out...)
		return a
	case slog.KindAny:
		// As the handlers would print it. A value that holds a secret is written as its
		// redacted text; any other is left as it is (a JSON handler keeps its structure).
		switch x := v.Any().(type) {
		case error:
			text = x.Error()
		case fmt.Stringer:
			text = x.String()
		case []byte:
			text = string(x)
		default:
			text = fmt.Sprintf("%+v", x)
		}
	default:
		return a // numbers, times, durations: nothing to hide
	}
	if red := redact(list, text); red != text {
		a.Value = slog.StringValue(red)
	}
	return a
}

// secrets is the set of secrets, longest first, shared by a Redactor and the handlers derived
// from it. Reads (every log line) take no lock.
type secrets struct {
	mu  sync.Mutex // serialises add
	cur atomic.Pointer[[]string]
}

func (s *secrets) list() []string { return *s.cur.Load() }

func (s *secrets) add(values []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := slices.Clone(s.list())
	for _, v := range values {
		v = strings.TrimSpace(v)
		for _, form := range []string{v, url.QueryEscape(v), url.PathEscape(v)} {
			if len(form) >= MinSecret && !slices.Contains(list, form) {
				list = append(list, form)
			}
		}
	}
	slices.SortStableFunc(list, func(a, b string) int { return len(b) - len(a) })
	s.cur.Store(&list)
}

func redact(list []string, s string) string {
	for _, secret := range list {
		if strings.Contains(s, secret) {
			s = strings.ReplaceAll(s, secret, Redacted)
		}
	}
	return s
}

// The settings whose values are secrets, and those whose URL's user and password are.
var (
	secretSettings = []string{"TELEGRAM_TOKEN", "AURA_KEY", "AURA_COOKIES", "TRANSCRIBE_KEY", "WEBHOOK_SECRET", "METRICS_TOKEN"}
	urlSettings    = []string{"TELEGRAM_API_URL", "AURA_URL", "AURA_PROXY", "TRANSCRIBE_URL", "WEBHOOK_URL"}
)

// SettingSecrets are the secrets among the settings vars: the secret settings' values (with the
// token's secret half and each cookie's value) and the URL settings' user and password.
func SettingSecrets(vars map[string]string) []string {
	var out []string
	for _, name := range secretSettings {
		v := strings.TrimSpace(vars[name])
		out = append(out, vars[name], v)
		switch name {
		case "TELEGRAM_TOKEN":
			out = append(out, TokenSecrets(v)...)
		case "AURA_COOKIES":
			out = append(out, cookieSecrets(v, MinSecret)...)
		}
	}
	for _, name := range urlSettings {
		if at := strings.LastIndexByte(vars[name], '@'); at >= 0 {
			userinfo := vars[name][:at]
			if _, after, ok := strings.Cut(userinfo, "://"); ok {
				userinfo = after
			}
			user, pass, _ := strings.Cut(userinfo, ":")
			out = append(out, userinfo, user, pass)
		}
	}
	return out
}

// CookieSecrets returns the secrets of a Cookie header a browser captured ("a=1; b=2"): the
// whole value, and each cookie's value of at least 8 bytes. Shorter values ("consent=1") are
// rarely secret, and removing them would garble the rest of a line.
func CookieSecrets(header string) []string { return cookieSecrets(header, 8) }

func cookieSecrets(header string, least int) []string {
	out := []string{header}
	for part := range strings.SplitSeq(header, ";") {
		if _, value, ok := strings.Cut(part, "="); ok && len(strings.TrimSpace(value)) >= least {
			out = append(out, strings.TrimSpace(value))
		}
	}
	return out
}

// TokenSecrets returns the secrets of a Telegram bot token (<bot id>:<secret>): the whole token
// and the part after the colon, which alone is enough to misuse it.
func TokenSecrets(token string) []string {
	_, secret, _ := strings.Cut(token, ":")
	return []string{token, secret}
}
