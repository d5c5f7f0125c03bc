-- A conversation is a chat, or a topic inside a chat (thread_id 0 = no topic).
-- system_prompt NULL means "use the configured default".
CREATE TABLE conversations (
    id            INTEGER PRIMARY KEY,
    chat_id       INTEGER NOT NULL,
    thread_id     INTEGER NOT NULL DEFAULT 0,
    system_prompt TEXT,
    created_at    INTEGER NOT NULL, -- unix milliseconds, UTC
    UNIQUE (chat_id, thread_id)
);

-- One message of a conversation, in order of id. message_id is the Telegram
-- message it belongs to (the user's message, or the first message of the
-- reply); 0 = none.
CREATE TABLE turns (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role            TEXT    NOT NULL CHECK (role IN ('user', 'assistant')),
    content         TEXT    NOT NULL,
    message_id      INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL -- unix milliseconds, UTC
);

CREATE INDEX turns_conversation ON turns (conversation_id, id);
