package browser

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/chromedp/cdproto/network"
)

func TestDomainMatch(t *testing.T) {
	tests := []struct {
		host, domain string
		want         bool
	}{
		{"chat.example.com", "chat.example.com", true},  // host-only cookie
		{"chat.example.com", ".chat.example.com", true}, // domain cookie of the host
		{"chat.example.com", ".example.com", true},      // of a parent
		{"Chat.Example.COM", ".example.com", true},      // names are case-insensitive
		{"chat.example.com", "example.com", false},      // host-only of another host
		{"chat.example.com", ".other.com", false},       //
		{"badexample.com", ".example.com", false},       // a suffix, not a parent
		{"example.com", ".", false},                     //
		{"127.0.0.1", "127.0.0.1", true},                //
		{"chat.example.com", ".chat.example.com.evil", false},
	}
	for _, tt := range tests {
		if got := domainMatch(tt.host, tt.domain); got != tt.want {
			t.Errorf("domainMatch(%q, %q): got %v, want %v", tt.host, tt.domain, got, tt.want)
		}
	}
}

func TestForHostAndCookieHeader(t *testing.T) {
	cookies := []*network.Cookie{
		{Name: "a", Value: "1", Domain: "chat.example.com", Path: "/"},
		{Name: "cf_clearance", Value: "x.y-z", Domain: ".example.com", Path: "/"},
		{Name: "api", Value: "2", Domain: "chat.example.com", Path: "/api"},
		{Name: "other", Value: "3", Domain: "other.com", Path: "/"},
		{Name: "", Value: "nameless", Domain: "chat.example.com", Path: "/"},
	}
	got := cookieHeader(forHost(cookies, "chat.example.com"))
	if want := "api=2; a=1; cf_clearance=x.y-z"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := cookieHeader(nil); got != "" {
		t.Errorf("no cookies: got %q, want empty", got)
	}
}

func TestOneLine(t *testing.T) {
	if got, want := oneLine("chrome failed to start:\n[1:1:FATAL] no sandbox\n\n", 100), "chrome failed to start:; [1:1:FATAL] no sandbox"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := oneLine(strings.Repeat("é", 10), 5); got != "éé…" {
		t.Errorf("got %q, want a cut at a character boundary", got)
	}
}

func FuzzDomainMatch(f *testing.F) {
	f.Add("chat.example.com", ".example.com")
	f.Add("example.com", "example.com")
	f.Add("a.b", ".")
	f.Fuzz(func(t *testing.T, host, domain string) {
		got := domainMatch(host, domain)
		h, d := strings.ToLower(host), strings.ToLower(strings.TrimPrefix(domain, "."))
		// A match is the host itself or a parent of it, never anything else.
		if got && h != d && !strings.HasSuffix(h, "."+d) {
			t.Errorf("domainMatch(%q, %q) = true, want false", host, domain)
		}
		if !got && h == strings.ToLower(domain) && h != "" && !strings.HasPrefix(domain, ".") {
			t.Errorf("domainMatch(%q, %q) = false for the host itself", host, domain)
		}
	})
}

func FuzzOneLine(f *testing.F) {
	f.Add("a\nb\r\nc", 3)
	f.Add("ééé", 2)
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 0 || n > 1<<16 {
			return
		}
		got := oneLine(s, n)
		if strings.ContainsAny(got, "\n\r") {
			t.Errorf("oneLine(%q, %d) = %q has a line break", s, n, got)
		}
		if body, cut := strings.CutSuffix(got, "…"); cut && len(body) > n {
			t.Errorf("oneLine(%q, %d) = %q is longer than %d bytes before the ellipsis", s, n, got, n)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Errorf("oneLine(%q, %d) = %q splits a character", s, n, got)
		}
	})
}
