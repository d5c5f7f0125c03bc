-- The update inbox. Every Telegram update is stored here before the bot tells
-- Telegram it has received it (the next getUpdates offset, or the webhook's
-- 200), and marked done once it has been handled, so that a crash at any
-- moment loses nothing: pending updates are handled after the restart.
--
-- message_ids and shown belong to a reply that is streaming: the Telegram
-- messages it has posted (comma-separated) and the text they show, so that a
-- reply cut by a crash can still be finalised with an "interrupted" notice.
CREATE TABLE updates (
    update_id   INTEGER PRIMARY KEY,
    payload     TEXT    NOT NULL,          -- the update as Telegram sent it (JSON)
    done        INTEGER NOT NULL DEFAULT 0,
    message_ids TEXT    NOT NULL DEFAULT '',
    shown       TEXT    NOT NULL DEFAULT '',
    received_at INTEGER NOT NULL,          -- unix milliseconds, UTC
    done_at     INTEGER
);

CREATE INDEX updates_pending ON updates (update_id) WHERE done = 0;
