-- The reply journal. Before every Telegram call that shows a reply, the bot records what it is
-- about to do: the text it is about to show (updates.shown; final = 1 once it is the complete
-- answer or a notice) and each message it is about to send (reply_messages, message_id 0 until
-- Telegram's answer gives the id). A restart finishes every reply from this record, whatever
-- was killed or lost between two lines, and finds a message whose send had no answer.
ALTER TABLE updates ADD COLUMN final INTEGER NOT NULL DEFAULT 0;
ALTER TABLE updates ADD COLUMN notice TEXT NOT NULL DEFAULT '';
ALTER TABLE updates ADD COLUMN plain INTEGER NOT NULL DEFAULT 0;      -- a notice: plain text
ALTER TABLE updates ADD COLUMN floor INTEGER NOT NULL DEFAULT 0;      -- highest message id known in the chat when a send was intended
ALTER TABLE updates ADD COLUMN undecodable INTEGER NOT NULL DEFAULT 0; -- kept raw for a later version; never handled

CREATE TABLE reply_messages (
    update_id  INTEGER NOT NULL REFERENCES updates (update_id) ON DELETE CASCADE,
    idx        INTEGER NOT NULL, -- the message's place in the reply
    chat_id    INTEGER NOT NULL,
    message_id INTEGER NOT NULL DEFAULT 0 -- 0: sent, Telegram's answer not (yet) received
);

CREATE INDEX reply_messages_update ON reply_messages (update_id, idx);
CREATE INDEX reply_messages_chat ON reply_messages (chat_id, message_id);
