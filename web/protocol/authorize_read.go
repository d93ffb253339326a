package protocol

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/fositestore"
)

// Reading an authorization request, in one unit: a pushed request's
// request_uri opened (and bound to this browser), a request object
// verified and its parameters taken instead of the request's,
// the state padded for fosite and given back, fosite's parse, and tonearm's
// admission (redirect URI, PKCE, the client's scopes and PAR requirement,
// the audience). The authorization endpoint reads each request through it
// once when it arrives, and once more when an interaction comes back to be
// answered: the client may have changed meanwhile.

// authorizeRequest is an authorization request read and admitted.
type authorizeRequest struct {
	// ar is fosite's own type, which it always returns: the reading unit
	// is the one place that writes to it (its state, its time).
	ar        *fosite.AuthorizeRequest
	client    *fositestore.Client
	requested []string // the scopes the token will carry
	pushed    bool
	// claims is the claims request (OpenID Connect Core §5.5), of the
	// scopes the client is registered for.
	claims provider.ClaimsRequest
}

// readRequest reads and admits the authorization request in r.Form (the
// browser's, or an interaction's), answering the error itself when it
// fails. signedInAt is when the interaction answering the request proved
// the sign-in (zero for a request arriving now).
func (o *OAuth) readRequest(w http.ResponseWriter, r *http.Request, signedInAt time.Time) (authorizeRequest, bool) {
	ctx := r.Context()
	// RFC 6749 §3.1: a parameter is sent at most once. Which client, object
	// or reference was meant is unknown when one of these comes twice
	// (openRequest would read the first).
	twice := repeated(r.Form, "client_id", "request", "request_uri")
	if twice == nil && !r.Form.Has("request") && !r.Form.Has("request_uri") {
		// padState keeps one state for fosite: look before it does.
		twice = repeated(r.Form, "state")
	}
	pushed, refused, err := o.openRequest(w, r)
	if err != nil {
		o.authorizeError(w, r, nil, err)
		return authorizeRequest{}, false
	}
	if twice != nil {
		refused = twice
	}
	if badMode := refuseResponseMode(r); refused == nil {
		refused = badMode
	}
	if !pushed {
		o.p.RefreshClientOnMiss(ctx, r.Form.Get("client_id"), strings.Fields(r.Form.Get("scope")), r.Form.Get("redirect_uri"), "authorization_code")
	}
	asked := cloneForm(r.Form)
	ar, err := fositeRead(r, o.p.OAuth2.NewAuthorizeRequest)
	// fosite merges a pushed request into r.Form; an interaction keeps
	// only what the browser brought (client_id and request_uri).
	r.Form = asked
	// Over the bound, nothing is stored; fosite read the request only to
	// verify where the refusal may go.
	if requestTooLarge(asked) {
		o.refuseTooLarge(w, r, ar)
		return authorizeRequest{}, false
	}
	if refused != nil {
		err = refused
	}
	var client *fositestore.Client
	if err == nil {
		client, err = o.admitRequest(ctx, ar)
	}
	if err == nil {
		err = formPostAllowed(ar)
	}
	if err == nil {
		err = o.clientAllows(ctx, ar, client, pushed)
	}
	var requested []string
	if err == nil {
		// The code, and the tokens it yields, carry this request's ID.
		ar.SetID(provider.NewRequestID())
		// An unknown resource, or one none of whose scopes is asked for,
		// is refused before anyone signs in (RFC 8707 invalid_target);
		// the consent page shows only the scopes the token will carry.
		_, requested, err = o.p.Audience(ctx, ar.GetRequestedScopes(), provider.Resources(ar.GetRequestForm()))
	}
	var claims provider.ClaimsRequest
	if err == nil {
		claims, err = provider.ParseClaimsRequest(ar.GetRequestForm().Get("claims"))
	}
	if err != nil {
		o.authorizeError(w, r, ar, err)
		return authorizeRequest{}, false
	}
	// The interaction proved the sign-in after the request arrived
	// (prompt=login, max_age): fosite checks auth_time against the
	// request's time, which would otherwise be that of this reading.
	if !signedInAt.IsZero() && signedInAt.Before(ar.RequestedAt) {
		ar.RequestedAt = signedInAt
	}
	return authorizeRequest{ar: ar, client: client, requested: requested, pushed: pushed, claims: claims.ForClient(client)}, true
}

