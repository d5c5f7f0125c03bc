package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/joho/godotenv"

	"aurabot/bot/intake"
)

// How settings are read (the .env file, the environment's parse errors) and the checks the
// table in config.go is made of.

// readDotenv reads the .env file at path with godotenv: KEY=VALUE lines, # comments, single
// quotes (literal) and double quotes (\n escapes and ${VAR} expansion), as docker compose reads
// it. A missing file is no file. The errors never quote the file, which holds secrets: they say
// which line is wrong, found by parsing ever longer runs of lines.
func readDotenv(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	vars, err := godotenv.Parse(bytes.NewReader(data))
	if err == nil {
		if _, ok := vars[""]; ok {
			return nil, fmt.Errorf("%s: a line has no variable name (want KEY=VALUE)", path)
		}
		return vars, nil
	}
	lines := strings.SplitAfter(string(data), "\n")
	parses := func(n int) error {
		_, err := godotenv.Parse(strings.NewReader(strings.Join(lines[:n], "")))
		return err
	}
	if strings.HasPrefix(err.Error(), "unterminated") {
		// The quote opens on the line after the longest run that parses.
		for n := len(lines) - 1; n >= 0; n-- {
			if parses(n) == nil {
				return nil, fmt.Errorf("%s line %d: a quoted value is not closed", path, n+1)
			}
		}
		return nil, fmt.Errorf("%s: a quoted value is not closed", path)
	}
	for n := 1; n <= len(lines); n++ {
		if err := parses(n); err != nil && !strings.HasPrefix(err.Error(), "unterminated") {
			return nil, fmt.Errorf("%s line %d: not KEY=VALUE (a name is letters, digits, _ and .)", path, n)
		}
	}
	return nil, fmt.Errorf("%s: not KEY=VALUE lines", path)
}

// explainEnvError turns an error of env.Parse of t, which names a struct field, into one that
// names the variable.
func explainEnvError(err error, t reflect.Type) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) || len(agg.Errors) == 0 {
		return fmt.Errorf("config: %w", err)
	}
	var pe env.ParseError
	if !errors.As(agg.Errors[0], &pe) {
		return fmt.Errorf("config: %w", agg.Errors[0])
	}
	name := variableOf(t, pe.Name, pe.Type)
	var ne *strconv.NumError
	switch {
	case errors.As(pe.Err, &ne) && errors.Is(ne.Err, strconv.ErrRange):
		return fmt.Errorf("config: %s: %q: %w", name, ne.Num, ne.Err)
	case errors.As(pe.Err, &ne):
		return fmt.Errorf("config: %s: %q is not a number: %w", name, ne.Num, ne.Err)
	}
	return fmt.Errorf("config: %s: %w", name, pe.Err)
}

// variableOf is the variable of the field named field of type typ, found anywhere in t.
func variableOf(t reflect.Type, field string, typ reflect.Type) string {
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Name == field && f.Type == typ && f.Tag.Get("env") != "" {
			return f.Tag.Get("env")
		}
		if f.Type.Kind() == reflect.Struct && f.Tag.Get("env") == "" {
			if v := variableOf(f.Type, field, typ); v != "" {
				return v
			}
		}
	}
	return ""
}

// A setting's check: its error is prefixed with the variable's name. Errors never contain a
// secret: not the token, a key, the cookies, nor a URL's user or password (redactURL).
type checkFunc = func(c *config) error

// setNotEmpty refuses a variable set to nothing (whose default would otherwise apply silently),
// then checks it.
func setNotEmpty(name string, then checkFunc) checkFunc {
	return func(c *config) error {
		if v, ok := c.set[name]; ok && strings.TrimSpace(v) == "" {
			return errors.New("is set but empty: remove the line to use the default, or give a value")
		}
		return then(c)
	}
}

// ifSet checks a value that may be left empty.
func ifSet(v func(c *config) string, check func(string) error) checkFunc {
	return func(c *config) error {
		if s := v(c); s != "" {
			return check(s)
		}
		return nil
	}
}

