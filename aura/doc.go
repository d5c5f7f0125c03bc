// Package aura is a streaming HTTP client for the large language model that answers the bot's
// users. It sends a conversation and relays the reply to the caller chunk by chunk, as soon as
// each chunk arrives. It speaks two wire dialects:
//
//   - ProtocolChatbotUI (the default): the legacy chatbot-ui "/api/chat" route that
//     openchat.team ran, which replies with a plain-text body.
//   - ProtocolOpenAI: "/v1/chat/completions" with server-sent events, as served by OpenAI,
//     Ollama, llama.cpp and vLLM.
//
// The package knows nothing of Telegram or SQL: Chat takes []Message and yields Chunks: the
// answer's text, a reasoning model's thinking apart from it (read from reasoning_content,
// reasoning or a leading <think> block), and then what the server counted for the request
// (Usage) when it says. Models lists the models an openai server offers, HasModel asks about
// one it does not list, and Capabilities says what a model can do when the server tells
// (Ollama's /api/show). Speech to text is in the sub-package transcribe. A Client holds one
// tuned http.Client whose connections are reused across replies; it is safe for concurrent use.
//
// Message contents are sent as given: text shaped like a special token ("<|endoftext|>"), which
// a chatbot-ui server's tiktoken refuses with a 500, is the caller's to defuse (the bot's
// conversation sends everything through history.Defuse).
//
// A reply has no total time limit (long answers are normal). Instead a first-byte timeout bounds
// the wait for the server to start answering, an idle timeout bounds each silence within the
// body, and the caller's context ends the request at once. Connection failures are retried only
// while nothing has reached the caller, so a reply is never duplicated.
//
// Errors that callers branch on are *StatusError, ErrBrokenStream, ErrFirstByteTimeout,
// ErrIdleTimeout, ErrConnect and ErrOutputLimit; a cancelled context gives an error matching
// context.Canceled. The client's own errors never quote the configured Key or Cookies; what a
// server writes back passes Config.Redact. A server's error text can still quote other secrets
// and links: show users StatusError.UserReason, not Error.
package aura