// openRequest opens a pushed request's request_uri for this browser
// (binding it on first use), or resolves a request object into r.Form
// (requestobject.go): the object's parameters replace the request's
// (RFC 9101 §5), and fosite never sees request or request_uri. refused is
// the object's refusal, answered once fosite has read what is known to be
// the client's (the object's parameters once its signature holds, else
// the request's own) to find where the answer may go. err is an answer
// for a request_uri this browser may not use.
func (o *OAuth) openRequest(w http.ResponseWriter, r *http.Request) (pushed bool, refused, err error) {
	// A pushed request arrives as its request_uri, which fosite resolves.
	if strings.HasPrefix(r.Form.Get("request_uri"), provider.PARRequestURIPrefix) && !r.Form.Has("request") {
		onlyPushed(r)
		if uri := r.Form.Get("request_uri"); !o.parBound(r, uri) {
			if err := o.p.OpenPAR(r.Context(), uri, r.Form.Get("client_id")); err != nil {
				return true, nil, err
			}
			o.bindPAR(w, uri)
		}
		return true, nil, nil
	}
	if !r.Form.Has("request") && !r.Form.Has("request_uri") {
		return false, nil, nil
	}
	clientID := r.Form.Get("client_id")
	obj, refused := o.resolveRequestObject(r.Context(), r.Form, clientID)
	if refused == nil {
		refused = o.spendRequestObject(r.Context(), clientID, obj)
	}
	form := obj.params
	if form == nil {
		form = cloneForm(r.Form)
		form.Del("request")
		form.Del("request_uri")
	}
	r.Form, r.PostForm = form, url.Values{}
	return false, refused, nil
}

// admitRequest applies what tonearm asks of every authorization request,
// direct or pushed, before anyone signs in: a registered redirect URI, and
// PKCE with S256 from every client but a legacy confidential one
// registered --allow-no-pkce (OAuth 2.1, RFC 9700 §2.1.1).
func (o *OAuth) admitRequest(ctx context.Context, ar fosite.AuthorizeRequester) (*fositestore.Client, error) {
	if !redirectAllowed(ar) {
		return nil, fosite.ErrInvalidRequest.WithHint("The 'redirect_uri' parameter does not match any of the OAuth 2.0 Client's pre-registered redirect urls.")
	}
	// OpenID Connect Core §3.1.2.1: none with any other prompt value is
	// an error, answered before anything is decided (the decision would
	// otherwise answer prompt=none's error for a request that asked more).
	// RFC 6749 §3.1: a parameter is sent at most once; a second prompt,
	// max_age, acr_values, response_mode or claims would otherwise be read
	// by one check and not another (prompt=login&prompt=none).
	if len(ar.GetRequestForm()["response_mode"]) > 1 {
		if r, ok := ar.(*fosite.AuthorizeRequest); ok {
			// Which of the two was meant is unknown: answer in the
			// default mode, as for any mode that is not offered.
			r.ResponseMode = fosite.ResponseModeQuery
		}
	}
	if err := repeated(ar.GetRequestForm(), "prompt", "max_age", "acr_values", "response_mode", "claims", "response_type", "redirect_uri",
		"scope", "state", "nonce", "code_challenge", "code_challenge_method", "login_hint", "id_token_hint"); err != nil {
		return nil, err
	}
	if prompt := strings.Fields(ar.GetRequestForm().Get("prompt")); len(prompt) > 1 && slices.Contains(prompt, "none") {
		return nil, fosite.ErrInvalidRequest.WithHint("The 'prompt' parameter 'none' cannot be combined with other values.")
	}
	client, ok := ar.GetClient().(*fositestore.Client)
	if !ok {
		return nil, fosite.ErrServerError.WithDebug("unexpected client type")
	}
	if challenge, method := ar.GetRequestForm().Get("code_challenge"), ar.GetRequestForm().Get("code_challenge_method"); challenge == "" {
		if !client.AllowNoPKCE {
			return nil, fosite.ErrInvalidRequest.WithHint("Clients must include a code_challenge (PKCE, S256) when performing the authorize code flow, but it is missing.")
		}
		// Without PKCE, state is what protects the client from CSRF
		// (RFC 6749 §10.12); with PKCE it is optional (OAuth 2.1).
		if ar.GetState() == "" {
			return nil, fosite.ErrInvalidState.WithHint("A request without PKCE must carry a state parameter.")
		}
	} else if method != "S256" {
		return nil, fosite.ErrInvalidRequest.WithHint("code_challenge_method must be S256; plain is not supported.")
	}
	return client, nil
}

