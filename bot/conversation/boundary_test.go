package conversation

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-telegram/bot/models"

	"aurabot/aura"
	"aurabot/aura/transcribe"
	"aurabot/bot/tg"
	"aurabot/history"
	"aurabot/history/inbox"
)

// Who may use the bot, and what a stranger is told: once an hour per chat, with the ids the
// owner needs. Bots and channels are not listened to at all. Every update ends finished.
func TestAccess(t *testing.T) {
	x := newHarness(t, Config{})
	anon := func(chat int64) *models.Message {
		m := x.group(chat, 0, "")
		m.From, m.SenderChat = &models.User{ID: 1087968824, IsBot: true}, &m.Chat
		return mentioning(m, "hi")
	}
	bot := x.private(bob, "hi")
	bot.From.IsBot = true
	channel := x.group(club, 0, "")
	channel.From, channel.SenderChat = &models.User{ID: 136817688, IsBot: true}, &models.Chat{ID: -300, Type: models.ChatTypeChannel}
	mentioning(channel, "hi")

	for _, tc := range []struct {
		name     string
		m        *models.Message
		answered bool   // the model is asked
		notice   string // else the notice, "" for none
	}{
		{"an allowed user", x.private(ann, "hi"), true, ""},
		{"a stranger", x.private(bob, "hi"), false, "Your Telegram user id is 8: the owner can allow you by adding it to ALLOWED_USERS"},
		{"the stranger again within the hour", x.private(bob, "hi again"), false, ""},
		{"a stranger in an allowed group", mentioning(x.group(club, bob, ""), "hi"), true, ""},
		{"a stranger in another group", mentioning(x.group(otherGrp, bob, ""), "hi"), false, "Your Telegram user id is 8 and this chat's id is -200"},
		{"an anonymous administrator of another group", anon(-201), false, "This chat's id is -201: the owner can allow this whole chat with ALLOWED_CHATS"},
		{"an anonymous administrator of an allowed group", anon(club), true, ""},
		{"a bot", bot, false, ""},
		{"someone writing as a channel", channel, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(x.asked())
			entry := x.send(tc.m)
			if got := len(x.asked()) - before; got != map[bool]int{true: 1, false: 0}[tc.answered] {
				t.Errorf("model requests: got %d, want answered %v", got, tc.answered)
			}
			switch notes := x.notices(tc.m.ID); {
			case tc.notice == "" && len(notes) > 0:
				t.Errorf("got notices %q, want none", notes)
			case tc.notice != "":
				x.told(tc.m.ID, tc.notice)
			}
			x.finished(entry)
		})
	}

	// With ALLOWED_USERS=* everyone may, and nobody is an owner.
	all := newHarness(t, Config{AllowedUsers: IDList{All: true}})
	all.send(all.private(bob, "hi"))
	if got := all.asked(); len(got) != 1 || got[0] != "hi" {
		t.Errorf("ALLOWED_USERS=*: got requests %q, want the stranger's", got)
	}
	m := all.private(bob, "/usage all")
	all.send(m)
	all.told(m.ID, "Only the bot's owners")
}

