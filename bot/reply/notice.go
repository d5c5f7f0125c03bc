package reply

import (
	"errors"
	"slices"

	"github.com/go-telegram/bot/models"

	"aurabot/bot/render"
)

// Why a reply ended early, besides the model's own failures. The words a user reads about it
// are the caller's (Options.Notice).
var (
	// ErrStopped: the user pressed Stop or sent /stop.
	ErrStopped = errors.New("stopped by the user")
	// ErrShutdown: the bot is shutting down (or restarted while the reply streamed).
	ErrShutdown = errors.New("the bot is shutting down")
	// ErrBlocked: the user blocked the bot; nobody can see the reply.
	ErrBlocked = errBlocked
	// ErrTooLong: the answer passed the longest answer the bot shows (MAX_ANSWER_CHARS); the
	// error is a *TooLongError, which says how long that is.
	ErrTooLong = errors.New("the answer is too long")
	// ErrEmpty: the model sent nothing at all (an Options.Notice is asked for its line; the
	// outcome's Err is nil).
	ErrEmpty = errors.New("the model sent an empty answer")
)

// TooLongError is ErrTooLong, with the longest answer shown.
type TooLongError struct{ Max int }

func (e *TooLongError) Error() string        { return ErrTooLong.Error() }
func (e *TooLongError) Is(target error) bool { return target == ErrTooLong }

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
