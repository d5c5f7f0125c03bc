-- model: the model a conversation chose with /model; NULL means the configured
-- default (AURA_MODEL), like system_prompt.
ALTER TABLE conversations ADD COLUMN model TEXT;

-- The pictures sent with a user turn, in order. They live in the database, not
-- in files beside it, so that a backup (VACUUM INTO) holds them; they go with
-- their turn (/reset, /retry's rewind) by the foreign key.
CREATE TABLE turn_images (
    turn_id INTEGER NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
    idx     INTEGER NOT NULL, -- the image's place in the turn
    mime    TEXT    NOT NULL,
    data    BLOB    NOT NULL,
    PRIMARY KEY (turn_id, idx)
);

-- image_count: how many turn_images rows the turn has, so that the context
-- window can count each image at a fixed cost from the index alone.
-- audio_file_id, audio_name: the Telegram file of a voice message, an audio
-- file or a video note, kept so that /retry can transcribe it again after a
-- failure; content stays '' until a transcript is stored.
ALTER TABLE turns ADD COLUMN image_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE turns ADD COLUMN audio_file_id TEXT NOT NULL DEFAULT '';
ALTER TABLE turns ADD COLUMN audio_name TEXT NOT NULL DEFAULT '';

DROP INDEX turns_window;
CREATE INDEX turns_window ON turns (conversation_id, id, role, char_count, token_count, image_count);
