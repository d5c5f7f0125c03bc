package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"aurabot/bot/telegramtest"
	"aurabot/history"
)

// spawn starts the real bot as a subprocess (this test binary, see TestMain) that reaches
// Telegram at apiURL. kill SIGKILLs it and waits for it to die; it may be called more than once.
func (h *harness) spawn(apiURL string, extra ...string) (kill func(), logs *syncBuffer) {
	h.t.Helper()
	cmd, logs := h.botCommand(apiURL, append([]string{"LISTEN_ADDR=127.0.0.1:0", "LOG_LEVEL=debug"}, extra...)...)
	before := len(h.tg.Calls("setMyCommands"))
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	var once sync.Once
	kill = func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	}
	h.t.Cleanup(kill)
	h.wait(func() bool { return len(h.tg.Calls("setMyCommands")) > before })
	return kill, logs
}

// botCommand is the real bot as a subprocess (this test binary, see TestMain) that reaches
// Telegram at apiURL, with the harness's settings and extra ones; its logs go to logs.
func (h *harness) botCommand(apiURL string, extra ...string) (cmd *exec.Cmd, logs *syncBuffer) {
	cmd = exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(),
		"AURABOT_TEST_MAIN=1",
		"TELEGRAM_TOKEN="+telegramtest.Token,
		"TELEGRAM_API_URL="+apiURL,
		"AURA_URL="+h.aura.srv.URL,
		"DATABASE_PATH="+h.db,
		"ALLOWED_USERS="+strconv.Itoa(userID),
	), extra...)
	cmd.Dir = h.t.TempDir()
	logs = &syncBuffer{}
	cmd.Stderr = logs
	return cmd, logs
}

// botReplies are the bot's messages that reply to message id, and whether any of the bot's
// messages still shows the cursor or a Stop button.
func (h *harness) botReplies(id int) (replies []telegramtest.Message, stuck bool) {
	for _, m := range h.tg.Messages(userID) {
		if strings.HasSuffix(m.Text, "▍") || strings.Contains(m.Markup, "⏹") {
			stuck = true
		}
		if m.ReplyTo == id {
			replies = append(replies, m)
		}
	}
	return replies, stuck
}

// settled waits until message id has its final reply and the bot has done with it (a copy that a
// lost send posted is deleted once the search for it comes by, shortly after), then checks
// there is exactly one and nothing is stuck; it returns that reply.
func (h *harness) settled(id int) telegramtest.Message {
	h.t.Helper()
	got := h.replyTo(id)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = h.tg.Wait(ctx, func() bool {
		replies, stuck := h.botReplies(id)
		return len(replies) == 1 && !stuck
	})
	replies, stuck := h.botReplies(id)
	if len(replies) != 1 {
		h.t.Errorf("replies to message %d: got %d, want exactly 1: %+v", id, len(replies), replies)
	} else {
		got = replies[0]
	}
	if stuck {
		h.t.Errorf("a bot message still shows the cursor or a Stop button: %+v", h.tg.Messages(userID))
	}
	return got
}

// The bot is SIGKILLed right after its reply's first sendMessage reached Telegram, before the
// answer came back: the restart finds that message, finishes it with the text it was about to
// show and an "interrupted" notice, and does not ask the model again (its text was seen).
func TestKillAfterFirstSendReachedTelegram(t *testing.T) {
	h := newHarness(t)
	release := make(chan struct{})
	defer close(release)
	h.aura.reply = func(w http.ResponseWriter, flush func(), req auraRequest) {
		_, _ = w.Write([]byte("Little lamb, who "))
		flush()
		select {
		case <-release:
		case <-req.ctx.Done():
		}
	}
	proxy := telegramtest.NewProxy(h.tg.URL())
	t.Cleanup(proxy.Close)
	killed := make(chan struct{})
	var kill func()
	var once sync.Once
	proxy.OnCall(func(c telegramtest.ProxyCall) {
		if c.Method == "sendMessage" && c.N == 1 && c.Answered {
			once.Do(func() { kill(); close(killed) })
		}
	})
	kill, _ = h.spawn(proxy.URL())
	id := h.send("a poem")
	<-killed
	if ms := h.tg.Messages(userID); len(ms) != 1 || !strings.HasSuffix(ms[0].Text, "▍") {
		t.Fatalf("before the restart: got %+v, want one message with the cursor", ms)
	}

	h.start()
	got := h.settled(id)
	if !strings.HasPrefix(got.Text, "Little lamb, who") || !strings.Contains(got.Text, "Interrupted") {
		t.Errorf("reply: got %q, want the text shown and an interrupted notice", got.Text)
	}
	if n := len(h.aura.requests()); n != 1 {
		t.Errorf("model requests: got %d, want 1 (the user had seen the answer's start)", n)
	}
	h.stop()
}

