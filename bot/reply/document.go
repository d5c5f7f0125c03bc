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

// SendDocument sends doc in reply to t and returns its message id. Like every send, it holds the
// chat's send gate and notes its id in the registry, so no search for lost messages looks at it.
// It is sent once: a send with no answer is not made again (the error is tg.Unknown), and frees
// the gate, as nothing will settle it. That is safe: a search cannot take a document for a lost
// text, as an edit of its text is refused ("no text in the message to edit"). 429s are waited out.
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
