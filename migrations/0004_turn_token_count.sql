-- token_count: the turn's tokens in the cl100k_base encoding, counted the way
-- a chatbot-ui server counts them when it trims a request to the model's
-- token limit. It counts the text the bot sends for the turn (an "Author: "
-- prefix on a group member's turn, the cut-off marker on a broken answer), as
-- char_count now does too. NULL means "not counted yet": SQL cannot tokenize,
-- so the store counts such rows in Go when it opens, and recounts their
-- char_count at the same time.
ALTER TABLE turns ADD COLUMN token_count INTEGER;

-- Finds the rows left to count at once, and is empty (costs nothing) once
-- they are counted: every turn stored from now on has its count.
CREATE INDEX turns_uncounted ON turns (id) WHERE token_count IS NULL;

-- The context window sums both counts newest-first from the index alone.
DROP INDEX turns_window;
CREATE INDEX turns_window ON turns (conversation_id, id, role, char_count, token_count);
