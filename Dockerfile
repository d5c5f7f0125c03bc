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

# Run: no shell, no package manager, a non-root user, the database on a volume.
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
