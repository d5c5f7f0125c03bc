package conversation

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-telegram/bot/models"

	"aurabot/aura"
	"aurabot/aura/transcribe"
	"aurabot/bot/reply"
	"aurabot/bot/tg"
	"aurabot/history"
)

// Transcriber turns speech into text. transcribe.Client implements it.
type Transcriber interface {
	Transcribe(ctx context.Context, fileName string, audio io.Reader) (string, error)
}

const (
	// albumWait is how long an album stays open after its last photo: Telegram sends each
	// photo of an album as a message of its own, within moments of each other.
	albumWait = time.Second
	// maxPhotoSide is the longest side of the photo size sent to the model: enough to read
	// a page, and a fraction of the tokens and bytes of the original.
	maxPhotoSide = 1280
	// defaultPhotoQuestion is asked about a photo sent without a caption.
	defaultPhotoQuestion = "What is in this picture?"
	// defaultMaxFileBytes is MAX_FILE_BYTES's default.
	defaultMaxFileBytes = 512 << 10
)

// canRead names what the bot reads, for the notices about what it cannot.
const canRead = "I read text, photos, voice and audio messages, round video messages, and text files (.txt, .md, .csv, .json, .yaml, .xml, .html, source code, logs)."

// onMedia handles a message without text: a photo, a voice message, an audio file, a video note
// or a document; anything else is told what the bot reads. It reports whether it queued a job
// that finishes the update.
func (h *Handler) onMedia(ctx context.Context, r req, m *models.Message) bool {
	switch {
	case len(m.Photo) > 0:
		return h.onPhoto(ctx, r, m)
	case m.Voice != nil:
		return h.onSpoken(ctx, r, m, "voice message", m.Voice.FileID, m.Voice.FileSize, "voice.ogg")
	case m.Audio != nil:
		return h.onSpoken(ctx, r, m, "audio file", m.Audio.FileID, m.Audio.FileSize, audioName(m.Audio))
	case m.VideoNote != nil:
		return h.onSpoken(ctx, r, m, "video message", m.VideoNote.FileID, int64(m.VideoNote.FileSize), "video_note.mp4")
	case m.Document != nil:
		return h.onDocument(ctx, r, m)
	}
	what := "that kind of message"
	switch {
	case m.Sticker != nil:
		what = "stickers"
	case m.Video != nil || m.Animation != nil:
		what = "videos"
	}
	return h.tell(ctx, r, "I can't use "+what+". "+canRead)
}

// caption is a media message's caption, without the bot's mentions in a group.
func (h *Handler) caption(r req, m *models.Message) string {
	c := m.Caption
	if r.t.Group {
		c, _ = h.stripMentions(c, m.CaptionEntities)
	}
	return strings.TrimSpace(c)
}

// userTurn is the turn of a user's message with the given content, and the message it replies
// to quoted (see quoteOf).
func (h *Handler) userTurn(r req, m *models.Message, content string) history.Turn {
	q, _ := h.quoteOf(r, m)
	return history.Turn{Role: history.RoleUser, Content: content, MessageID: int64(m.ID), Author: author(r, m), Quote: q}
}

// queueReply queues fn as the reply to m, with the 👀 reaction when it waits behind another. It
// reports whether the update is taken care of (see admit).
func (h *Handler) queueReply(ctx context.Context, r req, m *models.Message, fn func(ctx context.Context, r req) result) bool {
	waited, taken := h.admit(ctx, r, true, fn)
	if waited {
		h.side.react(ctx, r.t.ChatID, m.ID, "👀")
	}
	return taken
}

// ---- Photos ----

