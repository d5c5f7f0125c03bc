package browser

import (
	"context"
	"log/slog"
	"os"
	"sync"
)

// proxyVars are a system proxy's, which Chromium honours (AURA_PROXY goes on its command line).
var proxyVars = []string{"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy", "all_proxy"}

// browserEnv is the whole environment Chromium starts with: PATH (Debian's chromium is a shell
// script that runs other programs), HOME (tmp when the bot has none), TMPDIR (tmp, the capture's
// own folder) and the proxy variables. Nothing else of the bot's environment, which holds its
// secrets, reaches the browser.
func browserEnv(tmp string) []string {
	env := []string{"TMPDIR=" + tmp}
	for _, name := range append([]string{"PATH", "HOME"}, proxyVars...) {
		if v, ok := os.LookupEnv(name); ok && v != "" {
			env = append(env, name+"="+v)
		}
	}
	if os.Getenv("HOME") == "" {
		env = append(env, "HOME="+tmp)
	}
	return env
}

// sandboxCheck decides once whether Chromium can run in its sandbox here, and says once in the
// log when it cannot.
type sandboxCheck struct {
	once  sync.Once
	ok    bool
	euid  int                    // os.Geteuid(), or a test's
	probe func(bin string) error // userNamespaces, or a test's
}

func newSandboxCheck() *sandboxCheck {
	return &sandboxCheck{euid: os.Geteuid(), probe: userNamespaces}
}

// allowed reports whether Chromium (bin) may run sandboxed. The first call decides, and logs a
// warning when the sandbox cannot be used.
func (s *sandboxCheck) allowed(ctx context.Context, bin string, log *slog.Logger) bool {
	s.once.Do(func() {
		var why string
		s.ok, why = decideSandbox(s.euid, func() error { return s.probe(bin) })
		if !s.ok {
			log.WarnContext(ctx, "browser: Chromium runs without its sandbox: "+why+
				"; run the bot as a user other than root, where user namespaces are allowed, to sandbox it")
		}
	})
	return s.ok
}

// decideSandbox is the rule: Chromium's sandbox refuses to run as root, and on Linux it needs
// user namespaces (which a container's seccomp profile, or the kernel's settings, may deny).
func decideSandbox(euid int, probe func() error) (ok bool, why string) {
	if euid == 0 {
		return false, "the bot runs as root"
	}
	if err := probe(); err != nil {
		return false, "this system does not let it create a user namespace (" + err.Error() + ")"
	}
	return true, ""
}
