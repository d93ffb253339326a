package pages

import (
	"encoding/base64"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/storage"
)

// The words the account page, /developer and the console hand their
// templates: flash notices and plain-words errors are put into the page's
// language here, once, so the shared defines ("notices", "field") print
// them as they are, whatever the message's origin (a marked literal, a
// fault's message, or a message naming a value, which stays English).

// say is msg in l's language when a catalog has it. Page errors get a
// closing full stop added (pages.message), which the catalogs' IDs (the
// faults' own messages) lack: such a message is looked up without it.
func say(l *locale.Lang, msg string) string {
	if msg == "" {
		return ""
	}
	if s := l.Lenient(msg); s != msg || l.Tag == "en" {
		return s
	}
	bare, ok := strings.CutSuffix(msg, ".")
	if !ok {
		return msg
	}
	s := l.Lenient(bare)
	if s == bare {
		return msg
	}
	if r, _ := utf8.DecodeLastRuneInString(s); !unicode.IsPunct(r) {
		// The language's own full stop ("。" in Japanese), as web.Said.
		s = l.S("{{.Message}}.", "Message", s)
	}
	return s
}

// sayAll is errs in l's language.
func sayAll(l *locale.Lang, errs fieldErrors) fieldErrors {
	if len(errs) == 0 {
		return errs
	}
	out := make(fieldErrors, len(errs))
	for k, v := range errs {
		out[k] = say(l, v)
	}
	return out
}

// lang is the language of the page answering r.
func (p *Pages) lang(r *http.Request) *locale.Lang { return p.site.Lang(r) }

// passkeyRow is a passkey as the account page and the console list it,
// its dates printed by {{when}} in the page's language.
type passkeyRow struct {
	ID, Name          string
	Created, LastUsed time.Time
	Synced            bool
}

func passkeyRows(keys []storage.Passkey) []passkeyRow {
	out := make([]passkeyRow, len(keys))
	for i, k := range keys {
		out[i] = passkeyRow{ID: base64.RawURLEncoding.EncodeToString(k.ID), Name: k.Name, Created: k.CreatedAt,
			LastUsed: k.LastUsedAt, Synced: k.BackupState}
	}
	return out
}
