package protocol

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/fositestore"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
)

// The token, introspection, revocation and userinfo endpoints: what a
// client calls with its credentials or a bearer token, never a cookie.

// token is the token endpoint.
func (o *OAuth) token(w http.ResponseWriter, r *http.Request) {
	// One exchange reads a code's rows once (see fositestore.Remember).
	ctx := fositestore.Remember(r.Context())
	ok, err := parseBoundedForm(w, r)
	if !ok {
		return
	}
	if err == nil { // else fosite answers the error
		id, grant := requestClientID(r), r.PostForm.Get("grant_type")
		o.p.RefreshClientOnMiss(ctx, id, strings.Fields(r.PostForm.Get("scope")), "", grant)
		if grant == "client_credentials" && strings.TrimSpace(r.PostForm.Get("scope")) == "" {
			if scopes := o.p.ClientCredentialsScopes(ctx, id); len(scopes) > 0 {
				r.PostForm.Set("scope", strings.Join(scopes, " "))
				r.Form.Set("scope", strings.Join(scopes, " "))
			}
		}
	}
	session := provider.NewSession()
	ar, err := o.p.OAuth2.NewAccessRequest(ctx, r, session)
	if err != nil {
		if writeUnavailable(w, r, o.log, err) {
			return
		}
		o.spendFailedCode(r, ar, err)
		o.accessError(w, r, ar, err)
		return
	}
	if err := bindDPoP(r.Context(), ar); err != nil {
		o.spendFailedCode(r, ar, err)
		o.accessError(w, r, ar, err)
		return
	}
	var narrowed []string
	switch {
	case ar.GetGrantTypes().ExactOne("client_credentials"):
		// fosite has checked the scopes against the client's registration.
		if err := o.p.Grant(ctx, ar, ar.GetRequestedScopes(), provider.Resources(ar.GetRequestForm())); err != nil {
			o.accessError(w, r, ar, err)
			return
		}
		session.Subject = ar.GetClient().GetID()
		ar.SetID(provider.NewRequestID())
	case ar.GetGrantTypes().ExactOne("refresh_token"):
		// The client's ID-token algorithm as registered now (it may have
		// changed since the grant).
		if c, ok := ar.GetClient().(*fositestore.Client); ok {
			if s, ok := ar.GetSession().(*openid.DefaultSession); ok {
				provider.SetIDTokenAlg(s, c.IDTokenAlg)
			}
		}
		// RFC 6749 §6: a refresh may ask for fewer scopes than were granted,
		// never more. The narrower set applies to the new access token.
		if asked := strings.Fields(ar.GetRequestForm().Get("scope")); len(asked) > 0 {
			for _, s := range asked {
				if !ar.GetGrantedScopes().Has(s) {
					o.accessError(w, r, ar, fosite.ErrInvalidScope.WithHintf("The scope %q was not granted to this refresh token.", s))
					return
				}
			}
			narrowed = asked
			ctx = fositestore.WithAccessScopes(ctx, asked)
		}
	}
	if resources := provider.Resources(ar.GetRequestForm()); len(resources) > 0 && !ar.GetGrantTypes().ExactOne("client_credentials") {
		// A code or refresh token may ask for a token for some of the
		// resources of its grant (RFC 8707 §2.2).
		if ctx, narrowed, err = o.p.Narrow(ctx, ar, narrowed, resources); err != nil {
			o.accessError(w, r, ar, err)
			return
		}
	}
	resp, err := o.p.OAuth2.NewAccessResponse(ctx, ar)
	if err != nil {
		if ar.GetGrantTypes().ExactOne("refresh_token") && errors.Is(err, fosite.ErrNotFound) {
			// Lost a race with a concurrent refresh of the same token: the
			// other request rotated it first.
			err = fosite.ErrInvalidGrant.WithHint("The refresh token was already used.")
		}
		if ar.GetGrantTypes().ExactOne("authorization_code") && (errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) || errors.Is(err, fosite.ErrNotFound)) {
			// Lost a race with a concurrent exchange of the same code:
			// fosite reads it again inside the transaction and finds it
			// spent, which it reports as a server error.
			err = fosite.ErrInvalidGrant.WithHint("The authorization code has already been used.")
		}
		o.accessError(w, r, ar, err)
		return
	}
	if narrowed != nil {
		resp.SetScopes(narrowed)
	}
	if provider.BoundKey(ar.GetSession()) != "" {
		resp.SetTokenType("DPoP") // RFC 9449 §5
	}
	o.p.OAuth2.WriteAccessResponse(ctx, w, ar, resp)
	if gt := ar.GetGrantTypes(); len(gt) == 1 {
		o.metrics.TokenIssued(gt[0])
	}
}

