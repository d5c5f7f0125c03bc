package reply

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/go-telegram/bot/models"

	"aurabot/aura"
	"aurabot/bot/render"
)

// Why a reply ended early, besides the model's own failures.
var (
	// ErrStopped: the user pressed Stop or sent /stop.
	ErrStopped = errors.New("stopped by the user")
	// ErrShutdown: the bot is shutting down (or restarted while the reply streamed).
	ErrShutdown = errors.New("the bot is shutting down")
	// ErrBlocked: the user blocked the bot; nobody can see the reply.
	ErrBlocked = errBlocked
	// ErrTooLong: the answer passed the longest answer the bot shows (MAX_ANSWER_CHARS).
	ErrTooLong = errors.New("the answer is too long")
)

// Notice is the line a user sees under a reply that did not complete, "" for one that did.
func Notice(err error, limits Limits) string {
	var se *aura.StatusError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrStopped):
		return "⏹ Stopped."
	case errors.Is(err, ErrShutdown):
		return "⚠️ Interrupted: the bot restarted. Send /retry to get a full answer."
	case errors.Is(err, ErrTooLong):
		return "✂️ The answer was cut here: it passed the longest answer this bot shows (" + strconv.Itoa(limits.MaxChars) + " characters)."
	case errors.Is(err, aura.ErrOutputLimit):
		if limits.MaxOutputTokens > 0 {
			return "✂️ The answer reached the model's output limit (AURA_MAX_OUTPUT_TOKENS=" + strconv.Itoa(limits.MaxOutputTokens) + ")."
		}
		return "✂️ The answer reached the model server's output limit."
	case errors.As(err, &se):
		msg := "⚠️ The model server failed with HTTP status " + strconv.Itoa(se.StatusCode)
		reason := se.UserReason()
		if se.StatusCode < 300 {
			// An error event inside a stream that had started fine.
			msg = "⚠️ The model server reported an error mid-answer"
			if reason != "" {
				msg += ": " + reason
			}
		} else if reason != "" {
			msg = "⚠️ The model server failed: " + strconv.Itoa(se.StatusCode) + " " + reason
		}
		if se.StatusCode == http.StatusNotFound {
			// "model 'x' not found" (Ollama, OpenAI, vLLM): asking again cannot help.
			return sentence(msg) + " Choose another model with /model."
		}
		return sentence(msg) + " Send /retry to try again."
	}
	return "⚠️ " + ModelFailure(err).Notice + " Send /retry to try again."
}

// EmptyNotice is what a user sees when the model sent nothing at all.
const EmptyNotice = "⚠️ The model sent an empty answer. Send /retry to try again."

// Limits are the settings a notice names.
type Limits struct {
	MaxChars        int `env:"MAX_ANSWER_CHARS" envDefault:"65536"` // longer answers are cut, and the user told
	MaxOutputTokens int `env:"AURA_MAX_OUTPUT_TOKENS"`              // 0 when unset
}

// sentence ends s with one period.
func sentence(s string) string {
	s = strings.TrimRight(s, " .!?:;,")
	return s + "."
}

// Complete reports whether an answer that ended with err is whole as far as the user is
// concerned: it ended by itself, or at an output limit, which its notice explains.
func Complete(err error) bool {
	return err == nil || errors.Is(err, aura.ErrOutputLimit)
}

// FailureKind is a model server failure other than an HTTP status: the error it matches, its
// metric label, and what the user is told.
type FailureKind struct {
	Err          error
	Kind, Notice string
}

var modelFailures = []FailureKind{
	{aura.ErrConnect, "connect", "I could not reach the model server."},
	{aura.ErrFirstByteTimeout, "first_byte_timeout", "The model server did not start answering in time."},
	{aura.ErrIdleTimeout, "idle_timeout", "The model server stopped sending in the middle of the answer."},
	{aura.ErrBrokenStream, "broken_stream", "The model server broke off the answer."},
	{aura.ErrImagesUnsupported, "images_unsupported", "This model server takes text only: it cannot see images."},
	{aura.ErrBrowserCapture, "browser", "I could not open the model server's page in a browser to get its cookies."},
}

// ModelFailure returns the kind of model failure err is, or a generic one.
func ModelFailure(err error) FailureKind {
	for _, f := range modelFailures {
		if errors.Is(err, f.Err) {
			return f
		}
	}
	var se *aura.StatusError
	if errors.As(err, &se) {
		return FailureKind{Kind: "status", Notice: "The model server failed."}
	}
	return FailureKind{Kind: "other", Notice: "The answer failed."}
}

// AppendNotice adds an italic line under a rendered message.
func AppendNotice(m render.Message, notice string) render.Message {
	if notice == "" {
		return m
	}
	sep := "\n\n"
	if m.Text == "" {
		sep = ""
	}
	off := render.UTF16Len(m.Text + sep)
	m.Text += sep + notice
	m.Entities = append(slices.Clone(m.Entities), models.MessageEntity{Type: models.MessageEntityTypeItalic, Offset: off, Length: render.UTF16Len(notice)})
	return m
}

// CompleteNotice reports whether a final answer recorded with notice under it was whole: no
// notice, or one that only says it reached an output limit.
func CompleteNotice(notice string) bool {
	return notice == "" || strings.HasPrefix(notice, "✂️ The answer reached")
}
