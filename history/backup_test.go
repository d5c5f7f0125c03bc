package history

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// A backup taken while another store keeps writing to the same file opens as a store of its own
// and holds every turn committed before it began.
func TestBackupWhileWriting(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "bot.db")
	s, err := Open(t.Context(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k := Key{ChatID: 42, ThreadID: 3}
	for i, c := range []string{"hello", "hi there", "how are you?"} {
		role := RoleUser
		if i%2 == 1 {
			role = RoleAssistant
		}
		mustAppend(t, s, k, Turn{Role: role, Content: c, MessageID: int64(i + 1)})
	}
	if err := s.SetSystemPrompt(t.Context(), k, "Be brief."); err != nil {
		t.Fatal(err)
	}
	want := mustTurns(t, s, k)

	// A second store on the same file (as another process would be) keeps writing meanwhile.
	other, err := Open(t.Context(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, _, err := other.Append(t.Context(), Key{ChatID: 7}, Turn{Role: RoleUser, Content: strings.Repeat("x", 100)}); err != nil {
				t.Errorf("append during backup: %v", err)
				return
			}
		}
	})

	path := filepath.Join(dir, "backup.db")
	err = s.Backup(t.Context(), path)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: got %v, %v, want mode 0600", fi, err)
	}

	b, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("open the backup: %v", err)
	}
	defer b.Close()
	got := mustTurns(t, b, k)
	if !slices.EqualFunc(got, want, func(a, b Turn) bool {
		return a.ID == b.ID && a.Role == b.Role && a.Content == b.Content && a.MessageID == b.MessageID && a.CreatedAt.Equal(b.CreatedAt)
	}) {
		t.Errorf("turns in the backup: got %v, want %v", contents(got), contents(want))
	}
	if p, ok, err := b.SystemPrompt(t.Context(), k); err != nil || !ok || p != "Be brief." {
		t.Errorf("system prompt in the backup: got %q, %v, %v, want %q", p, ok, err, "Be brief.")
	}
}

func TestBackupRefusesToOverwrite(t *testing.T) {
	s := openTest(t)
	path := filepath.Join(t.TempDir(), "exists.db")
	if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := s.Backup(t.Context(), path)
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("got %v, want an error saying the file already exists", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "keep me" {
		t.Errorf("the existing file: got %q, want it unchanged", b)
	}
}

func TestBackupIntoMissingFolderLeavesNothing(t *testing.T) {
	s := openTest(t)
	path := filepath.Join(t.TempDir(), "no", "such", "folder", "b.db")
	if err := s.Backup(t.Context(), path); err == nil {
		t.Fatal("got no error for a missing folder, want one")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("got %v, want no file left behind", err)
	}
}
