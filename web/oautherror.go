package web

import (
	"net/http"
	"strings"
)

// WriteOAuthError is the one writer of an OAuth error answer: the JSON
// object of RFC 6749 §5.2, {"error": code, "error_description": …}, that the
// token, revocation (RFC 7009 §2.2.1), device authorization (RFC 8628 §3.1),
// registration (RFC 7591 §3.2.2) and userinfo (RFC 6750 §3.1) endpoints
// answer. An empty description is left out; the answer is never cached
// (RFC 6749 §5.1). A challenge, when the status needs one, is set before
// with Challenge.
func WriteOAuthError(w http.ResponseWriter, status int, code, description string) {
	body := map[string]string{"error": code}
	if description != "" {
		body["error_description"] = description
	}
	WriteJSON(w, status, body)
}

// Challenge is the one builder of a WWW-Authenticate value (RFC 9110
// §11.6.1): scheme followed by its auth-params, given as name, value pairs
// in order, as RFC 6750 §3 writes Bearer challenges:
//
//	Bearer realm="tonearm", error="invalid_token"
//
// Every value is sent as a quoted-string (RFC 9110 §5.6.4): a quote or a
// backslash is escaped with a backslash and a control character (which
// would end or split the header) becomes a space, so no value can break the
// challenge or add a parameter.
func Challenge(scheme string, params ...string) string {
	var b strings.Builder
	b.WriteString(scheme)
	for i := 0; i+1 < len(params); i += 2 {
		if i == 0 {
			b.WriteByte(' ')
		} else {
			b.WriteString(", ")
		}
		b.WriteString(params[i])
		b.WriteString(`="`)
		for _, c := range params[i+1] {
			switch {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteRune(c)
			case c < 0x20 || c == 0x7f:
				b.WriteByte(' ')
			default:
				b.WriteRune(c)
			}
		}
		b.WriteByte('"')
	}
	return b.String()
}

// SetChallenge sets WWW-Authenticate on w to Challenge(scheme, params...).
func SetChallenge(w http.ResponseWriter, scheme string, params ...string) {
	w.Header().Set("WWW-Authenticate", Challenge(scheme, params...))
}