// requestClientID is the client a token request names (HTTP Basic,
// client_id in the body, or a client assertion's sub), before it is
// authenticated.
func requestClientID(r *http.Request) string {
	if id, _, ok := r.BasicAuth(); ok {
		return unescapeClientID(id)
	}
	if id := r.PostForm.Get("client_id"); id != "" || !r.PostForm.Has("client_assertion") {
		return id
	}
	return provider.AssertedClientID(r.PostForm)
}

// unescapeClientID reads a client ID from HTTP Basic (RFC 6749 §2.3.1
// form-encodes it).
func unescapeClientID(id string) string {
	if unescaped, err := url.QueryUnescape(id); err == nil {
		return unescaped
	}
	return id
}

// spendFailedCode ends the authorization code of a failed exchange by an
// authenticated client: a code issued with a PKCE challenge is redeemable
// only with its verifier, and never on a second try.
func (o *OAuth) spendFailedCode(r *http.Request, ar fosite.AccessRequester, err error) {
	if ar == nil || ar.GetClient() == nil || !ar.GetGrantTypes().ExactOne("authorization_code") {
		return // the client did not authenticate, or another grant
	}
	if rfc := fosite.ErrorToRFC6749Error(err); rfc.CodeField >= 500 || rfc.ErrorField == fosite.ErrInvalidClient.ErrorField {
		return
	}
	if err := o.p.SpendCode(r.Context(), ar.GetRequestForm().Get("code")); err != nil {
		o.log.Error("spending an authorization code after a failed exchange", "request_id", web.RequestID(r.Context()), "err", err)
	}
}

// introspect is the RFC 7662 endpoint. Callers authenticate as a client
// with its secret (HTTP Basic, or client_id and client_secret in the form)
// or with a private_key_jwt assertion; any token that is not live is
// {"active": false}, never an error.
func (o *OAuth) introspect(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if ok, err := parseBoundedForm(w, r); !ok {
		return
	} else if err != nil {
		o.p.OAuth2.WriteIntrospectionError(ctx, w, fosite.ErrInvalidRequest.WithHint("The request body could not be read."))
		return
	}
	if hasClientAssertion(r) {
		o.introspectAsserted(w, r)
		return
	}
	if err := introspectionClientAuth(r); err != nil {
		o.introspectionError(w, r, err)
		return
	}
	ir, err := o.p.OAuth2.NewIntrospectionRequest(ctx, r, provider.NewSession())
	if id, _, ok := r.BasicAuth(); ok && err != nil && fosite.ErrorToRFC6749Error(err).ErrorField == fosite.ErrRequestUnauthorized.ErrorField &&
		o.p.RereadCachedClient(ctx, unescapeClientID(id)) {
		// fosite checks the caller's secret here itself, not through the
		// client authentication the other endpoints share: a secret
		// rotated moments ago is tried once more against a fresh copy.
		ir, err = o.p.OAuth2.NewIntrospectionRequest(ctx, r, provider.NewSession())
	}
	if err != nil {
		if writeUnavailable(w, r, o.log, err) {
			return
		}
		o.introspectionError(w, r, err)
		return
	}
	caller, _, _ := r.BasicAuth()
	o.writeIntrospection(w, r, ir, unescapeClientID(caller))
}

// introspectionError answers a refused introspection. fosite calls a
// failed client authentication here request_unauthorized (and its
// introspection writer would turn invalid_client into {"active": false});
// RFC 7662 §2.3 defers to RFC 6749 §5.2: invalid_client, 401, as the
// token, revocation, PAR and device endpoints answer (clientChallenge adds
// the same WWW-Authenticate).
func (o *OAuth) introspectionError(w http.ResponseWriter, r *http.Request, err error) {
	if rfc := fosite.ErrorToRFC6749Error(err); rfc.ErrorField == fosite.ErrRequestUnauthorized.ErrorField {
		o.p.OAuth2.WriteAccessError(r.Context(), w, nil, fosite.ErrInvalidClient.WithHint(rfc.HintField))
		return
	}
	o.p.OAuth2.WriteIntrospectionError(r.Context(), w, err)
}