// onPhoto queues a photo, or an album's photos, as one turn. The photos are downloaded by the
// queued job, never here on the path that takes updates.
func (h *Handler) onPhoto(ctx context.Context, r req, m *models.Message) bool {
	a, opened := h.albums.join(r.k, m, r.entry)
	if !opened {
		return true // the album's job finishes this update with the others
	}
	if h.cfg.TextOnly {
		// One notice for a whole album, from the notice queue (a sender's share of it).
		j := h.job(r, false, func(ctx context.Context, r req) result {
			items, ok := a.gather(ctx, h.albums)
			if !ok {
				return left // told after the restart
			}
			res := h.notify(ctx, r, blindNotice(""))
			h.finishOthers(ctx, r, items, res)
			return res
		})
		j.notice = true
		if isRecovered(ctx) {
			h.queue.submit(ctx, r.k, j)
		} else if _, ok, _ := h.queue.submitCapped(ctx, r.k, j); !ok {
			h.albums.drop(a) // too many notices waiting for this sender: no job gathers it
			return false
		}
		return true
	}
	if !h.queueReply(ctx, r, m, func(ctx context.Context, r req) result { return h.answerPhotos(ctx, r, a) }) {
		h.albums.drop(a) // skipped (see admit): no job gathers it; later photos start afresh
		return false
	}
	return true
}

// finishOthers finishes the entries of an album's photos after the first (r's, which the runner
// finishes), once the album's job has handled them all (res is not left).
func (h *Handler) finishOthers(ctx context.Context, r req, items []albumItem, res result) {
	if res == left {
		return
	}
	for _, it := range items {
		if it.entry != r.entry {
			h.finish(ctx, it.entry)
		}
	}
}

// answerPhotos waits for the album to close, downloads its photos and answers them as one turn.
func (h *Handler) answerPhotos(ctx context.Context, r req, a *album) result {
	items, ok := a.gather(ctx, h.albums)
	if !ok {
		return left // shutting down: every update of the album stays in the inbox
	}
	fail := func(msg string) result {
		res := h.notify(ctx, r, msg)
		h.finishOthers(ctx, r, items, res)
		return res
	}
	if res, ok := h.atCap(ctx, r); ok {
		h.finishOthers(ctx, r, items, res)
		return res
	}
	// A model that cannot see is not sent the picture, nor is it downloaded.
	if msg := h.cannotSee(ctx, h.model(ctx, r.k)); msg != "" {
		return fail(msg)
	}
	first := items[0].msg
	question := ""
	images := make([]history.Image, 0, len(items))
	for _, it := range items {
		if question == "" {
			question = h.caption(r, it.msg)
		}
		size := photoSize(it.msg.Photo)
		if size.FileSize > tg.MaxDownload {
			return fail("That photo is too big: Telegram lets bots download files up to 20 MB.")
		}
		data, err := h.deps.TG.Download(ctx, size.FileID, tg.MaxDownload)
		if err != nil {
			if ctx.Err() != nil {
				return left
			}
			h.deps.Log.Warn("could not download a photo", "chat_id", r.t.ChatID, "err", err)
			return fail("⚠️ I could not download your photo from Telegram. Please send it again.")
		}
		images = append(images, history.Image{MIME: "image/jpeg", Data: data})
	}
	if question == "" {
		question = defaultPhotoQuestion
	}
	turn := h.userTurn(r, first, question)
	turn.Images = images
	prompt := h.prompt(ctx, r.k)
	if msg := h.tooLongTurn(prompt, turn); msg != "" {
		return fail(msg)
	}
	if res, ok := h.store(ctx, r, turn); !ok {
		return res
	}
	// The turn is stored under the first photo's message: the others are done. Should the bot
	// stop before the answer, the first alone comes back and finds the turn stored whole.
	h.finishOthers(ctx, r, items, done)
	return h.respond(ctx, r, prompt)
}

// tooLongTurn is tooLong for a turn with images, each of which costs Budget.ImageTokens.
func (h *Handler) tooLongTurn(prompt string, t history.Turn) string {
	b := h.cfg.Budget
	if n := len(t.Images) * b.ImageTokens; n > 0 && b.Tokens > 0 {
		b.Tokens -= n
		if b.Tokens <= max(b.ReserveTokens, 0) {
			return "That picture cannot be sent: with the system prompt it takes more of the model's context than there is."
		}
	}
	return tooLong(b, prompt, t.Sent())
}

