package protocol

import (
	"net/http"
	"strings"

	"github.com/ory/fosite"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/web"
)

// hasClientAssertion reports whether a POST authenticates its client with
// a private_key_jwt assertion (RFC 7523 §2.2) in its body.
func hasClientAssertion(r *http.Request) bool {
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		return false
	}
	return r.PostForm.Has("client_assertion_type") || r.PostForm.Has("client_assertion")
}

// introspectAsserted is introspection by a client that authenticates with
// an assertion. fosite's introspection reads only a Basic secret or a
// bearer token, so the client is authenticated here, as at the token
// endpoint, and the token introspected for it.
func (o *OAuth) introspectAsserted(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	client, err := o.p.AuthenticateClient(ctx, r, r.PostForm)
	if err != nil {
		if writeUnavailable(w, r, o.log, err) {
			return
		}
		rfc := fosite.ErrorToRFC6749Error(err)
		if rfc.CodeField >= 500 {
			o.log.Error("introspection failed", "request_id", web.RequestID(ctx), "err", rfc.WithExposeDebug(true).GetDescription())
			web.WriteOAuthError(w, http.StatusInternalServerError, "server_error", "")
			return
		}
		// The 401 gets its WWW-Authenticate from clientChallenge.
		web.WriteOAuthError(w, http.StatusUnauthorized, fosite.ErrInvalidClient.ErrorField, rfc.GetDescription())
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		web.WriteOAuthError(w, http.StatusBadRequest, "invalid_request", "The token to introspect is missing.")
		return
	}
	scopes := fosite.RemoveEmpty(strings.Split(r.PostForm.Get("scope"), " "))
	use, ar, err := o.p.OAuth2.IntrospectToken(ctx, token, fosite.TokenUse(r.PostForm.Get("token_type_hint")), provider.NewSession(), scopes...)
	if err != nil {
		if writeUnavailable(w, r, o.log, err) {
			return
		}
		o.p.OAuth2.WriteIntrospectionError(ctx, w, fosite.ErrInactiveToken)
		return
	}
	o.writeIntrospection(w, r, &fosite.IntrospectionResponse{Active: true, AccessRequester: ar, TokenUse: use}, client.GetID())
}
