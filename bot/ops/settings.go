package ops

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
)

// What the operator hands the bot: the .env file, and the settings' secrets and URLs, checked
// and kept out of every message.

// The settings whose values never appear in an error or a log, and those whose URL's user and
// password never do.
var (
	secretSettings = []string{"TELEGRAM_TOKEN", "AURA_KEY", "AURA_COOKIES", "TRANSCRIBE_KEY", "WEBHOOK_SECRET", "METRICS_TOKEN"}
	urlSettings    = []string{"TELEGRAM_API_URL", "AURA_URL", "AURA_PROXY", "TRANSCRIBE_URL", "WEBHOOK_URL"}
)

// SettingSecrets are the secrets among the settings vars: the values of the secret settings (the
// secret half of the token, and each cookie's value, too) and the user and password of the URL
// settings. Config errors are scrubbed of them, and the Redactor removes them from every line.
func SettingSecrets(vars map[string]string) []string {
	var secrets []string
	for _, name := range secretSettings {
		v := vars[name]
		secrets = append(secrets, v, strings.TrimSpace(v))
		switch name {
		case "TELEGRAM_TOKEN":
			secrets = append(secrets, TokenSecrets(strings.TrimSpace(v))...)
		case "AURA_COOKIES":
			secrets = append(secrets, CookieSecrets(strings.TrimSpace(v))...)
		}
	}
	for _, name := range urlSettings {
		if at := strings.LastIndexByte(vars[name], '@'); at >= 0 {
			userinfo := vars[name][:at]
			if _, after, ok := strings.Cut(userinfo, "://"); ok {
				userinfo = after
			}
			user, pass, _ := strings.Cut(userinfo, ":")
			secrets = append(secrets, userinfo, user, pass)
		}
	}
	return secrets
}

// Scrub replaces every secret of list in s (of 4 characters or more: shorter ones are not
// secrets worth garbling a message for) with with, the longest first.
func Scrub(list []string, s, with string) string {
	list = slices.Clone(list)
	slices.SortFunc(list, func(a, b string) int { return len(b) - len(a) })
	for _, secret := range list {
		if len(secret) >= 4 {
			s = strings.ReplaceAll(s, secret, with)
		}
	}
	return s
}

// CheckURL checks that raw is an absolute URL with one of the schemes, a host, and no query or
// fragment (settings that take a URL take a base to add paths to). Its errors quote the URL
// only as RedactURL gives it.
func CheckURL(raw string, schemes ...string) error {
	shown := RedactURL(raw)
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

// RedactURL is raw fit to quote in an error: without the user and password (everything up to
// the last @, after the scheme), the query and the fragment, any of which may hold a secret. It
// works on URLs that do not parse too.
func RedactURL(raw string) string {
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

// ValidListenAddr accepts host:port with a numeric port; the host may be empty (all interfaces).
func ValidListenAddr(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || strings.ContainsAny(host, " /") {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n <= 65535
}

// ReadDotenv reads the .env file at path with godotenv: KEY=VALUE lines, # comments, single
// quotes (literal) and double quotes (\n escapes and ${VAR} expansion), as docker compose reads
// it. A missing file is no file. The errors never quote the file, which holds secrets: they say
// which line is wrong, found by parsing ever longer runs of lines.
func ReadDotenv(path string) (map[string]string, error) {
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

// Between checks that n is in [lo, hi]; unit names what n counts.
func Between(n, lo, hi int, unit string) error {
	switch {
	case n < 0 && lo >= 0:
		return fmt.Errorf("%d must not be negative", n)
	case n < lo:
		return fmt.Errorf("%d is too small: use at least %d %s", n, lo, unit)
	case n > hi:
		return fmt.Errorf("%d is too large: use at most %d %s", n, hi, unit)
	}
	return nil
}

// Within checks that a duration is in [lo, hi].
func Within(d, lo, hi time.Duration) error {
	switch {
	case d <= 0:
		return fmt.Errorf("%v must be positive, like 60s", d)
	case d < lo:
		return fmt.Errorf("%v is too short: use at least %v", d, lo)
	case d > hi:
		return fmt.Errorf("%v is too long: use at most %v", d, hi)
	}
	return nil
}

// CheckIDs checks each id of a list with ok; kind names what the ids are.
func CheckIDs(ids []int64, kind string, ok func(int64) bool, hint string) error {
	for _, id := range ids {
		if !ok(id) {
			return fmt.Errorf("%d is not a Telegram %s id%s", id, kind, hint)
		}
	}
	return nil
}

// ExplainEnvError turns an error of env.Parse of t, which names a struct field, into one that
// names the variable.
func ExplainEnvError(err error, t reflect.Type) error {
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

// Settings lists the variables of t's fields and its struct fields', in order (the Configs of
// the rooms, put together).
func Settings(t reflect.Type) []string {
	var out []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			if name := f.Tag.Get("env"); name != "" {
				if !slices.Contains(out, name) {
					out = append(out, name)
				}
			} else if f.Type.Kind() == reflect.Struct && f.IsExported() {
				walk(f.Type)
			}
		}
	}
	walk(t)
	return out
}
