package render

import (
	"bytes"
	stdhtml "html"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/go-telegram/bot/models"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	east "github.com/yuin/goldmark/extension/ast"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/renderer/html"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"
)

// Message is one Telegram message's worth of rendered text.
type Message struct {
	Text     string
	Entities []models.MessageEntity
}

// thematicBreak is what a Markdown "---" line shows as.
const thematicBreak = "———"

// mdParser is built once (building sorts goldmark's tables, which costs more than a short
// answer); a goldmark parser keeps no state between Parse calls.
var mdParser = sync.OnceValue(func() parser.Parser { return newGoldmark().Parser() })

// newGoldmark returns goldmark set up the way Markdown parses.
func newGoldmark() goldmark.Markdown {
	return goldmark.New(
		goldmark.WithExtensions(extension.Strikethrough, extension.Table, extension.Linkify, extension.TaskList),
		goldmark.WithParserOptions(parser.WithASTTransformers(util.Prioritized(tableHeadingOrder{}, 0))),
	)
}

// tableHeadingOrder puts back in source order what goldmark gets wrong when a setext
// underline follows a table that interrupted a paragraph ("Intro:\n| a |\n|---|\n| 1 |\n---"):
// goldmark makes "Intro:" a heading but puts it after the table.
type tableHeadingOrder struct{}

func (tableHeadingOrder) Transform(doc *ast.Document, _ text.Reader, _ parser.Context) {
	var moves [][2]ast.Node
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if t, ok := n.(*east.Table); ok && entering && t.FirstChild() != nil {
			if h, ok := t.NextSibling().(*ast.Heading); ok && h.Pos() < t.FirstChild().Pos() {
				moves = append(moves, [2]ast.Node{t, h})
			}
			return ast.WalkSkipChildren, nil
		}
		return ast.WalkContinue, nil
	})
	for _, m := range moves {
		t, h := m[0], m[1]
		p := t.Parent()
		p.RemoveChild(p, h)
		p.InsertBefore(p, t, h)
	}
}

// Markdown renders Markdown (possibly partial, mid-stream) into text and entities: CommonMark
// with GitHub's strikethrough, tables (see table), task lists and bare-URL links. Blocks are
// separated by a blank line, soft line breaks stay newlines. Headings are bold lines; list items
// "• " lines ("◦ ", "▪ " nested, "1. " ordered), nested content indented; quotes blockquotes;
// code blocks pre entities, byte for byte; a thematic break "———". Links become text_links when
// their URL is absolute http(s), ftp, tg or ton, bare URLs url entities, images their alt text
// linked. A thinking block (see Thinking) is its label and an expandable blockquote. Raw HTML
// shows as written, an unclosed fence is code to the end, a half-typed "**bold" shows as typed.
// Input that renders to nothing visible comes back as its source; invalid UTF-8 and NULs become
// U+FFFD. It is safe for concurrent use.
func Markdown(src string) Message {
	src = sanitize(src)
	source := []byte(src)
	doc := mdParser().Parse(text.NewReader(source))
	r := renderer{source: source}
	r.b.buf = make([]byte, 0, len(source)) // rendered text is rarely longer than its source
	r.block(doc)
	m := r.b.message()
	if m.Text == "" { // e.g. only a link reference definition: never an empty reply
		return Message{Text: strings.TrimRightFunc(strings.TrimLeft(src, "\n"), unicode.IsSpace)}
	}
	return m
}

// sanitize makes the source valid UTF-8 without NULs or CRLFs, for every later step to rely on.
func sanitize(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "\x00", "\uFFFD"), "\r\n", "\n") // no copy without them
}

type renderer struct {
	source []byte
	b      builder
	depth  int // list nesting, for the bullet shape
}

func (r *renderer) block(n ast.Node) {
	switch n := n.(type) {
	case *ast.Document:
		r.children(n)
	case *ast.Paragraph:
		r.children(n)
		r.b.endBlock(2)
	case *ast.TextBlock: // a paragraph of a tight list item
		r.children(n)
		r.b.endBlock(1)
	case *ast.Heading:
		r.wrap(models.MessageEntityTypeBold, n)
		r.b.endBlock(2)
	case *ast.ThematicBreak:
		r.b.writeString(thematicBreak)
		r.b.endBlock(2)
	case *ast.FencedCodeBlock:
		var lang string
		if n.Info != nil {
			lang = string(decode(n.Language(r.source)))
		}
		if lang == thinkingInfo {
			r.thinking(n)
			return
		}
		r.code(n, lang)
	case *ast.CodeBlock:
		r.code(n, "")
	case *ast.Blockquote:
		r.wrap(models.MessageEntityTypeBlockquote, n)
		r.b.endBlock(2)
	case *ast.List:
		r.list(n)
	case *ast.HTMLBlock:
		raw := n.Lines().Value(r.source)
		if n.HasClosure() {
			raw = append(raw, n.ClosureLine.Value(r.source)...)
		}
		r.b.text(bytes.TrimRight(raw, "\n"))
		r.b.endBlock(2)
	case *east.Table:
		r.table(n)
		r.b.endBlock(2)
	default:
		if n.Type() == ast.TypeInline {
			r.inline(n)
			return
		}
		r.children(n)
		r.b.endBlock(2)
	}
}

func (r *renderer) children(n ast.Node) {
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		if c.Type() == ast.TypeInline {
			r.inline(c)
		} else {
			r.block(c)
		}
	}
}

// code writes a code block as one pre entity, byte for byte but for its last newline.
func (r *renderer) code(n ast.Node, lang string) {
	r.verbatim(models.MessageEntityTypePre, lang, bytes.TrimSuffix(n.Lines().Value(r.source), []byte("\n")))
	r.b.endBlock(2)
}

