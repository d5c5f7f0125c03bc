package ops

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the bot's Prometheus metrics, in a registry of its own (never the global default
// one), so that tests can run several bots in one process. No label ever holds a chat or user id:
// the values of every label are a small fixed set.
type Metrics struct {
	reg *prometheus.Registry

	repliesStarted  prometheus.Counter
	repliesFinished *prometheus.CounterVec
	repliesFailed   *prometheus.CounterVec
	replyDuration   prometheus.Histogram
	firstText       prometheus.Histogram
	streams         prometheus.Gauge
	telegramCalls   *prometheus.CounterVec
	auraErrors      *prometheus.CounterVec
	webhookRequests *prometheus.CounterVec
}

// NewMetrics returns the metrics; queueLength reports the messages waiting in conversation
// queues.
func NewMetrics(queueLength func() float64) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		repliesStarted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aurabot_replies_started_total",
			Help: "Replies that began streaming an answer from the model.",
		}),
		repliesFinished: counterVec("aurabot_replies_finished_total",
			"Replies that ended without a failure, by outcome: done, stopped (by the user), interrupted (by a shutdown).",
			"outcome", "done", "stopped", "interrupted"),
		repliesFailed: counterVec("aurabot_replies_failed_total",
			"Replies that failed, by reason: model (the model server failed), empty (it sent nothing), blocked (the user blocked the bot).",
			"reason", "model", "empty", "blocked"),
		replyDuration: histogram("aurabot_reply_duration_seconds", "Time from asking the model to the final message of a reply.",
			0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
		firstText: histogram("aurabot_reply_first_text_seconds", "Time from asking the model to the first text the user sees.",
			0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "aurabot_streams_in_flight", Help: "Replies streaming now."}),
		telegramCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aurabot_telegram_calls_total",
			Help: "Bot API calls by method and result: ok, the HTTP status Telegram answered (429 is flood control), or network_error.",
		}, []string{"method", "result"}),
		auraErrors: counterVec("aurabot_aura_errors_total",
			"Model server failures by kind: status, connect, first_byte_timeout, idle_timeout, broken_stream, other.",
			"kind", "status", "connect", "first_byte_timeout", "idle_timeout", "broken_stream", "images_unsupported", "browser", "other"),
		webhookRequests: counterVec("aurabot_webhook_requests_total",
			"Webhook requests by the HTTP status they were answered with (401: wrong secret).", "code"),
	}
	queue := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "aurabot_queue_length",
		Help: "Messages and commands waiting in conversation queues (not the ones running).",
	}, queueLength)
	m.reg.MustRegister(m.repliesStarted, m.repliesFinished, m.repliesFailed, m.replyDuration, m.firstText,
		m.streams, m.telegramCalls, m.auraErrors, m.webhookRequests, queue,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// counterVec is a counter with one label, whose values are created up front so that dashboards
// see zeros rather than missing series.
func counterVec(name, help, label string, values ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{label})
	for _, v := range values {
		c.WithLabelValues(v)
	}
	return c
}

func histogram(name, help string, buckets ...float64) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
}

// Handler serves GET /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
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
	m.replyDuration.Observe(took.Seconds())
	if firstText > 0 {
		m.firstText.Observe(firstText.Seconds())
	}
	if failed {
		m.repliesFailed.WithLabelValues(result).Inc()
	} else {
		m.repliesFinished.WithLabelValues(result).Inc()
	}
	if auraKind != "" {
		m.auraErrors.WithLabelValues(auraKind).Inc()
	}
}

// WebhookRequest counts a webhook request by the status it got.
func (m *Metrics) WebhookRequest(code int) {
	m.webhookRequests.WithLabelValues(strconv.Itoa(code)).Inc()
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
	t.metrics.telegramCalls.WithLabelValues(method, result).Inc()
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
