// Package migrations holds the database schema of the conversation store as numbered SQL files
// (NNNN_description.sql), embedded into the binary. history applies them in numeric order when
// the store opens, each once, each in its own transaction: a migration must not contain what
// SQLite refuses there (VACUUM, PRAGMA journal_mode, PRAGMA foreign_keys).
//
// A released migration never changes: the bytes of every file that has shipped are pinned by a
// test. To change the schema, add the next number.
package migrations

import "embed"

// FS holds every migration file at its root.
//
//go:embed *.sql
var FS embed.FS
