package history

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
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
)

// benchBudget is a chatbot-ui model's: 24576 characters, 8192 tokens with
// 1000 kept free.
var benchBudget = Budget{Chars: 24576, Tokens: 8192, ReserveTokens: 1000}

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
// 100-1200. With ~400 on average, 24576 characters hold about 60 turns,
// about 6,600 tokens of this mix of scripts: under benchBudget's 7192, so
// the window walks both counts and the character bound stops it.
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
		(conversation_id, role, content, author, message_id, status, char_count, token_count, created_at)
		VALUES (?, ?, ?, '', ?, 'done', ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	// Counting tokens is most of the work (about 8 MB/s on one core), so
	// each chunk of turns is counted on every core before it is inserted.
	type row struct {
		conv, msg   int
		role        Role
		content     string
		chars, toks int
		createdAt   int64
	}
	count := make([]int, benchConversations+1)
	const chunk = 20_000
	for start := 0; start < len(seq); start += chunk {
		rs := make([]row, 0, chunk)
		for i := start; i < min(start+chunk, len(seq)); i++ {
			c := int(seq[i])
			n := count[c]
			count[c]++
			role, size := RoleUser, benchUserLen(r)
			if n%2 == 1 {
				role, size = RoleAssistant, benchAssistantLen(r)
			}
			rs = append(rs, row{conv: c, msg: n + 1, role: role, content: benchContent(r, size), createdAt: base + int64(i)*1000})
		}
		var wg sync.WaitGroup
		workers := runtime.GOMAXPROCS(0)
		for w := range workers {
			wg.Go(func() {
				for i := w; i < len(rs); i += workers {
					rs[i].chars, rs[i].toks = utf8.RuneCountInString(rs[i].content), CountTokens(rs[i].content)
				}
			})
		}
		wg.Wait()
		for _, x := range rs {
			if _, err := stmt.ExecContext(ctx, x.conv, x.role, x.content, x.msg, x.chars, x.toks, x.createdAt); err != nil {
				return err
			}
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

// BenchmarkCountTokens counts the cl100k_base tokens of a typical user
// message: 300 characters of the mixed-script text.
func BenchmarkCountTokens(b *testing.B) {
	s := string(benchText[:300])
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		CountTokens(s)
	}
	b.ReportMetric(float64(CountTokens(s)), "tokens")
}

// BenchmarkCountStored counts the tokens of turns stored before migration
// 0004, as the store does in the background after the first Open following
// the upgrade. One op is one turn of typical size.
func BenchmarkCountStored(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "count.sqlite"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	<-s.counted // nothing to count yet: it ends at once
	tx, err := s.w.BeginTxx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO conversations (id, chat_id, created_at) VALUES (1, 1, 0)`); err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 5))
	for i := range b.N {
		role, size := RoleUser, benchUserLen(r)
		if i%2 == 1 {
			role, size = RoleAssistant, benchAssistantLen(r)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO turns (conversation_id, role, content, created_at) VALUES (1, ?, ?, 0)`,
			role, benchContent(r, size)); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	if err := countStored(ctx, s); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	var left int
	if err := s.r.GetContext(ctx, &left, `SELECT count(*) FROM turns WHERE token_count IS NULL`); err != nil || left != 0 {
		b.Fatalf("got %d turns uncounted (%v), want 0", left, err)
	}
}
