package conversation

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"

	tgbot "github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"aurabot/aura"
	"aurabot/bot/reply"
	"aurabot/bot/tg"
	"aurabot/history"
)

// ModelChoice is a model /model offers.
type ModelChoice struct {
	ID   string // what the model server calls it
	Name string // what people see; "" means ID
}

func (c ModelChoice) label() string {
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}

// maxModelButtons bounds the picker: Telegram takes 100 buttons at most, and a router that
// offers hundreds of models makes a keyboard nobody scrolls. The rest are named by /model <name>.
const maxModelButtons = 40

const callbackModel = "model"

// models is what /model offers: Config.Models, or else the list the model server gives (its
// client caches it for a minute).
func (h *Handler) models(ctx context.Context) ([]ModelChoice, error) {
	if len(h.cfg.Models) > 0 {
		return h.cfg.Models, nil
	}
	ids, err := h.deps.Model.Models(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ModelChoice, 0, len(ids))
	for _, id := range ids {
		out = append(out, ModelChoice{ID: id})
	}
	return out, nil
}

// model is the model conversation k asks for: its own choice, or the default. A choice that
// AURA_MODELS no longer lists falls back to the default.
func (h *Handler) model(ctx context.Context, k history.Key) string {
	m, ok, err := h.deps.Store.Model(ctx, k)
	if err != nil {
		h.deps.Log.Error("load the model", "chat_id", k.ChatID, "err", err)
	}
	if !ok || err != nil || m == "" {
		return h.cfg.DefaultModel
	}
	if len(h.cfg.Models) > 0 && !slices.ContainsFunc(h.cfg.Models, func(c ModelChoice) bool { return aura.SameModel(c.ID, m) }) {
		return h.cfg.DefaultModel
	}
	return m
}

// choiceOf finds id in the list, for its display name: "name" and "name:latest" are one model
// (aura.SameModel).
func choiceOf(list []ModelChoice, id string) ModelChoice {
	if i := indexOf(list, id); i >= 0 {
		return list[i]
	}
	return ModelChoice{ID: id}
}

// indexOf is the index of the model id in list, or -1: the same id, else the same model.
func indexOf(list []ModelChoice, id string) int {
	if i := slices.IndexFunc(list, func(c ModelChoice) bool { return c.ID == id }); i >= 0 {
		return i
	}
	return slices.IndexFunc(list, func(c ModelChoice) bool { return aura.SameModel(c.ID, id) })
}

// modelData is the callback data of the button for list[i]: its index, and a hash of its id so
// that a press on a list that has changed since it was shown switches to nothing rather than to
// another model. Always far below Telegram's 64 bytes.
func modelData(i int, id string) string {
	f := fnv.New32a()
	f.Write([]byte(id))
	return callbackModel + ":" + strconv.Itoa(i) + ":" + strconv.FormatUint(uint64(f.Sum32()), 36)
}

// cmdModel shows the model and a keyboard of the others (/model), or switches to one by its id
// or name (/model <name>).
func (h *Handler) cmdModel(ctx context.Context, r req, arg string) result {
	list, err := h.models(ctx)
	if err != nil {
		h.deps.Log.Warn("could not list the models", "err", err)
		return h.notify(ctx, r, "Sorry, I could not get the list of models from the model server: "+modelsFailure(err))
	}
	current := choiceOf(list, h.model(ctx, r.k))
	if arg == "" {
		return h.showPicker(ctx, r, list, current)
	}
	choice, res, ok := h.findModel(ctx, r, list, arg)
	if !ok {
		return res
	}
	if err := h.deps.Store.SetModel(ctx, r.k, choice.ID); err != nil {
		return h.storeFailed(ctx, r, "save the model", err)
	}
	return h.notify(ctx, r, switched(choice))
}

// findModel finds the model /model <arg> names: in the list by id ("name" and "name:latest"
// being one), by id or name in any case; else, when the list is the server's own (no
// AURA_MODELS), any model the server says it serves. When there is none it tells the user and
// reports false, with what became of the update.
func (h *Handler) findModel(ctx context.Context, r req, list []ModelChoice, arg string) (ModelChoice, result, bool) {
	if i := indexOf(list, arg); i >= 0 {
		return list[i], done, true
	}
	if i := slices.IndexFunc(list, func(c ModelChoice) bool { return strings.EqualFold(c.ID, arg) || strings.EqualFold(c.label(), arg) }); i >= 0 {
		return list[i], done, true
	}
	if len(h.cfg.Models) == 0 {
		// The list may leave out what the server serves (a model Ollama loads by name, one a
		// router does not list): ask it.
		ok, err := h.deps.Model.HasModel(ctx, arg)
		if err != nil {
			h.deps.Log.Warn("could not ask the model server about a model", "model", arg, "err", err)
			return ModelChoice{}, h.notify(ctx, r, fmt.Sprintf("Sorry, I could not ask the model server about %q: %s", arg, modelsFailure(err))), false
		}
		if ok {
			return ModelChoice{ID: arg}, done, true
		}
	}
	return ModelChoice{}, h.notify(ctx, r, fmt.Sprintf("There is no model %q here. Send /model to see the ones you can choose.", arg)), false
}

func switched(c ModelChoice) string {
	return "Switched to " + c.label() + ". It answers from your next message (/retry asks it about your last one)."
}

