-- The inbox gets ids of its own. Telegram numbers updates in sequence, but
-- after a week without updates it picks the next id at random, possibly below
-- every id seen before: update_id is no key. Each entry is numbered by seq
-- (which replaces update_id wherever the bot names an update: the journal,
-- Stop buttons); a redelivered update is recognised by its update_id among the
-- entries of the last day only (Telegram keeps an unconfirmed update 24 hours).
-- Entries that existed keep their update_id as their seq.
CREATE TABLE inbox (
    seq         INTEGER PRIMARY KEY,
    update_id   INTEGER NOT NULL,
    payload     TEXT    NOT NULL,           -- the update exactly as Telegram sent it (JSON)
    received_at INTEGER NOT NULL,           -- unix milliseconds, UTC
    done        INTEGER NOT NULL DEFAULT 0,
    done_at     INTEGER,
    undecodable INTEGER NOT NULL DEFAULT 0, -- kept raw for a later version; never handled
    attempts    INTEGER NOT NULL DEFAULT 0, -- times its handling started: a poisoned update is skipped
    shown       TEXT    NOT NULL DEFAULT '',
    final       INTEGER NOT NULL DEFAULT 0,
    notice      TEXT    NOT NULL DEFAULT '',
    plain       INTEGER NOT NULL DEFAULT 0,
    complete    INTEGER NOT NULL DEFAULT 0, -- a final answer that is whole (no notice, or an output limit's)
    legacy_ids  TEXT    NOT NULL DEFAULT '' -- message ids recorded before the journal (0006)
);

INSERT INTO inbox (seq, update_id, payload, received_at, done, done_at, undecodable, shown, final, notice, plain, complete, legacy_ids)
SELECT update_id, update_id, payload, received_at, done, done_at, undecodable, shown, final, notice, plain,
       notice = '' OR notice LIKE '✂️ The answer reached%', message_ids
FROM updates;

CREATE INDEX inbox_update ON inbox (update_id, received_at);
CREATE INDEX inbox_pending ON inbox (seq) WHERE done = 0;
CREATE INDEX inbox_done ON inbox (done_at) WHERE done = 1;

-- The messages of each reply, recorded before each send. floor is the highest
-- message id known in the chat when the send was first intended: a message the
-- send posted has a higher id. sent is exactly what the send carried (text,
-- entities, keyboard), so that it can be sent again and looked for. tries
-- counts earlier sends of it whose outcome is unknown.
CREATE TABLE inbox_messages (
    seq        INTEGER NOT NULL REFERENCES inbox (seq) ON DELETE CASCADE,
    idx        INTEGER NOT NULL,
    chat_id    INTEGER NOT NULL,
    message_id INTEGER NOT NULL DEFAULT 0, -- 0: sent, Telegram's answer not (yet) received
    floor      INTEGER NOT NULL DEFAULT 0,
    sent       TEXT    NOT NULL DEFAULT '',
    tries      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (seq, idx)
);

INSERT INTO inbox_messages (seq, idx, chat_id, message_id, floor)
SELECT m.update_id, m.idx, m.chat_id, m.message_id, u.floor
FROM reply_messages AS m JOIN updates AS u ON u.update_id = m.update_id;

CREATE INDEX inbox_messages_chat ON inbox_messages (chat_id, message_id);

-- Sends that may have posted a message nobody knows the id of: a copy lies
-- strictly between floor and ceiling (the id of a send of the same text that
-- came after it). They are looked for in the background and deleted; lo and hi
-- are how far the search has come from each end.
CREATE TABLE lost_sends (
    id         INTEGER PRIMARY KEY,
    chat_id    INTEGER NOT NULL,
    floor      INTEGER NOT NULL,
    ceiling    INTEGER NOT NULL,
    sent       TEXT    NOT NULL,
    copies     INTEGER NOT NULL, -- how many sends of it may have been carried out
    lo         INTEGER NOT NULL, -- every id in (floor, lo) was looked at
    hi         INTEGER NOT NULL, -- every id in (hi, ceiling) was looked at
    created_at INTEGER NOT NULL
);

DROP TABLE reply_messages;
DROP TABLE updates;

-- An answer is stored once per inbox entry, whether the reply finished at once, later in the
-- same run, or after a restart.
ALTER TABLE turns ADD COLUMN entry INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX turns_assistant_entry ON turns (conversation_id, entry)
    WHERE role = 'assistant' AND entry <> 0;
