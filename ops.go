package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"aurabot/history"
)

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
	case *health && *backup != "":
		return errors.New("use -healthcheck or -backup, not both")
	case *health:
		return healthcheck(ctx, environ, dotenv, stdout)
	case *backup != "":
		return backupDatabase(ctx, environ, dotenv, *backup, stdout)
	}
	return run(ctx, environ, dotenv, stderr)
}

// healthcheck asks the bot on LISTEN_ADDR for GET /healthz, over loopback.
func healthcheck(ctx context.Context, environ []string, dotenv string, stdout io.Writer) error {
	cfg, err := parseConfig(environ, dotenv)
	if err != nil {
		return err
	}
	addr := cfg.listenAddr()
	if addr == "" {
		return errors.New("healthcheck: LISTEN_ADDR is empty, so the bot serves no /healthz")
	}
	if !validListenAddr(addr) {
		return fmt.Errorf("healthcheck: LISTEN_ADDR %q is not host:port", addr)
	}
	host, port, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1" // listening on every interface: loopback is one of them
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	reason := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %d: %s", resp.StatusCode, reason)
	}
	fmt.Fprintln(stdout, reason)
	return nil
}

// backupDatabase copies DATABASE_PATH to path with VACUUM INTO, which is safe while the bot runs
// on the same file.
func backupDatabase(ctx context.Context, environ []string, dotenv, path string, stdout io.Writer) error {
	cfg, err := parseConfig(environ, dotenv)
	if err != nil {
		return err
	}
	// Open would create an empty database: a backup of nothing is a mistake in DATABASE_PATH.
	if _, err := os.Stat(cfg.DatabasePath); err != nil {
		return fmt.Errorf("backup: DATABASE_PATH: %w", err)
	}
	store, err := history.Open(ctx, cfg.DatabasePath)
	if err != nil {
		return err
	}
	defer store.Close()
	start := time.Now()
	if err := store.Backup(ctx, path); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %s to %s in %s\n", cfg.DatabasePath, path, time.Since(start).Round(time.Millisecond))
	return nil
}
