package reply

import (
	"errors"
	"fmt"
)

// Why a reply ended early, besides the model's own failures. The words a user reads about it
// are the caller's (Options.Notice).
var (
	// ErrStopped: the user pressed Stop or sent /stop.
	ErrStopped = errors.New("stopped by the user")
	// ErrShutdown: the bot is shutting down (or restarted while the reply streamed).
	ErrShutdown = errors.New("the bot is shutting down")
	// ErrBlocked: the user blocked the bot; nobody can see the reply.
	ErrBlocked = errors.New("the user blocked the bot")
	// ErrTooLong: the answer passed MAX_ANSWER_CHARS; the error is a *TooLongError.
	ErrTooLong = errors.New("the answer is too long")
	// ErrEmpty: the model sent nothing at all (Options.Notice is asked for its line; the
	// outcome's Err is nil).
	ErrEmpty = errors.New("the model sent an empty answer")
	// ErrUnfinished: a reply's messages could not be brought to their final text (Telegram did
	// not answer in time, or refused): the journal holds what they must show, and Resume
	// finishes them.
	ErrUnfinished = errors.New("reply: unfinished")

	// errNotRecorded means the journal could not record a call: it was not made.
	errNotRecorded = errors.New("reply: could not record what the reply is about to do")
)

// TooLongError is ErrTooLong, with the longest answer shown.
type TooLongError struct{ Max int }

func (e *TooLongError) Error() string        { return ErrTooLong.Error() }
func (e *TooLongError) Is(target error) bool { return target == ErrTooLong }

// PanicError is a panic of the model's stream (or of the code that reads it), recovered: the
// reply ends with it as its error, and the bot goes on.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }
