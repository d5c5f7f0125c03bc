package browser

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// userNamespaces reports whether this process may create a user namespace, as Chromium's
// sandbox does: it runs bin --version in a new one. The browser itself is the probe because
// some systems (Ubuntu's AppArmor) allow user namespaces only to the programs they trust.
func userNamespaces(bin string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--version")
	cmd.Env = browserEnv(os.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s --version in a new user namespace: %w", bin, err)
	}
	return nil
}
