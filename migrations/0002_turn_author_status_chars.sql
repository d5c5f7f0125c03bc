-- author: display name of the user who wrote a user turn (groups).
-- status: 'cut' marks an assistant reply that broke off; content is what the
-- user saw.
-- char_count: Unicode code points in content, so the context window can be
-- sized from the index without reading any content.
ALTER TABLE turns ADD COLUMN author TEXT NOT NULL DEFAULT '';
ALTER TABLE turns ADD COLUMN status TEXT NOT NULL DEFAULT 'done' CHECK (status IN ('done', 'cut'));
ALTER TABLE turns ADD COLUMN char_count INTEGER NOT NULL DEFAULT 0;

-- length() counts characters of UTF-8 text, as utf8.RuneCountInString does
-- (they differ only on NUL bytes and invalid UTF-8, which Telegram text has not).
UPDATE turns SET char_count = length(content);

-- 0001 did not stop a redelivered update from being stored twice. Keep every
-- such copy (nothing is deleted) but unlink all but the first from its
-- Telegram message, so the unique index below can be built.
UPDATE turns SET message_id = 0
WHERE role = 'user'
  AND message_id <> 0
  AND id NOT IN (
      SELECT min(id) FROM turns
      WHERE role = 'user' AND message_id <> 0
      GROUP BY conversation_id, message_id
  );

-- A Telegram message is stored once per conversation: the index, not a check
-- in Go, is what makes a redelivered update a no-op.
CREATE UNIQUE INDEX turns_user_message ON turns (conversation_id, message_id)
    WHERE role = 'user' AND message_id <> 0;

-- The context window walks a conversation newest-first summing char_count;
-- carrying role and char_count in the index lets it do so without touching
-- the table rows (and their content). It supersedes turns_conversation.
CREATE INDEX turns_window ON turns (conversation_id, id, role, char_count);
DROP INDEX turns_conversation;