// modelsFailure says why the list could not be had, fit for a user.
func modelsFailure(err error) string {
	var se *aura.StatusError
	if errors.As(err, &se) {
		if r := se.UserReason(); r != "" {
			return strconv.Itoa(se.StatusCode) + " " + r + "."
		}
		return "HTTP status " + strconv.Itoa(se.StatusCode) + "."
	}
	return modelFailure(err).Notice
}

// showPicker answers /model with the current model and, when there is a choice, a keyboard.
// The text goes out like any notice, through the journal; the keyboard follows on the message.
func (h *Handler) showPicker(ctx context.Context, r req, list []ModelChoice, current ModelChoice) result {
	text := "The model is " + current.label() + "."
	if !slices.ContainsFunc(list, func(c ModelChoice) bool { return !aura.SameModel(c.ID, current.ID) }) {
		return h.notify(ctx, r, text+" This bot offers no other.")
	}
	var kb tg.Keyboard
	for i, c := range list[:min(len(list), maxModelButtons)] {
		label := c.label()
		if aura.SameModel(c.ID, current.ID) {
			label = "✓ " + label
		}
		kb.Rows = append(kb.Rows, []tg.Button{{Text: label, Data: modelData(i, c.ID)}})
	}
	text += " Choose another:"
	if len(list) > maxModelButtons {
		text += fmt.Sprintf(" (the first %d of %d; /model <name> picks any of them)", maxModelButtons, len(list))
	}
	if res := h.notify(ctx, r, text); res != done {
		return res
	}
	ids := h.replyIDs(ctx, r)
	if len(ids) == 0 || ids[len(ids)-1] == 0 {
		return done
	}
	fctx, cancel := reply.FinalContext(ctx)
	defer cancel()
	_, err := tg.Call(fctx, h.deps.Pacer, h.deps.Log, r.t.ChatID, func(ctx context.Context) (*models.Message, error) {
		return h.deps.TG.EditMessageReplyMarkup(ctx, &tgbot.EditMessageReplyMarkupParams{
			ChatID: r.t.ChatID, MessageID: ids[len(ids)-1], ReplyMarkup: kb,
		})
	})
	if err != nil && fctx.Err() == nil {
		h.deps.Log.Warn("could not show the model keyboard", "chat_id", r.t.ChatID, "err", err)
	}
	return done
}

// replyIDs are the ids of the messages of r's reply, as its journal recorded them.
func (h *Handler) replyIDs(ctx context.Context, r req) []int {
	if r.entry == 0 {
		return nil
	}
	u, err := h.deps.Journal.Get(ctx, r.entry)
	if err != nil {
		return nil
	}
	ids := make([]int, 0, len(u.Reply.Parts))
	for _, p := range u.Reply.Parts {
		ids = append(ids, int(p.ID))
	}
	return ids
}

// onModelPress switches the conversation of the picker msg to the model whose button was
// pressed, if the presser steers it. It runs in the conversation's notice queue: a switch need
// not wait for the reply streaming now, which keeps the model it started with.
func (h *Handler) onModelPress(ctx context.Context, q *models.CallbackQuery, msg *models.Message, arg string) {
	r := reqOf(0, msg)
	r.from, r.anonAdmin = q.From.ID, false
	_, ok, _ := h.queue.submitCapped(ctx, r.k, job{notice: true, user: r.from, run: func(ctx context.Context) {
		if h.closing.Load() {
			h.side.answerCallback(ctx, q.ID, "")
			return
		}
		if !h.steers(ctx, r, 0) {
			h.side.answerCallback(ctx, q.ID, notSteward["model"])
			return
		}
		list, err := h.models(ctx)
		if err != nil {
			h.side.answerCallback(ctx, q.ID, "I could not get the list of models. Please try again.")
			return
		}
		idx, _, _ := strings.Cut(arg, ":")
		i, err := strconv.Atoi(idx)
		if err != nil || i < 0 || i >= len(list) || modelData(i, list[i].ID) != callbackModel+":"+arg {
			h.side.answerCallback(ctx, q.ID, "The list of models has changed: send /model again.")
			return
		}
		if err := h.deps.Store.SetModel(ctx, r.k, list[i].ID); err != nil {
			h.deps.Log.Error("store failed", "what", "save the model", "chat_id", r.t.ChatID, "err", err)
			h.side.answerCallback(ctx, q.ID, "Sorry, the bot's database failed. Please try again later.")
			return
		}
		h.side.answerCallback(ctx, q.ID, "Switched to "+list[i].label()+".")
		h.side.editText(ctx, r.t.ChatID, msg.ID, switched(list[i]))
	}})
	if !ok { // presses faster than they are answered
		h.side.answerCallback(ctx, q.ID, "")
	}
}

// editText replaces the text of message msgID of chat, which loses its keyboard: the model
// picker, once a model is chosen.
func (s *sideCalls) editText(ctx context.Context, chat int64, msgID int, text string) {
	s.wg.Go(func() {
		cctx, cancel := tg.Background(ctx, sideTimeout)
		defer cancel()
		_, err := tg.Call(cctx, s.deps.Pacer, s.deps.Log, chat, func(ctx context.Context) (*models.Message, error) {
			return s.deps.TG.EditMessageText(ctx, &tgbot.EditMessageTextParams{ChatID: chat, MessageID: msgID, Text: text})
		})
		if err != nil && !tg.NotModified(err) {
			s.deps.Log.Debug("could not edit the model picker", "chat_id", chat, "err", err)
		}
	})
}
