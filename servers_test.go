package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"aurabot/bot/telegramtest"
)

// These tests run the bot against fakes that do what the real servers were seen to do: a
// chatbot-ui server whose token counter throws on a special token (500), and an Ollama that
// counts its chat template, cuts a long request silently, lists "name:latest", and takes a
// picture for a model that cannot see it without a word.

// coverageRe reads /system's report.
var coverageRe = regexp.MustCompile(`sees (?:all (\d+) messages|the last (\d+) of the (\d+) messages|none of the (\d+) messages)`)

// reported returns how many of how many stored messages /system says the next request carries.
func reported(t *testing.T, text string) (in, total int) {
	t.Helper()
	m := coverageRe.FindStringSubmatch(text)
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	switch {
	case m == nil:
		t.Fatalf("no coverage in %q", text)
	case m[1] != "":
		return atoi(m[1]), atoi(m[1])
	case m[2] != "":
		return atoi(m[2]), atoi(m[3])
	}
	return 0, atoi(m[4])
}

// system sends /system and returns the report, once the summaries the bot started have been
// written: a summary that lands between the report and the next request changes the window.
func (h *harness) system() (in, total int) {
	h.t.Helper()
	h.summariesSettled()
	id := h.send("/system")
	var text string
	h.wait(func() bool {
		for _, m := range h.tg.Messages(userID) {
			if m.ReplyTo == id && coverageRe.MatchString(m.Text) {
				text = m.Text
				return true
			}
		}
		return false
	})
	return reported(h.t, text)
}

// answer is the fake's answer in the tests that fill a window: 60 tokens, so that a 512-token
// window fills in a few exchanges of short questions, the template's 8 tokens a message a
// good part of it.
const answer = "Sure: here is an answer of about sixty tokens, long enough that the context window of the model fills up " +
	"after a few exchanges, and short enough that the template's own tokens around each message still count for a good part of it."

// /system says what the next request carries: the request that follows has exactly the turns
// reported and the new message, with no limit in sight (the answer after the last question
// was left out of the report: "5 of the 6") and with a token window that cuts.
func TestSystemReportsTheNextRequest(t *testing.T) {
	t.Parallel()
	t.Run("chatbot-ui, room to spare", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.aura.reply = streamText("Fine.")
		h.start()
		for _, q := range []string{"one", "two", "three"} {
			h.replyTo(h.send(q))
		}
		in, total := h.system()
		if in != 6 || total != 6 {
			t.Errorf("/system: got %d of %d, want all 6", in, total)
		}
		h.replyTo(h.send("four"))
		reqs := h.aura.chats()
		if got := len(reqs[len(reqs)-1].Messages) - 1; got != in {
			t.Errorf("the next request carries %d turns before the new message, /system said %d", got, in)
		}
		h.stop()
	})
	t.Run("ollama, a 512-token window", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.aura.ollama = &ollamaFake{Caps: map[string][]string{"tiny-a:latest": {"completion"}}, NumCtx: 512, TemplatePer: 8, Priming: 3}
		h.aura.reply = streamText(answer)
		h.start("AURA_PROTOCOL=openai", "AURA_MODEL=tiny-a", "AURA_CONTEXT_TOKENS=512")
		cut := false
		for i := range 6 {
			h.replyTo(h.send("question number " + strconv.Itoa(i)))
			if i%2 != 1 {
				continue
			}
			in, total := h.system()
			h.replyTo(h.send("next?"))
			reqs := h.aura.chats() // a summary the window asked for may come after it
			last := reqs[len(reqs)-1]
			if got := len(last.Messages) - 1; got != in {
				t.Fatalf("after %d questions /system said %d of %d; the next request carries %d", i+1, in, total, got)
			}
			cut = cut || in < total
		}
		if !cut {
			t.Error("the window never cut the conversation: the test did not reach the limit")
		}
		h.stop()
	})
}

