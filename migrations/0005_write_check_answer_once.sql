-- write_checks: where the health check really writes. Store.CheckWrite
-- inserts a row with a payload bigger than a page, commits, then deletes it
-- and commits again: the table is empty between checks, so the pages it
-- used are free for turns, and each check needs room for a new write.
CREATE TABLE write_checks (
    id         INTEGER PRIMARY KEY,
    payload    BLOB    NOT NULL,
    checked_at INTEGER NOT NULL -- unix milliseconds, UTC
);

-- An answer is stored once per conversation, like a user's message (0002):
-- a recovery after a crash that stores the same answer again must keep one.
-- Copies already stored twice: a later copy identical to the first is
-- deleted (nothing is lost); one that differs is kept but unlinked from the
-- Telegram message, so the unique index below can be built.
DELETE FROM turns
WHERE role = 'assistant'
  AND message_id <> 0
  AND EXISTS (
      SELECT 1 FROM turns AS first
      WHERE first.conversation_id = turns.conversation_id
        AND first.role = 'assistant'
        AND first.message_id = turns.message_id
        AND first.id < turns.id
        AND first.content = turns.content
        AND first.status = turns.status
  );

UPDATE turns SET message_id = 0
WHERE role = 'assistant'
  AND message_id <> 0
  AND id NOT IN (
      SELECT min(id) FROM turns
      WHERE role = 'assistant' AND message_id <> 0
      GROUP BY conversation_id, message_id
  );

CREATE UNIQUE INDEX turns_assistant_message ON turns (conversation_id, message_id)
    WHERE role = 'assistant' AND message_id <> 0;
