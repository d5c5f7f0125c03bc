package history

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// BenchmarkRequestSummary is the window of a conversation of 400 turns with a chatbot-ui
// budget, without a summary and with one of 6,000 characters (the most a summary may take of
// that budget) leading it: what the summary costs each request (reading it, counting the lead).
func BenchmarkRequestSummary(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "bench.sqlite"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r := rand.New(rand.NewPCG(5, 5))
	k := Key{ChatID: 1}
	var ids []int64
	for i := range 400 {
		role := RoleUser
		if i%2 == 1 {
			role = RoleAssistant
		}
		t, _, err := s.Append(ctx, k, Turn{Role: role, Content: benchContent(r, 300+r.IntN(600))})
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, t.ID)
	}
	prompt := benchContent(r, 500)
	if _, err := s.SetSummary(ctx, k, benchContent(r, 6000), ids[300]); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		summaries bool
	}{{"without", false}, {"with", true}} {
		b.Run(tc.name, func(b *testing.B) {
			budget := benchBudget
			budget.Summaries = tc.summaries
			b.ReportAllocs()
			turns := 0
			for b.Loop() {
				req, err := s.Request(ctx, k, budget, prompt)
				if err != nil {
					b.Fatal(err)
				}
				turns += len(req.Turns)
			}
			b.ReportMetric(float64(turns)/float64(b.N), "turns/op")
		})
	}
}
