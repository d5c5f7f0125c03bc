package conversation

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"mime"
	"path"
	"slices"
	"strings"

	"github.com/go-telegram/bot/models"
)

// Files: a text file becomes the user's turn, its name and content fenced, then the caption.

// textExtensions are read as text whatever MIME type the sender's app gave (often octet-stream).
const textExtensions = `.txt .text .md .markdown .rst .csv .tsv .json .jsonl .ndjson .yaml .yml .xml .html .htm
	.css .scss .js .mjs .cjs .ts .tsx .jsx .vue .svelte .go .py .rb .rs .java .kt .kts .scala .c .h .cc .cpp .cxx .hpp .cs
	.fs .swift .m .mm .php .pl .pm .lua .r .jl .dart .ex .exs .erl .hs .ml .clj .sh .bash .zsh .fish .ps1 .bat .cmd .sql
	.toml .ini .cfg .conf .env .properties .gradle .tf .proto .graphql .gql .tex .bib .srt .vtt .diff .patch .log .out .err`

const textNames = "dockerfile makefile readme license changelog"

func isTextFile(mimeType, name string) bool {
	mt, _, _ := mime.ParseMediaType(mimeType)
	if strings.HasPrefix(mt, "text/") || strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "+xml") || slices.Contains([]string{
		"application/json", "application/xml", "application/yaml", "application/x-yaml", "application/javascript",
		"application/x-sh", "application/sql", "application/toml", "application/x-ndjson"}, mt) {
		return true
	}
	base := strings.ToLower(path.Base(name))
	if ext := path.Ext(base); ext != "" {
		return slices.Contains(strings.Fields(textExtensions), ext)
	}
	return slices.Contains(strings.Fields(textNames), base)
}

func (h *Handler) onDocument(ctx context.Context, r req, m *models.Message) bool {
	d := m.Document
	name := cmp.Or(d.FileName, "the file")
	switch {
	case strings.HasPrefix(d.MimeType, "image/") && !h.cfg.TextOnly:
		return h.tell(ctx, r, "I can't read "+name+" as a file: send pictures as photos, and I look at them.")
	case !isTextFile(d.MimeType, d.FileName):
		return h.tell(ctx, r, "I can't read "+name+": it is not a text file. "+canRead)
	case d.FileSize > h.maxFileBytes():
		return h.tell(ctx, r, fmt.Sprintf("%s is too big: I read text files up to %s, and it is %s.", name, bytesSize(h.maxFileBytes()), bytesSize(d.FileSize)))
	}
	return h.queueReply(ctx, r, m, func(ctx context.Context, r req) result { return h.answerDocument(ctx, r, m) })
}

func (h *Handler) maxFileBytes() int64 { return int64(cmp.Or(max(h.cfg.MaxFileBytes, 0), 512<<10)) }

func (h *Handler) answerDocument(ctx context.Context, r req, m *models.Message) result {
	if res, over := h.atCap(ctx, r); over {
		return res // not even downloaded
	}
	d := m.Document
	tooLarge := fmt.Sprintf("That file is too big: I read text files up to %s.", bytesSize(h.maxFileBytes()))
	data, res, ok := h.fetch(ctx, r, d.FileID, h.maxFileBytes(), "file", tooLarge, "Please send it again.")
	if !ok {
		return res
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return h.notify(ctx, r, "I can't read that file: it is not text. "+canRead)
	}
	return h.answer(ctx, r, h.userTurn(r, m, fileText(d.FileName, string(data), h.caption(r, m))))
}

// fileText is a file's name, its content fenced (longer than any backticks inside), the question.
func fileText(name, content, question string) string {
	content = strings.ToValidUTF8(content, "\uFFFD")
	fence := "```"
	for strings.Contains(content, fence) {
		fence += "`"
	}
	s := "File " + cmp.Or(name, "file") + ":\n" + fence + "\n" + strings.TrimRight(content, "\n") + "\n" + fence
	if question != "" {
		s += "\n\n" + question
	}
	return s
}

func bytesSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
