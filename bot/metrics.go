package bot

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"aurabot/aura"
	"aurabot/history"
)

// metrics are the bot's Prometheus metrics, in a registry of its own (never the global default
// one), so that tests can run several bots in one process. No label ever holds a chat or user id:
// the values of every label are a small fixed set.
type metrics struct {
	reg *prometheus.Registry

	repliesStarted  prometheus.Counter
	repliesFinished *prometheus.CounterVec // outcome: done, stopped, interrupted
	repliesFailed   *prometheus.CounterVec // reason: model, empty, blocked
	replyDuration   prometheus.Histogram
	firstText       prometheus.Histogram
	streams         prometheus.Gauge
	telegramCalls   *prometheus.CounterVec // method, result
	auraErrors      *prometheus.CounterVec // kind
	webhookRequests *prometheus.CounterVec // code
}

// Label values, created up front so that dashboards see zeros rather than missing series.
var (
	finishOutcomes = []string{"done", "stopped", "interrupted"}
	failReasons    = []string{"model", "empty", "blocked"}
	auraKinds      = []string{"status", "connect", "first_byte_timeout", "idle_timeout", "broken_stream", "other"}
)

func newMetrics(queueLength func() float64) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		repliesStarted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aurabot_replies_started_total",
			Help: "Replies that began streaming an answer from the model.",
		}),
		repliesFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aurabot_replies_finished_total",
			Help: "Replies that ended without a failure, by outcome: done, stopped (by the user), interrupted (by a shutdown).",
		}, []string{"outcome"}),
		repliesFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aurabot_replies_failed_total",
			Help: "Replies that failed, by reason: model (the model server failed), empty (it sent nothing), blocked (the user blocked the bot).",
		}, []string{"reason"}),
		replyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "aurabot_reply_duration_seconds",
			Help:    "Time from asking the model to the final message of a reply.",
			Buckets: []float64{0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600},
		}),
		firstText: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "aurabot_reply_first_text_seconds",
			Help:    "Time from asking the model to the first text the user sees.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60},
		}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aurabot_streams_in_flight",
			Help: "Replies streaming now.",
		}),
		telegramCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aurabot_telegram_calls_total",
			Help: "Bot API calls by method and result: ok, the HTTP status Telegram answered (429 is flood control), or network_error.",
		}, []string{"method", "result"}),
		auraErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aurabot_aura_errors_total",
			Help: "Model server failures by kind: status, connect, first_byte_timeout, idle_timeout, broken_stream, other.",
		}, []string{"kind"}),
		webhookRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aurabot_webhook_requests_total",
			Help: "Webhook requests by the HTTP status they were answered with (401: wrong secret).",
		}, []string{"code"}),
	}
	queue := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "aurabot_queue_length",
		Help: "Messages and commands waiting in conversation queues, the running ones included.",
	}, queueLength)
	m.reg.MustRegister(m.repliesStarted, m.repliesFinished, m.repliesFailed, m.replyDuration, m.firstText,
		m.streams, m.telegramCalls, m.auraErrors, m.webhookRequests, queue,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, o := range finishOutcomes {
		m.repliesFinished.WithLabelValues(o)
	}
	for _, r := range failReasons {
		m.repliesFailed.WithLabelValues(r)
	}
	for _, k := range auraKinds {
		m.auraErrors.WithLabelValues(k)
	}
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// replyMeter follows one streamed reply, for its metrics and its log line.
type replyMeter struct {
	b     *Bot
	k     history.Key
	start time.Time
	edits int // live updates (drafts or edits) shown before the final message
}

func (b *Bot) startReply(k history.Key) *replyMeter {
	b.metrics.repliesStarted.Inc()
	b.metrics.streams.Inc()
	return &replyMeter{b: b, k: k, start: time.Now()}
}

// shown notes a live update of the reply that Telegram accepted.
func (m *replyMeter) shown() {
	m.edits++
	if m.edits == 1 {
		m.b.metrics.firstText.Observe(time.Since(m.start).Seconds())
	}
}

// end records how the reply ended and logs its one line. It never logs the text.
func (m *replyMeter) end(out outcome) {
	b := m.b
	took := time.Since(m.start)
	b.metrics.streams.Dec()
	b.metrics.replyDuration.Observe(took.Seconds())
	if out.text != "" && m.edits == 0 {
		// Nothing was shown while streaming: the final message is the first text.
		b.metrics.firstText.Observe(took.Seconds())
	}
	result, failed := replyResult(out)
	if failed {
		b.metrics.repliesFailed.WithLabelValues(result).Inc()
	} else {
		b.metrics.repliesFinished.WithLabelValues(result).Inc()
	}
	if result == "model" {
		b.metrics.auraErrors.WithLabelValues(auraKind(out.err)).Inc()
	}
	attrs := []any{
		"chat_id", m.k.ChatID, "thread_id", m.k.ThreadID,
		"duration", took.Round(time.Millisecond), "chars", utf8.RuneCountInString(out.text), "edits", m.edits,
		"outcome", result,
	}
	if out.err != nil {
		attrs = append(attrs, "err", b.scrub(out.err))
	}
	b.log.Info("reply", attrs...)
}

// replyResult names how a reply ended, and whether that is a failure.
func replyResult(out outcome) (string, bool) {
	switch {
	case errors.Is(out.err, errBlocked):
		return "blocked", true
	case errors.Is(out.err, errStopped):
		return "stopped", false
	case errors.Is(out.err, errShutdown):
		return "interrupted", false
	case out.err != nil:
		return "model", true
	case out.text == "":
		return "empty", true
	}
	return "done", false
}

// auraKind is the label of a model server failure.
func auraKind(err error) string {
	var se *aura.StatusError
	if errors.As(err, &se) {
		return "status"
	}
	return modelFailure(err).kind
}

// observedTransport counts every Bot API call by method and result, and feeds the outcome to
// the health check. It sits under both go-telegram/bot and the poller, so no call escapes it.
type observedTransport struct {
	next http.RoundTripper
	b    *Bot
}

func (t *observedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if r.Context().Err() != nil && err != nil {
		return resp, err // cancelled by us (a shutdown, a stopped reply): says nothing of Telegram
	}
	method := apiMethod(r.URL.Path)
	result := "ok"
	switch {
	case err != nil:
		result = "network_error"
	case resp.StatusCode >= 500:
		result = "5xx"
	case resp.StatusCode != http.StatusOK:
		result = strconv.Itoa(resp.StatusCode)
	}
	t.b.metrics.telegramCalls.WithLabelValues(method, result).Inc()
	t.b.health.telegram(method, resp, t.b.scrub(err))
	return resp, err
}

// apiMethod is the Bot API method of a request path (/bot<token>/<method>), or "other".
func apiMethod(path string) string {
	m := path[strings.LastIndexByte(path, '/')+1:]
	if m == "" || len(m) > 40 {
		return "other"
	}
	for _, c := range m {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
			return "other"
		}
	}
	return m
}

// instrument returns a copy of c whose calls go through an observedTransport.
func (b *Bot) instrument(c *http.Client) *http.Client {
	cc := *c
	next := cc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	cc.Transport = &observedTransport{next: next, b: b}
	return &cc
}
