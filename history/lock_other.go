//go:build !unix

package history

import (
	"context"
	"errors"
)

// Lock makes sure one instance at a time runs on the database at dbPath;
// see the Unix version. It needs flock, so elsewhere it refuses.
func Lock(ctx context.Context, dbPath string, waiting func(holder string)) (release func() error, err error) {
	return nil, errors.New("history: lock: not supported on this system (needs flock)")
}
