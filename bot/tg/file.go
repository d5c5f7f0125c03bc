package tg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	tgbot "github.com/go-telegram/bot"
)

// MaxDownload is the largest file the Bot API lets a bot download; a local server has no limit.
const MaxDownload = 20 << 20

// ErrFileTooBig means a file is over the caller's limit or Telegram's; no more of it was read.
var ErrFileTooBig = errors.New("telegram: the file is too big")

// ErrLocalFile means getFile named a path on the Bot API server's disk that the bot may not read
// (outside TELEGRAM_LOCAL_FILES, or not a regular file); nothing of it was read.
var ErrLocalFile = errors.New("telegram: refused to read a file the Bot API server named on its disk")

// SetLocalFiles lets Download read the absolute paths a local Bot API server (telegram-bot-api
// --local) answers getFile with from dir, the server's --dir as the bot sees it: only regular
// files inside dir, no symbolic link leading out. Without it every file_path is fetched over
// HTTP. It is set before the first Download.
func (c *Client) SetLocalFiles(dir string) error {
	var real string
	var fi os.FileInfo
	abs, err := filepath.Abs(dir)
	if err == nil {
		real, err = filepath.EvalSymlinks(abs)
	}
	if err == nil {
		fi, err = os.Stat(real)
	}
	if err != nil {
		return fmt.Errorf("telegram: local files: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("telegram: local files: %s is not a directory", dir)
	}
	c.localDir, c.localReal = filepath.Clean(abs), real
	return nil
}

// Download fetches a file by its file_id: getFile, then the file over HTTP, or from the local
// files directory (SetLocalFiles) for an absolute path. Past limit bytes it fails with
// ErrFileTooBig.
func (c *Client) Download(ctx context.Context, fileID string, limit int64) ([]byte, error) {
	f, err := c.GetFile(ctx, &tgbot.GetFileParams{FileID: fileID})
	if err != nil {
		if errors.Is(err, tgbot.ErrorBadRequest) && badRequest(err, "file is too big") {
			return nil, fmt.Errorf("telegram: getFile: %w", ErrFileTooBig)
		}
		return nil, fmt.Errorf("telegram: getFile: %w", err)
	}
	if f.FileSize > limit {
		return nil, fmt.Errorf("telegram: %w (%d bytes)", ErrFileTooBig, f.FileSize)
	}
	var body io.ReadCloser
	if filepath.IsAbs(f.FilePath) && c.localDir != "" {
		body, err = c.openLocal(f.FilePath, limit)
	} else {
		body, err = c.get(ctx, f.FilePath)
	}
	if err != nil {
		return nil, err
	}
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("telegram: download: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("telegram: %w (more than %d bytes)", ErrFileTooBig, limit)
	}
	return data, nil
}

func (c *Client) get(ctx context.Context, filePath string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.FileURL(filePath), nil)
	if err != nil {
		return nil, fmt.Errorf("telegram: download: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("telegram: download: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		if filepath.IsAbs(filePath) {
			return nil, fmt.Errorf("telegram: download: status %d (the Bot API server answered a path on its own disk, as a local server does: set TELEGRAM_LOCAL_FILES to its directory to read it)", resp.StatusCode)
		}
		return nil, fmt.Errorf("telegram: download: status %d", resp.StatusCode)
	}
	return resp.Body, nil
}

// openLocal opens absolute path p if it is a regular file of at most limit bytes in localDir.
func (c *Client) openLocal(p string, limit int64) (io.ReadCloser, error) {
	rel, ok := inside(c.localDir, p)
	if !ok {
		rel, ok = inside(c.localReal, p)
	}
	if !ok {
		return nil, fmt.Errorf("%w: it is outside TELEGRAM_LOCAL_FILES", ErrLocalFile)
	}
	// The root keeps every step of the path, symbolic links included, inside the directory.
	root, err := os.OpenRoot(c.localReal)
	if err != nil {
		return nil, fmt.Errorf("telegram: local files: %w", err)
	}
	defer root.Close()
	// Non-blocking, so that a FIFO put there does not hold the reply up: it is refused below.
	file, err := root.OpenFile(rel, openLocalFlags, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLocalFile, err)
	}
	fi, err := file.Stat()
	switch {
	case err != nil:
		err = fmt.Errorf("%w: %w", ErrLocalFile, err)
	case !fi.Mode().IsRegular():
		err = fmt.Errorf("%w: it is not a regular file (%s)", ErrLocalFile, fi.Mode().Type())
	case fi.Size() > limit:
		err = fmt.Errorf("telegram: %w (%d bytes)", ErrFileTooBig, fi.Size())
	default:
		return file, nil
	}
	file.Close()
	return nil, err
}

// inside returns p relative to dir, if p is inside dir (after cleaning: no ".." leads out).
func inside(dir, p string) (string, bool) {
	rel, err := filepath.Rel(dir, filepath.Clean(p))
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", false
	}
	return rel, true
}

// CheckLocalFiles checks TELEGRAM_LOCAL_FILES: empty, or an existing directory.
func CheckLocalFiles(dir string) error {
	if dir == "" {
		return nil
	}
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		return fmt.Errorf("%q: no such directory (want the working directory of the local Bot API server, telegram-bot-api --dir, as this machine sees it)", dir)
	case !fi.IsDir():
		return fmt.Errorf("%q is not a directory", dir)
	}
	return nil
}
