package bot

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-telegram/bot/models"

	"aurabot/aura"
	"aurabot/bot/conversation"
	"aurabot/bot/render"
	"aurabot/bot/telegramtest"
	tgapi "aurabot/bot/tg"
	"aurabot/history"
)

// BenchmarkFlood streams replies in many private chats at once through the real bot, with its
// default pacing, to a fake Telegram that applies Telegram's flood limits. It fails unless every
// chat ends with exactly the final text, and reports:
//
//   - 429s: flood-limit answers the bot got (the target is 0);
//   - first-p50-ms, first-p95-ms: from the model's first chunk to the first text on screen;
//   - first8-p50-ms, first8-p95-ms: from the model's first chunk to the first 8 characters on
//     screen (the first chunk is a fragment of a word, as models often send);
//   - updates/chat/s: sends and edits per chat over the stream's duration;
//   - final-p50-ms, final-p95-ms: from the model's last chunk to the final text on screen;
//   - cpu-ms/reply: user+system CPU time of the whole process (bot, fake Telegram, fake model)
//     per reply.
//
// Run it with: go test -run '^$' -bench Flood -benchtime 1x ./bot/
func BenchmarkFlood(b *testing.B) {
	for _, n := range []int{20, 100} {
		b.Run(fmt.Sprintf("chats=%d", n), func(b *testing.B) { benchFlood(b, n) })
	}
}

const (
	floodChunks = 100
	floodEvery  = 50 * time.Millisecond // 100 chunks: a 5-second reply
)

// floodChat is what the fake model saw of one chat's reply.
type floodChat struct {
	first, last time.Time
	text        string
	want        string // the final rendered text, once the model has sent everything
}

func benchFlood(b *testing.B, chats int) {
	var (
		firsts, first8s, finals []time.Duration
		rates                   []float64
		tooMany                 int
		cpu                     time.Duration
	)
	for range b.N {
		b.StopTimer()
		r := runFlood(b, chats)
		firsts = append(firsts, r.firsts...)
		first8s = append(first8s, r.first8s...)
		finals = append(finals, r.finals...)
		rates = append(rates, r.rates...)
		tooMany += r.tooMany
		cpu += r.cpu
	}
	b.ReportMetric(float64(tooMany)/float64(b.N), "429s")
	b.ReportMetric(ms(percentile(firsts, 0.50)), "first-p50-ms")
	b.ReportMetric(ms(percentile(firsts, 0.95)), "first-p95-ms")
	b.ReportMetric(ms(percentile(first8s, 0.50)), "first8-p50-ms")
	b.ReportMetric(ms(percentile(first8s, 0.95)), "first8-p95-ms")
	b.ReportMetric(mean(rates), "updates/chat/s")
	b.ReportMetric(slices.Min(rates), "min-updates/chat/s")
	b.ReportMetric(ms(percentile(finals, 0.50)), "final-p50-ms")
	b.ReportMetric(ms(percentile(finals, 0.95)), "final-p95-ms")
	b.ReportMetric(ms(cpu)/float64(b.N*chats), "cpu-ms/reply")
}

type floodResult struct {
	firsts, first8s, finals []time.Duration
	rates                   []float64
	tooMany                 int
	cpu                     time.Duration
}

