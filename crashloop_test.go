package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-telegram/bot/models"

	"aurabot/bot/telegramtest"
)

// The crash loop is a soak test, not a unit test: it runs only when asked for.
//
//	go test -run TestCrashLoop -crashloop -chats 5 -kills 20 -latency 100ms .
var (
	crashLoop       = flag.Bool("crashloop", false, "run TestCrashLoop")
	crashLoopStrict = flag.Bool("crashloop-strict", false, "make TestCrashLoop fail unless every message is answered exactly once and nothing is stuck (the model may be asked again about a message none of whose answer was shown)")
	crashChats      = flag.Int("chats", 5, "TestCrashLoop: private chats writing to the bot")
	crashKills      = flag.Int("kills", 20, "TestCrashLoop: SIGKILLs before the bot is left to settle")
	crashLatency    = flag.Duration("latency", 100*time.Millisecond, "TestCrashLoop: latency added to every Telegram call (half on the way there, half on the way back)")
	crashSettle     = flag.Duration("crashloop-settle", 2*time.Minute, "TestCrashLoop: how long the bot may take to answer everything after the last kill")
	crashSeed       = flag.Uint64("crashloop-seed", 0, "TestCrashLoop: random seed (0 picks one and logs it)")
)

// crashCounts is what TestCrashLoop reports.
type crashCounts struct {
	Sent, AnsweredOnce, AnsweredTwice, Unanswered, Interrupted, Stuck int
	ModelRequests, ExtraModelRequests                                 int
	// AskedAfterShown counts model requests about a message made after a reply to it had been
	// posted: the model must be asked again only when none of its answer was shown.
	AskedAfterShown int
}

func (c crashCounts) String() string {
	return fmt.Sprintf("messages sent %d, answered once %d (of which cut by a kill and marked interrupted %d), answered twice or more %d, unanswered %d, stuck bot messages %d, model requests %d, model requests beyond one per message %d (after a reply had been shown: %d)",
		c.Sent, c.AnsweredOnce, c.Interrupted, c.AnsweredTwice, c.Unanswered, c.Stuck, c.ModelRequests, c.ExtraModelRequests, c.AskedAfterShown)
}

// crashMessage is one message a user sent.
type crashMessage struct {
	chat int64
	id   int
	text string
}

// crashAnswer is the model's whole answer to a message; it streams in chunks.
func crashAnswer(text string) []string {
	chunks := []string{"Answer to " + text + ":"}
	for _, w := range []string{"one", "two", "three", "four", "five", "six", "seven", "eight."} {
		chunks = append(chunks, " "+w)
	}
	return chunks
}

// TestCrashLoop runs the real bot in a subprocess behind a Telegram proxy that adds latency,
// while users in several private chats keep writing and a model streams answers of a few
// seconds; it SIGKILLs the bot at random moments and restarts it, then lets it settle and counts
// what the users got. Bad counts fail the test only with -crashloop-strict.
func TestCrashLoop(t *testing.T) {
	if !*crashLoop {
		t.Skip("a soak test: run it with -crashloop (TestCrashLoopShort runs a short one always)")
	}
	runCrashLoop(t, crashConfig{chats: *crashChats, kills: *crashKills, latency: *crashLatency, settle: *crashSettle, seed: *crashSeed, strict: *crashLoopStrict})
}

// TestCrashLoopShort is a short crash loop that every test run makes, strict: 3 chats, 6 kills.
func TestCrashLoopShort(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	runCrashLoop(t, crashConfig{chats: 3, kills: 6, latency: 100 * time.Millisecond, settle: 2 * time.Minute, seed: *crashSeed, strict: true})
}

// crashConfig is one crash loop's settings (see the flags).
type crashConfig struct {
	chats, kills    int
	latency, settle time.Duration
	seed            uint64
	strict          bool
}

