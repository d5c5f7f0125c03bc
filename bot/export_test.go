package bot

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-telegram/bot/models"

	"aurabot/bot/telegramtest"
	"aurabot/history"
	"aurabot/history/inbox"
)

// An /export whose file went out before a crash (its journal says so) is not sent again after
// the restart; one that had not gone out is. Each is sent under the chat's send gate: the
// reply that follows it in the chat comes after it.
func TestExportOnceAcrossARestart(t *testing.T) {
	ctx := context.Background()
	store, err := history.Open(ctx, filepath.Join(t.TempDir(), "bot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	k := history.Key{ChatID: user}
	for _, turn := range []history.Turn{{Role: history.RoleUser, Content: "hello"}, {Role: history.RoleAssistant, Content: "hi there"}} {
		if _, _, err := store.Append(ctx, k, turn); err != nil {
			t.Fatal(err)
		}
	}
	tg := telegramtest.New()
	t.Cleanup(tg.Close)
	incoming := func(updateID int64, text string) (inbox.Update, int) {
		id := tg.NewMessageID(user)
		payload, _ := json.Marshal(models.Update{ID: updateID, Message: &models.Message{
			ID: id, Date: int(time.Now().Unix()), Text: text,
			Chat: models.Chat{ID: user, Type: models.ChatTypePrivate}, From: &models.User{ID: user, FirstName: "Ann"},
		}})
		fresh, err := store.Inbox().Save(ctx, []inbox.Incoming{{ID: updateID, Payload: payload}})
		if err != nil || len(fresh) != 1 {
			t.Fatal(fresh, err)
		}
		return fresh[0], id
	}
	sent, _ := incoming(50, "/export")
	if err := store.Inbox().RecordText(ctx, sent.Seq, inbox.Reply{Text: "📄 The conversation was sent as a Markdown file.", Final: true, Plain: true}); err != nil {
		t.Fatal(err)
	}
	_, again := incoming(51, "/export")
	_, question := incoming(52, "and now?")

	e := newEnvOn(t, Config{}, tg, tg.URL(), store)
	e.final(user, question)
	e.eventually(func() bool {
		p, err := store.Inbox().Pending(ctx)
		return err == nil && len(p) == 0
	})
	var docs []telegramtest.Message
	for _, m := range tg.Messages(user) {
		if m.Document != nil {
			docs = append(docs, m)
		}
	}
	if len(docs) != 1 || docs[0].ReplyTo != again {
		t.Fatalf("got %d documents, want one, for the /export that had not gone out", len(docs))
	}
	text := string(docs[0].Document.Data)
	if !strings.Contains(text, "\nhello\n") || !strings.Contains(text, "\nhi there\n") || !strings.Contains(text, "Be helpful.") {
		t.Errorf("the export: got\n%s", text)
	}
	msgs := tg.Messages(user)
	if last := msgs[len(msgs)-1]; last.ReplyTo != question || last.ID < docs[0].ID {
		t.Errorf("the answer after the export: got %+v", last)
	}
	e.stop()
}