// In a group the bot answers what is addressed to it: a mention (whole, stripped from the
// text), a reply to its message, and commands, but not a command for another bot.
func TestGroupAddressing(t *testing.T) {
	x := newHarness(t, Config{})
	x.tg.files["pic"] = []byte("jpeg")
	photo := func(caption string) *models.Message {
		m := x.group(club, ann, "")
		m.Photo, m.Caption = []models.PhotoSize{{FileID: "pic", Width: 10, Height: 10}}, caption
		return m
	}
	mentionedPhoto := photo("@aurabot what is it?")
	mentionedPhoto.CaptionEntities = []models.MessageEntity{{Type: models.MessageEntityTypeMention, Offset: 0, Length: len("@aurabot")}}
	replyToBot := x.group(club, ann, "and then?")
	replyToBot.ReplyToMessage = &models.Message{ID: 1000, From: &models.User{ID: botID}, Chat: replyToBot.Chat, Text: "Once upon a time."}
	otherMention := x.group(club, ann, "@aurabot_x hi")
	otherMention.Entities = []models.MessageEntity{{Type: models.MessageEntityTypeMention, Offset: 0, Length: 10}}

	for _, tc := range []struct {
		name   string
		m      *models.Message
		asked  string // what the model is asked; "" for nothing
		notice string
	}{
		{"not addressed", x.group(club, ann, "hi all"), "", ""},
		{"a mention", mentioning(x.group(club, ann, ""), "what is 2+2?"), "what is 2+2?", ""},
		{"a reply to the bot", replyToBot, "and then?", ""},
		{"another bot's mention", otherMention, "", ""},
		{"a mention alone", mentioning(x.group(club, ann, ""), ""), "", "Yes? Mention me with a question"},
		{"a command for another bot", x.group(club, ann, "/help@otherbot"), "", ""},
		{"a command for this bot", x.group(club, ann, "/help@AuraBot"), "", "Commands:"},
		{"a command for any bot", x.group(club, ann, "/help"), "", "Commands:"},
		{"a photo", photo("what is it?"), "", ""},
		{"a photo whose caption mentions the bot", mentionedPhoto, "what is it?", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(x.asked())
			entry := x.send(tc.m)
			got := x.asked()[before:]
			switch {
			case tc.asked == "" && len(got) > 0:
				t.Errorf("model asked %q, want nothing", got)
			case tc.asked != "" && (len(got) != 1 || !strings.HasSuffix(got[0], tc.asked)):
				t.Errorf("model asked %q, want %q", got, tc.asked)
			}
			if tc.notice != "" {
				x.told(tc.m.ID, tc.notice)
			} else if tc.asked == "" {
				x.silent(tc.m.ID)
			}
			x.finished(entry)
		})
	}
	// The turn carries who wrote it, and the quoted answer it replies to (not the newest turn,
	// which the model reads right before it anyway).
	turns := x.store.conversation(history.Key{ChatID: club})
	if u := turns[0]; u.Author != "user7" || u.Content != "what is 2+2?" {
		t.Errorf("group turn: got author %q content %q", u.Author, u.Content)
	}
	if q := turns[2].Quote; !q.Bot || q.Text != "Once upon a time." {
		t.Errorf("reply turn's quote: got %+v, want the bot's message", q)
	}
}

func TestParseCommand(t *testing.T) {
	h := testHandler()
	for _, tc := range []struct {
		text, cmd, arg string
		isCmd          bool
	}{
		{"/system Be brief.", "system", "Be brief.", true},
		{"/SYSTEM@aurabot  Be brief. ", "system", "Be brief.", true},
		{"/system\nline one\nline two", "system", "line one\nline two", true},
		{"/help@otherbot", "@", "", true},
		{"hello /help", "", "", false},
		{"/", "", "", false},
		{"/@aurabot", "", "", false},
	} {
		cmd, arg, isCmd := h.parseCommand(tc.text)
		if cmd != tc.cmd || arg != tc.arg || isCmd != tc.isCmd {
			t.Errorf("parseCommand(%q): got %q %q %v, want %q %q %v", tc.text, cmd, arg, isCmd, tc.cmd, tc.arg, tc.isCmd)
		}
	}
}

