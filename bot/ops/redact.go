package ops

// What stands between the bot and its log: one redaction point that removes every secret the bot
// knows (the configured ones, and those it learns while it runs, such as cookies a browser
// captured) from every line before it is written, and a limiter for events that come in floods
// (refused requests), logged at most once an interval with a count (Repeated). It is not a
// logger of its own: main builds a log/slog handler with it, and every room logs through the
// *slog.Logger it is given.

import (
	"context"
	"fmt"
	"log/slog"
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

// Redactor is a slog.Handler that removes every known secret from a record's message, from the
// keys and values of its attributes (errors, strings, anything printed, in groups too) and from
// the attributes bound with WithAttrs, then hands the record to the next handler. Secrets learned
// later (Add) are removed from lines written after, bound attributes included. It is safe for
// concurrent use.
type Redactor struct {
	next    slog.Handler
	secrets *secrets
	// bound are the WithAttrs and WithGroup calls on the way to this handler, in order: they
	// are applied at Handle, so that a secret learned after them is removed too.
	bound []bound
}

// bound is one WithAttrs (attrs) or WithGroup (group) call.
type bound struct {
	group string
	attrs []slog.Attr
}

// NewRedactor returns a handler that writes to next without any of secrets (see Add).
func NewRedactor(next slog.Handler, secrets ...string) *Redactor {
	r := &Redactor{next: next, secrets: newSecrets()}
	r.Add(secrets...)
	return r
}

// Add makes the handler, and every handler derived from it, remove secrets from the lines
// written from now on. Surrounding white space is ignored; values shorter than MinSecret are
// not removed.
func (r *Redactor) Add(secrets ...string) { r.secrets.add(secrets) }

// Redact returns s without any known secret.
func (r *Redactor) Redact(s string) string { return r.secrets.redact(s) }

// Enabled reports whether the next handler writes records of level.
func (r *Redactor) Enabled(ctx context.Context, level slog.Level) bool {
	return r.next.Enabled(ctx, level)
}

// WithAttrs returns a handler that adds attrs to every record, redacted when it is written.
func (r *Redactor) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return r
	}
	return r.with(bound{attrs: slices.Clone(attrs)})
}

// WithGroup returns a handler that puts the record's attributes in group name.
func (r *Redactor) WithGroup(name string) slog.Handler {
	if name == "" {
		return r
	}
	return r.with(bound{group: name})
}

func (r *Redactor) with(b bound) *Redactor {
	return &Redactor{next: r.next, secrets: r.secrets, bound: append(slices.Clip(r.bound), b)}
}

// Handle writes rec, redacted, to the next handler.
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

// redactAttr returns a without the secrets of list, in its key and value.
func redactAttr(list []string, a slog.Attr) slog.Attr {
	if len(list) == 0 {
		return a
	}
	a.Key = redact(list, a.Key)
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		if s := v.String(); redact(list, s) != s {
			a.Value = slog.StringValue(redact(list, s))
		} else {
			a.Value = v
		}
	case slog.KindGroup:
		group := v.Group()
		out := make([]slog.Attr, len(group))
		for i, g := range group {
			out[i] = redactAttr(list, g)
		}
		a.Value = slog.GroupValue(out...)
	case slog.KindAny:
		// As the handlers would print it: an error's text, a Stringer's, else %+v. A value
		// that holds a secret is written as its redacted text; any other is left as it is
		// (a JSON handler keeps its structure).
		var text string
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
		if red := redact(list, text); red != text {
			a.Value = slog.StringValue(red)
		} else {
			a.Value = v
		}
	default:
		a.Value = v // numbers, times, durations: nothing to hide
	}
	return a
}

// secrets is the set of secrets, shared by a Redactor and the handlers derived from it. Reads
// (every log line) take no lock.
type secrets struct {
	mu  sync.Mutex // serialises add
	cur atomic.Pointer[[]string]
}

func newSecrets() *secrets {
	s := &secrets{}
	s.cur.Store(&[]string{})
	return s
}

func (s *secrets) list() []string { return *s.cur.Load() }

func (s *secrets) add(values []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := slices.Clone(s.list())
	for _, v := range values {
		v = strings.TrimSpace(v)
		if len(v) < MinSecret || slices.Contains(list, v) {
			continue
		}
		list = append(list, v)
	}
	// Longest first, so that a secret that contains another is removed whole.
	slices.SortStableFunc(list, func(a, b string) int { return len(b) - len(a) })
	s.cur.Store(&list)
}

func (s *secrets) redact(text string) string { return redact(s.list(), text) }

func redact(list []string, s string) string {
	for _, secret := range list {
		if strings.Contains(s, secret) {
			s = strings.ReplaceAll(s, secret, Redacted)
		}
	}
	return s
}

// CookieSecrets returns the secrets of a Cookie header value ("a=1; b=2"): the whole value, and
// each cookie's value of at least 8 bytes. Shorter values ("consent=1") are rarely secret, and
// removing them would garble the rest of a line.
func CookieSecrets(header string) []string {
	out := []string{header}
	for part := range strings.SplitSeq(header, ";") {
		if _, value, ok := strings.Cut(part, "="); ok && len(strings.TrimSpace(value)) >= 8 {
			out = append(out, strings.TrimSpace(value))
		}
	}
	return out
}

// TokenSecrets returns the secrets of a Telegram bot token (<bot id>:<secret>): the whole token
// and the part after the colon, which alone is enough to misuse it.
func TokenSecrets(token string) []string {
	out := []string{token}
	if _, secret, ok := strings.Cut(token, ":"); ok {
		out = append(out, secret)
	}
	return out
}
