// Package tg is what every room of the bot shares about the Bot API: a client, the one way to
// call Telegram in a chat (Call: paced, its outcome told to the pacer), the way Telegram's
// answers are told apart (refused, throttled, gone, or never answered at all), and inline
// keyboards that carry only the fields that are set.
//
// It holds no state of the conversation and makes no decisions: the rooms that call Telegram
// decide what an answer means for them.
package tg

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	tgbot "github.com/go-telegram/bot"
)

// Client is a Bot API client. Its errors may quote a URL or a local server's path, which hold the
// token: they leave the process only through ops.Redactor (the log, /healthz, the exit).
type Client struct {
	*tgbot.Bot
	token               string
	apiURL              string
	http                *http.Client
	localDir, localReal string // TELEGRAM_LOCAL_FILES, as given and with links resolved; see SetLocalFiles
}

// Config is how to reach the Bot API.
type Config struct {
	Token      string `env:"TELEGRAM_TOKEN"`
	APIURL     string `env:"TELEGRAM_API_URL" envDefault:"https://api.telegram.org"`
	LocalFiles string `env:"TELEGRAM_LOCAL_FILES"` // a local Bot API server's --dir (SetLocalFiles); "": none
}

// New builds a client for cfg. It makes no network call.
func New(cfg Config, pollTimeout time.Duration, hc *http.Client, log *slog.Logger) (*Client, error) {
	apiURL := strings.TrimRight(cmp.Or(cfg.APIURL, "https://api.telegram.org"), "/")
	c := &Client{token: cfg.Token, apiURL: apiURL, http: hc}
	api, err := tgbot.New(cfg.Token,
		tgbot.WithSkipGetMe(),
		tgbot.WithServerURL(apiURL),
		tgbot.WithHTTPClient(pollTimeout, hc),
		tgbot.WithErrorsHandler(func(err error) {
			log.Warn("telegram library error", "err", err) // main's log handler removes the token
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("telegram: %w", err)
	}
	c.Bot = api
	if cfg.LocalFiles != "" {
		if err := c.SetLocalFiles(cfg.LocalFiles); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// HTTP is the client's HTTP client (instrumented by the caller), for raw calls such as getUpdates.
func (c *Client) HTTP() *http.Client { return c.http }

// MethodURL is the URL of a Bot API method. It holds the token: never log it.
func (c *Client) MethodURL(method string) string { return c.apiURL + "/bot" + c.token + "/" + method }

// FileURL is the download URL of a file_path that getFile returned. It holds the token.
func (c *Client) FileURL(filePath string) string {
	return c.apiURL + "/file/bot" + c.token + "/" + strings.TrimPrefix(filePath, "/")
}

// Refused reports whether Telegram answered with an error of its own: the call was not carried
// out. Any other error (a broken connection, a timeout, a 5xx) leaves the outcome unknown.
func Refused(err error) bool {
	var tm *tgbot.TooManyRequestsError
	var mig *tgbot.MigrateError
	return errors.Is(err, tgbot.ErrorBadRequest) || errors.Is(err, tgbot.ErrorForbidden) ||
		errors.Is(err, tgbot.ErrorUnauthorized) || errors.Is(err, tgbot.ErrorNotFound) ||
		errors.Is(err, tgbot.ErrorConflict) || errors.As(err, &tm) || errors.As(err, &mig)
}

// Unknown reports whether err leaves the outcome of a call unknown (see Refused), as a call the
// caller cancelled does: it may have reached Telegram.
func Unknown(err error) bool { return err != nil && !Refused(err) }

// RetryAfter is Telegram's flood-control wait for a 429, if err is one.
func RetryAfter(err error) (time.Duration, bool) {
	var tm *tgbot.TooManyRequestsError
	if !errors.As(err, &tm) {
		return 0, false
	}
	return time.Duration(max(tm.RetryAfter, 1)) * time.Second, true
}

// Throttled reports Telegram's 429: the call was not carried out, and may go after RetryAfter.
func Throttled(err error) bool {
	_, ok := RetryAfter(err)
	return ok
}

// Blocked reports whether the user blocked the bot, or the bot may no longer write in the chat.
func Blocked(err error) bool { return errors.Is(err, tgbot.ErrorForbidden) }

// NotModified reports "message is not modified": it shows exactly that, success for an edit.
func NotModified(err error) bool { return badRequest(err, "message is not modified") }

// Gone reports that the message no longer exists (the user deleted it) or was never there.
func Gone(err error) bool {
	return badRequest(err, "message to edit not found") || badRequest(err, "message to delete not found") ||
		badRequest(err, "message not found")
}

// BadFormatting reports a 400 about the text's entities ("can't parse entities",
// "ENTITY_MENTION_USER_INVALID", ...): the same text sent plain goes through.
func BadFormatting(err error) bool { return badRequest(err, "entit") || badRequest(err, "can't parse") }

func badRequest(err error, what string) bool {
	return errors.Is(err, tgbot.ErrorBadRequest) && strings.Contains(strings.ToLower(err.Error()), what)
}

// Background is ctx without its cancellation, bounded by d: for calls the caller's end must not cut.
func Background(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), d)
}
