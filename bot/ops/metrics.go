package ops

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Metrics are the bot's Prometheus metrics, in a set of their own (not the global one), so that
// tests can run several bots in one process. Every label's values are a small fixed set: never a
// chat or user id.
type Metrics struct {
	set *metrics.Set

	repliesStarted *metrics.Counter // replies that began streaming an answer from the model
	// Time from asking the model to the final message of a reply, and to the first text the
	// user sees.
	replyDuration, firstText *metrics.PrometheusHistogram
	streams                  *metrics.Gauge // replies streaming now
}

// NewMetrics returns the metrics; queueLength reports the messages waiting in conversation
// queues (not the ones running).
func NewMetrics(queueLength func() float64) *Metrics {
	s := metrics.NewSet()
	m := &Metrics{
		set:            s,
		repliesStarted: s.NewCounter("aurabot_replies_started_total"),
		replyDuration: s.NewPrometheusHistogramExt("aurabot_reply_duration_seconds",
			[]float64{0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600}),
		firstText: s.NewPrometheusHistogramExt("aurabot_reply_first_text_seconds",
			[]float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60}),
		streams: s.NewGauge("aurabot_streams_in_flight", nil),
	}
	s.NewGauge("aurabot_queue_length", queueLength)
	// Label values created up front, so that dashboards see zeros rather than missing series:
	// replies that ended without a failure, by outcome (done, stopped by the user, interrupted
	// by a shutdown); replies that failed, by reason (model: the model server failed, empty: it
	// sent nothing, blocked: the user blocked the bot); model server failures by kind. Besides
	// these: Bot API calls by method and result (ok, the HTTP status Telegram answered, 429
	// being flood control, or network_error), and webhook requests by the status they got.
	for name, values := range map[string][]string{
		"aurabot_replies_finished_total{outcome=%q}": {"done", "stopped", "interrupted"},
		"aurabot_replies_failed_total{reason=%q}":    {"model", "empty", "blocked"},
		"aurabot_aura_errors_total{kind=%q}": {"status", "connect", "first_byte_timeout", "idle_timeout", "broken_stream",
			"images_unsupported", "browser", "other"},
	} {
		for _, v := range values {
			s.GetOrCreateCounter(fmt.Sprintf(name, v))
		}
	}
	return m
}

// Handler serves GET /metrics: the bot's metrics, then the Go runtime's and the process's.
func (m *Metrics) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		m.set.WritePrometheus(w)
		metrics.WriteProcessMetrics(w)
	})
}

// ReplyStarted counts a reply that began streaming.
func (m *Metrics) ReplyStarted() {
	m.repliesStarted.Inc()
	m.streams.Inc()
}

// ReplyEnded records how a reply ended: result is its outcome label, failed whether that is a
// failure, auraKind the kind of model failure ("" for none); firstText is 0 when no text was
// ever shown.
func (m *Metrics) ReplyEnded(result string, failed bool, auraKind string, took, firstText time.Duration) {
	m.streams.Dec()
	m.replyDuration.Update(took.Seconds())
	if firstText > 0 {
		m.firstText.Update(firstText.Seconds())
	}
	if failed {
		m.set.GetOrCreateCounter(fmt.Sprintf("aurabot_replies_failed_total{reason=%q}", result)).Inc()
	} else {
		m.set.GetOrCreateCounter(fmt.Sprintf("aurabot_replies_finished_total{outcome=%q}", result)).Inc()
	}
	if auraKind != "" {
		m.set.GetOrCreateCounter(fmt.Sprintf("aurabot_aura_errors_total{kind=%q}", auraKind)).Inc()
	}
}

// WebhookRequest counts a webhook request by the status it got.
func (m *Metrics) WebhookRequest(code int) {
	m.set.GetOrCreateCounter(fmt.Sprintf("aurabot_webhook_requests_total{code=\"%d\"}", code)).Inc()
}

// observedTransport counts every Bot API call by method and result, and feeds it to the health
// check. It sits under both go-telegram/bot and the poller, so no call escapes it.
type observedTransport struct {
	next    http.RoundTripper
	metrics *Metrics
	health  *Health
}

func (t *observedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	method := apiMethod(r.URL.Path)
	t.health.started(r, method)
	resp, err := t.next.RoundTrip(r)
	if err != nil && errors.Is(r.Context().Err(), context.Canceled) {
		// Cancelled by us (a shutdown, a stopped reply): says nothing of Telegram.
		t.health.forget(r)
		return resp, err
	}
	result := "ok"
	switch {
	case err != nil:
		result = "network_error" // a timeout too: Telegram did not answer in time
	case resp.StatusCode >= 500:
		result = "5xx"
	case resp.StatusCode != http.StatusOK:
		result = strconv.Itoa(resp.StatusCode)
	}
	t.metrics.set.GetOrCreateCounter(`aurabot_telegram_calls_total{method="` + method + `",result="` + result + `"}`).Inc()
	t.health.answered(r, method, resp, err)
	return resp, err
}

// apiMethod is the Bot API method of a request path (/bot<token>/<method>), "file" for a file
// download (/file/bot<token>/<file_path>), or "other".
func apiMethod(path string) string {
	if strings.Contains(path, "/file/bot") {
		return "file"
	}
	m := path[strings.LastIndexByte(path, '/')+1:]
	if m == "" || len(m) > 40 || strings.ContainsFunc(m, func(c rune) bool { return (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') }) {
		return "other"
	}
	return m
}

// Instrument returns a copy of c whose calls are counted in m and followed by h.
func Instrument(c *http.Client, m *Metrics, h *Health) *http.Client {
	cc := *c
	cc.Transport = &observedTransport{next: cmp.Or[http.RoundTripper](cc.Transport, http.DefaultTransport), metrics: m, health: h}
	return &cc
}