// photoSize is the largest size of a photo whose longer side is at most maxPhotoSide, or the
// smallest if every size is larger.
func photoSize(sizes []models.PhotoSize) models.PhotoSize {
	best, smallest := -1, 0
	for i, s := range sizes {
		side := max(s.Width, s.Height)
		if side < max(sizes[smallest].Width, sizes[smallest].Height) {
			smallest = i
		}
		if side <= maxPhotoSide && (best < 0 || side > max(sizes[best].Width, sizes[best].Height)) {
			best = i
		}
	}
	if best < 0 {
		best = smallest
	}
	return sizes[best]
}

// blindNotice tells the user a picture cannot be seen: by any model of the server (model ""),
// or by the conversation's model.
func blindNotice(model string) string {
	if model == "" {
		return "This model server takes text only: it cannot see pictures. Please describe it in words."
	}
	return "This model (" + model + ") takes text only: it cannot see pictures. Choose one that can with /model and send the picture again, or describe it in words."
}

// cannotSee returns blindNotice for model if its server says it cannot see pictures, "" if it
// can or does not say. Only Ollama says (its /api/show, asked once per model): elsewhere the
// pictures are sent, and a server that refuses them gets imagesRefused's notice.
func (h *Handler) cannotSee(ctx context.Context, model string) string {
	caps, err := h.deps.Model.Capabilities(ctx, model)
	if err != nil {
		// Unknown: the request goes as it would have; a missing model fails with its own notice.
		h.deps.Log.Debug("could not learn what the model can do", "model", model, "err", err)
		return ""
	}
	if caps.Known && !caps.Has(aura.Vision) {
		if model == "" {
			model = h.cfg.DefaultModel
		}
		return blindNotice(model)
	}
	return ""
}

// hasImages reports whether any turn of a window holds pictures.
func hasImages(window []history.Turn) bool {
	return slices.ContainsFunc(window, func(t history.Turn) bool { return len(t.Images) > 0 })
}

// imagesRefused is the notice under a failed reply to a request that held pictures: a server
// that refuses the request (4xx) most likely runs a model that cannot see. A 404 says the
// model is missing; Notice points to /model for it.
func imagesRefused(err error) string {
	var se *aura.StatusError
	if errors.As(err, &se) && se.StatusCode >= 400 && se.StatusCode < 500 && se.StatusCode != 401 && se.StatusCode != 404 && se.StatusCode != 429 {
		msg := "⚠️ The model server refused the request with the picture"
		if reason := se.UserReason(); reason != "" {
			msg += " (" + reason + ")"
		}
		return msg + ": this model may not see images. Choose one that does with /model, then send /retry."
	}
	return ""
}

// albumItem is one photo message of an album.
type albumItem struct {
	msg   *models.Message
	entry int64
}

// album gathers the photo messages of one media group into a turn.
type album struct {
	id    string // media_group_id; "" for a lone photo
	mu    sync.Mutex
	items []albumItem
	done  bool          // gathered: later photos of the group start an album of their own
	more  chan struct{} // a photo joined
}

// albums are the albums open now, by chat and media group.
type albums struct {
	mu   sync.Mutex
	open map[albumKey]*album
}

type albumKey struct {
	k     history.Key
	group string
}

func newAlbums() *albums { return &albums{open: map[albumKey]*album{}} }

// join adds a photo message to the open album of its media group, or opens one (a lone photo
// is an album of one, closed at once). opened reports a new album, whose job must be queued.
func (as *albums) join(k history.Key, m *models.Message, entry int64) (a *album, opened bool) {
	item := albumItem{msg: m, entry: entry}
	as.mu.Lock()
	defer as.mu.Unlock()
	key := albumKey{k, m.MediaGroupID}
	if a := as.open[key]; a != nil && m.MediaGroupID != "" {
		a.mu.Lock()
		defer a.mu.Unlock()
		if !a.done {
			a.items = append(a.items, item)
			select {
			case a.more <- struct{}{}:
			default:
			}
			return a, false
		}
	}
	a = &album{id: m.MediaGroupID, items: []albumItem{item}, more: make(chan struct{}, 1)}
	if m.MediaGroupID != "" {
		as.open[key] = a
	} else {
		a.done = true
	}
	return a, true
}