// Each command's reply, and what it changes.
func TestCommands(t *testing.T) {
	x := newHarness(t, Config{Budget: history.Budget{Chars: 1000}, Summaries: true})
	k := history.Key{ChatID: ann}
	say := func(text string) int {
		m := x.private(ann, text)
		x.finished(x.send(m))
		return m.ID
	}
	x.told(say("/frobnicate"), "I don't know /frobnicate. Send /help")
	x.told(say("/start"), "Hi! I pass your messages")
	x.told(say("/system"), "The system prompt is the default:\n\nBe helpful.")
	x.told(say("/system Answer in French."), "System prompt set.")
	if p, _, _ := x.store.SystemPrompt(context.Background(), k); p != "Answer in French." {
		t.Errorf("prompt: got %q", p)
	}
	x.told(say("/system "+strings.Repeat("long ", 200)), "it may take at most half of what the model is sent, 500 characters")
	x.told(say("/system"), "The system prompt is:\n\nAnswer in French.")
	x.told(say("/system default"), "back to the default")
	if _, ok, _ := x.store.SystemPrompt(context.Background(), k); ok {
		t.Error("/system default kept the prompt")
	}
	x.told(say("/retry"), "There is no message of yours to answer again.")
	say("question")
	if id := say("/retry"); len(x.notices(id)) != 0 {
		t.Errorf("/retry: got notices %q, want an answer", x.notices(id))
	}
	if got := x.asked(); len(got) != 2 || got[1] != "question" {
		t.Errorf("/retry: got requests %q, want the question twice", got)
	}
	x.told(say("/memory"), "There is no summary of this conversation yet")
	x.store.summary = history.Summary{Text: "They talked.", Turns: 4, At: time.Now()}
	x.told(say("/memory"), "What the model is told of the first 4 messages")
	x.told(say("/reset"), "I forgot this conversation")
	if ts := x.store.conversation(k); len(ts) != 0 {
		t.Errorf("/reset left %d turns", len(ts))
	}
	x.told(say("/usage"), "Your tokens (in + out), over every chat")
	x.told(say("/usage everyone"), "Send /usage for your own figures")
	x.store.usage = []history.UserUsage{{User: bob, Name: "Bob", Month: history.Tokens{In: 1500, Out: 500}}}
	x.told(say("/usage all"), "Bob (8): 0 / 2,000")

	off := newHarness(t, Config{Summaries: false})
	m := off.private(ann, "/memory")
	off.send(m)
	off.told(m.ID, "Summaries are off on this bot")
}

// In a group, steering the shared conversation takes an owner, an administrator (asked of
// Telegram) or an anonymous administrator; showing the prompt does not. A refused /model asks
// the model server nothing.
func TestStewardship(t *testing.T) {
	x := newHarness(t, Config{AllowedUsers: IDList{IDs: []int64{ann}}})
	x.tg.admins = []int64{9}
	k := history.Key{ChatID: club}
	x.store.turns[k] = []history.Turn{{ID: 1, Role: history.RoleUser, Content: "hi"}}
	for _, tc := range []struct {
		name, text string
		from       int64
		want       string
	}{
		{"a member shows the prompt", "/system", bob, "The system prompt is the default"},
		{"a member sets it", "/system Be rude.", bob, "Only the bot's allowed users and this group's administrators can change its system prompt."},
		{"a member resets", "/reset", bob, "can clear its history"},
		{"a member exports", "/export", bob, "can export this group's conversation"},
		{"a member asks for the models", "/model", bob, "can see or change its model"},
		{"a member retries", "/retry", bob, "it replaces the last answer for everyone"},
		{"an administrator sets the prompt", "/system Be kind.", 9, "System prompt set."},
		{"an owner resets", "/reset", ann, "I forgot this conversation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := x.group(club, tc.from, tc.text)
			x.finished(x.send(m))
			x.told(m.ID, tc.want)
		})
	}
	if p, _, _ := x.store.SystemPrompt(context.Background(), k); p != "Be kind." {
		t.Errorf("prompt: got %q, want the administrator's", p)
	}
	if x.model.listed != 0 || len(x.out.docs) != 0 {
		t.Errorf("refused commands asked the model server %d times and sent %d files, want none", x.model.listed, len(x.out.docs))
	}
	m := x.group(club, 0, "/reset")
	m.From, m.SenderChat = &models.User{ID: 1087968824, IsBot: true}, &m.Chat
	x.send(m)
	x.told(m.ID, "I forgot this conversation")
}

