// Package migrations holds the database schema of the conversation store as
// numbered SQL files, embedded into the binary.
//
// Files are named NNNN_description.sql and are applied in numeric order by
// the history package when the store opens, each once, each in its own
// transaction. It holds no Go logic beyond the embedding: the runner lives in
// history, next to the code that depends on the schema.
//
// A released migration never changes: the bytes of every file that has
// shipped are pinned by a test. To change the schema, add the next number.
// A migration runs inside a transaction, so it must not contain statements
// that SQLite refuses there (VACUUM, PRAGMA journal_mode, PRAGMA foreign_keys).
package migrations

import "embed"

// FS holds every migration file at its root, named NNNN_description.sql.
//
//go:embed *.sql
var FS embed.FS