// clientAllows applies what the client's registration asks of its
// requests at the authorization endpoint.
func (o *OAuth) clientAllows(ctx context.Context, ar fosite.AuthorizeRequester, client *fositestore.Client, pushed bool) error {
	if client.Registration != "" {
		// An app registered by a developer: the built-in user scopes and
		// those of APIs open to apps, as the APIs stand now.
		if err := o.p.AppScopesAllowed(ctx, ar.GetRequestedScopes()); err != nil {
			return err
		}
	}
	if client.RequirePAR && !pushed {
		return fosite.ErrInvalidRequest.WithHint("This client must push its authorization requests to the pushed authorization request endpoint first (RFC 9126).")
	}
	return nil
}

// fositeRead runs one of fosite's readers of an authorization request
// (direct or pushed) with the state padded for it, and gives the client's
// own state back on what it read.
func fositeRead(r *http.Request, read func(context.Context, *http.Request) (fosite.AuthorizeRequester, error)) (*fosite.AuthorizeRequest, error) {
	state, has := padState(r)
	ar, err := read(r.Context(), r)
	a, ok := ar.(*fosite.AuthorizeRequest)
	if !ok {
		// fosite returns its own type, with an error too; anything else
		// is a bug, answered without a client to redirect to.
		return fosite.NewAuthorizeRequest(), errors.Join(err, fosite.ErrServerError.WithDebug("unexpected authorization request type"))
	}
	restoreState(r, a, state, has)
	return a, err
}

func cloneForm(form url.Values) url.Values {
	out := make(url.Values, len(form))
	for k, v := range form {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// statePad lengthens a short or absent state for fosite, which refuses a
// state under 8 characters whatever its configuration says; restoreState
// puts the client's own state back before anything is stored or sent.
const statePad = "tonearm-short-state:"

// padState makes r's state long enough for fosite and returns the state
// the client sent (has: whether it sent one).
func padState(r *http.Request) (state string, has bool) {
	state, has = r.Form.Get("state"), r.Form.Has("state")
	if len(state) < 8 {
		r.Form.Set("state", statePad+state)
		if r.PostForm.Has("state") {
			r.PostForm.Set("state", statePad+state)
		}
	}
	return state, has
}

// restoreState undoes padState on r and on the request fosite parsed.
func restoreState(r *http.Request, ar *fosite.AuthorizeRequest, state string, has bool) {
	for _, form := range []url.Values{r.Form, r.PostForm, ar.Form} {
		if form.Get("state") != statePad+state {
			continue
		}
		if has {
			form.Set("state", state)
		} else {
			form.Del("state")
		}
	}
	if ar.State == statePad+state {
		ar.State = state
	}
}

// repeated is RFC 6749 §3.1's refusal of a parameter sent more than once,
// for the first of names that was. resource is not among the names
// anyone passes: RFC 8707 §2 repeats it on purpose.
func repeated(form url.Values, names ...string) error {
	for _, name := range names {
		if len(form[name]) > 1 {
			return fosite.ErrInvalidRequest.WithHintf("The '%s' parameter was sent more than once.", name)
		}
	}
	return nil
}
