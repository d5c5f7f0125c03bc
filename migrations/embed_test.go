package migrations

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"testing"
)

// released pins the bytes of every migration that has shipped. A released
// migration never changes: databases out there have already run it, and
// would never run the new text. Fix forward with a new number instead. Add
// a line here when a new migration ships.
var released = map[string]string{
	"0001_conversations_turns.sql":      "6c3ec18a19890c5e6300ce3ce7674121c410c7ddf8b439abb71839ab22739e0a",
	"0002_turn_author_status_chars.sql": "de12ead7aec1e099708f56c9aab2bcc1ff675e06ec7bba3f02eabb652b71c74a",
	"0003_update_inbox.sql":             "adaed9446ce750086db13dfc76becd8ae425fb52217e8ecacfbc1c3dee3862f2",
	"0004_turn_token_count.sql":         "5ea3aa7cea48a6b326307334abfa54d78be63ee01f622b4d057dfed4a93bd69c",
	"0005_write_check_answer_once.sql":  "a96af5435c817662faea1704fa74b8e1db3be2c52fc15c3303357e0665022c1a",
	"0006_reply_journal.sql":            "a4908a256f56749610703624f0518acd607cc14f0fe55d72a4ff81335a2393d9",
	"0007_media_model.sql":              "e4293b89dc71fee805c05a4f453577fb8444976e36c9f54f2f6342a039054345",
	"0008_inbox_entries_lost_sends.sql": "def4033007a1081a849055f76d169d4709d16b737c0109449770b01c2f490c92",
}

func TestReleasedMigrationsUnchanged(t *testing.T) {
	for name, want := range released {
		b, err := fs.ReadFile(FS, name)
		if err != nil {
			t.Errorf("%s: %v (a released migration must stay)", name, err)
			continue
		}
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("%s: got sha256 %s, want %s: a released migration was edited; add a new one instead", name, got, want)
		}
	}
}

var name = regexp.MustCompile(`^(\d{4})_[a-z0-9_]+\.sql$`)

// Files are numbered 0001, 0002, ... without gaps or repeats, so that the
// order they run in is plain from a listing.
func TestMigrationNames(t *testing.T) {
	entries, err := fs.ReadDir(FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatal("got no migrations, want some")
	}
	for i, e := range entries {
		m := name.FindStringSubmatch(e.Name())
		if m == nil {
			t.Errorf("got %q, want NNNN_lower_case_words.sql", e.Name())
			continue
		}
		n, _ := strconv.Atoi(m[1])
		if want := i + 1; n != want {
			t.Errorf("got %q at position %d, want number %s", e.Name(), i+1, fmt.Sprintf("%04d", want))
		}
	}
}