// /model shows the current model and switches by id or name; a model the list leaves out is
// asked of the server when the list is the server's own.
func TestModelCommand(t *testing.T) {
	x := newHarness(t, Config{Models: ModelList{{ID: "small"}, {ID: "big:latest", Name: "Big one"}}, DefaultModel: "small"})
	k := history.Key{ChatID: ann}
	say := func(text string) int {
		m := x.private(ann, text)
		x.send(m)
		return m.ID
	}
	x.told(say("/model"), "The model is small. Choose another:")
	x.told(say("/model big one"), "Switched to Big one.")
	if m, _, _ := x.store.Model(context.Background(), k); m != "big:latest" {
		t.Errorf("stored model: got %q", m)
	}
	x.told(say("/model big"), "Switched to Big one.") // big and big:latest are one model
	x.told(say("/model unlisted"), `There is no model "unlisted" here.`)

	server := newHarness(t, Config{DefaultModel: "only"})
	server.model.list = []string{"only"}
	m := server.private(ann, "/model")
	server.send(m)
	server.told(m.ID, "This bot offers no other.")
	m = server.private(ann, "/model unlisted")
	server.send(m)
	server.told(m.ID, "Switched to unlisted.")
}

// /export sends the conversation once: a journal that says it went out before a restart sends
// nothing again.
func TestExport(t *testing.T) {
	x := newHarness(t, Config{})
	x.store.turns[history.Key{ChatID: ann}] = []history.Turn{{ID: 1, Role: history.RoleUser, Content: "hi"}, {ID: 2, Role: history.RoleAssistant, Content: "hello"}}
	m := x.private(ann, "/export")
	entry := x.send(m)
	if len(x.out.docs) != 1 || x.out.docs[0].Caption != "This conversation: 2 messages, with the system prompt." ||
		!bytes.Contains(x.out.docs[0].Data, []byte("### Assistant")) {
		t.Fatalf("got %d files (%+v), want the conversation", len(x.out.docs), x.out.docs)
	}
	if r := x.journal.replies[entry]; r.Text != exportSent || !r.Final {
		t.Errorf("journal: got %+v, want the export recorded as sent", r)
	}
	x.finished(entry)

	// The same update again, as after a restart: the file is not sent twice.
	x.h.Handle(recovered(context.Background()), entry, &models.Update{ID: entry, Message: m})
	x.h.Wait()
	if len(x.out.docs) != 1 {
		t.Errorf("after a restart: got %d files, want still 1", len(x.out.docs))
	}
}

// A photo becomes a turn with the picture in the largest size up to 1280 px and the caption as
// its question (a short default without one); a model that cannot see gets neither.
func TestPhotos(t *testing.T) {
	photo := func(x *harness, caption string, sizes ...models.PhotoSize) *models.Message {
		m := x.private(ann, "")
		m.Photo, m.Caption = sizes, caption
		return m
	}
	small := models.PhotoSize{FileID: "small", Width: 320, Height: 240}
	fit := models.PhotoSize{FileID: "fit", Width: 1280, Height: 960}
	huge := models.PhotoSize{FileID: "huge", Width: 4000, Height: 3000}

	x := newHarness(t, Config{})
	x.tg.files["fit"] = []byte("jpeg")
	x.finished(x.send(photo(x, "what is it?", small, fit, huge)))
	turns := x.store.conversation(history.Key{ChatID: ann})
	if u := turns[0]; u.Content != "what is it?" || len(u.Images) != 1 || string(u.Images[0].Data) != "jpeg" {
		t.Fatalf("turn: got %q with %d images", u.Content, len(u.Images))
	}
	if req := x.model.requests[0]; len(req[1].Images) != 1 || req[1].Images[0].MIME != "image/jpeg" {
		t.Errorf("request: got %+v, want the picture", req[1])
	}
	x.send(photo(x, "", fit))
	if got := x.asked(); got[1] != defaultPhotoQuestion {
		t.Errorf("without a caption: asked %q", got[1])
	}

	m := photo(x, "", models.PhotoSize{FileID: "big", Width: 1000, Height: 800, FileSize: tg.MaxDownload + 1})
	x.send(m)
	x.told(m.ID, "That photo is too big: Telegram lets bots download files up to 20 MB.")
	m = photo(x, "", models.PhotoSize{FileID: "gone", Width: 100, Height: 100})
	x.send(m)
	x.told(m.ID, "I could not download your photo from Telegram. Please send it again.")

	// A text-only server, and a model Ollama says cannot see: a notice, nothing downloaded.
	for name, cfg := range map[string]Config{"text only": {TextOnly: true}, "blind model": {DefaultModel: "tiny"}} {
		t.Run(name, func(t *testing.T) {
			x := newHarness(t, cfg)
			x.model.caps = aura.Capabilities{Known: true, List: []string{"completion"}}
			m := photo(x, "what?", fit)
			x.finished(x.send(m))
			x.told(m.ID, map[string]string{"text only": blindNotice(""), "blind model": blindNotice("tiny")}[name])
			if d := x.tg.downloaded(); len(d) != 0 || len(x.asked()) != 0 {
				t.Errorf("downloads %q, %d requests; want none", d, len(x.asked()))
			}
		})
	}
}

