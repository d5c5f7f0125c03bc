package intake

import (
	"strings"
	"testing"
)

func TestWebhookSecretAndPath(t *testing.T) {
	for s, want := range map[string]bool{"a": true, "A-z_0": true, strings.Repeat("x", 256): true,
		"": false, strings.Repeat("x", 257): false, "a b": false, "é": false, "a/b": false} {
		if got := ValidWebhookSecret(s); got != want {
			t.Errorf("ValidWebhookSecret(%q): got %v, want %v", s, got, want)
		}
	}
	for url, ok := range map[string]bool{
		"https://x.example/tg/hook": true, "https://x.example": true, "https://x.example/hook/": true,
		"https://x.example//hook": false, "https://x.example/a/../hook": false, "https://x.example/./hook": false,
		"https://x.example/healthz": false, "https://x.example/metrics": false,
	} {
		if _, err := WebhookPath(url); (err == nil) != ok {
			t.Errorf("WebhookPath(%q): got err %v, want ok=%v", url, err, ok)
		}
	}
}