// intIn checks that a number is in [lo, hi]; unit names what it counts.
func intIn[T int | int64](v func(c *config) T, lo, hi T, unit string) checkFunc {
	return func(c *config) error {
		switch n := v(c); {
		case n < 0 && lo >= 0:
			return fmt.Errorf("%d must not be negative", n)
		case n < lo:
			return fmt.Errorf("%d is too small: use at least %d %s", n, lo, unit)
		case n > hi:
			return fmt.Errorf("%d is too large: use at most %d %s", n, hi, unit)
		}
		return nil
	}
}

// within checks that a duration is in [lo, hi].
func within(v func(c *config) time.Duration, lo, hi time.Duration) checkFunc {
	return func(c *config) error {
		switch d := v(c); {
		case d <= 0:
			return fmt.Errorf("%v must be positive, like 60s", d)
		case d < lo:
			return fmt.Errorf("%v is too short: use at least %v", d, lo)
		case d > hi:
			return fmt.Errorf("%v is too long: use at most %v", d, hi)
		}
		return nil
	}
}

func oneOf(v func(c *config) string, allowed ...string) checkFunc {
	return func(c *config) error {
		if s := v(c); !slices.Contains(allowed, s) {
			return fmt.Errorf("%q is not %s", s, strings.Join(allowed, " or "))
		}
		return nil
	}
}

// noControl refuses a control character in a value that goes in an HTTP header.
func noControl(v func(c *config) string) checkFunc {
	return func(c *config) error {
		if strings.ContainsFunc(v(c), func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return errors.New("has a control character (a line break or a tab?) inside: it goes in an HTTP header")
		}
		return nil
	}
}

// ids checks each id of a list with ok; kind names what the ids are.
func ids(v func(c *config) []int64, kind string, ok func(int64) bool, hint string) checkFunc {
	return func(c *config) error {
		for _, id := range v(c) {
			if !ok(id) {
				return fmt.Errorf("%d is not a Telegram %s id%s", id, kind, hint)
			}
		}
		return nil
	}
}

// checkURL checks that raw is an absolute URL with one of the schemes, a host, and no query or
// fragment (settings that take a URL take a base to add paths to).
func checkURL(raw string, schemes ...string) error {
	shown := redactURL(raw)
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a URL", shown)
	case !slices.Contains(schemes, u.Scheme):
		return fmt.Errorf("%q is not an %s URL", shown, strings.Join(schemes, " or "))
	case u.Host == "":
		return fmt.Errorf("%q has no host", shown)
	case u.RawQuery != "" || u.ForceQuery:
		return fmt.Errorf("%q has a query string (?...): remove it", shown)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return fmt.Errorf("%q has a fragment (#...): remove it", shown)
	}
	return nil
}

func httpURL(raw string) error { return checkURL(raw, "http", "https") }

// redactURL is raw fit to quote in an error: without the user and password (everything up to
// the last @, after the scheme), the query and the fragment, any of which may hold a secret. It
// works on URLs that do not parse too.
func redactURL(raw string) string {
	if at := strings.LastIndexByte(raw, '@'); at >= 0 {
		start := 0
		if i := strings.Index(raw, "://"); i >= 0 && i < at {
			start = i + len("://")
		}
		raw = raw[:start] + "xxxxx" + raw[at:]
	}
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	return raw
}

// checkWebhookURL checks a WEBHOOK_URL: https (Telegram calls nothing else), a port Telegram
// calls, and a path the bot's listener can serve (intake.WebhookPath).
func checkWebhookURL(raw string) error {
	if err := checkURL(raw, "https"); err != nil {
		return fmt.Errorf("%w (Telegram calls webhooks over https only)", err)
	}
	u, _ := url.Parse(raw) // checkURL has parsed it
	if !slices.Contains([]string{"", "443", "80", "88", "8443"}, u.Port()) {
		return fmt.Errorf("port %s: Telegram calls webhooks on port 443, 80, 88 or 8443 only", u.Port())
	}
	_, err := intake.WebhookPath(raw)
	return err
}

// validListenAddr accepts host:port with a numeric port; the host may be empty (all interfaces).
func validListenAddr(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || strings.ContainsAny(host, " /") {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n <= 65535
}
