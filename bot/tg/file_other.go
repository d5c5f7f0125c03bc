//go:build !unix

package tg

import "os"

// openLocalFlags: systems without FIFOs in the file system need no O_NONBLOCK.
const openLocalFlags = os.O_RDONLY