// The bot is SIGKILLed while a short reply's only sendMessage is in flight. Whether Telegram
// carried it out or not, the restart converges to one complete reply, and the model is asked
// once (the final text was recorded before it was sent).
func TestKillWhileTheOnlySendIsInFlight(t *testing.T) {
	for _, carried := range []bool{true, false} {
		t.Run("carried out "+strconv.FormatBool(carried), func(t *testing.T) {
			h := newHarness(t)
			h.aura.reply = streamText("Short answer.")
			proxy := telegramtest.NewProxy(h.tg.URL())
			t.Cleanup(proxy.Close)
			killed := make(chan struct{})
			var kill func()
			var once sync.Once
			if !carried {
				proxy.SetRule(func(c telegramtest.ProxyCall) telegramtest.Action {
					if c.Method == "sendMessage" && c.N == 1 {
						once.Do(func() { kill(); close(killed) })
						return telegramtest.Action{Reset: true}
					}
					return telegramtest.Action{}
				})
			} else {
				proxy.OnCall(func(c telegramtest.ProxyCall) {
					if c.Method == "sendMessage" && c.N == 1 && c.Answered {
						once.Do(func() { kill(); close(killed) })
					}
				})
			}
			kill, _ = h.spawn(proxy.URL())
			id := h.send("hi")
			<-killed
			if n := len(h.tg.Messages(userID)); carried != (n == 1) {
				t.Fatalf("before the restart Telegram has %d messages; the fault was not injected as meant", n)
			}

			h.start()
			// Whether the send that died was the streaming one (the user saw the text with its
			// cursor: it ends marked interrupted) or the final one (the final text was recorded
			// first: it ends complete) is up to timing; either way the user gets one reply, and
			// the model is not asked twice.
			got := h.settled(id)
			status := history.StatusDone
			if strings.Contains(got.Text, "Interrupted") {
				status = history.StatusCut
			} else if got.Text != "Short answer." {
				t.Errorf("reply: got %q, want the complete answer alone", got.Text)
			}
			if !strings.HasPrefix(got.Text, "Short answer.") {
				t.Errorf("reply: got %q, want the answer", got.Text)
			}
			if n := len(h.aura.requests()); n != 1 {
				t.Errorf("model requests: got %d, want 1", n)
			}
			h.waitStored(2)
			h.stop()
			checkStored(t, h, "Short answer.", status)
		})
	}
}

// The bot is SIGKILLed right after its final edit reached Telegram: the complete answer stays
// complete (never marked interrupted) and is stored as done.
func TestKillAfterTheFinalEditReachedTelegram(t *testing.T) {
	h := newHarness(t)
	h.aura.reply = func(w http.ResponseWriter, flush func(), req auraRequest) {
		_, _ = w.Write([]byte("Part one"))
		flush()
		deadline := time.Now().Add(10 * time.Second)
		for len(h.tg.Messages(userID)) == 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		_, _ = w.Write([]byte(" and part two."))
	}
	proxy := telegramtest.NewProxy(h.tg.URL())
	t.Cleanup(proxy.Close)
	killed := make(chan struct{})
	var kill func()
	var once sync.Once
	proxy.OnCall(func(c telegramtest.ProxyCall) {
		if c.Method == "editMessageText" && c.Answered && c.Params["text"] == "Part one and part two." {
			once.Do(func() { kill(); close(killed) })
		}
	})
	kill, _ = h.spawn(proxy.URL())
	id := h.send("two parts")
	<-killed

	h.start()
	if got := h.settled(id); got.Text != "Part one and part two." {
		t.Errorf("reply: got %q, want the complete answer, not marked interrupted", got.Text)
	}
	h.waitStored(2)
	h.stop()
	checkStored(t, h, "Part one and part two.", history.StatusDone)
	if n := len(h.aura.requests()); n != 1 {
		t.Errorf("model requests: got %d, want 1", n)
	}
}

