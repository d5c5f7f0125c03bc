package history

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// specialFiles makes a named pipe, a folder, and links to a device and to
// the pipe, and returns each path with what the error must say. Opening the
// pipe the usual way would block until a writer came: a test that hangs
// here (until go test's -timeout) is the bug.
func specialFiles(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.sqlite")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	folder := filepath.Join(dir, "folder.sqlite")
	if err := os.Mkdir(folder, 0o700); err != nil {
		t.Fatal(err)
	}
	linkToFIFO := filepath.Join(dir, "link.sqlite")
	if err := os.Symlink(fifo, linkToFIFO); err != nil {
		t.Fatal(err)
	}
	device := filepath.Join(dir, "null.sqlite")
	if err := os.Symlink(os.DevNull, device); err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		fifo:       "is a named pipe (FIFO), not a regular file",
		linkToFIFO: "is a named pipe (FIFO), not a regular file",
		folder:     "is a folder, not a regular file",
		device:     "is a device, not a regular file",
	}
}

func TestOpenRefusesSpecialFiles(t *testing.T) {
	for path, want := range specialFiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			wantOpenError(t, path, options{}, want)
			if msg := func() string { _, err := Open(t.Context(), path); return err.Error() }(); strings.Contains(msg, "\n") {
				t.Errorf("got %q, want one line", msg)
			}
		})
	}
}

func TestBackupFileRefusesSpecialFiles(t *testing.T) {
	for path, want := range specialFiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "copy.sqlite")
			err := BackupFile(t.Context(), path, dst)
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("got %v, want an error naming %s and saying %q", err, path, want)
			}
			if _, err := os.Stat(dst); !os.IsNotExist(err) {
				t.Errorf("copy: got %v, want no file", err)
			}
		})
	}
}

// The last check is made on the opened file itself: a named pipe that takes
// the place of the database between the look and the open is refused, not
// waited on.
func TestOpenRegularRefusesPipeWithoutBlocking(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, flag := range []int{os.O_RDONLY, os.O_RDWR | os.O_CREATE} {
		f, err := openRegular(fifo, flag)
		if err == nil {
			f.Close()
			t.Fatalf("flag %#x: got a file, want an error", flag)
		}
		if !strings.Contains(err.Error(), "named pipe") {
			t.Errorf("flag %#x: got %v, want it to say named pipe", flag, err)
		}
	}
}
