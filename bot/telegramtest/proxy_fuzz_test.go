package telegramtest_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"aurabot/bot/telegramtest"
)

// FuzzReplaceUpdate: whatever upstream answers, the rewrite passes it unchanged or gives JSON.
func FuzzReplaceUpdate(f *testing.F) {
	f.Add([]byte(`{"ok":true,"result":[{"update_id":3,"message":{}},{"update_id":4}]}`))
	f.Add([]byte(`{"ok":true,"result":[]}`))
	f.Add([]byte(`{"ok":false,"error_code":409}`))
	f.Add([]byte(`{"result":[3,"x",{"update_id":"3"}]}`))
	rewrite := telegramtest.ReplaceUpdate(3, `{"message":{"forward_origin":{"type":"martian"}}}`)
	f.Fuzz(func(t *testing.T, body []byte) {
		out := rewrite(append([]byte(nil), body...))
		if !bytes.Equal(out, body) && !json.Valid(out) {
			t.Fatalf("%q became %q, which is not JSON", body, out)
		}
	})
}
