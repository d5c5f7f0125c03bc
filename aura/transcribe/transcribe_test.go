package transcribe

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// seen is what the test server saw of one request.
type seen struct {
	method, path, auth, model, fileName, fileType string
	file                                          []byte
	err                                           error
}

// server answers every request with status and body and sends what it saw
// on the returned channel.
func server(t *testing.T, status int, body string) (*httptest.Server, <-chan seen) {
	t.Helper()
	ch := make(chan seen, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seen{method: r.Method, path: r.URL.Path, auth: r.Header.Get("Authorization")}
		if s.err = r.ParseMultipartForm(MaxAudioBytes); s.err == nil {
			s.model = r.FormValue("model")
			f, h, err := r.FormFile("file")
			if err != nil {
				s.err = err
			} else {
				s.fileName, s.fileType = h.Filename, h.Header.Get("Content-Type")
				s.file, s.err = io.ReadAll(f)
				f.Close()
			}
		}
		ch <- s
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

func TestTranscribe(t *testing.T) {
	audio := []byte("OggS\x00\x02fake opus data")
	tests := []struct {
		name, suffix, model, key, fileName string
		wantPath, wantModel, wantAuth      string
		wantFileName                       string
	}{
		{name: "defaults", fileName: "voice.ogg", wantPath: "/v1/audio/transcriptions", wantModel: "whisper-1", wantFileName: "voice.ogg"},
		{name: "URL ending in /v1 with a key and a model", suffix: "/v1/", model: "Systran/faster-whisper-small", key: "sk-test", fileName: "a.mp3", wantPath: "/v1/audio/transcriptions", wantModel: "Systran/faster-whisper-small", wantAuth: "Bearer sk-test", wantFileName: "a.mp3"},
		{name: "URL under a path", suffix: "/stt", fileName: "note.oga", wantPath: "/stt/v1/audio/transcriptions", wantModel: "whisper-1", wantFileName: "note.oga"},
		{name: "file name with a path and a line break", fileName: "../x/evil\r\nX-Injected: 1\".ogg", wantPath: "/v1/audio/transcriptions", wantModel: "whisper-1", wantFileName: "evil__X-Injected: 1_.ogg"},
		{name: "no file name", fileName: "", wantPath: "/v1/audio/transcriptions", wantModel: "whisper-1", wantFileName: "audio"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, ch := server(t, 200, `{"text":" Hello, wörld. "}`)
			c := New(Config{URL: srv.URL + tt.suffix, Model: tt.model, Key: tt.key})
			got, err := c.Transcribe(t.Context(), tt.fileName, bytes.NewReader(audio))
			if err != nil || got != "Hello, wörld." {
				t.Fatalf("got (%q, %v), want (\"Hello, wörld.\", nil)", got, err)
			}
			s := <-ch
			if s.err != nil {
				t.Fatalf("server: %v", s.err)
			}
			if s.method != http.MethodPost || s.path != tt.wantPath {
				t.Errorf("got %s %s, want POST %s", s.method, s.path, tt.wantPath)
			}
			if s.auth != tt.wantAuth {
				t.Errorf("got Authorization %q, want %q", s.auth, tt.wantAuth)
			}
			if s.model != tt.wantModel {
				t.Errorf("got model %q, want %q", s.model, tt.wantModel)
			}
			if s.fileName != tt.wantFileName || !bytes.Equal(s.file, audio) {
				t.Errorf("got file %q with %q, want %q with %q", s.fileName, s.file, tt.wantFileName, audio)
			}
		})
	}
}

func TestTranscribeErrors(t *testing.T) {
	const key = "sk-SECRET-key-123"
	tests := []struct {
		name       string
		status     int
		body       string
		wantStatus int
		wantReason string
		wantUser   string
		wantErr    string
	}{
		{
			name:       "500 with a hostile JSON body",
			status:     500,
			body:       `{"error":{"message":"Upstream failed with key ` + key + ` and sk-proj-Zz9Yy8Xx7Ww6Vv5Uu4. Details: https://evil.example/x\nTraceback: /srv/app.py","type":"server_error"}}`,
			wantStatus: 500,
			wantReason: "Upstream failed with key [redacted] and sk-proj-Zz9Yy8Xx7Ww6Vv5Uu4. Details: https://evil.example/x\nTraceback: /srv/app.py",
			wantUser:   "Upstream failed with key",
		},
		{
			name:       "500 with an HTML body",
			status:     500,
			body:       "<html><a href=\"https://evil.example\">" + key + "</a></html>",
			wantStatus: 500,
			wantReason: "Internal Server Error",
			wantUser:   "Internal Server Error",
		},
		{
			name:       "fastapi detail",
			status:     422,
			body:       `{"detail":"Unsupported audio format."}`,
			wantStatus: 422,
			wantReason: "Unsupported audio format.",
			wantUser:   "Unsupported audio format",
		},
		{
			name:       "401 echoing the key in a string error",
			status:     401,
			body:       `{"error":"invalid key ` + key + `"}`,
			wantStatus: 401,
			wantReason: "invalid key [redacted]",
			wantUser:   "invalid key",
		},
		{name: "200 that is not JSON", status: 200, body: "<html>hi</html>", wantErr: "transcribe: unreadable answer"},
		{name: "200 without text", status: 200, body: `{"task":"transcribe"}`, wantErr: "transcribe: unreadable answer: no text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := server(t, tt.status, tt.body)
			c := New(Config{URL: srv.URL, Key: key, Redact: strings.NewReplacer(key, "[redacted]").Replace})
			got, err := c.Transcribe(t.Context(), "v.ogg", strings.NewReader("audio"))
			if err == nil || got != "" {
				t.Fatalf("got (%q, %v), want an error", got, err)
			}
			if strings.Contains(err.Error(), key) {
				t.Errorf("got error %q, want it without the key", err)
			}
			if tt.wantErr != "" {
				if !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Errorf("got error %q, want one starting %q", err, tt.wantErr)
				}
				return
			}
			var se *StatusError
			if !errors.As(err, &se) {
				t.Fatalf("got error %v, want a *StatusError", err)
			}
			if se.StatusCode != tt.wantStatus || se.Reason != tt.wantReason {
				t.Errorf("got %d %q, want %d %q", se.StatusCode, se.Reason, tt.wantStatus, tt.wantReason)
			}
			if got := se.UserReason(); got != tt.wantUser {
				t.Errorf("got UserReason %q, want %q", got, tt.wantUser)
			}
			if strings.Contains(se.Body, key) {
				t.Errorf("got Body %q, want it without the key", se.Body)
			}
		})
	}
}