// open reports whether m belongs to an album open now: in a group, the photos after the first
// of an album carry no mention of the bot, but belong to the turn the first one opened.
func (as *albums) isOpen(k history.Key, m *models.Message) bool {
	if m.MediaGroupID == "" || len(m.Photo) == 0 {
		return false
	}
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.open[albumKey{k, m.MediaGroupID}] != nil
}

// drop closes album a without waiting for it: its first photo was skipped.
func (as *albums) drop(a *album) {
	as.mu.Lock()
	for key, open := range as.open {
		if open == a {
			delete(as.open, key)
		}
	}
	as.mu.Unlock()
	a.mu.Lock()
	a.done = true
	a.mu.Unlock()
}

// gather waits until no photo has joined for albumWait, closes the album and returns its
// photos; ok is false if ctx ended first.
func (a *album) gather(ctx context.Context, as *albums) (items []albumItem, ok bool) {
	if a.id != "" {
		t := time.NewTimer(albumWait)
		defer t.Stop()
	wait:
		for {
			select {
			case <-ctx.Done():
				break wait
			case <-a.more:
				t.Reset(albumWait)
			case <-t.C:
				break wait
			}
		}
		as.mu.Lock()
		for key, open := range as.open {
			if open == a {
				delete(as.open, key)
			}
		}
		as.mu.Unlock()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.done = true
	return a.items, ctx.Err() == nil
}

// ---- Voice, audio and video notes ----

// onSpoken queues a voice message, an audio file or a video note to be transcribed and
// answered.
func (h *Handler) onSpoken(ctx context.Context, r req, m *models.Message, what, fileID string, size int64, name string) bool {
	if h.deps.Transcriber == nil {
		if !h.noVoice.due(r.t.ChatID, time.Now()) {
			return false
		}
		return h.tell(ctx, r, "Voice messages are not set up on this bot: please type your message.")
	}
	if size > tg.MaxDownload {
		return h.tell(ctx, r, "That "+what+" is too big: Telegram lets bots download files up to 20 MB.")
	}
	turn := h.userTurn(r, m, "")
	turn.Audio = history.Audio{FileID: fileID, Name: name}
	return h.queueReply(ctx, r, m, func(ctx context.Context, r req) result { return h.answerSpoken(ctx, r, turn) })
}

// answerSpoken stores a spoken turn (without its text, so that /retry can transcribe it again
// should this fail), transcribes it and answers the transcript, shown above the answer.
func (h *Handler) answerSpoken(ctx context.Context, r req, turn history.Turn) result {
	if res, ok := h.atCap(ctx, r); ok {
		return res
	}
	turn = h.withoutRedundantQuote(ctx, r, turn)
	var stored history.Turn
	err := h.retryStore(ctx, r, func(ctx context.Context) (err error) {
		stored, _, err = h.deps.Store.Append(ctx, r.k, turn)
		return err
	})
	switch {
	case err != nil && ctx.Err() != nil:
		return left
	case err != nil:
		return h.storeFailed(ctx, r, "save your message", err)
	}
	prompt := h.prompt(ctx, r.k)
	text := stored.Content // heard already, before a restart
	if stored.Untranscribed() {
		var res result
		var ok bool
		if text, res, ok = h.transcribeTurn(ctx, r, prompt, stored); !ok {
			return res
		}
	}
	return h.respondWith(ctx, r, prompt, reply.Options{Prefix: transcriptPrefix(text)})
}

// transcribeTurn downloads and transcribes a stored spoken turn and stores its transcript. On
// failure it tells the user (with /retry where trying again can help) and reports false, with
// what became of the update.
func (h *Handler) transcribeTurn(ctx context.Context, r req, prompt string, turn history.Turn) (string, result, bool) {
	fail := func(msg string) (string, result, bool) {
		return "", h.notify(ctx, r, msg), false
	}
	if h.deps.Transcriber == nil {
		return fail("Voice messages are not set up on this bot: please type your message.")
	}
	data, err := h.deps.TG.Download(ctx, turn.Audio.FileID, tg.MaxDownload)
	if errors.Is(err, tg.ErrFileTooBig) {
		return fail("That recording is too big: Telegram lets bots download files up to 20 MB.")
	}
	if err != nil {
		if ctx.Err() != nil {
			return "", left, false
		}
		h.deps.Log.Warn("could not download a recording", "chat_id", r.t.ChatID, "err", err)
		return fail("⚠️ I could not download your recording from Telegram. Send /retry to try again.")
	}
	text, err := h.deps.Transcriber.Transcribe(ctx, turn.Audio.Name, bytes.NewReader(data))
	if err != nil {
		if ctx.Err() != nil {
			return "", left, false
		}
		h.deps.Log.Warn("transcription failed", "chat_id", r.t.ChatID, "err", err)
		return fail("⚠️ I could not transcribe your recording: " + transcribeFailure(err) + " Send /retry to try again.")
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return fail("I heard no words in that recording.")
	}
	heard := turn
	heard.Content = text
	if msg := tooLong(h.cfg.Budget, prompt, heard.Sent()); msg != "" {
		return fail(msg)
	}
	if err := h.retryStore(ctx, r, func(ctx context.Context) error {
		return h.deps.Store.SetTranscript(ctx, r.k, turn.ID, text)
	}); err != nil {
		if ctx.Err() != nil {
			return "", left, false
		}
		return "", h.storeFailed(ctx, r, "save what I heard", err), false
	}
	return text, done, true
}

// transcribeFailure says why a transcription failed, as a sentence fit for a user.
func transcribeFailure(err error) string {
	var se *transcribe.StatusError
	switch {
	case errors.As(err, &se):
		if r := se.UserReason(); r != "" {
			return "the speech-to-text server answered: " + r + "."
		}
		return "the speech-to-text server refused it."
	case errors.Is(err, transcribe.ErrTooLarge):
		return "it is longer than the speech-to-text server takes."
	case errors.Is(err, context.DeadlineExceeded):
		return "the speech-to-text server took too long."
	}
	return "I could not reach the speech-to-text server."
}

// transcriptMark starts the quote of a transcript above an answer.
const transcriptMark = "> 🎤 "

// transcriptPrefix is the transcript quoted above the answer, in Markdown: what the bot heard,
// so that the user can tell a wrong answer from a wrong hearing.
func transcriptPrefix(text string) string {
	var lines []string
	for l := range strings.SplitSeq(text, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, escapeMarkdown(l))
		}
	}
	return transcriptMark + "\"" + strings.Join(lines, "\n> ") + "\"\n\n"
}

