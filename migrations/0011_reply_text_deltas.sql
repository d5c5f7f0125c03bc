-- What a streaming reply adds to the text it shows, recorded as it grows: before each edit the
-- journal writes only the new end (text, at byte offset pos of the whole), not the whole text
-- again. The text a reply was about to show is inbox.shown followed by its rows here in order
-- of pos. Writing inbox.shown afresh (a text that does not extend the last one, or a final one)
-- deletes them.
CREATE TABLE inbox_shown (
    seq  INTEGER NOT NULL REFERENCES inbox (seq) ON DELETE CASCADE,
    pos  INTEGER NOT NULL,
    text TEXT    NOT NULL,
    PRIMARY KEY (seq, pos)
) WITHOUT ROWID;
