package protocol

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"

	"github.com/ory/fosite"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/fositestore"
	"github.com/tonearm-idp/tonearm/web"
)

// Pushed authorization requests at the authorization endpoint (RFC 9126
// §4): only the pushed parameters count, and a request_uri belongs to the
// first browser that opens it.

// pushedFormFields are what a pushed request's browser may send besides
// the fields the login and consent forms add: the pushed request is found
// by them, everything else comes from the push.
var pushedFormFields = map[string]bool{"client_id": true, "request_uri": true}

// onlyPushed drops from r's form every authorization parameter the URL or
// the body carries beside client_id and request_uri: a pushed request is
// taken as it was pushed, never mixed with the query (fosite would merge
// whatever the push did not set: nonce, max_age, redirect_uri…).
func onlyPushed(r *http.Request) {
	for _, form := range []url.Values{r.Form, r.PostForm} {
		for k := range form {
			if !pushedFormFields[k] && !formFields[k] {
				delete(form, k)
			}
		}
	}
}

// parBindingName is the name of the cookie that binds request_uri to a
// browser; one per request, so that tabs do not evict each other.
func (o *OAuth) parBindingName(requestURI string) string {
	sum := sha256.Sum256([]byte(requestURI))
	return "tonearm_par_" + base64.RawURLEncoding.EncodeToString(sum[:9])
}

func (o *OAuth) parBindingValue(requestURI string) string {
	m := hmac.New(sha256.New, o.parKey)
	m.Write([]byte("par-binding\x00" + requestURI))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// parBound reports whether r's browser is the one that opened requestURI.
func (o *OAuth) parBound(r *http.Request, requestURI string) bool {
	c, err := r.Cookie(o.parBindingName(requestURI))
	return err == nil && hmac.Equal([]byte(c.Value), []byte(o.parBindingValue(requestURI)))
}

// bindPAR gives the browser that opened requestURI its proof: only it can
// post the login and consent steps of that request. The cookie goes to the
// authorization endpoint alone and lasts as long as the interaction.
func (o *OAuth) bindPAR(w http.ResponseWriter, requestURI string) {
	http.SetCookie(w, &http.Cookie{
		Name: o.parBindingName(requestURI), Value: o.parBindingValue(requestURI), Path: o.action,
		MaxAge: int(fositestore.PARInteraction.Seconds()), HttpOnly: true,
		Secure: strings.HasPrefix(o.p.Issuer(), "https://"), SameSite: http.SameSiteLaxMode,
	})
}

// consumePAR ends the pushed request behind ar, if any, as its answer goes
// back to the client.
func (o *OAuth) consumePAR(r *http.Request, ar fosite.AuthorizeRequester) {
	if ar == nil {
		return
	}
	if err := o.p.ConsumePAR(r.Context(), ar.GetRequestForm()); err != nil {
		o.log.Error("ending a pushed authorization request", "request_id", web.RequestID(r.Context()), "err", err)
	}
}

// par is the pushed authorization request endpoint (RFC 9126): the client
// authenticates and sends its authorization request here, gets a
// request_uri valid for a minute, and sends the browser to the
// authorization endpoint with client_id and request_uri alone.
func (o *OAuth) par(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if ok, err := parseBoundedForm(w, r); !ok {
		return
	} else if err != nil {
		o.p.OAuth2.WritePushedAuthorizeError(ctx, w, fosite.NewAuthorizeRequest(), fosite.ErrInvalidRequest.WithHint("The request body could not be read."))
		return
	}
	// A pushed request is stored until it is used or expires: the bound of
	// the authorization endpoint applies (RFC 9126 §2.3 invalid_request).
	if requestTooLarge(r.Form) {
		o.p.OAuth2.WritePushedAuthorizeError(ctx, w, fosite.NewAuthorizeRequest(), errRequestTooLarge())
		return
	}
	obj, err := o.pushedObject(r)
	if err != nil {
		if writeUnavailable(w, r, o.log, err) {
			return
		}
		o.p.OAuth2.WritePushedAuthorizeError(ctx, w, fosite.NewAuthorizeRequest(), err)
		return
	}
	o.p.RefreshClientOnMiss(ctx, requestClientID(r), strings.Fields(r.Form.Get("scope")), r.Form.Get("redirect_uri"), "authorization_code")
	badMode := refuseResponseMode(r)
	ar, err := fositeRead(r, o.p.OAuth2.NewPushedAuthorizeRequest)
	if err == nil && obj.params != nil {
		// The object is spent only once its client has authenticated: a
		// stranger replaying it must not use it up.
		if ar.GetClient().GetID() != obj.params.Get("client_id") {
			err = fosite.ErrInvalidRequestObject.WithHint("The request object's client_id is not the authenticated client.")
		} else {
			err = o.spendRequestObject(ctx, ar.GetClient().GetID(), obj)
		}
	}
	if err == nil {
		err = badMode
	}
	if err == nil {
		_, err = o.admitRequest(ctx, ar)
	}
	if err == nil {
		err = formPostAllowed(ar)
	}
	if err == nil {
		_, _, err = o.p.Audience(ctx, ar.GetRequestedScopes(), provider.Resources(ar.GetRequestForm()))
	}
	if err == nil {
		_, err = provider.ParseClaimsRequest(ar.GetRequestForm().Get("claims"))
	}
	if err != nil {
		if writeUnavailable(w, r, o.log, err) {
			return
		}
		o.p.OAuth2.WritePushedAuthorizeError(ctx, w, ar, err)
		return
	}
	if ar.GetClient().IsPublic() && !o.countPush(w, r, ar) {
		return
	}
	resp, err := o.p.OAuth2.NewPushedAuthorizeResponse(ctx, ar, provider.NewSession())
	if err != nil {
		if writeUnavailable(w, r, o.log, err) {
			return
		}
		o.p.OAuth2.WritePushedAuthorizeError(ctx, w, ar, err)
		return
	}
	o.p.OAuth2.WritePushedAuthorizeResponse(ctx, w, ar, resp)
}

// pushedObject resolves a pushed request object (RFC 9126 §3): verified as
// at the authorization endpoint, its parameters are what is pushed, and the
// client's authentication stays beside them. A push without one is left
// as it is (fosite refuses a pushed request_uri itself).
func (o *OAuth) pushedObject(r *http.Request) (resolvedObject, error) {
	if !r.Form.Has("request") {
		return resolvedObject{}, nil
	}
	// The client that authenticates (Basic, client_id, or an assertion's
	// sub): the object must verify with its keys, and fosite then checks
	// that it is that client.
	obj, err := o.resolveRequestObject(r.Context(), r.Form, requestClientID(r))
	if err != nil {
		return resolvedObject{}, err
	}
	if requestTooLarge(obj.params) {
		return resolvedObject{}, errRequestTooLarge()
	}
	form := cloneForm(obj.params)
	for k := range clientAuthFields {
		if v, ok := r.Form[k]; ok {
			form[k] = v
		}
	}
	r.Form, r.PostForm = form, cloneForm(form)
	return obj, nil
}
