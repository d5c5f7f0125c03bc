// Command aurabot is a Telegram bot that lets people chat with a language model served by an
// Aura (chatbot-ui) or OpenAI-compatible server, streaming each answer as it is written.
//
// main wires the packages: it reads the configuration, opens the store, builds the model client
// and the bot, and runs until SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"aurabot/aura"
	"aurabot/aura/browser"
	"aurabot/aura/transcribe"
	"aurabot/bot"
	"aurabot/bot/ops"
	"aurabot/history"
)

// run is the whole program; main only turns its error into an exit code.
func run(ctx context.Context, environ []string, dotenv string, stderr io.Writer) (err error) {
	cfg, err := loadConfig(environ, dotenv) // its errors are redacted already
	if err != nil {
		return err
	}
	// One redaction point: every line, whoever writes it, passes it before it is written, and
	// so does the error that ends the program (main prints it).
	log, redactor := cfg.logger(stderr)
	defer func() { err = redactor.Error(err) }()
	for _, name := range cfg.ignored() {
		log.Debug("setting ignored with AURA_PROTOCOL="+cfg.Aura.Protocol, "variable", name)
	}

	// One instance per database: a second one (a rolling deploy) waits for the first to exit.
	release, err := history.Lock(ctx, cfg.DatabasePath, func(holder string) {
		log.Warn("another aurabot is running on this database; waiting for it to exit", "database", cfg.DatabasePath, "holder", holder)
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while waiting
		}
		return err
	}
	defer release()
	store, err := history.Open(ctx, cfg.DatabasePath)
	if err != nil {
		return err
	}
	defer store.Close()

	switch {
	case cfg.Browser.Browser == "":
	case cfg.Aura.Cookies != "" && cfg.Aura.UserAgent != "":
		log.Warn("AURA_BROWSER is ignored: AURA_COOKIES and AURA_USER_AGENT are both set, and they win")
	default:
		capturer, err := newCapturer(cfg.Browser, log, redactor)
		if err != nil {
			return err
		}
		defer capturer.Close() // after the bot: it stops a capture in progress, and its browser
		cfg.Aura.Credentials = capturer
	}
	cfg.Aura.Logger, cfg.Aura.Redact = log, redactor.Redact
	model, err := aura.New(cfg.Aura)
	if err != nil {
		return err
	}
	defer model.Close()

	if cfg.Transcribe.URL != "" { // else nil (not a nil *Client): voice is off
		cfg.Transcribe.Redact = redactor.Redact
		cfg.Bot.Transcriber = transcribe.New(cfg.Transcribe)
	}
	cfg.Bot.Force, cfg.Bot.Logger, cfg.Bot.Redactor = force(ctx), log, redactor
	b, err := bot.New(cfg.Bot, store, model)
	if err != nil {
		return err
	}
	if users := cfg.Bot.Conversation.AllowedUsers; !users.All && len(users.IDs) == 0 && len(cfg.Bot.Conversation.AllowedChats.IDs) == 0 {
		log.Warn("ALLOWED_USERS is empty: the bot answers nobody; each user who writes is told their id")
	}
	return b.Run(ctx)
}

// newCapturer builds the headless-browser capture of the model server's cookies (AURA_BROWSER).
// The log's redactor learns each capture's cookies and User-Agent before anyone uses them.
func newCapturer(opt browser.Options, log *slog.Logger, redactor *ops.Redactor) (*browser.Capturer, error) {
	if bin, err := browser.Find(opt.Browser); err != nil {
		log.Warn("AURA_BROWSER: replies will fail until a browser is installed", "err", err)
	} else {
		log.Info("cookies for the model server come from a headless browser", "browser", bin, "refresh", opt.Refresh)
	}
	opt.Logger = log
	opt.Captured = func(cookie, userAgent string) {
		redactor.Add(ops.CookieSecrets(cookie)...)
		redactor.Add(userAgent)
	}
	return browser.New(opt)
}

// force returns a channel closed by a second SIGINT or SIGTERM once ctx has ended (the first
// one): a shutdown the operator wants over at once.
func force(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		<-ctx.Done()
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sig)
		<-sig
		close(ch)
	}()
	return ch
}

// command runs what the flags ask for: the bot (no flags), a health check of a running bot
// (-healthcheck, for Docker's HEALTHCHECK in an image without curl) or an online backup of its
// database (-backup PATH).
func command(ctx context.Context, args, environ []string, dotenv string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("aurabot", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // main prints the error; the usage follows it below
	health := fs.Bool("healthcheck", false, "check GET /healthz of the bot running on LISTEN_ADDR and exit 0 (healthy) or 1")
	backup := fs.String("backup", "", "write a consistent copy of DATABASE_PATH to this new file, while the bot runs, and exit")
	if err := fs.Parse(args); err != nil {
		out := stderr
		if errors.Is(err, flag.ErrHelp) {
			out, err = stdout, nil
		}
		fmt.Fprintln(out, "Usage: aurabot [-healthcheck | -backup PATH]; settings come from the environment and .env.")
		fs.SetOutput(out)
		fs.PrintDefaults()
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: the bot is configured by environment variables (see config.example.env)", fs.Arg(0))
	}
	switch {
	case !*health && *backup == "":
		return run(ctx, environ, dotenv, stderr)
	case *health && *backup != "":
		return errors.New("use -healthcheck or -backup, not both")
	}
	cfg, err := parseConfig(environ, dotenv)
	if err != nil {
		return err
	}
	if *health {
		if cfg.Bot.ListenAddr == "" {
			return errors.New("healthcheck: LISTEN_ADDR is empty, so the bot serves no /healthz")
		}
		status, err := ops.CheckHealth(ctx, cfg.Bot.ListenAddr)
		if err == nil {
			fmt.Fprintln(stdout, status)
		}
		return err
	}
	start := time.Now()
	if err := history.BackupFile(ctx, cfg.DatabasePath, *backup); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %s to %s in %s\n", cfg.DatabasePath, *backup, time.Since(start).Round(time.Millisecond))
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := command(ctx, os.Args[1:], os.Environ(), ".env", os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "aurabot:", err)
		stop()
		os.Exit(1)
	}
}
