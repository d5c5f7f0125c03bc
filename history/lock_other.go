//go:build !unix

package history

import (
	"context"
	"errors"
)

// Lock needs flock (see the Unix version): elsewhere it refuses.
func Lock(ctx context.Context, dbPath string, waiting func(holder string)) (release func() error, err error) {
	return nil, errors.New("history: lock: not supported on this system (needs flock)")
}
