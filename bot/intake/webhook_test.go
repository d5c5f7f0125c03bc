package intake

import "testing"

func TestWebhookPath(t *testing.T) {
	for url, ok := range map[string]bool{
		"https://x.example/tg/hook": true, "https://x.example": true, "https://x.example/hook/": false,
		"https://x.example//hook": false, "https://x.example/a/../hook": false, "https://x.example/./hook": false,
		"https://x.example/healthz": false, "https://x.example/metrics": false,
	} {
		if _, err := WebhookPath(url); (err == nil) != ok {
			t.Errorf("WebhookPath(%q): got err %v, want ok=%v", url, err, ok)
		}
	}
}
