package browser

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkCapture runs full captures against the check server (a page
// whose cookie comes 500 ms after load) and reports what one costs: the
// browser's peak memory (the sum of its processes' RSS, so shared pages
// count more than once) and the bot's own RSS and heap after it, which
// must not grow from capture to capture (bot-rss-min-KB and
// bot-rss-max-KB: its range after the second capture and later ones).
//
//	go test -run '^$' -bench Capture -benchtime 10x ./aura/browser
func BenchmarkCapture(b *testing.B) {
	if _, err := Find(Auto); err != nil {
		b.Skipf("SKIP: %v", err)
	}
	mark := watchLeaks(b)
	srv := newCheckServer(b, 500*time.Millisecond)
	cfg := captureConfig{browser: Auto, url: srv.URL, host: "127.0.0.1", timeout: 30 * time.Second,
		settle: 2 * time.Second, poll: 200 * time.Millisecond, closeGrace: 5 * time.Second, log: slog.New(slog.DiscardHandler), sandbox: newSandboxCheck()}
	peak := 0
	// The bot's RSS after each capture but the first (which loads code
	// and grows the runtime once).
	rssMin, rssMax, n := 0, 0, 0
	b.ResetTimer()
	for b.Loop() {
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					sum := 0
					for _, pid := range marked(mark) {
						sum += rssKB(pid)
					}
					peak = max(peak, sum)
				}
			}
		}()
		if _, err := capture(b.Context(), cfg); err != nil {
			b.Fatal(err)
		}
		close(stop)
		<-done
		if left := marked(mark); len(left) > 0 {
			b.Fatalf("got browser processes %v left, want none", left)
		}
		if n++; n > 1 {
			b.StopTimer()
			runtime.GC()
			rss := rssKB(os.Getpid())
			if rssMin == 0 || rss < rssMin {
				rssMin = rss
			}
			rssMax = max(rssMax, rss)
			b.StartTimer()
		}
	}
	b.StopTimer()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(peak), "browser-peak-rss-KB")
	b.ReportMetric(float64(rssKB(os.Getpid())), "bot-rss-KB")
	b.ReportMetric(float64(rssMin), "bot-rss-min-KB")
	b.ReportMetric(float64(rssMax), "bot-rss-max-KB")
	b.ReportMetric(float64(ms.HeapAlloc/1024), "bot-heap-KB")
	b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
}

// rssKB returns the resident memory of a process in KiB, or 0.
func rssKB(pid int) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	return 0
}
