package telegramtest_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	tgbot "github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"aurabot/bot/telegramtest"
)

// sendDocument takes a multipart upload as go-telegram/bot sends it, keeps the file for the
// test to read, answers with the message Telegram would, and refuses what Telegram refuses:
// a text edit of the document, a caption over 1024 characters, no file.
func TestSendDocument(t *testing.T) {
	srv := telegramtest.New()
	defer srv.Close()
	b, err := tgbot.New(telegramtest.Token, tgbot.WithServerURL(srv.URL()), tgbot.WithSkipGetMe())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const chat = 77
	user := srv.NewMessageID(chat)
	data := []byte("# Conversation\n\nhello\n")
	m, err := b.SendDocument(ctx, &tgbot.SendDocumentParams{
		ChatID:          chat,
		Document:        &models.InputFileUpload{Filename: "chat.md", Data: bytes.NewReader(data)},
		Caption:         "the conversation",
		ReplyParameters: &models.ReplyParameters{MessageID: user},
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != user+1 || m.Document == nil || m.Document.FileName != "chat.md" || m.Document.FileSize != int64(len(data)) || m.Caption != "the conversation" {
		t.Errorf("answer: got %+v (document %+v), want the document message", m, m.Document)
	}
	msgs := srv.Messages(chat)
	if len(msgs) != 1 || msgs[0].Document == nil || !bytes.Equal(msgs[0].Document.Data, data) || msgs[0].Document.Name != "chat.md" ||
		msgs[0].ReplyTo != user || msgs[0].Caption != "the conversation" || msgs[0].Text != "" {
		t.Fatalf("kept: got %+v, want the document as uploaded", msgs)
	}

	_, err = b.EditMessageText(ctx, &tgbot.EditMessageTextParams{ChatID: chat, MessageID: m.ID, Text: "x"})
	if err == nil || !strings.Contains(err.Error(), "there is no text in the message to edit") {
		t.Errorf("editing the document's text: got %v, want Telegram's refusal", err)
	}
	_, err = b.SendDocument(ctx, &tgbot.SendDocumentParams{
		ChatID: chat, Document: &models.InputFileUpload{Filename: "a.md", Data: bytes.NewReader(data)}, Caption: strings.Repeat("c", 1025),
	})
	if err == nil || !strings.Contains(err.Error(), "caption is too long") {
		t.Errorf("a long caption: got %v, want a refusal", err)
	}
	_, err = b.SendDocument(ctx, &tgbot.SendDocumentParams{ChatID: chat, Document: &models.InputFileString{Data: "some-file-id"}})
	if err == nil {
		t.Error("a file id the fake does not know: got no error")
	}
	if n := len(srv.Messages(chat)); n != 1 {
		t.Errorf("got %d messages after the refusals, want 1", n)
	}
}
