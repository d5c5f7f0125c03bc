package conversation

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/go-telegram/bot/models"

	"aurabot/aura"
	"aurabot/bot/tg"
	"aurabot/history"
)

// Pictures: a photo, or an album's photos (messages of their own), become one turn.

const (
	albumWait            = time.Second // an album stays open that long after its last photo
	maxPhotoSide         = 1280        // enough to read a page, a fraction of the original's tokens
	defaultPhotoQuestion = "What is in this picture?"
)

// onPhoto queues a photo, or an album's photos, as one turn.
func (h *Handler) onPhoto(ctx context.Context, r req, m *models.Message) bool {
	a, opened := h.albums.join(r.k, m, r.entry)
	if !opened {
		return true // the album's job settles this update with the first's
	}
	r.album = a
	var taken bool
	if h.cfg.TextOnly {
		taken = h.queueNotice(ctx, r, func(ctx context.Context, r req) result { // one for the album
			if _, ok := a.gather(ctx, h.albums); !ok {
				return left // told after the restart
			}
			return h.notify(ctx, r, blindNotice(""))
		})
	} else {
		taken = h.queueReply(ctx, r, m, func(ctx context.Context, r req) result { return h.answerPhotos(ctx, r, a) })
	}
	if !taken {
		h.albums.close(a) // skipped: no job gathers it; later photos start afresh
	}
	return taken
}

// answerPhotos waits for the album to close, downloads its photos and answers them as one turn.
func (h *Handler) answerPhotos(ctx context.Context, r req, a *album) result {
	items, ok := a.gather(ctx, h.albums)
	if !ok {
		return left
	}
	if res, over := h.atCap(ctx, r); over {
		return res
	}
	if msg := h.cannotSee(ctx, h.model(ctx, r.k)); msg != "" {
		return h.notify(ctx, r, msg)
	}
	question := ""
	images := make([]history.Image, 0, len(items))
	for _, it := range items {
		question = cmp.Or(question, h.caption(r, it.msg))
		size := photoSize(it.msg.Photo)
		if size.FileSize > tg.MaxDownload {
			return h.notify(ctx, r, tooBig("photo"))
		}
		data, res, ok := h.fetch(ctx, r, size.FileID, tg.MaxDownload, "photo", "", "Please send it again.")
		if !ok {
			return res
		}
		images = append(images, history.Image{MIME: "image/jpeg", Data: data})
	}
	turn := h.userTurn(r, items[0].msg, cmp.Or(question, defaultPhotoQuestion))
	turn.Images = images
	return h.answer(ctx, r, turn)
}

// photoSize is the largest size whose longer side is at most maxPhotoSide, else the smallest.
func photoSize(sizes []models.PhotoSize) models.PhotoSize {
	side := func(s models.PhotoSize) int { return max(s.Width, s.Height) }
	bySide := func(a, b models.PhotoSize) int { return cmp.Compare(side(a), side(b)) }
	fit := slices.DeleteFunc(slices.Clone(sizes), func(s models.PhotoSize) bool { return side(s) > maxPhotoSide })
	if len(fit) == 0 {
		return slices.MinFunc(sizes, bySide)
	}
	return slices.MaxFunc(fit, bySide)
}

// blindNotice says a picture cannot be seen: by any model of the server (""), or by model.
func blindNotice(model string) string {
	if model == "" {
		return "This model server takes text only: it cannot see pictures. Please describe it in words."
	}
	return "This model (" + model + ") takes text only: it cannot see pictures. Choose one that can with /model and send the picture again, or describe it in words."
}

// cannotSee is blindNotice for model if its server says it cannot see (only Ollama says).
func (h *Handler) cannotSee(ctx context.Context, model string) string {
	caps, err := h.deps.Model.Capabilities(ctx, model)
	if err != nil { // the request goes as it would have
		h.deps.Log.Debug("could not learn what the model can do", "model", model, "err", err)
		return ""
	}
	if caps.Known && !caps.Has(aura.Vision) {
		return blindNotice(cmp.Or(model, h.cfg.DefaultModel))
	}
	return ""
}

func hasImages(window []history.Turn) bool {
	return slices.ContainsFunc(window, func(t history.Turn) bool { return len(t.Images) > 0 })
}

// imagesRefused is the notice under a request with pictures that the server refused (4xx).
func imagesRefused(err error) string {
	var se *aura.StatusError
	if errors.As(err, &se) && se.StatusCode >= 400 && se.StatusCode < 500 && !slices.Contains([]int{401, 404, 429}, se.StatusCode) {
		msg := "⚠️ The model server refused the request with the picture"
		if reason := se.UserReason(); reason != "" {
			msg += " (" + reason + ")"
		}
		return msg + ": this model may not see images. Choose one that does with /model, then send /retry."
	}
	return ""
}

// albums are the albums open now, by conversation and media group.
type albums struct {
	mu   sync.Mutex
	open map[albumKey]*album
}

type albumKey struct {
	k     history.Key
	group string // media_group_id; "" for a lone photo, an album of one
}

// album gathers the photo messages of one media group into a turn.
type album struct {
	key     albumKey
	more    chan struct{} // a photo joined
	mu      sync.Mutex
	items   []albumItem
	done    bool // gathered: later photos of the group start an album of their own
	settled bool // the updates after the first are finished
}

type albumItem struct {
	msg   *models.Message
	entry int64
}

// join adds a photo to the open album of its media group, or opens one, whose job must be queued.
func (as *albums) join(k history.Key, m *models.Message, entry int64) (a *album, opened bool) {
	item := albumItem{msg: m, entry: entry}
	key := albumKey{k, m.MediaGroupID}
	as.mu.Lock()
	defer as.mu.Unlock()
	if a := as.open[key]; a != nil {
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
	a = &album{key: key, items: []albumItem{item}, more: make(chan struct{}, 1), done: key.group == ""}
	if !a.done {
		as.open[key] = a
	}
	return a, true
}

// isOpen reports whether m belongs to an open album (whose later photos need no mention).
func (as *albums) isOpen(k history.Key, m *models.Message) bool {
	if m.MediaGroupID == "" || len(m.Photo) == 0 {
		return false
	}
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.open[albumKey{k, m.MediaGroupID}] != nil
}

func (as *albums) close(a *album) {
	as.mu.Lock()
	if as.open[a.key] == a {
		delete(as.open, a.key)
	}
	as.mu.Unlock()
	a.mu.Lock()
	a.done = true
	a.mu.Unlock()
}

// gather waits until no photo has joined for albumWait, closes the album and returns its photos.
func (a *album) gather(ctx context.Context, as *albums) (items []albumItem, ok bool) {
	if a.key.group != "" {
		t := time.NewTimer(albumWait)
		defer t.Stop()
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				waiting = false
			case <-a.more:
				t.Reset(albumWait)
			case <-t.C:
				waiting = false
			}
		}
	}
	as.close(a)
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.items, ctx.Err() == nil
}

// settle returns, once, the entries of the album's photos after first.
func (a *album) settle(first int64) []int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.settled {
		return nil
	}
	a.settled = true
	var entries []int64
	for _, it := range a.items {
		if it.entry != first {
			entries = append(entries, it.entry)
		}
	}
	return entries
}
