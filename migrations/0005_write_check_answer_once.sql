-- write_checks: where the health check really writes. Store.CheckWrite
-- inserts a row with a payload bigger than a page, commits, then deletes it
-- and commits again: the table is empty between checks, so the pages it
-- used are free for turns, and each check needs room for a new write.
CREATE TABLE write_checks (
    id         INTEGER PRIMARY KEY,
    payload    BLOB    NOT NULL,
    checked_at INTEGER NOT NULL -- unix milliseconds, UTC
);