// writeIntrospection answers for a live token, to caller (the
// authenticated client).
func (o *OAuth) writeIntrospection(w http.ResponseWriter, r *http.Request, ir fosite.IntrospectionResponder, caller string) {
	ctx := r.Context()
	ar := ir.GetAccessRequester()
	if !o.p.MayIntrospect(ctx, caller, ar.GetClient().GetID(), ar.GetGrantedAudience()) {
		// Not this client's token, nor one meant for an API it serves:
		// it learns nothing, not even that the token is live.
		w.Header().Set("Cache-Control", "no-store")
		web.WriteJSON(w, http.StatusOK, map[string]bool{"active": false})
		return
	}
	sess := ar.GetSession()
	resp := introspection{Active: true, ClientID: ar.GetClient().GetID(), Issuer: o.p.Issuer(), IssuedAt: ar.GetRequestedAt().Unix(),
		Subject: o.p.SubjectFor(ar.GetClient(), sess.GetSubject()), Scope: strings.Join(ar.GetGrantedScopes(), " "), Audience: ar.GetGrantedAudience(),
		TokenType: "Bearer"}
	// username (RFC 7662 §2.2) is the profile scope's preferred_username:
	// released only when profile was granted, else it would hand every
	// client, pairwise ones too (OpenID Connect Core §8), one identifier
	// to join their data on.
	if slices.Contains(ar.GetGrantedScopes(), "profile") {
		resp.Username = sess.GetUsername()
	}
	if resp.Subject == "" {
		resp.Subject = resp.ClientID
	}
	exp := sess.GetExpiresAt(fosite.AccessToken)
	if ir.GetTokenUse() == fosite.RefreshToken {
		resp.TokenType, exp = "refresh_token", sess.GetExpiresAt(fosite.RefreshToken)
	} else if jkt := provider.AccessTokenKey(r.PostForm.Get("token")); jkt != "" {
		// RFC 9449 §6.2: a resource server that introspects learns the
		// key the token is bound to, and checks the proof against it.
		resp.TokenType, resp.Cnf = "DPoP", &confirmation{JKT: jkt}
	}
	if !exp.IsZero() {
		resp.Expiry = exp.Unix()
	}
	web.WriteJSON(w, http.StatusOK, resp)
}

// introspection is an active token's introspection answer (RFC 7662 §2.2).
type introspection struct {
	Active    bool     `json:"active"`
	ClientID  string   `json:"client_id"`
	Issuer    string   `json:"iss"`
	IssuedAt  int64    `json:"iat"`
	Subject   string   `json:"sub"`
	Scope     string   `json:"scope,omitempty"`
	Audience  []string `json:"aud,omitempty"`
	Username  string   `json:"username,omitempty"`
	TokenType string   `json:"token_type"`
	Expiry    int64    `json:"exp,omitempty"`
	// Cnf is the key a DPoP-bound token is bound to (RFC 9449 §6.2).
	Cnf *confirmation `json:"cnf,omitempty"`
}

type confirmation struct {
	JKT string `json:"jkt"`
}

