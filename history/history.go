// Package history is the conversation store: for every chat, or topic inside a chat, it keeps
// the system prompt and the turns (what the user said, what the assistant answered) in a SQLite
// file, and picks the recent turns that fit a model's context window.
//
// It knows nothing of Telegram or HTTP: message ids and display names are plain values handed
// in by the caller. The schema lives in the migrations package and Open brings it up to date.
// A Store is safe for concurrent use.
package history

import (
	"context"
	"errors"
	"time"

	"github.com/jmoiron/sqlx"

	"aurabot/history/inbox"
	"aurabot/history/internal/sqldb"
)

// Key identifies a conversation: a chat, or a topic inside a chat (ThreadID 0: none).
type Key struct {
	ChatID, ThreadID int64
}

// Role says who wrote a turn.
type Role string

// The roles of a turn.
const (
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
)

// Status says whether a turn is complete. StatusCut marks an assistant reply that broke off;
// its Content is what the user saw, and it is sent to the model with CutMarker after it.
type Status string

// The statuses of a turn.
const (
	StatusDone Status = "done"
	StatusCut  Status = "cut"
)

// Turn is one message of a conversation.
type Turn struct {
	ID        int64
	Role      Role
	Content   string
	Author    string    // display name of the user who wrote a user turn (groups); "" otherwise
	MessageID int64     // Telegram message id: the user's, or the reply's first; 0 = none
	Entry     int64     // the inbox entry an answer replies to (0 = none): stored once per entry; never read back
	Status    Status    // "" means done when appending
	CreatedAt time.Time // zero = now when appending; always UTC, millisecond precision, when read
	Images    []Image   // pictures sent with a user turn; Request returns them, Turns does not
	Audio     Audio     // what a user turn was spoken in; Content is the transcript, "" until stored
	Quote     Quote     // the message a user turn replies to, sent with it (see Sent); zero for none

	imageCount int  // images stored with the turn, as read
	tokens     int  // the stored token count of Sent(), when counted
	counted    bool // read from the store with its count there
}

// Image is a picture sent with a turn: its media type, such as "image/jpeg", and its bytes.
type Image struct {
	MIME string
	Data []byte
}

// Audio is where a spoken turn's recording is: a Telegram file id, plain text to the store,
// and the file name to give a speech-to-text server. The zero value is a written turn.
type Audio struct {
	FileID, Name string
}

// Quote is the message a user's turn replies to, as the model is shown it with the turn: its
// text (the part the user quoted, or the message, bounded by the caller) and who wrote it.
type Quote struct {
	Text string
	// Author is a member's display name in a group; "" when it is not known or is the user
	// themself in a private chat.
	Author string
	Bot    bool // the bot's own message: an earlier answer
}

// Untranscribed reports whether t is a spoken turn whose transcript is not stored yet.
func (t Turn) Untranscribed() bool { return t.Audio.FileID != "" && t.Content == "" }

// ImageCount is how many images are stored with the turn, whether or not they were read.
func (t Turn) ImageCount() int { return max(t.imageCount, len(t.Images)) }

// ErrNotFound is returned when the thing asked for does not exist, for example by Rewind when
// the conversation has no user turn.
var ErrNotFound = errors.New("history: not found")

// Store is the conversation store; create it with Open. SQLite allows one writer at a time, and
// a writer that finds the lock taken polls (busy_timeout) rather than queues, so every write goes
// through w, a pool of one connection: writers queue in database/sql, in order, honouring their
// contexts. Reads go through r, connections that WAL lets run alongside. w begins transactions
// with BEGIN IMMEDIATE: a DEFERRED one that reads, then writes after another process committed,
// fails at once with SQLITE_BUSY_SNAPSHOT.
type Store struct {
	w, r *sqlx.DB

	// countInBackground's goroutine: stopCounting ends it, counted is closed when it has.
	stopCounting context.CancelFunc
	counted      chan struct{}
}

// Close closes the store, first stopping the count of stored turns' tokens if it still runs.
func (s *Store) Close() error {
	if s.stopCounting != nil {
		s.stopCounting()
		<-s.counted
	}
	return errors.Join(s.r.Close(), s.w.Close())
}

// Inbox returns the update inbox kept in the same database, on the store's connections.
func (s *Store) Inbox() *inbox.Inbox { return inbox.New(s.w, s.r) }

// ErrStorageFull is wrapped by the errors of writes that failed because the storage is full.
// Nothing was stored by such a write; once there is room again, writes succeed.
var ErrStorageFull = sqldb.ErrFull

// ErrStorageFailing is wrapped by the errors of writes that failed because the disk reported an
// I/O error or the file is damaged: waiting may not help.
var ErrStorageFailing = sqldb.ErrFailing

// StorageTrouble reports whether err is a write that failed on the storage itself.
func StorageTrouble(err error) bool {
	return errors.Is(err, ErrStorageFull) || errors.Is(err, ErrStorageFailing)
}

// CheckWrite really writes to the database, for a health check: it stores a row of checkBytes
// bytes, commits (with its fsync), and deletes it again.
func (s *Store) CheckWrite(ctx context.Context) error {
	const checkBytes = 8192 // more than a page: the write needs room to grow, as a long turn would
	var id int64
	err := s.w.GetContext(ctx, &id, `INSERT INTO write_checks (payload, checked_at) VALUES (zeroblob(?), ?) RETURNING id`,
		checkBytes, time.Now().UnixMilli())
	if err == nil {
		_, err = s.w.ExecContext(ctx, `DELETE FROM write_checks WHERE id <= ?`, id)
	}
	return sqldb.Fail("history: check write", err)
}

// unixMilli converts a stored timestamp back to the time it was taken.
func unixMilli(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
