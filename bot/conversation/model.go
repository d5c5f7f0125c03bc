package conversation

import (
	"cmp"
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

func (c ModelChoice) label() string { return cmp.Or(c.Name, c.ID) }

// maxModelButtons bounds the picker: Telegram takes 100 buttons, and nobody scrolls hundreds.
const maxModelButtons = 40

const callbackModel = "model"

// models is what /model offers: Config.Models, or else the list the model server gives.
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

// model is conversation k's choice (if AURA_MODELS still lists it), else the default.
func (h *Handler) model(ctx context.Context, k history.Key) string {
	m, ok, err := h.deps.Store.Model(ctx, k)
	if err != nil {
		h.deps.Log.Error("load the model", "chat_id", k.ChatID, "err", err)
	}
	if !ok || err != nil || m == "" {
		return h.cfg.DefaultModel
	}
	if len(h.cfg.Models) > 0 && indexOf(h.cfg.Models, m) < 0 {
		return h.cfg.DefaultModel
	}
	return m
}

// indexOf is the index of the model id in list, or -1: the same id, else aura.SameModel.
func indexOf(list []ModelChoice, id string) int {
	if i := slices.IndexFunc(list, func(c ModelChoice) bool { return c.ID == id }); i >= 0 {
		return i
	}
	return slices.IndexFunc(list, func(c ModelChoice) bool { return aura.SameModel(c.ID, id) })
}

// modelData is the callback data of list[i]'s button: the index, and a hash of the id so that
// a press on a list that has changed since switches to nothing rather than to another.
func modelData(i int, id string) string {
	f := fnv.New32a()
	f.Write([]byte(id))
	return callbackModel + ":" + strconv.Itoa(i) + ":" + strconv.FormatUint(uint64(f.Sum32()), 36)
}

// cmdModel shows the model and a keyboard of the others (/model), or switches (/model <name>).
func (h *Handler) cmdModel(ctx context.Context, r req, arg string) result {
	list, err := h.models(ctx)
	if err != nil {
		h.deps.Log.Warn("could not list the models", "err", err)
		return h.notify(ctx, r, "Sorry, I could not get the list of models from the model server: "+modelsFailure(err))
	}
	current := ModelChoice{ID: h.model(ctx, r.k)}
	if i := indexOf(list, current.ID); i >= 0 {
		current = list[i]
	}
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

// findModel finds the model /model <arg> names: in the list by id, then by id or name in any
// case; else, with the server's own list, any model it serves. If none, it tells the user.
func (h *Handler) findModel(ctx context.Context, r req, list []ModelChoice, arg string) (ModelChoice, result, bool) {
	if i := indexOf(list, arg); i >= 0 {
		return list[i], done, true
	}
	if i := slices.IndexFunc(list, func(c ModelChoice) bool { return strings.EqualFold(c.ID, arg) || strings.EqualFold(c.label(), arg) }); i >= 0 {
		return list[i], done, true
	}
	if len(h.cfg.Models) == 0 {
		// The list may leave out what the server serves (Ollama, routers): ask it.
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

// showPicker answers /model with the current model, then adds a keyboard of the others.
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
	rec, _ := h.recordedOf(ctx, r)
	if len(rec.Parts) == 0 || rec.Parts[len(rec.Parts)-1].ID == 0 {
		return done
	}
	fctx, cancel := reply.FinalContext(ctx)
	defer cancel()
	_, err := tg.Call(fctx, h.deps.Pacer, h.deps.Log, r.t.ChatID, func(ctx context.Context) (*models.Message, error) {
		return h.deps.TG.EditMessageReplyMarkup(ctx, &tgbot.EditMessageReplyMarkupParams{
			ChatID: r.t.ChatID, MessageID: rec.Parts[len(rec.Parts)-1].ID, ReplyMarkup: kb,
		})
	})
	if err != nil && fctx.Err() == nil {
		h.deps.Log.Warn("could not show the model keyboard", "chat_id", r.t.ChatID, "err", err)
	}
	return done
}

// onModelPress switches msg's conversation to the model pressed, from the notice lane.
func (h *Handler) onModelPress(ctx context.Context, q *models.CallbackQuery, msg *models.Message, arg string) {
	r := reqOf(0, msg)
	r.from, r.anonAdmin = q.From.ID, false
	_, ok, _ := h.queue.submitCapped(ctx, r.k, job{notice: true, user: r.from, run: func(ctx context.Context) {
		answer, choice := h.pressModel(ctx, r, arg)
		h.side.answerCallback(ctx, q.ID, answer)
		if choice != nil {
			h.side.editText(ctx, r.t.ChatID, msg.ID, switched(*choice))
		}
	}})
	if !ok { // presses faster than they are answered
		h.side.answerCallback(ctx, q.ID, "")
	}
}

// pressModel switches to the model pressed if the presser steers: the answer, and the model.
func (h *Handler) pressModel(ctx context.Context, r req, arg string) (string, *ModelChoice) {
	switch {
	case h.closing.Load():
		return "", nil
	case !h.steers(ctx, r, 0):
		return notSteward["model"], nil
	}
	list, err := h.models(ctx)
	if err != nil {
		return "I could not get the list of models. Please try again.", nil
	}
	idx, _, _ := strings.Cut(arg, ":")
	i, err := strconv.Atoi(idx)
	if err != nil || i < 0 || i >= len(list) || modelData(i, list[i].ID) != callbackModel+":"+arg {
		return "The list of models has changed: send /model again.", nil
	}
	if err := h.deps.Store.SetModel(ctx, r.k, list[i].ID); err != nil {
		h.deps.Log.Error("store failed", "what", "save the model", "chat_id", r.t.ChatID, "err", err)
		return "Sorry, the bot's database failed. Please try again later.", nil
	}
	return "Switched to " + list[i].label() + ".", &list[i]
}