// A recording is stored, transcribed and answered with the transcript above the answer; a bot
// without speech-to-text says so once an hour, and a file past Telegram's limit is refused
// before anything is stored.
func TestSpeech(t *testing.T) {
	voice := func(x *harness, id string, size int64) *models.Message {
		m := x.private(ann, "")
		m.Voice = &models.Voice{FileID: id, FileSize: size}
		return m
	}
	x := newHarness(t, Config{})
	x.tg.files["v1"] = []byte("OggS")
	x.finished(x.send(voice(x, "v1", 4)))
	if got := x.asked(); len(got) != 1 || got[0] != "what time is it" {
		t.Errorf("asked %q, want the transcript", got)
	}
	if s := x.out.streams[0]; s.prefix != transcriptPrefix("what time is it") {
		t.Errorf("shown above the answer: got %q", s.prefix)
	}
	if ts := x.store.conversation(history.Key{ChatID: ann}); ts[0].Content != "what time is it" || ts[0].Audio.FileID != "v1" {
		t.Errorf("stored: got %+v", ts[0])
	}

	m := voice(x, "v2", tg.MaxDownload+1)
	x.send(m)
	x.told(m.ID, "That voice message is too big")
	m = voice(x, "v3", 4)
	x.tg.files["v3"] = []byte("OggS")
	x.voice.err = &transcribe.StatusError{StatusCode: 413}
	x.send(m)
	x.told(m.ID, "I could not transcribe your recording: the speech-to-text server refused it. Send /retry to try again.")
	x.voice.err, x.voice.text = nil, "  "
	m = voice(x, "v3", 4)
	x.send(m)
	x.told(m.ID, "I heard no words in that recording.")

	deaf := newHarness(t, Config{})
	deaf.h.deps.Transcriber = nil
	first, second := voice(deaf, "v", 4), voice(deaf, "v", 4)
	deaf.finished(deaf.send(first))
	deaf.finished(deaf.send(second))
	deaf.told(first.ID, "Voice messages are not set up on this bot")
	deaf.silent(second.ID)
}

// Text files are read into the turn; other files, pictures sent as files and files over
// MAX_FILE_BYTES are told what the bot reads, before anything is downloaded.
func TestFiles(t *testing.T) {
	doc := func(x *harness, name, mime string, size int64) *models.Message {
		m := x.private(ann, "")
		m.Document = &models.Document{FileID: name, FileName: name, MimeType: mime, FileSize: size}
		m.Caption = "check this"
		return m
	}
	x := newHarness(t, Config{MaxFileBytes: 2048})
	x.tg.files["notes.md"] = []byte("# Notes\n")
	x.tg.files["data.txt"] = []byte("a\x00b")
	x.tg.files["grew.txt"] = bytes.Repeat([]byte("x"), 4096)
	x.finished(x.send(doc(x, "notes.md", "application/octet-stream", 8)))
	if got := x.asked(); len(got) != 1 || got[0] != fileText("notes.md", "# Notes\n", "check this") {
		t.Errorf("asked %q, want the file and the caption", got)
	}
	for _, tc := range []struct {
		name, mime string
		size       int64
		want       string
	}{
		{"paper.pdf", "application/pdf", 100, "I can't read paper.pdf: it is not a text file. " + canRead},
		{"cat.png", "image/png", 100, "I can't read cat.png as a file: send pictures as photos"},
		{"big.txt", "text/plain", 4096, "big.txt is too big: I read text files up to 2 KiB, and it is 4 KiB."},
		{"data.txt", "text/plain", 3, "I can't read that file: it is not text."},
		{"grew.txt", "text/plain", 10, "That file is too big: I read text files up to 2 KiB."},
	} {
		m := doc(x, tc.name, tc.mime, tc.size)
		x.finished(x.send(m))
		x.told(m.ID, tc.want)
	}
	if d := x.tg.downloaded(); !slices.Equal(d, []string{"notes.md", "data.txt", "grew.txt"}) {
		t.Errorf("downloaded %q, want only the text files under the bound", d)
	}
}

