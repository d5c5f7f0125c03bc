package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-telegram/bot/models"

	"aurabot/bot/telegramtest"
)

// The load run measures what the bot costs: the real binary, built as a user builds it, answers
// many private chats at once, each streaming answers of a second, and its peak memory (RSS) and
// CPU time are read from the kernel when it exits.
//
//	go test -run 'TestLoad$' -load -v .
var (
	loadRun     = flag.Bool("load", false, "run TestLoad")
	loadChats   = flag.Int("load-chats", 50, "TestLoad: private chats writing at once")
	loadReplies = flag.Int("load-replies", 5, "TestLoad: messages each chat sends, each after the last one's reply is final")
)

// loadAnswer is the model's answer in the load run: 60 chunks of a word, 20 ms apart (1.2 s).
const loadChunks, loadEvery = 60, 20 * time.Millisecond

func TestLoad(t *testing.T) {
	if !*loadRun {
		t.Skip("a measurement: run it with -load")
	}
	h := newHarness(t)
	h.aura.reply = func(w http.ResponseWriter, flush func(), req auraRequest) {
		for i := range loadChunks {
			select {
			case <-req.ctx.Done():
				return
			case <-time.After(loadEvery):
			}
			fmt.Fprintf(w, "word%d ", i)
			flush()
		}
	}
	bin := filepath.Join(t.TempDir(), "aurabot")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	users := make([]string, *loadChats)
	for i := range users {
		users[i] = strconv.Itoa(userID + 1 + i)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"TELEGRAM_TOKEN="+telegramtest.Token,
		"TELEGRAM_API_URL="+h.tg.URL(),
		"AURA_URL="+h.aura.srv.URL,
		"DATABASE_PATH="+h.db,
		"ALLOWED_USERS="+strings.Join(users, ","),
		"LISTEN_ADDR=",
		"LOG_LEVEL=warn",
	)
	cmd.Dir = t.TempDir()
	var logs syncBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	h.wait(func() bool { return len(h.tg.Calls("setMyCommands")) > 0 })

	start := time.Now()
	var wg sync.WaitGroup
	for i := range *loadChats {
		chat := int64(userID + 1 + i)
		wg.Go(func() {
			for n := range *loadReplies {
				id := h.tg.NewMessageID(chat)
				h.tg.Push(models.Update{Message: &models.Message{
					ID: id, Date: int(time.Now().Unix()), Text: fmt.Sprintf("question %d", n),
					Chat: models.Chat{ID: chat, Type: models.ChatTypePrivate},
					From: &models.User{ID: chat, FirstName: "User"},
				}})
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				err := h.tg.Wait(ctx, func() bool {
					for _, m := range h.tg.Messages(chat) {
						if m.ReplyTo == id && strings.HasSuffix(m.Text, fmt.Sprintf("word%d", loadChunks-1)) && m.Markup == "" {
							return true
						}
					}
					return false
				})
				cancel()
				if err != nil {
					t.Errorf("chat %d message %d: no final reply: %v", chat, n, err)
					return
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)); err == nil {
		for _, l := range strings.Split(string(st), "\n") {
			if strings.HasPrefix(l, "Vm") || strings.HasPrefix(l, "Rss") {
				t.Log(l)
			}
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Fatal("no resource usage for the bot's process")
	}
	replies := *loadChats * *loadReplies
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	summary := fmt.Sprintf("load: %d chats x %d replies in %v: peak RSS %.1f MB, CPU %v (%.2f ms per reply)",
		*loadChats, *loadReplies, took.Round(time.Millisecond), float64(ru.Maxrss)/1024, cpu.Round(time.Millisecond),
		float64(cpu.Microseconds())/1000/float64(replies))
	t.Log(summary)
	fmt.Println(summary)
	if strings.Contains(logs.String(), "panic") {
		t.Errorf("the bot panicked: %s", logs.String())
	}
}
