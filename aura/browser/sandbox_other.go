//go:build !linux

package browser

// userNamespaces: only Linux's Chromium sandbox needs them.
func userNamespaces(string) error { return nil }
