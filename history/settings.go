package history

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"aurabot/history/internal/sqldb"
)

// SystemPrompt returns the conversation's own system prompt; ok is false if it has none and the
// configured default applies. An empty prompt that was set on purpose is returned with ok true.
func (s *Store) SystemPrompt(ctx context.Context, k Key) (prompt string, ok bool, err error) {
	return s.setting(ctx, k, "system_prompt", "history: system prompt")
}

// SetSystemPrompt sets the conversation's system prompt, creating the conversation if needed.
func (s *Store) SetSystemPrompt(ctx context.Context, k Key, prompt string) error {
	return s.set(ctx, k, "system_prompt", prompt, "history: set system prompt")
}

// ClearSystemPrompt removes the conversation's system prompt, so that the configured default
// applies again.
func (s *Store) ClearSystemPrompt(ctx context.Context, k Key) error {
	_, err := sqldb.Exec(ctx, s.w, "history: clear system prompt",
		`UPDATE conversations SET system_prompt = NULL WHERE chat_id = ? AND thread_id = ?`, k.ChatID, k.ThreadID)
	return err
}

// Model returns the model the conversation chose; ok is false if it chose none and the
// configured default applies.
func (s *Store) Model(ctx context.Context, k Key) (model string, ok bool, err error) {
	return s.setting(ctx, k, "model", "history: model")
}

// SetModel sets the conversation's model, creating the conversation if needed.
func (s *Store) SetModel(ctx context.Context, k Key, model string) error {
	return s.set(ctx, k, "model", model, "history: set model")
}

// setting reads a conversation's column; ok is false when it is NULL or there is none.
func (s *Store) setting(ctx context.Context, k Key, column, what string) (v string, ok bool, err error) {
	var n sql.NullString
	err = s.r.GetContext(ctx, &n, `SELECT `+column+` FROM conversations WHERE chat_id = ? AND thread_id = ?`, k.ChatID, k.ThreadID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", what, err)
	}
	return n.String, n.Valid, nil
}

func (s *Store) set(ctx context.Context, k Key, column, v, what string) error {
	_, err := sqldb.Exec(ctx, s.w, what, `INSERT INTO conversations (chat_id, thread_id, `+column+`, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (chat_id, thread_id) DO UPDATE SET `+column+` = excluded.`+column,
		k.ChatID, k.ThreadID, v, time.Now().UnixMilli())
	return err
}
