// Package render turns a model's Markdown answer into what Telegram shows: plain text plus
// message entities (bold, pre, text_link, ...) with offsets in UTF-16 code units, and cuts a
// long answer into messages that fit Telegram's length limit.
//
// It never produces parse_mode strings: the text is sent as is with an entities list, so no
// character in a model's answer can make Telegram reject the message with "can't parse
// entities". Markdown accepts partial input, because the bot renders the answer on every edit
// while it streams in (Incremental keeps that to the answer's newest part).
//
// The package is pure text work. It does not talk to Telegram, pace edits, or decide when a
// reply moves on to a new message; the bot does that with Split's output.
package render
