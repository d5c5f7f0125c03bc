package aura

import "errors"

// Placeholder until the browser branch lands; deleted at merge.
var ErrBrowserCapture = errors.New("aura: browser capture failed")
