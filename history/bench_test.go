package history

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
)

// The benchmark database: 1,000,000 turns across 10,000 conversations,
// built once per test binary run, on first use, in a folder TestMain
// removes. Unit tests never build it.
const (
	benchConversations = 10_000
	benchTurnsPerConv  = 100
	benchBudget        = 24576
)

var (
	benchDir   string
	benchOnce  sync.Once
	benchStore *Store
	benchErr   error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "history-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	benchDir = dir
	code := m.Run()
	if benchStore != nil {
		benchStore.Close()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// benchText is the text turns are cut from: words of several scripts, so
// that characters and bytes differ as they do in real chats.
var benchText = func() []rune {
	words := strings.Fields("the a model answer question please why how context window message topic group " +
		"привет спасибо вопрос ответ größe straße 🙂 👍 código añadir 你好 bot retry reset prompt")
	r := rand.New(rand.NewPCG(1, 1))
	var b strings.Builder
	for b.Len() < 64<<10 {
		b.WriteString(words[r.IntN(len(words))])
		b.WriteByte(' ')
	}
	return []rune(b.String())
}()

// benchContent returns n characters of text starting at a random place.
func benchContent(r *rand.Rand, n int) string {
	start := r.IntN(len(benchText) - n)
	return string(benchText[start : start+n])
}

// Typical sizes, in characters: a user writes 10-300, the model answers
// 100-1200. With ~400 on average, a 24576 budget holds about 60 turns.
func benchUserLen(r *rand.Rand) int      { return 10 + r.IntN(291) }
func benchAssistantLen(r *rand.Rand) int { return 100 + r.IntN(1101) }

func benchOpen(b *testing.B) *Store {
	b.Helper()
	benchOnce.Do(func() {
		start := time.Now()
		path := filepath.Join(benchDir, "bench.sqlite")
		benchErr = buildBenchDB(path)
		if benchErr != nil {
			return
		}
		// Flush the freshly written file now, or the kernel writes its
		// hundreds of megabytes back while the first benchmark runs, and
		// that benchmark's fsyncs wait behind it.
		benchErr = syncFile(path)
		if benchErr != nil {
			return
		}
		benchStore, benchErr = Open(context.Background(), path)
		if fi, err := os.Stat(path); err == nil {
			b.Logf("built %d turns in %d conversations (%d MB) in %v",
				benchConversations*benchTurnsPerConv, benchConversations, fi.Size()>>20, time.Since(start).Round(time.Second))
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchStore
}

// buildBenchDB creates the schema through Open, then fills it in one
// transaction over a connection without a journal: the fixture is throwaway,
// and this makes it a matter of seconds rather than minutes. Turns of the
// conversations are interleaved at random, as in a busy bot, so a
// conversation's rows are scattered over the file.
func buildBenchDB(path string) error {
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		return err
	}
	if err := s.Close(); err != nil {
		return err
	}
	db, err := sqlx.Open("sqlite", dsn(path, map[string][]string{"_pragma": {
		"journal_mode(OFF)", "synchronous(OFF)", "cache_size(-262144)",
	}}))
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	for c := 1; c <= benchConversations; c++ {
		if _, err := tx.ExecContext(ctx, `INSERT INTO conversations (id, chat_id, thread_id, created_at) VALUES (?, ?, 0, ?)`,
			c, c, base); err != nil {
			return err
		}
	}
	seq := make([]int32, 0, benchConversations*benchTurnsPerConv)
	for c := 1; c <= benchConversations; c++ {
		for range benchTurnsPerConv {
			seq = append(seq, int32(c))
		}
	}
	r := rand.New(rand.NewPCG(2, 2))
	r.Shuffle(len(seq), func(i, j int) { seq[i], seq[j] = seq[j], seq[i] })
	stmt, err := tx.PreparexContext(ctx, `INSERT INTO turns
		(conversation_id, role, content, author, message_id, status, char_count, created_at)
		VALUES (?, ?, ?, '', ?, 'done', ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	count := make([]int, benchConversations+1)
	for i, c := range seq {
		n := count[c]
		count[c]++
		role, size := RoleUser, benchUserLen(r)
		if n%2 == 1 {
			role, size = RoleAssistant, benchAssistantLen(r)
		}
		content := benchContent(r, size)
		if _, err := stmt.ExecContext(ctx, c, role, content, n+1, utf8.RuneCountInString(content), base+int64(i)*1000); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// BenchmarkAppend stores one user turn in a random conversation of the
// big database.
func BenchmarkAppend(b *testing.B) {
	s := benchOpen(b)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 3))
	msg := int64(1_000_000_000) // above every fixture message id
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		msg++
		k := Key{ChatID: 1 + r.Int64N(benchConversations)}
		t := Turn{Role: RoleUser, Content: benchContent(r, benchUserLen(r)), Author: "Alice", MessageID: msg}
		if _, _, err := s.Append(ctx, k, t); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWindow loads the context window of a random conversation of the
// big database.
func BenchmarkWindow(b *testing.B) {
	s := benchOpen(b)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(4, 4))
	prompt := benchContent(r, 500)
	b.ReportAllocs()
	b.ResetTimer()
	turns := 0
	for b.Loop() {
		k := Key{ChatID: 1 + r.Int64N(benchConversations)}
		w, err := s.Window(ctx, k, benchBudget, prompt)
		if err != nil {
			b.Fatal(err)
		}
		turns += len(w)
	}
	b.ReportMetric(float64(turns)/float64(b.N), "turns/op")
}
