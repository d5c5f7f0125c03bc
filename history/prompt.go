package history

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// SystemPrompt returns the conversation's own system prompt; ok is false if
// it has none and the configured default applies. An empty prompt that was
// set on purpose is returned with ok true.
func (s *Store) SystemPrompt(ctx context.Context, k Key) (prompt string, ok bool, err error) {
	var p sql.NullString
	err = s.r.GetContext(ctx, &p, `SELECT system_prompt FROM conversations WHERE chat_id = ? AND thread_id = ?`,
		k.ChatID, k.ThreadID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("history: system prompt: %w", err)
	}
	return p.String, p.Valid, nil
}

// SetSystemPrompt sets the conversation's system prompt, creating the
// conversation if needed.
func (s *Store) SetSystemPrompt(ctx context.Context, k Key, prompt string) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO conversations (chat_id, thread_id, system_prompt, created_at)
		VALUES (?, ?, ?, ?)
		ON CONFLICT (chat_id, thread_id) DO UPDATE SET system_prompt = excluded.system_prompt`,
		k.ChatID, k.ThreadID, prompt, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("history: set system prompt: %w", writeFailed(err))
	}
	return nil
}

// ClearSystemPrompt removes the conversation's system prompt, so that the
// configured default applies again.
func (s *Store) ClearSystemPrompt(ctx context.Context, k Key) error {
	_, err := s.w.ExecContext(ctx, `UPDATE conversations SET system_prompt = NULL WHERE chat_id = ? AND thread_id = ?`,
		k.ChatID, k.ThreadID)
	if err != nil {
		return fmt.Errorf("history: clear system prompt: %w", writeFailed(err))
	}
	return nil
}
