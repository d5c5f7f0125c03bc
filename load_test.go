package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".") // as the Dockerfile builds it
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
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

	pid := cmd.Process.Pid
	cpuBefore := procCPU(t, pid)
	stopSampling := sampleRSS(pid)
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
	cpu := procCPU(t, pid) - cpuBefore
	anon, file := stopSampling()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Fatal("no resource usage for the bot's process")
	}
	replies := *loadChats * *loadReplies
	counts := map[string]int{}
	for _, c := range h.tg.Calls("") {
		counts[c.Method]++
	}
	summary := fmt.Sprintf("load: %d chats x %d replies in %v: peak RSS %.1f MB (anonymous %.1f MB, file-backed %.1f MB), CPU %v while answering (%.2f ms per reply; %v in all)\n  Bot API calls per reply:",
		*loadChats, *loadReplies, took.Round(time.Millisecond), float64(ru.Maxrss)/1024, float64(anon)/1024, float64(file)/1024,
		cpu.Round(time.Millisecond), float64(cpu.Microseconds())/1000/float64(replies),
		time.Duration(ru.Utime.Nano()+ru.Stime.Nano()).Round(time.Millisecond))
	for _, m := range slices.Sorted(maps.Keys(counts)) {
		if n := float64(counts[m]) / float64(replies); n >= 0.01 {
			summary += fmt.Sprintf(" %s %.2f", m, n)
		}
	}
	t.Log(summary)
	fmt.Println(summary)
	if strings.Contains(logs.String(), "panic") {
		t.Errorf("the bot panicked: %s", logs.String())
	}
}

// procCPU is the CPU time process pid has used so far (user and system), from /proc.
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	// The fields after the command's name (which may hold spaces) in parentheses; utime and
	// stime are the 14th and 15th fields of the line, in clock ticks (100 a second on Linux).
	f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// sampleRSS reads the anonymous and file-backed resident memory of process pid every 50 ms
// until stop, which returns the peak of each, in KiB.
func sampleRSS(pid int) (stop func() (anon, file int64)) {
	var mu sync.Mutex
	var maxAnon, maxFile int64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
				for l := range strings.SplitSeq(string(st), "\n") {
					name, v, ok := strings.Cut(l, ":")
					kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
					mu.Lock()
					switch {
					case ok && name == "RssAnon":
						maxAnon = max(maxAnon, kb)
					case ok && name == "RssFile":
						maxFile = max(maxFile, kb)
					}
					mu.Unlock()
				}
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() (int64, int64) {
		close(done)
		<-finished
		return maxAnon, maxFile
	}
}