func TestTranscribeKeyNeverLeaks(t *testing.T) {
	const key = "sk-SECRET-key-123"
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		_, err := New(Config{URL: url, Key: key}).Transcribe(t.Context(), "v.ogg", strings.NewReader("audio"))
		if err == nil || !strings.HasPrefix(err.Error(), "transcribe: could not reach the server: ") || strings.Contains(err.Error(), key) {
			t.Errorf("got error %v, want a connection error without the key", err)
		}
	})
	t.Run("a URL with a password", func(t *testing.T) {
		_, err := New(Config{URL: "ftp://user:" + key + "@host", Key: key}).Transcribe(t.Context(), "v.ogg", strings.NewReader("audio"))
		if err == nil || strings.Contains(err.Error(), key) {
			t.Errorf("got error %v, want one without the password", err)
		}
	})
}

func TestTranscribeBadURL(t *testing.T) {
	for _, u := range []string{"", "ftp://host", "http://", "http://a b/%zz"} {
		if _, err := New(Config{URL: u}).Transcribe(t.Context(), "v.ogg", strings.NewReader("audio")); err == nil || !strings.HasPrefix(err.Error(), "transcribe: URL") {
			t.Errorf("URL %q: got error %v, want a URL error", u, err)
		}
	}
}

func TestTranscribeTooLarge(t *testing.T) {
	srv, ch := server(t, 200, `{"text":"x"}`)
	_, err := New(Config{URL: srv.URL}).Transcribe(t.Context(), "v.ogg", io.LimitReader(zeros{}, MaxAudioBytes+1))
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("got error %v, want one matching ErrTooLarge", err)
	}
	select {
	case <-ch:
		t.Errorf("got a request, want none")
	default:
	}
}

func TestTranscribeTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	_, err := New(Config{URL: srv.URL, Timeout: 20 * time.Millisecond}).Transcribe(t.Context(), "v.ogg", strings.NewReader("audio"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got error %v, want one matching context.DeadlineExceeded", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func FuzzCleanFileName(f *testing.F) {
	for _, s := range []string{"voice.ogg", "../../etc/passwd", "a\r\nX: 1\".ogg", "C:\\x\\y.mp3", "", "/", "\xff\u202e.ogg"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got := cleanFileName(name)
		if got == "" || !utf8.ValidString(got) || strings.ContainsAny(got, "/\\\"") ||
			strings.ContainsFunc(got, func(r rune) bool { return !unicode.IsPrint(r) }) {
			t.Fatalf("cleanFileName(%q) = %q: want a non-empty printable base name without quotes", name, got)
		}
	})
}