func runCrashLoop(t *testing.T, cfg crashConfig) {
	seed := cfg.seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (-crashloop-seed to repeat)", seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var rngMu sync.Mutex
	between := func(lo, hi time.Duration) time.Duration {
		rngMu.Lock()
		defer rngMu.Unlock()
		return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
	}

	h := newHarness(t)
	const chunkEvery = 400 * time.Millisecond // 9 chunks: an answer takes about 3.6 s
	h.aura.reply = func(w http.ResponseWriter, flush func(), req auraRequest) {
		last := req.Messages[len(req.Messages)-1].Content
		for i, c := range crashAnswer(last) {
			if i > 0 {
				select {
				case <-req.ctx.Done():
					return
				case <-time.After(chunkEvery):
				}
			}
			_, _ = w.Write([]byte(c))
			flush()
		}
	}
	proxy := telegramtest.NewProxy(h.tg.URL())
	t.Cleanup(proxy.Close)
	half := cfg.latency / 2
	proxy.SetRule(func(telegramtest.ProxyCall) telegramtest.Action {
		return telegramtest.Action{DelayForward: half, DelayAnswer: cfg.latency - half}
	})

	users := make([]string, cfg.chats)
	for i := range users {
		users[i] = strconv.Itoa(userID + 1 + i)
	}
	environ := append(os.Environ(),
		"AURABOT_TEST_MAIN=1",
		"TELEGRAM_TOKEN="+telegramtest.Token,
		"TELEGRAM_API_URL="+proxy.URL(),
		"AURA_URL="+h.aura.srv.URL,
		"DATABASE_PATH="+h.db,
		"ALLOWED_USERS="+strings.Join(users, ","),
		"LISTEN_ADDR=127.0.0.1:0",
	)
	dir := t.TempDir()
	var logs syncBuffer
	var proc *exec.Cmd
	start := func() {
		t.Helper()
		before := len(h.tg.Calls("setMyCommands"))
		proc = exec.Command(os.Args[0], "-test.run=^$")
		proc.Env, proc.Dir, proc.Stderr = environ, dir, &logs
		if err := proc.Start(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := h.tg.Wait(ctx, func() bool { return len(h.tg.Calls("setMyCommands")) > before }); err != nil {
			t.Fatalf("the bot did not start: %v", err)
		}
	}
	t.Cleanup(func() {
		if proc != nil && proc.ProcessState == nil {
			_ = proc.Process.Kill()
			_ = proc.Wait()
		}
	})

	// The users write while the bot is killed and restarted.
	var (
		sentMu sync.Mutex
		sent   []crashMessage
	)
	stopUsers := make(chan struct{})
	var wg sync.WaitGroup
	for i := range cfg.chats {
		chat := int64(userID + 1 + i)
		wg.Go(func() {
			for n := 1; ; n++ {
				text := fmt.Sprintf("chat %d message %d", chat, n)
				id := h.tg.NewMessageID(chat)
				sentMu.Lock()
				sent = append(sent, crashMessage{chat: chat, id: id, text: text})
				sentMu.Unlock()
				h.tg.Push(models.Update{Message: &models.Message{
					ID: id, Date: int(time.Now().Unix()), Text: text,
					Chat: models.Chat{ID: chat, Type: models.ChatTypePrivate},
					From: &models.User{ID: chat, FirstName: "User"},
				}})
				select {
				case <-stopUsers:
					return
				case <-time.After(between(2*time.Second, 8*time.Second)):
				}
			}
		})
	}

	for kill := 1; kill <= cfg.kills; kill++ {
		start()
		<-time.After(between(200*time.Millisecond, 5*time.Second)) // a random moment to die
		if err := proc.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = proc.Wait()
	}
	close(stopUsers)
	wg.Wait()

	// Left alone, the bot should answer everything.
	start()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.settle)
	defer cancel()
	settled := h.tg.Wait(ctx, func() bool {
		c := countCrash(h, sent)
		// A copy that a lost send posted is deleted by the search for it, shortly after.
		return c.Unanswered == 0 && c.Stuck == 0 && c.AnsweredTwice == 0
	}) == nil
	_ = proc.Process.Signal(syscall.SIGTERM)
	_ = proc.Wait()

	c := countCrash(h, sent)
	summary := fmt.Sprintf("crash loop: %d chats, %d kills, latency %v, seed %d, settled %v: %s", cfg.chats, cfg.kills, cfg.latency, seed, settled, c)
	t.Log(summary)
	fmt.Println(summary)
	if strings.Contains(logs.String(), telegramtest.Token) {
		t.Error("the bot's logs contain the token")
	}
	if cfg.strict && (c.AnsweredOnce != c.Sent || c.Stuck != 0 || c.AskedAfterShown != 0) {
		t.Errorf("-crashloop-strict: got %s; want every message answered exactly once, nothing stuck, and the model never asked again once a reply was shown", c)
	}
}