// checkStored fails unless the conversation holds the user's message and one answer with text
// and status.
func checkStored(t *testing.T, h *harness, text string, status history.Status) {
	t.Helper()
	store, err := history.Open(t.Context(), h.db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	turns, err := store.Turns(t.Context(), history.Key{ChatID: userID})
	if err != nil {
		t.Fatal(err)
	}
	if len(turns) != 2 || turns[1].Content != text || turns[1].Status != status {
		t.Errorf("stored: got %+v, want the question and the answer %q, %s", turns, text, status)
	}
}

// A second instance started on the same database (a rolling deploy) waits, touching nothing,
// until the first exits; then it takes over, and every message is answered once.
func TestSecondInstanceWaitsForTheFirst(t *testing.T) {
	h := newHarness(t)
	h.aura.reply = func(w http.ResponseWriter, flush func(), req auraRequest) {
		_, _ = w.Write([]byte("Answer to " + req.Messages[len(req.Messages)-1].Content))
	}
	killFirst, _ := h.spawn(h.tg.URL())
	first := h.send("first")
	h.settled(first)

	// The second instance: started by hand, as spawn waits for it to be up.
	cmd, logs := h.botCommand(h.tg.URL(), "LISTEN_ADDR=127.0.0.1:0")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs.String(), "waiting for it to exit") {
		if time.Now().After(deadline) {
			t.Fatalf("the second instance did not say it waits: %s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "holder=\"pid ") {
		t.Errorf("the wait does not name the holder: %s", logs.String())
	}
	calls := len(h.tg.Calls("getMe"))
	second := h.send("second")
	h.settled(second) // answered by the first instance
	if n := len(h.tg.Calls("getMe")); n != calls {
		t.Errorf("the waiting instance called Telegram (getMe %d -> %d)", calls, n)
	}

	killFirst()
	h.wait(func() bool { return len(h.tg.Calls("setMyCommands")) >= 2 })
	third := h.send("third")
	if got := h.settled(third); got.Text != "Answer to third" {
		t.Errorf("after the takeover: got %q", got.Text)
	}
	for _, id := range []int{first, second} {
		h.settled(id)
	}
}

// A second SIGTERM during the shutdown grace ends it at once, still marking the reply it cuts:
// the operator who presses Ctrl-C twice does not wait SHUTDOWN_TIMEOUT.
func TestSecondSignalEndsTheShutdown(t *testing.T) {
	h := newHarness(t)
	h.aura.reply = func(w http.ResponseWriter, flush func(), req auraRequest) {
		_, _ = w.Write([]byte("Slow start"))
		flush()
		<-req.ctx.Done()
	}
	cmd, _ := h.botCommand(h.tg.URL(), "LISTEN_ADDR=", "SHUTDOWN_TIMEOUT=10m")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	h.wait(func() bool { return len(h.tg.Calls("setMyCommands")) > 0 })
	id := h.send("hi")
	h.wait(func() bool { return hasReply(h.tg, id, "Slow start") })

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The first signal starts a shutdown that would give the reply 10 minutes.
	select {
	case err := <-exited:
		t.Fatalf("the bot exited on the first signal (%v), before its shutdown grace", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(time.Minute): // far below the 10-minute grace: returning at all is the point
		t.Fatal("the bot did not exit after a second signal")
	}
	got := h.replyTo(id)
	if !strings.Contains(got.Text, "Interrupted") {
		t.Errorf("after the second signal: got %q, want the reply marked interrupted", got.Text)
	}
}

// A DATABASE_PATH that is not a regular file (a FIFO) is refused at start with one line,
// instead of hanging on it deaf to signals.
func TestDatabaseFIFOIsRefused(t *testing.T) {
	dir := t.TempDir()
	fifo := dir + "/bot.db"
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("cannot make a FIFO here: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		done <- run(t.Context(), []string{"TELEGRAM_TOKEN=" + telegramtest.Token, "TELEGRAM_API_URL=http://127.0.0.1:1",
			"DATABASE_PATH=" + fifo, "LISTEN_ADDR="}, dir+"/none.env", &syncBuffer{})
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") && !strings.Contains(err.Error(), "named pipe") {
			t.Fatalf("got %v, want a refusal naming the path as not a regular file", err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("got a multi-line error: %q", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the bot hangs on a FIFO at DATABASE_PATH")
	}
}

// The bot is SIGKILLed right after its reply's first send reached Telegram (its answer lost),
// and the user had written again by then: the newer message is in the inbox and raises what the
// chat knows. The restart takes the reply's floor from its journal, not from what it knows now,
// so the message that send posted is found (between that floor and the send made again) and
// deleted: one reply, nothing stuck.
func TestKillAfterSendWhileTheUserWritesAgain(t *testing.T) {
	h := newHarness(t)
	h.aura.reply = func(w http.ResponseWriter, flush func(), req auraRequest) {
		last := req.Messages[len(req.Messages)-1].Content
		_, _ = w.Write([]byte("Answer to " + last + ", "))
		flush()
		time.Sleep(100 * time.Millisecond)
		_, _ = w.Write([]byte("in full."))
	}
	proxy := telegramtest.NewProxy(h.tg.URL())
	t.Cleanup(proxy.Close)
	held := telegramtest.NewGate()
	t.Cleanup(held.Release)
	proxy.SetRule(func(c telegramtest.ProxyCall) telegramtest.Action {
		if c.Method == "sendMessage" && c.N == 1 {
			return telegramtest.Action{HoldAnswer: held.C()} // carried out; the answer never comes
		}
		return telegramtest.Action{}
	})
	kill, _ := h.spawn(proxy.URL())
	first := h.send("first")
	h.wait(func() bool { return len(h.tg.Messages(userID)) == 1 })
	second := h.send("second")
	h.wait(func() bool { return h.tg.PendingUpdates() == 0 }) // saved in the inbox, and confirmed
	kill()
	proxy.SetRule(nil)

	h.start()
	for _, id := range []int{first, second} {
		h.settled(id)
	}
	if n := len(h.tg.Messages(userID)); n != 2 {
		t.Errorf("bot messages: got %d, want 2: %+v", n, h.tg.Messages(userID))
	}
}

// A reply's first part went out but recording its id failed (the database refused that one
// write); its second part was recorded, and then the bot was killed. The restart looks for the
// first part above the first part's own floor (the floor of the second would hide it), finds it
// and deletes it, and the reply ends as two messages in order.
func TestKillAfterALostFirstPartRecord(t *testing.T) {
	h := newHarness(t)
	long := strings.Repeat("word ", 1000) // two messages
	h.aura.reply = func(w http.ResponseWriter, flush func(), req auraRequest) {
		_, _ = w.Write([]byte(long[:2000]))
		flush()
		for len(h.tg.Messages(userID)) < 2 {
			time.Sleep(5 * time.Millisecond)
			_, _ = w.Write([]byte("more "))
			flush()
		}
		<-req.ctx.Done()
	}
	// The database refuses to record the first part's id, once.
	h.exec(`CREATE TRIGGER lose_first_id BEFORE UPDATE OF message_id ON inbox_messages
		WHEN NEW.idx = 0 AND NEW.message_id <> 0 BEGIN SELECT RAISE(ABORT, 'injected: the disk refused'); END`)
	proxy := telegramtest.NewProxy(h.tg.URL())
	t.Cleanup(proxy.Close)
	killed := make(chan struct{})
	var kill func()
	var once sync.Once
	proxy.OnCall(func(c telegramtest.ProxyCall) {
		if c.Method == "sendMessage" && c.N == 2 && c.Answered {
			once.Do(func() { kill(); close(killed) })
		}
	})
	kill, _ = h.spawn(proxy.URL())
	id := h.send("a long one")
	<-killed
	h.exec(`DROP TRIGGER lose_first_id`)

	h.start()
	h.settled(id)
	ms := h.tg.Messages(userID)
	if len(ms) != 2 {
		t.Fatalf("bot messages: got %d, want the two parts: %+v", len(ms), ms)
	}
	if ms[0].ReplyTo != id || !strings.HasPrefix(ms[0].Text, "word word") || !strings.Contains(ms[1].Text, "Interrupted") {
		t.Errorf("the reply is not in order: %+v", ms)
	}
}

// exec runs a statement on the bot's database (created and migrated first), while no bot runs:
// a fault test installs a trigger that makes one write fail, as a failing disk would.
func (h *harness) exec(stmt string) {
	h.t.Helper()
	store, err := history.Open(context.Background(), h.db)
	if err != nil {
		h.t.Fatal(err)
	}
	store.Close()
	db, err := sqlx.Open("sqlite", h.db)
	if err != nil {
		h.t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(stmt); err != nil {
		h.t.Fatal(err)
	}
}
