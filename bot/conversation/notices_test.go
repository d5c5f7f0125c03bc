package conversation

import (
	"errors"
	"strings"
	"testing"

	"aurabot/aura"
	"aurabot/bot/reply"
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
		{reply.ErrStopped, "Stopped"},
		{reply.ErrShutdown, "restarted"},
		{errors.New("other"), "/retry"},
		{&reply.TooLongError{Max: 100}, "100 characters"},
		{aura.ErrBrowserCapture, "browser"},
		{aura.ErrImagesUnsupported, "text only"},
		{&aura.OutputLimitError{MaxTokens: 7}, "AURA_MAX_OUTPUT_TOKENS=7"},
		{aura.ErrOutputLimit, "server's output limit"},
		{reply.ErrEmpty, "empty answer"},
		{&aura.StatusError{StatusCode: 401, Reason: "see the docs."}, "401 see the docs. Send"},
		{&aura.StatusError{StatusCode: 500, Reason: "Internal Server Error"}, "Send /retry"},
	}
	for _, tt := range tests {
		if got, _ := notice(tt.err); !strings.Contains(got, tt.want) {
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
		got, _ := notice(err)
		if !strings.Contains(got, "/model") || strings.Contains(got, "/retry") {
			t.Errorf("Notice(%v): got %q, want /model and no /retry", err, got)
		}
	}
}
