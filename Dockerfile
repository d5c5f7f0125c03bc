# syntax=docker/dockerfile:1
# Build: a static binary (modernc.org/sqlite is pure Go, so no cgo is needed).
FROM golang:1.26-alpine AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
# Only the sources: never a developer's .env (it holds the bot token) or their data/ folder.
COPY main.go config.go settings.go ./
COPY aura ./aura
COPY bot ./bot
COPY history ./history
COPY migrations ./migrations
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/aurabot . && mkdir -p /out/data

# The variant with a browser, for AURA_BROWSER (cookies from a headless Chromium, for servers behind
# a browser check): docker build --target browser -t aurabot:browser .
# Debian's chromium, tini as PID 1 (it reaps the browser's processes, which a Go program as PID 1
# would leave as zombies), and a non-root user: Chromium's sandbox refuses to run as root. The bot
# starts Chromium with only PATH, HOME, TMPDIR and the proxy variables (never its own secrets), in
# its sandbox whenever the container lets it create user namespaces; Docker's default seccomp
# profile does not, and then the bot runs it with --no-sandbox and says so once in its log (run
# the container with a seccomp profile that allows user namespaces to sandbox it). It only ever
# opens AURA_URL. Chromium and its libraries make the image far larger than the default one: build
# it only if you need the browser. (Untested here: no Docker daemon was at hand when it was
# written.)
FROM debian:bookworm-slim AS browser
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium ca-certificates fonts-liberation tini \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/aurabot /aurabot
COPY --from=build --chown=65532:65532 /out/data /data
# 0.0.0.0: a container's loopback is its own, so the port Docker publishes needs every interface
# (publish it on the host's loopback, -p 127.0.0.1:8080:8080, unless it must be reached from
# elsewhere). Outside a container the bot listens on 127.0.0.1:8080 by default.
ENV DATABASE_PATH=/data/bot.db LISTEN_ADDR=0.0.0.0:8080 AURA_BROWSER=auto HOME=/tmp
VOLUME ["/data"]
EXPOSE 8080
USER 65532:65532
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 CMD ["/aurabot", "-healthcheck"]
ENTRYPOINT ["/usr/bin/tini", "--", "/aurabot"]

# Run (the default target): no shell, no package manager, no browser, a non-root user, the
# database on a volume.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/aurabot /aurabot
# The volume's mount point belongs to the nonroot user (65532), so the bot can create its database.
COPY --from=build --chown=65532:65532 /out/data /data
# 0.0.0.0: a container's loopback is its own, so the port Docker publishes needs every interface
# (publish it on the host's loopback, -p 127.0.0.1:8080:8080, unless it must be reached from
# elsewhere). Outside a container the bot listens on 127.0.0.1:8080 by default.
ENV DATABASE_PATH=/data/bot.db LISTEN_ADDR=0.0.0.0:8080
VOLUME ["/data"]
# /healthz, /metrics and, with WEBHOOK_URL, the webhook.
EXPOSE 8080
USER nonroot:nonroot
# The image has no curl: the binary checks GET /healthz of the running bot itself.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 CMD ["/aurabot", "-healthcheck"]
ENTRYPOINT ["/aurabot"]