func (r *renderer) wrap(typ models.MessageEntityType, n ast.Node) {
	r.b.push(typ, "", "")
	r.children(n)
	r.b.pop()
}

// verbatim writes body as one entity of typ, byte for byte: without list indentation.
func (r *renderer) verbatim(typ models.MessageEntityType, lang string, body []byte) {
	r.b.push(typ, "", lang)
	r.b.verbatim++
	r.b.write(body)
	r.b.verbatim--
	r.b.pop()
}

var bullets = [...]string{"• ", "◦ ", "▪ "}

// list writes one line per item: a bullet (•, then ◦ and ▪ for nested lists) or the item's
// number, with continuation lines and nested lists indented to the item's text.
func (r *renderer) list(n *ast.List) {
	sep := 2
	if n.IsTight {
		sep = 1
	}
	num := n.Start
	outer := r.b.prefix
	r.depth++
	for item := n.FirstChild(); item != nil; item = item.NextSibling() {
		marker := bullets[(r.depth-1)%len(bullets)]
		if n.IsOrdered() {
			marker = strconv.Itoa(num) + string(n.Marker) + " "
			num++
		}
		r.b.writeString(marker)
		r.b.prefix = append(outer[:len(outer):len(outer)], strings.Repeat(" ", utf8.RuneCountInString(marker))...)
		r.children(item)
		r.b.prefix = outer
		r.b.endBlock(sep)
	}
	r.depth--
	r.b.endBlock(2)
}

func (r *renderer) inline(n ast.Node) {
	switch n := n.(type) {
	case *ast.Text:
		seg := n.Segment.Value(r.source)
		if n.IsRaw() {
			r.b.text(seg)
		} else {
			r.decoded(seg)
		}
		if n.HardLineBreak() || n.SoftLineBreak() {
			r.b.newline()
		}
	case *ast.String:
		if n.IsCode() || n.IsRaw() {
			r.b.text(n.Value)
		} else {
			r.decoded(n.Value)
		}
	case *ast.CodeSpan:
		r.b.push(models.MessageEntityTypeCode, "", "")
		for c := n.FirstChild(); c != nil; c = c.NextSibling() {
			t, ok := c.(*ast.Text)
			if !ok {
				continue
			}
			v := t.Segment.Value(r.source)
			if last := len(v) - 1; last >= 0 && v[last] == '\n' {
				r.b.write(v[:last])
				r.b.writeString(" ")
			} else {
				r.b.write(v)
			}
		}
		r.b.pop()
	case *ast.Emphasis:
		typ := models.MessageEntityTypeItalic
		if n.Level >= 2 {
			typ = models.MessageEntityTypeBold
		}
		r.wrap(typ, n)
	case *east.Strikethrough:
		r.wrap(models.MessageEntityTypeStrikethrough, n)
	case *ast.Link:
		r.link(n, n.Destination)
	case *ast.Image:
		r.link(n, n.Destination)
	case *ast.AutoLink:
		typ := models.MessageEntityTypeURL
		if n.AutoLinkType == ast.AutoLinkEmail {
			typ = models.MessageEntityTypeEmail
		} else if _, ok := linkURL(n.URL(r.source)); !ok {
			r.b.write(n.Label(r.source))
			return
		}
		r.b.push(typ, "", "")
		r.b.write(n.Label(r.source))
		r.b.pop()
	case *ast.RawHTML:
		r.b.text(n.Segments.Value(r.source))
	case *east.TaskCheckBox:
		if n.IsChecked {
			r.b.writeString("☑ ")
		} else {
			r.b.writeString("☐ ")
		}
	default:
		r.children(n)
	}
}

// link writes a link's or an image's text as a text_link to dest: just the text for a dest
// Telegram would not take (relative, javascript:...), dest itself for a link without text.
func (r *renderer) link(n ast.Node, dest []byte) {
	u, ok := linkURL(dest)
	if ok {
		r.b.push(models.MessageEntityTypeTextLink, u, "")
	}
	before := r.b.u16
	r.children(n)
	if r.b.u16 == before {
		r.b.write(decode(dest))
	}
	if ok {
		r.b.pop()
	}
}

// linkURL returns dest with escapes resolved and unsafe characters percent-encoded, and
// whether it is an absolute URL of a scheme Telegram opens.
func linkURL(dest []byte) (string, bool) {
	if len(dest) == 0 {
		return "", false
	}
	s := string(util.URLEscape(dest, true))
	u, err := url.Parse(s)
	if err != nil {
		return "", false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https", "ftp":
		return s, u.Host != ""
	case "tg", "ton":
		return s, u.Host != "" || u.Opaque != ""
	}
	return "", false
}

// decoded writes Markdown text with backslash escapes and character references resolved.
func (r *renderer) decoded(s []byte) {
	if bytes.IndexByte(s, '\\') < 0 && bytes.IndexByte(s, '&') < 0 {
		r.b.text(s) // nothing to resolve: most text
		return
	}
	r.b.text(decode(s))
}

// decode returns src with backslash escapes of ASCII punctuation and HTML character references
// resolved: goldmark's HTML writer resolves them as CommonMark says, and escapes the result for
// HTML, which html.UnescapeString undoes.
func decode(src []byte) []byte {
	var w bufWriter
	html.DefaultWriter.Write(&w, src)
	return []byte(stdhtml.UnescapeString(w.String()))
}

// bufWriter is a bytes.Buffer as goldmark writes to it.
type bufWriter struct{ bytes.Buffer }

func (w *bufWriter) Buffered() int { return w.Len() }
func (w *bufWriter) Flush() error  { return nil }
