package reply

import (
	"errors"
	"fmt"
)

// Why a reply ended early, besides the model's own failures. The words a user reads about it
// are the caller's (Options.Notice).
var (
	ErrStopped  = errors.New("stopped by the user")            // Stop, or /stop
	ErrShutdown = errors.New("the bot is shutting down")       // or restarted while the reply streamed
	ErrBlocked  = errors.New("the user blocked the bot")       // nobody can see the reply
	ErrTooLong  = errors.New("the answer is too long")         // past MAX_ANSWER_CHARS: a *TooLongError
	ErrEmpty    = errors.New("the model sent an empty answer") // for Options.Notice; Outcome.Err is nil
	// ErrUnfinished: a reply's messages could not be brought to their final text in time; the
	// journal holds what they must show, and Resume finishes them.
	ErrUnfinished = errors.New("reply: unfinished")
	// errNotRecorded: the journal could not record a call, which was not made.
	errNotRecorded = errors.New("reply: could not record what the reply is about to do")
)

// TooLongError is ErrTooLong, with the longest answer shown.
type TooLongError struct{ Max int }

func (e *TooLongError) Error() string        { return ErrTooLong.Error() }
func (e *TooLongError) Is(target error) bool { return target == ErrTooLong }

// PanicError is a recovered panic of the model's stream (or its reader): the reply ends with it.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }
