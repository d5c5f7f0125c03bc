package reply

import (
	"bytes"
	"context"
	"fmt"

	tgbot "github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"aurabot/bot/tg"
)

// Document is a file the bot sends.
type Document struct {
	Name    string // the file name the user sees
	Data    []byte
	Caption string // plain text under it, at most 1024 characters
}

// SendDocument sends doc in reply to t and returns its message id. Like every send of the bot's,
// it holds the chat's send gate (Registry) while it goes out, and the id it gets is noted in the
// registry: no other send of the bot's falls between a floor and a ceiling that do not know it,
// and the search for lost messages (Searcher) never looks at it.
//
// A document is sent once: a send whose answer never came is not made again, and the error
// (tg.Unknown) says so. That is safe for the searches: a document the send may have posted
// cannot be taken for a lost text, as an edit of its text is refused ("there is no text in the
// message to edit"), which a search reads as "not ours". The gate is freed either way: nothing
// will ever settle that send. Telegram's flood limits are waited out.
func (s *Streamer) SendDocument(ctx context.Context, t Target, j Journal, doc Document) (int, error) {
	deps, owner := s.deps, ownerOf(j)
	held := deps.Registry.Holder(t.ChatID) == owner // by an earlier send of the same reply: it keeps it
	if err := deps.Registry.Acquire(ctx, t.ChatID, owner); err != nil {
		return 0, err
	}
	if !held {
		defer deps.Registry.Release(t.ChatID, owner)
	}
	for {
		m, err := tg.Call(ctx, deps.Pacer, deps.Log, t.ChatID, func(ctx context.Context) (*models.Message, error) {
			return deps.TG.SendDocument(ctx, &tgbot.SendDocumentParams{
				ChatID: t.ChatID, MessageThreadID: t.ThreadID,
				Document:        &models.InputFileUpload{Filename: doc.Name, Data: bytes.NewReader(doc.Data)},
				Caption:         doc.Caption,
				ReplyParameters: replyTo(t.ReplyTo),
			})
		})
		switch {
		case err == nil:
			deps.Registry.Add(t.ChatID, m.ID)
			return m.ID, nil
		case tg.Throttled(err) && ctx.Err() == nil:
			continue // the pacer waits out the penalty
		case tg.Blocked(err):
			return 0, ErrBlocked
		}
		return 0, fmt.Errorf("reply: send a document: %w", err)
	}
}