// escapeMarkdown backslash-escapes every ASCII punctuation character (CommonMark allows it for
// all of them), so that spoken words render as they are.
func escapeMarkdown(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c < 0x80 && strings.ContainsRune("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// stripTranscript takes the transcript quote off the text a reply to a spoken message shows,
// leaving the answer (a reply finished from its journal after a restart).
func stripTranscript(text string) string {
	if !strings.HasPrefix(text, transcriptMark+"\"") {
		return text
	}
	if _, rest, ok := strings.Cut(text, "\"\n\n"); ok {
		return rest
	}
	return ""
}

// audioName is the file name an audio file is sent to the speech-to-text server under: the
// server tells the format by its extension.
func audioName(a *models.Audio) string {
	if a.FileName != "" && path.Ext(a.FileName) != "" {
		return a.FileName
	}
	if exts, _ := mime.ExtensionsByType(a.MimeType); len(exts) > 0 {
		return "audio" + exts[0]
	}
	return "audio.mp3"
}

// ---- Documents ----

// textExtensions are the file name extensions the bot reads as text, whatever MIME type the
// sender's app gave the file (often application/octet-stream).
const textExtensions = `.txt .text .md .markdown .rst .csv .tsv .json .jsonl .ndjson .yaml .yml .xml .html .htm
	.css .scss .js .mjs .cjs .ts .tsx .jsx .vue .svelte .go .py .rb .rs .java .kt .kts .scala .c .h .cc .cpp .cxx .hpp .cs
	.fs .swift .m .mm .php .pl .pm .lua .r .jl .dart .ex .exs .erl .hs .ml .clj .sh .bash .zsh .fish .ps1 .bat .cmd .sql
	.toml .ini .cfg .conf .env .properties .gradle .tf .proto .graphql .gql .tex .bib .srt .vtt .diff .patch .log .out .err`

// textNames are names of files without an extension that are text.
const textNames = "dockerfile makefile readme license changelog"

// isTextFile reports whether a document is text, by its MIME type or its name.
func isTextFile(mimeType, name string) bool {
	mt, _, _ := mime.ParseMediaType(mimeType)
	switch {
	case strings.HasPrefix(mt, "text/"),
		strings.HasSuffix(mt, "+json"), strings.HasSuffix(mt, "+xml"),
		mt == "application/json", mt == "application/xml", mt == "application/yaml", mt == "application/x-yaml",
		mt == "application/javascript", mt == "application/x-sh", mt == "application/sql", mt == "application/toml",
		mt == "application/x-ndjson":
		return true
	}
	base := strings.ToLower(path.Base(name))
	if ext := path.Ext(base); ext != "" {
		return slices.Contains(strings.Fields(textExtensions), ext)
	}
	return slices.Contains(strings.Fields(textNames), base)
}

// onDocument queues a text file to be read into the user's turn; other files are told what
// the bot reads.
func (h *Handler) onDocument(ctx context.Context, r req, m *models.Message) bool {
	d := m.Document
	name := d.FileName
	if name == "" {
		name = "the file"
	}
	switch {
	case strings.HasPrefix(d.MimeType, "image/") && !h.cfg.TextOnly:
		return h.tell(ctx, r, "I can't read "+name+" as a file: send pictures as photos, and I look at them.")
	case !isTextFile(d.MimeType, d.FileName):
		return h.tell(ctx, r, "I can't read "+name+": it is not a text file. "+canRead)
	case d.FileSize > int64(h.maxFileBytes()):
		return h.tell(ctx, r, fmt.Sprintf("%s is too big: I read text files up to %s, and it is %s.", name, bytesSize(int64(h.maxFileBytes())), bytesSize(d.FileSize)))
	}
	return h.queueReply(ctx, r, m, func(ctx context.Context, r req) result { return h.answerDocument(ctx, r, m) })
}

func (h *Handler) maxFileBytes() int {
	if h.cfg.MaxFileBytes > 0 {
		return h.cfg.MaxFileBytes
	}
	return defaultMaxFileBytes
}

// answerDocument downloads a text file and answers it as a turn: the file name and content in
// a fenced block, then the caption.
func (h *Handler) answerDocument(ctx context.Context, r req, m *models.Message) result {
	if res, ok := h.atCap(ctx, r); ok {
		return res // not even downloaded
	}
	d := m.Document
	data, err := h.deps.TG.Download(ctx, d.FileID, int64(h.maxFileBytes()))
	switch {
	case errors.Is(err, tg.ErrFileTooBig):
		return h.notify(ctx, r, fmt.Sprintf("That file is too big: I read text files up to %s.", bytesSize(int64(h.maxFileBytes()))))
	case err != nil:
		if ctx.Err() != nil {
			return left
		}
		h.deps.Log.Warn("could not download a file", "chat_id", r.t.ChatID, "err", err)
		return h.notify(ctx, r, "⚠️ I could not download your file from Telegram. Please send it again.")
	case bytes.IndexByte(data, 0) >= 0:
		return h.notify(ctx, r, "I can't read that file: it is not text. "+canRead)
	}
	return h.answer(ctx, r, h.userTurn(r, m, fileText(d.FileName, string(data), h.caption(r, m))))
}

// fileText is the text sent for a file: its name, its content (as UTF-8, invalid bytes
// replaced) in a fenced block longer than any run of backticks inside, then the question.
func fileText(name, content, question string) string {
	content = strings.ToValidUTF8(content, "\uFFFD")
	fence := "```"
	for strings.Contains(content, fence) {
		fence += "`"
	}
	if name == "" {
		name = "file"
	}
	s := "File " + name + ":\n" + fence + "\n" + strings.TrimRight(content, "\n") + "\n" + fence
	if question != "" {
		s += "\n\n" + question
	}
	return s
}

// bytesSize says a size in bytes, KiB or MiB.
func bytesSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
