//go:build unix

package tg

import (
	"os"
	"syscall"
)

// openLocalFlags opens a local file without blocking: a FIFO opens at once (and is refused as
// not a regular file) instead of waiting for a writer.
const openLocalFlags = os.O_RDONLY | syscall.O_NONBLOCK
