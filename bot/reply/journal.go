package reply

import (
	"context"
	"slices"
)

// Target is where a reply goes.
type Target struct {
	ChatID   int64
	ThreadID int
	ReplyTo  int // the message the reply answers
	Seen     int // the message that led to the reply (question, /retry): the bot's earlier ones are lower
	Group    bool
}

// Journal records what a reply is about to do before each Telegram call, so that a restart finds
// every message it may have posted and the text they must end with. A nil Journal records
// nothing; a method that fails stops its call: the reply never shows what it could not record.
type Journal interface {
	// Show records the text the reply is about to show; nothing follows a final record.
	Show(ctx context.Context, s Shown) error
	// Sending records that message idx of the reply is about to be sent (see Sending).
	Sending(ctx context.Context, idx int, s Sending) error
	// Sent records the id Telegram gave message idx. lost, if not nil, is the search for the
	// copies earlier sends of it may have posted, recorded with it; Sent returns its id.
	Sent(ctx context.Context, idx int, id int, lost *Lost) (int64, error)
	// Removed records that message idx is gone: deleted, or never posted after all.
	Removed(ctx context.Context, idx int) error
	// Owner is the inbox entry whose reply the journal records.
	Owner() Owner
}

// Sending is what a reply records before it sends one of its messages.
type Sending struct {
	Floor int    // the highest message id known in the chat when it was first sent
	Wire  []byte // exactly what the send carries (see wire), to send it again, and to look for it
	Tries int    // the sends of it before this one whose outcome is unknown
}

// Shown is a text a reply shows.
type Shown struct {
	Text     string // Markdown (or plain, for a notice)
	Final    bool   // the complete answer, or a notice
	Notice   string // the line under a final answer
	Plain    bool   // a notice: plain text, not Markdown
	Complete bool   // a final answer is whole (no notice, or one about an output limit): stored done
}

// Recorded is what a journal holds of a reply that must be finished.
type Recorded struct {
	Parts []RecordedPart // the reply's messages in order
	Shown                // what the reply was about to show last
}

// RecordedPart is one message of a recorded reply; Floor, Wire and Tries are as in Sending.
type RecordedPart struct {
	ID    int // 0: a send whose answer never came
	Floor int
	Wire  []byte
	Tries int
}

// Seen reports whether the user may have seen any of the reply (a message was about to be sent):
// a reply nobody saw may be asked of the model again.
func (r Recorded) Seen() bool { return len(r.Parts) > 0 }

// Unsettled reports whether a send of the reply had no answer: until it is resumed, nothing else
// may be sent in its chat (see Registry).
func (r Recorded) Unsettled() bool {
	return slices.ContainsFunc(r.Parts, func(p RecordedPart) bool { return p.ID == 0 })
}
