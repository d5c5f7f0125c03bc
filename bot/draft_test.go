package bot

import (
	"context"
	"strings"
	"testing"

	"aurabot/aura"
	"aurabot/bot/conversation"
	"aurabot/bot/reply"
	"aurabot/bot/telegramtest"
	"aurabot/history"
)

// streamSlowly yields three chunks, each after Telegram has shown something new.
func streamSlowly(e *env) func(context.Context, []aura.Message, func(string, error) bool) {
	return func(ctx context.Context, _ []aura.Message, yield func(string, error) bool) {
		shown := func() int {
			return len(e.tg.Calls("sendMessageDraft")) + len(e.tg.Calls("editMessageText")) + len(e.tg.Calls("sendMessage"))
		}
		for _, c := range []string{"One", " two", " **three**"} {
			before := shown()
			if !yield(c, nil) {
				return
			}
			e.wait(func() bool { return shown() > before || ctx.Err() != nil })
		}
	}
}

// In draft mode a private reply grows as a draft and ends as one formatted message, no edits.
func TestDraftModePrivateChat(t *testing.T) {
	e := newEnv(t, Config{Reply: reply.Config{StreamMode: reply.StreamDraft}})
	e.model.fn = streamSlowly(e)
	id := e.say(user, user, "hi")
	e.answered(history.Key{ChatID: user}, 2)
	msgs := e.final(user, id)
	if len(msgs) != 1 || msgs[0].Text != "One two three" || len(msgs[0].Entities) != 1 {
		t.Fatalf("final: got %+v, want one formatted message", msgs)
	}
	drafts := e.tg.Calls("sendMessageDraft")
	if len(drafts) < 2 {
		t.Fatalf("drafts: got %d, want the reply to grow in drafts", len(drafts))
	}
	for i, d := range drafts {
		if d.Params["draft_id"] != drafts[0].Params["draft_id"] || d.Params["draft_id"] == "0" {
			t.Errorf("draft %d: id %q, want one non-zero id for the reply", i, d.Params["draft_id"])
		}
	}
	if n := len(e.tg.Calls("editMessageText")); n != 0 {
		t.Errorf("edits: got %d, want 0 in draft mode", n)
	}
}

// Groups always stream by edits; a draft that Telegram refuses falls back to edits.
func TestDraftModeFallsBackToEdits(t *testing.T) {
	e := newEnv(t, Config{Conversation: conversation.Config{AllowedUsers: conversation.IDList{All: true}}, Reply: reply.Config{StreamMode: reply.StreamDraft}})
	e.model.fn = streamSlowly(e)
	id := e.say(group, 5, "@"+telegramtest.BotUsername+" hi")
	e.answered(history.Key{ChatID: group}, 2)
	if got := e.final(group, id)[0].Text; got != "One two three" {
		t.Errorf("group final: got %q", got)
	}
	if n := len(e.tg.Calls("sendMessageDraft")); n != 0 {
		t.Errorf("group drafts: got %d, want 0", n)
	}

	e.tg.SetFaults(func(method string, _ map[string]string) *telegramtest.Fault {
		if method == "sendMessageDraft" {
			return &telegramtest.Fault{Code: 400, Description: "Bad Request: drafts are not available"}
		}
		return nil
	})
	id = e.say(user, user, "hi")
	e.answered(history.Key{ChatID: user}, 2)
	msgs := e.final(user, id)
	if msgs[0].Text != "One two three" {
		t.Errorf("fallback final: got %q", msgs[0].Text)
	}
	streamed := false
	for _, c := range append(e.tg.Calls("sendMessage"), e.tg.Calls("editMessageText")...) {
		if c.ChatID() == user && strings.HasSuffix(c.Params["text"], cursor) {
			streamed = true
		}
	}
	if !streamed {
		t.Error("after a refused draft: want the reply to go on streaming by edits")
	}
}