// Short messages fill the window; the fake Ollama counts each with its template's 8
// tokens and the reply's priming, and never has to cut a request: the bot counted the same.
// Without the per-message overhead (AURA_TOKENS_PER_MESSAGE=0, the count before) it does cut,
// and the bot, which reads Ollama's usage.prompt_tokens, logs once that the server counts more.
func TestWindowWithinTheServersCount(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		perMessage string
		wantCut    bool
	}{{"", false}, {"0", true}} {
		t.Run("AURA_TOKENS_PER_MESSAGE="+tt.perMessage, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.aura.ollama = &ollamaFake{Caps: map[string][]string{"tiny-a:latest": {"completion"}}, NumCtx: 512, TemplatePer: 8, Priming: 3}
			h.aura.reply = streamText(answer)
			extra := []string{"AURA_PROTOCOL=openai", "AURA_MODEL=tiny-a", "AURA_CONTEXT_TOKENS=512"}
			if tt.perMessage != "" {
				extra = append(extra, "AURA_TOKENS_PER_MESSAGE="+tt.perMessage)
			}
			h.start(extra...)
			for i := range 10 {
				h.replyTo(h.send("hi " + strconv.Itoa(i)))
			}
			h.stop()
			cut, most, noUsage := 0, 0, 0
			for _, r := range h.aura.requests() {
				if !r.wantUsage {
					noUsage++
				}
				if r.dropped > 0 {
					cut++
				}
				most = max(most, len(r.Messages))
			}
			if noUsage > 0 {
				t.Errorf("%d requests did not ask for the usage (stream_options.include_usage)", noUsage)
			}
			if got := cut > 0; got != tt.wantCut {
				t.Errorf("%d requests over the server's 512 tokens (the longest %d messages), want cut: %v", cut, most, tt.wantCut)
			}
			warned := strings.Count(h.logs.String(), "the model server counts more tokens in a request than the bot's window does")
			if want := map[bool]int{false: 0, true: 1}[tt.wantCut]; warned != want {
				t.Errorf("got %d warnings that the server counts more, want %d", warned, want)
			}
		})
	}
}

// A message holding a special token's text reaches the chatbot-ui server defused (its
// tiktoken would throw, 500, on every later request too), is answered, and the conversation
// goes on with it in the history.
func TestSpecialTokenReachesChatbotUIDefused(t *testing.T) {
	t.Parallel() // a harness of its own; the time goes to Telegram's pacing
	h := newHarness(t)
	h.aura.reply = streamText("It ends a document.")
	h.start()
	first := h.send("What does <|endoftext|> mean?")
	if got := h.replyTo(first).Text; got != "It ends a document." {
		t.Fatalf("reply: got %q", got)
	}
	h.aura.reply = streamText("Yes.")
	if got := h.replyTo(h.send("And <|fim_prefix|>?")).Text; got != "Yes." {
		t.Fatalf("the next reply: got %q, want the conversation to go on", got)
	}
	reqs := h.aura.requests()
	last := reqs[len(reqs)-1]
	if len(last.Messages) != 3 || last.Messages[0].Content != "What does <|\u200bendoftext|> mean?" {
		t.Errorf("the second request: got %+v, want the first question defused in the history", last.Messages)
	}
	for _, r := range reqs {
		for _, m := range r.Messages {
			if hasSpecial(m.Content) {
				t.Errorf("a request carried a special token: %q", m.Content)
			}
		}
		if r.dropped != 0 {
			t.Errorf("the server would have dropped %d messages", r.dropped)
		}
	}
	h.stop()
}

// On Ollama, a picture for a model whose /api/show lacks "vision" gets the text-only notice
// and no request (Ollama would answer it as if seen); a model that sees gets it. Each model is
// asked about once.
func TestPictureToATextOnlyOllamaModel(t *testing.T) {
	t.Parallel() // a harness of its own; the time goes to Telegram's pacing
	h := newHarness(t)
	h.aura.ollama = &ollamaFake{Caps: map[string][]string{
		"tiny-a:latest": {"completion"},
		"seer:latest":   {"completion", "vision"},
	}}
	h.aura.models = []string{"tiny-a:latest", "seer:latest"}
	h.aura.reply = streamText("A red bicycle.")
	h.start("AURA_PROTOCOL=openai", "AURA_MODEL=tiny-a")

	photo := telegramtest.Image{Width: 1280, Height: 960, Data: []byte("\xff\xd8\xff\xe0 a jpeg")}
	for range 2 {
		p := h.tg.PushPhoto(incoming("what is this?"), photo)
		h.wait(func() bool { return hasReply(h.tg, p.ID, "takes text only") && hasReply(h.tg, p.ID, "/model") })
	}
	if n, dl := len(h.aura.requests()), len(h.tg.Calls("getFile")); n != 0 || dl != 0 {
		t.Errorf("got %d model requests and %d downloads, want none", n, dl)
	}

	sw := h.send("/model seer")
	h.wait(func() bool { return hasReply(h.tg, sw, "Switched to seer") })
	p := h.tg.PushPhoto(incoming("and now?"), photo)
	h.wait(func() bool { return hasReply(h.tg, p.ID, "A red bicycle.") })
	reqs := h.aura.requests()
	if len(reqs) != 1 || reqs[0].Model.ID != "seer:latest" || len(reqs[0].Messages[0].Images) != 1 {
		t.Fatalf("got %d requests, want one to seer with the picture", len(reqs))
	}

	// Back to the text-only model: the picture in the history is left out, its text kept.
	sw = h.send("/model tiny-a")
	h.wait(func() bool { return hasReply(h.tg, sw, "Switched to tiny-a") })
	h.aura.reply = streamText("Sure.")
	h.replyTo(h.send("tell me more"))
	reqs = h.aura.requests()
	r := reqs[len(reqs)-1]
	if r.Model.ID != "tiny-a:latest" || len(r.Messages) != 3 || len(r.Messages[0].Images) != 0 || r.Messages[0].Content != "and now?" {
		t.Errorf("to the text-only model: got model %q, %+v; want the history without the picture", r.Model.ID, r.Messages)
	}
	h.stop()
	if got := h.aura.ollama.Shown; got != 2 {
		t.Errorf("/api/show requests: got %d, want one per model", got)
	}
}

