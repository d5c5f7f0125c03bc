# syntax=docker/dockerfile:1
# Build: a static binary (modernc.org/sqlite is pure Go, so no cgo is needed).
FROM golang:1.26-alpine AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
# Only the sources: never a developer's .env (it holds the bot token) or their data/ folder.
COPY main.go config.go ./
COPY aura ./aura
COPY bot ./bot
COPY history ./history
COPY migrations ./migrations
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/aurabot . && mkdir -p /out/data

# The variant with a browser, for AURA_BROWSER (cookies from a headless Chromium, for servers behind
# a browser check): docker build --target browser -t aurabot:browser .
# Debian's chromium, tini as PID 1 (it reaps the browser's processes, which a Go program as PID 1
# would leave as zombies), the same non-root user. Chromium's sandbox needs user namespaces, which a
# container's seccomp profile often denies, so it runs with --no-sandbox (through Debian's
# /etc/chromium.d): it only ever opens AURA_URL. Chromium and its libraries make the image far
# larger than the default one: build it only if you need the browser. (Untested here: no Docker
# daemon was at hand when it was written.)
FROM debian:bookworm-slim AS browser
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium ca-certificates fonts-liberation tini \
 && rm -rf /var/lib/apt/lists/* \
 && echo 'export CHROMIUM_FLAGS="$CHROMIUM_FLAGS --no-sandbox"' > /etc/chromium.d/aurabot-no-sandbox
COPY --from=build /out/aurabot /aurabot
COPY --from=build --chown=65532:65532 /out/data /data
ENV DATABASE_PATH=/data/bot.db LISTEN_ADDR=:8080 AURA_BROWSER=auto HOME=/tmp
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
ENV DATABASE_PATH=/data/bot.db LISTEN_ADDR=:8080
VOLUME ["/data"]
# /healthz, /metrics and, with WEBHOOK_URL, the webhook.
EXPOSE 8080
USER nonroot:nonroot
# The image has no curl: the binary checks GET /healthz of the running bot itself.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 CMD ["/aurabot", "-healthcheck"]
ENTRYPOINT ["/aurabot"]
