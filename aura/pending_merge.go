package aura

import "errors"

// Placeholders until the aura branch lands; deleted at merge.
var (
	ErrOutputLimit       = errors.New("aura: the answer reached the output token limit")
	ErrImagesUnsupported = errors.New("aura: this server takes text only")
	ErrBrowserCapture    = errors.New("aura: browser capture failed")
)

// UserReason is a placeholder until the aura branch lands.
func (e *StatusError) UserReason() string { return e.Reason }