// What the bot cannot use is named in the notice.
func TestUnusableMessages(t *testing.T) {
	x := newHarness(t, Config{})
	sticker := x.private(ann, "")
	sticker.Sticker = &models.Sticker{Emoji: "🙂"}
	video := x.private(ann, "")
	video.Video = &models.Video{FileID: "v"}
	poll := x.private(ann, "")
	poll.Poll = &models.Poll{Question: "?"}
	for m, want := range map[*models.Message]string{sticker: "I can't use stickers.", video: "I can't use videos.", poll: "I can't use that kind of message."} {
		x.finished(x.send(m))
		x.told(m.ID, want)
	}
}

// An update whose handling panics is tried again, up to maxAttempts, then skipped with a notice
// and finished: it cannot keep the bot in a crash loop.
func TestPanicIsSkipped(t *testing.T) {
	x := newHarness(t, Config{})
	x.store.panicOn = "boom"
	entry := x.send(x.private(ann, "boom"))
	if n := x.journal.attempts[entry]; n != maxAttempts+1 {
		t.Errorf("attempts: got %d, want %d and the one that skips", n, maxAttempts)
	}
	if r := x.out.resumed; len(r) != 1 || !strings.HasSuffix(r[0].text, skippedNotice) {
		t.Errorf("got %+v, want the skip's notice", r)
	}
	x.finished(entry)
}

// The runner settles what a job says: a shutdown leaves the update in the inbox.
func TestShutdownLeavesUpdates(t *testing.T) {
	x := newHarness(t, Config{})
	x.h.Close()
	entry := x.send(x.private(ann, "hi"))
	if slices.Contains(x.journal.finished, entry) || len(x.asked()) != 0 {
		t.Errorf("after Close: finished %v, %d requests; want the update left", x.journal.finished, len(x.asked()))
	}
	// Recover finishes a reply the user may have seen from its journal, and stores its answer.
	y := newHarness(t, Config{})
	y.journal.replies[5] = inbox.Reply{Text: "Half an ans", Parts: []inbox.Part{{ID: 90}}}
	payload := `{"update_id":5,"message":{"message_id":3,"date":1,"chat":{"id":7,"type":"private"},"from":{"id":7,"first_name":"Ann"},"text":"hi"}}`
	y.h.Recover(context.Background(), []inbox.Update{{Seq: 5, Payload: []byte(payload), Reply: y.journal.replies[5]}, {Seq: 6, Payload: []byte("{")}})
	y.h.Wait()
	if len(y.asked()) != 0 || len(y.out.resumed) != 1 || y.out.resumed[0].text != "Half an ans|"+interrupted {
		t.Errorf("got %d requests and resumed %+v, want the journal's text finished", len(y.asked()), y.out.resumed)
	}
	if ts := y.store.conversation(history.Key{ChatID: ann}); len(ts) != 1 || ts[0].Content != "Half an ans" || ts[0].Status != history.StatusCut {
		t.Errorf("stored %+v, want the cut answer", ts)
	}
	y.finished(6) // undecodable: dropped
}

