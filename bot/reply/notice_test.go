package reply

import (
	"errors"
	"strings"
	"testing"

	"aurabot/aura"
)

func TestNoticeForNamesEveryFailure(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&aura.StatusError{StatusCode: 502}, "502"},
		{&aura.StatusError{StatusCode: 200, Reason: "context length exceeded"}, "mid-answer: context length exceeded"},
		{errors.Join(aura.ErrConnect, errors.New("refused")), "could not reach"},
		{aura.ErrFirstByteTimeout, "did not start"},
		{aura.ErrIdleTimeout, "stopped sending"},
		{aura.ErrBrokenStream, "broke off"},
		{ErrStopped, "Stopped"},
		{ErrShutdown, "restarted"},
		{errors.New("other"), "/retry"},
		{ErrTooLong, "100 characters"},
		{aura.ErrBrowserCapture, "browser"},
		{aura.ErrImagesUnsupported, "text only"},
		{aura.ErrOutputLimit, "AURA_MAX_OUTPUT_TOKENS=7"},
		{&aura.StatusError{StatusCode: 401, Reason: "see the docs."}, "401 see the docs. Send"},
		{&aura.StatusError{StatusCode: 500, Reason: "Internal Server Error"}, "Send /retry"},
	}
	for _, tt := range tests {
		if got := Notice(tt.err, Limits{MaxChars: 100, MaxOutputTokens: 7}); !strings.Contains(got, tt.want) {
			t.Errorf("noticeFor(%v): got %q, want it to contain %q", tt.err, got, tt.want)
		}
	}
}

// A missing model is fixed by choosing another, not by asking again: the notice names /model.
func TestNoticeForMissingModel(t *testing.T) {
	for _, err := range []error{
		&aura.StatusError{StatusCode: 404, Reason: "model 'tiny-x' not found"},
		&aura.StatusError{StatusCode: 404},
	} {
		got := Notice(err, Limits{})
		if !strings.Contains(got, "/model") || strings.Contains(got, "/retry") {
			t.Errorf("Notice(%v): got %q, want /model and no /retry", err, got)
		}
	}
}