// countCrash counts, from the fake Telegram and the fake model, what the users got.
func countCrash(h *harness, sent []crashMessage) crashCounts {
	c := crashCounts{Sent: len(sent)}
	byChat := map[int64][]telegramtest.Message{}
	for _, m := range sent {
		if _, ok := byChat[m.chat]; !ok {
			byChat[m.chat] = h.tg.Messages(m.chat)
		}
	}
	for _, ms := range byChat {
		for _, m := range ms {
			if strings.HasSuffix(m.Text, "▍") || strings.Contains(m.Markup, "⏹") {
				c.Stuck++
			}
		}
	}
	asked := map[string]int{}
	distinct := 0 // sent messages the model was asked about
	for _, r := range h.aura.requests() {
		c.ModelRequests++
		if len(r.Messages) > 0 {
			asked[r.Messages[len(r.Messages)-1].Content]++
		}
	}
	for _, m := range sent {
		full := strings.Join(crashAnswer(m.text), "")
		complete, partial := 0, 0
		for _, b := range byChat[m.chat] {
			if b.ReplyTo != m.id || strings.HasSuffix(b.Text, "▍") || strings.Contains(b.Markup, "⏹") {
				continue
			}
			if strings.TrimSpace(b.Text) == full {
				complete++
			} else {
				partial++
			}
		}
		// A reply cut by a kill ends with the text the user saw and an "interrupted" notice:
		// that is one reply (the model is not asked again once its text was seen).
		switch {
		case complete+partial > 1:
			c.AnsweredTwice++
		case complete == 1:
			c.AnsweredOnce++
		case partial == 1:
			c.AnsweredOnce++
			c.Interrupted++
		default:
			c.Unanswered++
		}
		if asked[m.text] > 0 {
			distinct++
		}
	}
	c.ExtraModelRequests = c.ModelRequests - distinct

	// A request about a message after the first: was a reply to it already on Telegram?
	firstShown := map[crashMessage]time.Time{}
	for _, call := range h.tg.Calls("sendMessage") {
		if call.Status != 0 {
			continue
		}
		for _, m := range sent {
			if call.ChatID() == m.chat && strings.Contains(call.Params["reply_parameters"], fmt.Sprintf(`"message_id":%d,`, m.id)) {
				if at, ok := firstShown[m]; !ok || call.At.Before(at) {
					firstShown[m] = call.At
				}
			}
		}
	}
	seenReq := map[string]int{}
	for _, r := range h.aura.requests() {
		if len(r.Messages) == 0 {
			continue
		}
		text := r.Messages[len(r.Messages)-1].Content
		seenReq[text]++
		if seenReq[text] == 1 {
			continue
		}
		for _, m := range sent {
			if m.text == text {
				if at, ok := firstShown[m]; ok && at.Before(r.at) {
					c.AskedAfterShown++
				}
			}
		}
	}
	return c
}

// The crash loop's bookkeeping counts replies the way its report says, on a hand-made state.
func TestCrashLoopCounts(t *testing.T) {
	h := newHarness(t)
	const chat = userID
	msg := func(text string) crashMessage {
		return crashMessage{chat: chat, id: h.tg.NewMessageID(chat), text: text}
	}
	once, twice, none, cut, later := msg("once"), msg("twice"), msg("none"), msg("cut"), msg("later")
	sent := []crashMessage{once, twice, none, cut, later}
	say := func(replyTo int, text, markup string) {
		t.Helper()
		p := map[string]string{"chat_id": strconv.Itoa(chat), "text": text, "reply_parameters": fmt.Sprintf(`{"message_id":%d}`, replyTo)}
		if markup != "" {
			p["reply_markup"] = markup
		}
		form := make(map[string][]string)
		for k, v := range p {
			form[k] = []string{v}
		}
		resp, err := http.PostForm(h.tg.URL()+"/bot"+telegramtest.Token+"/sendMessage", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("sendMessage %q: got %d", text, resp.StatusCode)
		}
	}
	full := func(m crashMessage) string { return strings.Join(crashAnswer(m.text), "") }
	say(once.id, full(once), "")
	say(twice.id, full(twice), "")
	say(twice.id, full(twice), "")
	say(cut.id, "Answer to cut: one\n\nInterrupted, /retry", "")
	say(later.id, "Answer to later: one ▍", "")
	say(later.id, "Answer to later: one two", `{"inline_keyboard":[[{"text":"⏹ Stop","callback_data":"stop"}]]}`)

	got := countCrash(h, sent)
	want := crashCounts{Sent: 5, AnsweredOnce: 2, AnsweredTwice: 1, Unanswered: 2, Interrupted: 1, Stuck: 2}
	if got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}