// A message that waits behind a reply gets the 👀 reaction only when its turn does not come
// within the side calls' delay: one sent as the reply before it ends costs no reaction call.
func TestReactionOnlyForALongWait(t *testing.T) {
	x := newHarness(t, Config{})
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %s within 20 s", what)
			}
		}
	}
	requests := func() int { x.model.mu.Lock(); defer x.model.mu.Unlock(); return len(x.model.requests) }
	// wait sends one message while another is being answered, and lets the first answer go on.
	wait := func(first, next string, release func()) {
		hold := make(chan struct{})
		x.model.mu.Lock()
		x.model.hold = hold
		x.model.mu.Unlock()
		before := requests()
		x.seq++
		x.h.Handle(context.Background(), x.seq, &models.Update{ID: x.seq, Message: x.private(ann, first)})
		waitFor("model request", func() bool { return requests() == before+1 })
		x.seq++
		x.h.Handle(context.Background(), x.seq, &models.Update{ID: x.seq, Message: x.private(ann, next)})
		release()
		close(hold)
		x.h.Wait()
	}

	x.h.side.after = time.Hour
	wait("one", "two, at once", func() {})
	if n := x.tg.reacted(); n != 0 {
		t.Errorf("a message whose turn came at once: %d reactions, want none", n)
	}

	x.h.side.after = time.Millisecond
	wait("three", "four, after a while", func() { waitFor("reaction", func() bool { return x.tg.reacted() == 1 }) })
	if got := x.asked(); len(got) != 4 {
		t.Errorf("requests %q, want every message answered", got)
	}
}

// USER_MESSAGES_PER_MINUTE: past it a user is told once, until a message of theirs is let
// through again; /stop is never bounded, nor are the owners.
func TestMessageRate(t *testing.T) {
	x := newHarness(t, Config{UserMessagesPerMinute: 1, AllowedChats: IDList{IDs: []int64{club}}})
	first, second, third := x.group(club, bob, "/help"), x.group(club, bob, "/help"), x.group(club, bob, "/help")
	for _, m := range []*models.Message{first, second, third} {
		x.finished(x.send(m))
	}
	x.told(first.ID, "Commands:")
	x.told(second.ID, "You are writing faster than this bot allows (1 messages a minute)")
	x.silent(third.ID)
	stop := x.group(club, bob, "/stop")
	x.send(stop)
	x.told(stop.ID, "Nothing is streaming right now.")
	for range 3 {
		m := x.group(club, ann, "/help")
		x.send(m)
		x.told(m.ID, "Commands:")
	}
}

// An album is one turn: one request with every picture, every update of it finished.
func TestAlbum(t *testing.T) {
	x := newHarness(t, Config{})
	var album []*models.Message
	for i, id := range []string{"a", "b", "c"} {
		x.tg.files[id] = []byte("jpeg " + id)
		m := x.private(ann, "")
		m.Photo, m.MediaGroupID = []models.PhotoSize{{FileID: id, Width: 10, Height: 10}}, "g"
		if i == 1 {
			m.Caption = "compare"
		}
		album = append(album, m)
	}
	last := x.send(album...)
	if got := x.asked(); len(got) != 1 || got[0] != "compare" || len(x.model.requests[0][1].Images) != 3 {
		t.Fatalf("got requests %q, want one with the caption and 3 pictures", got)
	}
	for entry := last - 2; entry <= last; entry++ {
		x.finished(entry)
	}
}

// A failure that comes again for the same history says that /retry cannot help; a picture the
// server refuses says the model may not see.
func TestRepeatedFailure(t *testing.T) {
	x := newHarness(t, Config{})
	x.model.err = &aura.StatusError{StatusCode: 500}
	x.send(x.private(ann, "hi"))
	x.send(x.private(ann, "/retry"))
	if s := x.out.streams; len(s) != 2 || !strings.Contains(s[0].notice, "Send /retry") || !strings.Contains(s[1].notice, "/retry will not help. Send /reset") {
		t.Errorf("got %+v, want /retry then /reset", s)
	}
	x.model.err = &aura.StatusError{StatusCode: 400, Reason: "no images"}
	x.tg.files["p"] = []byte("jpeg")
	m := x.private(ann, "")
	m.Photo = []models.PhotoSize{{FileID: "p", Width: 10, Height: 10}}
	x.send(m)
	if s := x.out.streams[2]; !strings.Contains(s.notice, "refused the request with the picture (no images)") {
		t.Errorf("got %q, want the picture's notice", s.notice)
	}
}
