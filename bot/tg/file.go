package tg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	tgbot "github.com/go-telegram/bot"
)

// MaxDownload is the largest file the Bot API lets a bot download (20 MB); a local Bot API
// server (--local) has no such limit.
const MaxDownload = 20 << 20

// ErrFileTooBig means a file is larger than the caller's limit, or than Telegram hands out to
// bots; nothing more of it was read.
var ErrFileTooBig = errors.New("telegram: the file is too big")

// Download fetches a file a user sent, by its file_id: getFile, then the file itself from
// {api}/file/bot<token>/<file_path>, or, from a local Bot API server started with --local,
// which answers an absolute path on its own disk, from that path. It reads at most limit
// bytes and fails with ErrFileTooBig past them. Its errors never hold the token, which the
// download URL carries.
func (c *Client) Download(ctx context.Context, fileID string, limit int64) ([]byte, error) {
	f, err := c.GetFile(ctx, &tgbot.GetFileParams{FileID: fileID})
	if err != nil {
		if errors.Is(err, tgbot.ErrorBadRequest) && badRequest(err, "file is too big") {
			return nil, fmt.Errorf("telegram: getFile: %w", ErrFileTooBig)
		}
		return nil, fmt.Errorf("telegram: getFile: %w", c.Scrub(err))
	}
	if f.FileSize > limit {
		return nil, fmt.Errorf("telegram: %w (%d bytes)", ErrFileTooBig, f.FileSize)
	}
	var body io.ReadCloser
	if filepath.IsAbs(f.FilePath) {
		file, err := os.Open(f.FilePath)
		if err != nil {
			return nil, fmt.Errorf("telegram: read a local file: %w", c.Scrub(err))
		}
		body = file
	} else {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.FileURL(f.FilePath), nil)
		if err != nil {
			return nil, fmt.Errorf("telegram: download: %w", c.Scrub(err))
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return nil, fmt.Errorf("telegram: download: %w", c.Scrub(err))
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("telegram: download: status %d", resp.StatusCode)
		}
		body = resp.Body
	}
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("telegram: download: %w", c.Scrub(err))
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("telegram: %w (more than %d bytes)", ErrFileTooBig, limit)
	}
	return data, nil
}