// runFlood runs one round: a fresh bot and fake Telegram, one question in each of chats private
// chats at once, and waits for every final text. The benchmark timer runs for the round only.
func runFlood(b *testing.B, chats int) floodResult {
	tg := telegramtest.New()
	defer tg.Close()
	tg.SetLimits(&telegramtest.TelegramLimits)
	store, err := history.Open(context.Background(), filepath.Join(b.TempDir(), "bot.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()

	var mu sync.Mutex
	seen := map[int64]*floodChat{}
	model := &fakeModel{fn: func(ctx context.Context, msgs []aura.Message, yield func(string, error) bool) {
		var chat int64
		fmt.Sscanf(msgs[len(msgs)-1].Content, "question %d", &chat)
		fc := &floodChat{}
		mu.Lock()
		seen[chat] = fc
		mu.Unlock()
		for i := range floodChunks {
			if i > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(floodEvery):
				}
			}
			c := floodChunk(chat, i)
			now := time.Now()
			mu.Lock()
			if i == 0 {
				fc.first = now
			}
			fc.last = now
			fc.text += c
			mu.Unlock()
			if !yield(c, nil) {
				return
			}
		}
		want := render.Markdown(fc.text).Text
		mu.Lock()
		fc.want = want
		mu.Unlock()
	}}
	bot, err := New(Config{Telegram: tgapi.Config{Token: telegramtest.Token, APIURL: tg.URL()}, Conversation: conversation.Config{AllowedUsers: conversation.IDList{All: true}, DefaultPrompt: "Be helpful.", MaxConcurrentReplies: chats, Budget: history.Budget{Chars: 10000}}, PollTimeout: 5 * time.Second}, store, model)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bot.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("Run: %v", err)
		}
	}()
	wctx, wcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer wcancel()
	if err := tg.Wait(wctx, func() bool { return len(tg.Calls("setMyCommands")) > 0 }); err != nil {
		b.Fatal(err)
	}

	ids := make([]int64, chats)
	for i := range ids {
		ids[i] = int64(1000 + i) // distinct users, each in a private chat with the bot
	}
	cpu0 := cpuTime(b)
	b.StartTimer()
	for _, id := range ids {
		sayIn(tg, id, fmt.Sprintf("question %d", id))
	}
	// Wait until every chat shows its final text. Polling, not tg.Wait: checking every chat on
	// each of thousands of calls would cost more CPU than the bot itself.
	want := map[int64]string{}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for len(want) < chats {
		select {
		case <-wctx.Done():
			for _, id := range ids {
				if _, ok := want[id]; !ok {
					b.Fatalf("final texts: %d of %d chats after 2 minutes; chat %d shows %+v", len(want), chats, id, tg.Messages(id))
				}
			}
		case <-tick.C:
		}
		for _, id := range ids {
			mu.Lock()
			fc := seen[id]
			text := ""
			if fc != nil {
				text = fc.want
			}
			mu.Unlock()
			if _, ok := want[id]; ok || text == "" {
				continue
			}
			if msgs := tg.Messages(id); len(msgs) == 1 && msgs[0].Text == text && msgs[0].Markup == "" {
				want[id] = text
			}
		}
	}
	b.StopTimer()
	cpu := cpuTime(b) - cpu0

	var r floodResult
	r.tooMany = tg.TooManyRequests()
	r.cpu = cpu
	calls := tg.Calls("")
	for _, id := range ids {
		fc := seen[id]
		var firstAt, first8At, finalAt time.Time
		updates := 0
		for _, c := range calls {
			if c.ChatID() != id || c.Status != 0 || c.Method != "sendMessage" && c.Method != "editMessageText" {
				continue
			}
			updates++
			if firstAt.IsZero() && c.Method == "sendMessage" {
				firstAt = c.At
			}
			if first8At.IsZero() && utf8.RuneCountInString(strings.TrimSuffix(c.Params["text"], " ▍")) >= 8 {
				first8At = c.At
			}
			if finalAt.IsZero() && c.Params["text"] == want[id] {
				finalAt = c.At
			}
		}
		if msgs := tg.Messages(id); len(msgs) != 1 || msgs[0].Text != want[id] {
			b.Fatalf("chat %d: final text not exact: got %d messages, the last %q, want one: %q", id, len(msgs), msgs[len(msgs)-1].Text, want[id])
		}
		r.firsts = append(r.firsts, firstAt.Sub(fc.first))
		r.first8s = append(r.first8s, first8At.Sub(fc.first))
		r.finals = append(r.finals, finalAt.Sub(fc.last))
		r.rates = append(r.rates, float64(updates)/fc.last.Sub(fc.first).Seconds())
	}
	return r
}

// floodChunk is chunk i of the reply in chat: a few words of Markdown, with paragraphs, lists,
// bold, italic and code, so that every edit is rendered as the real bot renders it.
func floodChunk(chat int64, i int) string {
	switch {
	case i == 0:
		return "Ans" // models often start with a fragment of a word
	case i == 1:
		return fmt.Sprintf("wer for chat %d. ", chat)
	case i%20 == 0:
		return "\n\n## Part " + fmt.Sprint(i/20) + "\n\n"
	case i%10 == 0:
		return "\n\n- a **list item** "
	case i%10 == 5:
		return "with `code` in it, "
	case i%3 == 0:
		return "and *some* words "
	default:
		return "plain words go on "
	}
}

// sayIn delivers a text message from user id in their private chat.
func sayIn(tg *telegramtest.Server, id int64, text string) {
	tg.Push(models.Update{Message: &models.Message{
		ID: tg.NewMessageID(id), Date: int(time.Now().Unix()), Text: text,
		Chat: models.Chat{ID: id, Type: models.ChatTypePrivate},
		From: &models.User{ID: id, FirstName: "User"},
	}})
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func mean(xs []float64) float64 {
	var sum float64
	for _, x := range xs {
		sum += x
	}
	return sum / float64(max(1, len(xs)))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
