-- The summary of a conversation's oldest turns, written by the model in the background once the
-- turns that fit the context window no longer hold the whole conversation. It leads the context
-- (after the system prompt) from then on. summary_through is the id of the newest turn it
-- covers: the turns up to it are not sent any more. '' and 0: no summary. /reset clears it.
ALTER TABLE conversations ADD COLUMN summary TEXT NOT NULL DEFAULT '';
ALTER TABLE conversations ADD COLUMN summary_through INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN summary_at INTEGER NOT NULL DEFAULT 0; -- unix milliseconds, UTC

-- The message a user turn replies to, quoted with it: its text (bounded), who wrote it (a
-- member's name in a group; '' when not known) and whether it was the bot's own. The quote is
-- part of the text sent for the turn, and counted in char_count and token_count with it.
ALTER TABLE turns ADD COLUMN quote TEXT NOT NULL DEFAULT '';
ALTER TABLE turns ADD COLUMN quote_author TEXT NOT NULL DEFAULT '';
ALTER TABLE turns ADD COLUMN quote_bot INTEGER NOT NULL DEFAULT 0;

-- Tokens used, per user, chat, day (UTC, YYYY-MM-DD) and kind ('chat': answers; 'summary': the
-- background summaries a user's conversation needed). tokens_in and tokens_out are the model
-- server's usage when it sent one, else the bot's own count. name is the user's display name as
-- last seen, for /usage all.
CREATE TABLE usage (
    user_id    INTEGER NOT NULL,
    chat_id    INTEGER NOT NULL,
    day        TEXT    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('chat', 'summary')),
    name       TEXT    NOT NULL DEFAULT '',
    tokens_in  INTEGER NOT NULL DEFAULT 0,
    tokens_out INTEGER NOT NULL DEFAULT 0,
    requests   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, day, chat_id, kind)
);

CREATE INDEX usage_day ON usage (day);