// introspectionClientAuth admits only client authentication. fosite would
// also take any active access token (a Bearer header, or an access_token
// form field) as the caller's credential, so a public app, or anyone
// holding any token, could introspect other tokens. client_secret_post is
// turned into the Basic header fosite reads.
func introspectionClientAuth(r *http.Request) error {
	if r.Method != http.MethodPost {
		return nil // fosite refuses it
	}
	if _, has := r.Form["access_token"]; has {
		return fosite.ErrRequestUnauthorized.WithHint("An access token is not a credential here: authenticate as a client.")
	}
	if _, _, ok := r.BasicAuth(); ok {
		return nil
	}
	if r.Header.Get("Authorization") != "" {
		return fosite.ErrRequestUnauthorized.WithHint("Authenticate as a client with HTTP Basic or client_secret_post; a bearer token is not a credential here.")
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if id == "" || secret == "" {
		return fosite.ErrRequestUnauthorized.WithHint("Client authentication is required.")
	}
	r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return nil
}

// revoke is the RFC 7009 endpoint: revoking a refresh token revokes the
// access tokens of its grant; an unknown token is a 200.
func (o *OAuth) revoke(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if ok, _ := parseBoundedForm(w, r); !ok {
		return // any other error: fosite answers it
	}
	err := o.p.OAuth2.NewRevocationRequest(ctx, r)
	if errors.Is(err, fosite.ErrTemporarilyUnavailable) {
		// fosite's answer when the token could not be looked up or
		// revoked ("the token may still exist", without the cause): its
		// writer would answer 200, telling the client a live token is
		// gone.
		err = fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
	if writeUnavailable(w, r, o.log, err) {
		return
	}
	if err != nil {
		if rfc := fosite.ErrorToRFC6749Error(err); rfc.CodeField >= 500 {
			o.log.Error("revocation failed", "request_id", web.RequestID(ctx), "err", rfc.WithExposeDebug(true).GetDescription())
		}
	}
	if errors.Is(err, fosite.ErrUnauthorizedClient) {
		// RFC 7009 §2.1: a token issued to another client is refused with
		// an error (fosite would answer 200 and leave it alive, silently).
		web.WriteOAuthError(w, http.StatusBadRequest, "unauthorized_client", "The token was not issued to this client.")
		return
	}
	o.p.OAuth2.WriteRevocationResponse(ctx, w, err)
}

func (o *OAuth) accessError(w http.ResponseWriter, r *http.Request, ar fosite.AccessRequester, err error) {
	if writeUnavailable(w, r, o.log, err) {
		return
	}
	rfc := fosite.ErrorToRFC6749Error(err)
	if rfc.CodeField >= 500 {
		o.log.Error("token request failed", "request_id", web.RequestID(r.Context()), "err", rfc.WithExposeDebug(true).GetDescription())
	}
	o.p.OAuth2.WriteAccessError(r.Context(), w, ar, err)
}

// userinfo returns the claims the access token's scopes release, read live
// from the account.
func (o *OAuth) userinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token, dpopScheme := web.AccessToken(r)
	if token == "" && r.Method == http.MethodPost {
		if ok, _ := parseBoundedForm(w, r); !ok {
			return
		}
		token = r.PostFormValue("access_token")
	}
	if token == "" {
		// RFC 6750 §3.1: a request without a token gets no error code
		// in its challenge.
		web.SetChallenge(w, "Bearer", "realm", "tonearm")
		web.WriteOAuthError(w, http.StatusUnauthorized, "invalid_request", "An access token is required.")
		return
	}
	ar, err := o.p.VerifyAccessToken(ctx, token)
	if writeUnavailable(w, r, o.log, err) {
		return
	}
	if err != nil {
		web.SetChallenge(w, "Bearer", "realm", "tonearm", "error", "invalid_token")
		web.WriteOAuthError(w, http.StatusUnauthorized, "invalid_token", "The access token is invalid, expired or revoked.")
		return
	}
	// RFC 9449 §7: a DPoP-bound token only with a proof by its key (a
	// token in the form body is a bearer token).
	switch err := web.CheckTokenBinding(r, o.p.DPoP(), o.p.Issuer(), token, provider.AccessTokenKey(token), dpopScheme); {
	case writeUnavailable(w, r, o.log, err):
		return
	case err != nil:
		var tbe *web.TokenBindingError
		if !errors.As(err, &tbe) {
			tbe = &web.TokenBindingError{Code: "invalid_token", Description: "The access token could not be checked."}
		}
		tbe.WriteOAuth(w)
		return
	}
	if !ar.GetGrantedScopes().Has("openid") {
		web.SetChallenge(w, "Bearer", "realm", "tonearm", "error", "insufficient_scope", "scope", "openid")
		web.WriteOAuthError(w, http.StatusForbidden, "insufficient_scope", "The openid scope is required.")
		return
	}
	u, err := o.accounts.GetUser(ctx, ar.GetSession().GetSubject())
	if writeUnavailable(w, r, o.log, err) {
		return
	}
	if err != nil {
		web.SetChallenge(w, "Bearer", "realm", "tonearm", "error", "invalid_token")
		web.WriteOAuthError(w, http.StatusUnauthorized, "invalid_token", "The token's user no longer exists.")
		return
	}
	id := identity(u)
	confidential := !ar.GetClient().IsPublic()
	if confidential && (ar.GetGrantedScopes().Has("listenbrainz") || asksClaim(ar, "listenbrainz_token")) {
		if id.ListenBrainzToken, err = o.accounts.ListenBrainzToken(u); err != nil {
			o.log.Error("opening ListenBrainz token", "request_id", web.RequestID(ctx), "user", u.ID, "err", err)
		}
	}
	claims := provider.ScopedClaims(id, ar.GetGrantedScopes(), confidential)
	maps.Copy(claims, userinfoRequested(ar, id, confidential))
	claims["sub"] = o.p.SubjectFor(ar.GetClient(), u.ID)
	web.WriteJSON(w, http.StatusOK, claims)
}