// Ollama lists "tiny-a:latest" for the model called "tiny-a": /model does not offer it as
// another, "/model tiny" and "/model tiny:latest" pick the same model, a model the list lacks
// but the server has is accepted, and one it has not is refused. A request for a model the
// server lacks (404) points to /model.
func TestModelNamesOllama(t *testing.T) {
	t.Parallel() // a harness of its own; the time goes to Telegram's pacing
	h := newHarness(t)
	h.aura.ollama = &ollamaFake{Caps: map[string][]string{
		"tiny-a:latest":    {"completion"},
		"tiny:latest":      {"completion"},
		"tiny-long:latest": {"completion"},
	}}
	h.aura.models = []string{"tiny-a:latest"}
	h.aura.reply = streamText("ok")
	h.start("AURA_PROTOCOL=openai", "AURA_MODEL=tiny-a")
	show := h.send("/model")
	h.wait(func() bool { return hasReply(h.tg, show, "The model is tiny-a:latest. This bot offers no other.") })
	h.stop()

	h.aura.models = []string{"tiny-a:latest", "tiny:latest"} // a new process: the list is asked again
	h.start("AURA_PROTOCOL=openai", "AURA_MODEL=tiny-a")
	var asked []string
	for _, name := range []string{"tiny", "tiny:latest"} {
		sw := h.send("/model " + name)
		h.wait(func() bool { return hasReply(h.tg, sw, "Switched to tiny:latest") })
		h.replyTo(h.send("hi"))
		reqs := h.aura.requests()
		asked = append(asked, reqs[len(reqs)-1].Model.ID)
	}
	if asked[0] != asked[1] {
		t.Errorf("/model tiny asks for %q, /model tiny:latest for %q: want the same model", asked[0], asked[1])
	}

	long := h.send("/model tiny-long")
	h.wait(func() bool { return hasReply(h.tg, long, "Switched to tiny-long") })
	h.replyTo(h.send("and you?"))
	reqs := h.aura.requests()
	if got := reqs[len(reqs)-1].Model.ID; got != "tiny-long" {
		t.Errorf("after /model tiny-long: asked for %q", got)
	}
	missing := h.send("/model tiny-short")
	h.wait(func() bool { return hasReply(h.tg, missing, `There is no model "tiny-short" here`) })

	picker := h.send("/model")
	h.wait(func() bool {
		for _, m := range h.tg.Messages(userID) {
			if m.ReplyTo == picker && strings.Contains(m.Markup, "tiny:latest") {
				return strings.Contains(m.Text, "Choose another") && !strings.Contains(m.Markup, "✓")
			}
		}
		return false
	})
	h.stop()
}

// A model the server does not have (Ollama's 404 "model not found") is fixed with /model, not
// by asking again.
func TestMissingModelPointsToModel(t *testing.T) {
	t.Parallel() // a harness of its own; the time goes to Telegram's pacing
	h := newHarness(t)
	h.aura.ollama = &ollamaFake{Caps: map[string][]string{"tiny-a:latest": {"completion"}}}
	h.aura.reply = streamText("ok")
	h.start("AURA_PROTOCOL=openai", "AURA_MODEL=gone")
	got := h.replyTo(h.send("hello?")).Text
	if !strings.Contains(got, "404") || !strings.Contains(got, "not found") || !strings.Contains(got, "/model") || strings.Contains(got, "/retry") {
		t.Errorf("notice: got %q, want the 404 and /model, not /retry", got)
	}
	h.stop()
}
