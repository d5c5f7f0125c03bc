-- Texts are now sent (and counted) with special tokens defused: a zero-width space after the
-- "<|" of anything shaped like <|name|>, which costs a token more each. Turns stored before are
-- counted again by the store's background counter.
UPDATE turns SET token_count = NULL WHERE instr(content, '<|') > 0 OR instr(author, '<|') > 0;
