package bot

import (
	"context"
	"strings"
	"testing"

	"aurabot/aura"
	"aurabot/bot/conversation"
	"aurabot/history"
)

// A refusal that comes again for the same history (a turn the server chokes on) says so and
// points to /reset: /retry would only meet it again. The first says /retry, as any failure;
// after /reset the conversation works.
func TestRepeatedRefusalPointsToReset(t *testing.T) {
	e := newEnv(t, Config{})
	refuse := func(_ context.Context, msgs []aura.Message, yield func(string, error) bool) {
		yield("", &aura.StatusError{StatusCode: 500, Reason: "Internal Server Error"})
	}
	e.model.fn = refuse
	first := e.say(user, user, "what is <|poison|>?")
	e.wait(func() bool { return hasText(e.tg, user, first, "Send /retry") })
	if hasText(e.tg, user, first, "/reset") {
		t.Error("the first refusal points to /reset; want /retry, as it may pass")
	}
	e.say(user, user, "/retry")
	e.wait(func() bool {
		return hasText(e.tg, user, first, "failed again with this conversation") && hasText(e.tg, user, first, "/reset")
	})
	// A new message after it carries the same history: the same refusal says the same.
	second := e.say(user, user, "hello?")
	e.wait(func() bool {
		return hasText(e.tg, user, second, "failed again") && hasText(e.tg, user, second, "Send /reset")
	})
	for _, m := range e.tg.Messages(user) {
		if m.ReplyTo == second && strings.Contains(m.Text, "/retry to try again") {
			t.Errorf("the repeated refusal says %q, want no /retry", m.Text)
		}
	}
	reset := e.say(user, user, "/reset")
	e.wait(func() bool { return hasText(e.tg, user, reset, "forgot") })
	e.model.fn = chunks("Hello.")
	e.final(user, e.say(user, user, "hi"))

	// Another kind of failure (a timeout) is not a refusal of the history.
	e.model.fn = func(_ context.Context, _ []aura.Message, yield func(string, error) bool) {
		yield("", aura.ErrFirstByteTimeout)
	}
	for range 2 {
		id := e.say(user, user, "again")
		e.wait(func() bool { return hasText(e.tg, user, id, "did not start answering") })
		if hasText(e.tg, user, id, "/reset") {
			t.Error("a repeated timeout points to /reset")
		}
	}
}

// A model that says it cannot see (Ollama's capabilities) is never sent a picture: a photo
// gets the notice before any download, /retry of a picture stored for another model gets it
// too, and pictures earlier in the history are left out of its requests.
func TestPicturesOnlyToModelsThatSee(t *testing.T) {
	e := newEnv(t, Config{Conversation: conversation.Config{Models: []conversation.ModelChoice{{ID: "seer"}, {ID: "blind"}}, DefaultModel: "seer"}})
	e.model.caps = func(model string) (aura.Capabilities, error) {
		if model == "seer" {
			return aura.Capabilities{Known: true, List: []string{"completion", "vision"}}, nil
		}
		return aura.Capabilities{Known: true, List: []string{"completion"}}, nil
	}
	e.model.fn = chunks("A cat.")
	p := e.tg.PushPhoto(from("what?"), small)
	e.wait(func() bool { return hasText(e.tg, user, p.ID, "A cat.") })

	sw := e.say(user, user, "/model blind")
	e.wait(func() bool { return hasText(e.tg, user, sw, "Switched to blind") })
	downloads := len(e.tg.Calls("getFile"))
	q := e.tg.PushPhoto(from("and this?"), small)
	e.wait(func() bool {
		return hasText(e.tg, user, q.ID, "(blind) takes text only") && hasText(e.tg, user, q.ID, "/model")
	})
	if n := len(e.tg.Calls("getFile")); n != downloads {
		t.Errorf("got %d downloads for a model that cannot see, want none", n-downloads)
	}
	if n := len(e.model.requests()); n != 1 {
		t.Errorf("got %d model requests, want only the first photo's", n)
	}

	// The picture stored for the seeing model, answered again by the blind one.
	e.say(user, user, "/retry")
	e.wait(func() bool { return hasText(e.tg, user, p.ID, "(blind) takes text only") })
	if n := len(e.model.requests()); n != 1 {
		t.Errorf("/retry of a picture to a model that cannot see: got %d model requests, want none more", n-1)
	}

	// A text message: the picture earlier in the history is left out, its text kept.
	e.model.fn = chunks("Sure.")
	e.say(user, user, "/reset")
	e.say(user, user, "/model seer")
	r := e.tg.PushPhoto(from("a dog?"), small)
	e.wait(func() bool { return hasText(e.tg, user, r.ID, "Sure.") })
	e.say(user, user, "/model blind")
	e.final(user, e.say(user, user, "tell me more"))
	reqs := e.model.requests()
	last := reqs[len(reqs)-1]
	if len(last) != 4 || last[1].Content != "a dog?" || len(last[1].Images) != 0 {
		t.Errorf("the text request to the blind model: got %+v, want the history without the picture", last)
	}
	if ts := e.answered(history.Key{ChatID: user}, 4); len(ts) != 4 || ts[0].ImageCount() != 1 {
		t.Errorf("stored: got %d turns, want the picture kept with its turn", len(ts))
	}
}

// Without AURA_MODELS, /model <name> asks the server about a name its list lacks: a model it
// serves is taken, one it does not is refused, and a server that cannot be asked says so.
func TestModelAskedOfTheServer(t *testing.T) {
	e := newEnv(t, Config{Conversation: conversation.Config{DefaultModel: "tiny-a"}})
	e.model.list = func() ([]string, error) { return []string{"tiny-a:latest"}, nil }
	e.model.has = func(model string) (bool, error) {
		switch model {
		case "tiny-long":
			return true, nil
		case "broken":
			return false, &aura.StatusError{StatusCode: 401, Reason: "bad key"}
		}
		return false, nil
	}
	shown := e.say(user, user, "/model")
	e.wait(func() bool {
		return hasText(e.tg, user, shown, "The model is tiny-a:latest. This bot offers no other.")
	})
	sw := e.say(user, user, "/model tiny-long")
	e.wait(func() bool { return hasText(e.tg, user, sw, "Switched to tiny-long") })
	no := e.say(user, user, "/model tiny-short")
	e.wait(func() bool { return hasText(e.tg, user, no, `There is no model "tiny-short" here`) })
	bad := e.say(user, user, "/model broken")
	e.wait(func() bool {
		return hasText(e.tg, user, bad, `could not ask the model server about "broken": 401 bad key`)
	})
	e.final(user, e.say(user, user, "hi"))
	if got := e.model.asked(); len(got) != 1 || got[0] != "tiny-long" {
		t.Errorf("model asked: got %q, want tiny-long", got)
	}
}
