package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"aurabot/aura/browser"
	"aurabot/bot/telegramtest"
)

// These tests hold the promise that no secret leaves the process at its boundary: the log,
// /healthz and what users read in Telegram. Servers here echo the secrets they were sent in
// their errors, and each secret is written so that reason.Sanitize (the user-facing filter)
// lets it through: only the one redaction point, ops.Redactor (main's log handler, also handed
// to aura and transcribe as Config.Redact), removes it.

// echoError answers w with an openai-style JSON error whose message is msg.
func echoError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	m, _ := json.Marshal(msg)
	fmt.Fprintf(w, `{"error":{"message":%s}}`, m)
}

var listeningRe = regexp.MustCompile(`msg=listening addr=(\S+)`)

// healthz returns the body of GET /healthz of the bot the harness started last.
func (h *harness) healthz() string {
	h.t.Helper()
	m := listeningRe.FindStringSubmatch(h.logs.String())
	if m == nil {
		h.t.Fatalf("no listening address in the logs:\n%s", h.logs.String())
	}
	resp, err := http.Get("http://" + m[1] + "/healthz")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// A model server and a speech-to-text server that echo the key they were sent: the user is told
// each server's reason without the key, and neither the log nor /healthz holds it.
func TestEchoedKeysReachNoOne(t *testing.T) {
	const auraKey, transcribeKey = "open.sesame.aura", "open.sesame.whisper"
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		echoError(w, http.StatusUnauthorized, "Incorrect API key provided: "+strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	}))
	defer model.Close()
	h := newHarness(t)
	h.aura.transcribe = func(tr transcription) (int, string) {
		msg, _ := json.Marshal("invalid key " + strings.TrimPrefix(tr.Auth, "Bearer "))
		return http.StatusUnauthorized, `{"error":` + string(msg) + `}`
	}
	h.start("AURA_PROTOCOL=openai", "AURA_MODEL=m", "AURA_URL="+model.URL, "AURA_KEY="+auraKey,
		"TRANSCRIBE_URL="+h.aura.srv.URL, "TRANSCRIBE_KEY="+transcribeKey)

	got := h.replyTo(h.send("hi")).Text
	if !strings.Contains(got, "401 Incorrect API key provided") || strings.Contains(got, auraKey) {
		t.Errorf("model notice: got %q, want the server's reason without the key", got)
	}
	v := h.tg.PushVoice(incoming(""), telegramtest.File{Data: []byte("OggS")})
	h.wait(func() bool { return hasReply(h.tg, v.ID, "invalid key") })
	for _, m := range h.tg.Messages(userID) {
		if strings.Contains(m.Text, auraKey) || strings.Contains(m.Text, transcribeKey) {
			t.Errorf("a message to the user holds a key: %q", m.Text)
		}
	}
	health := h.healthz()
	h.stop()
	for _, key := range []string{auraKey, transcribeKey} {
		if strings.Contains(health, key) || strings.Contains(h.logs.String(), key) {
			t.Errorf("/healthz (%q) or the log holds %q:\n%s", health, key, h.logs.String())
		}
	}
	if !strings.Contains(h.logs.String(), "Incorrect API key provided: [redacted]") {
		t.Errorf("the log does not show the refusal with the key redacted:\n%s", h.logs.String())
	}
}

// The cookies a browser captured, echoed in a model server's error, are not shown to the user:
// the redactor learns them at the capture, before they are sent.
func TestCapturedCookiesNeverShown(t *testing.T) {
	if _, err := browser.Find(browser.Auto); err != nil {
		t.Skipf("SKIP: the browser capture is not tested: %v", err)
	}
	browserMark(t)
	const cookieValue = "open.sesame.cookie"
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "sess", Value: cookieValue, Path: "/"})
		fmt.Fprint(w, "<!DOCTYPE html><html><body>ok</body></html>")
	})
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		echoError(w, http.StatusUnauthorized, "not allowed with the cookies "+r.Header.Get("Cookie"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	h := newHarness(t)
	h.start("AURA_BROWSER=auto", "AURA_URL="+srv.URL, "AURA_PROTOCOL=openai", "AURA_MODEL=m")
	got := h.replyTo(h.send("hi")).Text
	if !strings.Contains(got, "not allowed with the cookies") || strings.Contains(got, cookieValue) {
		t.Errorf("notice: got %q, want the server's reason without the cookie", got)
	}
	h.stop()
	if strings.Contains(h.logs.String(), cookieValue) {
		t.Errorf("the logs hold the captured cookie:\n%s", h.logs.String())
	}
}
