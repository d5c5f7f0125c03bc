//go:build unix

package tg

import (
	"os"
	"syscall"
)

// openLocalFlags: a FIFO opens at once (and is refused as not regular), not waiting for a writer.
const openLocalFlags = os.O_RDONLY | syscall.O_NONBLOCK
