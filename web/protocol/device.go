package protocol

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/ory/fosite"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/web"
)

// deviceAuthorization is the device authorization endpoint (RFC 8628
// §3.1): a client registered for the device code grant authenticates (a
// public one sends its client_id) and gets a device code to poll with and
// a user code for the person to type on the device page.
func (o *OAuth) deviceAuthorization(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	fail := func(err error) {
		if writeUnavailable(w, r, o.log, err) {
			return
		}
		rfc := fosite.ErrorToRFC6749Error(err)
		if rfc.CodeField >= 500 {
			o.log.Error("device authorization failed", "request_id", web.RequestID(ctx), "err", rfc.WithExposeDebug(true).GetDescription())
		}
		description := rfc.GetDescription()
		if rfc.CodeField >= 500 {
			description = ""
		}
		if rfc.CodeField == http.StatusUnauthorized {
			// RFC 6749 §5.2: a failed client authentication names the
			// scheme the client may use.
			web.SetChallenge(w, "Basic", "realm", "tonearm")
		}
		web.WriteOAuthError(w, rfc.CodeField, rfc.ErrorField, description)
	}
	codes := o.p.Devices()
	if codes == nil {
		fail(fosite.ErrUnsupportedGrantType)
		return
	}
	if ok, err := parseBoundedForm(w, r); !ok {
		return
	} else if err != nil {
		fail(fosite.ErrInvalidRequest.WithHint("The request body could not be read."))
		return
	}
	client, err := o.p.AuthenticateClient(ctx, r, r.PostForm)
	if err != nil {
		fail(fosite.ErrInvalidClient.WithHint("Client authentication failed.").WithWrap(err))
		return
	}
	if !client.GetGrantTypes().Has(provider.DeviceCodeGrant) {
		fail(fosite.ErrUnauthorizedClient.WithHint("This client is not registered for the device code grant."))
		return
	}
	if err := o.limiter.DeviceStart(ctx, r); err != nil {
		if !fault.Is(err, fault.Throttled) {
			fail(fosite.ErrServerError.WithWrap(err))
			return
		}
		web.SetErrorHeaders(w, err) // its Retry-After
		web.WriteOAuthError(w, http.StatusTooManyRequests, "slow_down", "Too many device sign-ins were started from this address; try again later.")
		return
	}
	scopes := strings.Fields(r.PostForm.Get("scope"))
	for _, s := range scopes {
		if !client.GetScopes().Has(s) {
			fail(fosite.ErrInvalidScope.WithHintf("The client is not allowed to request scope '%s'.", s))
			return
		}
	}
	resources := provider.Resources(r.PostForm)
	if _, _, err := o.p.Audience(ctx, scopes, resources); err != nil {
		fail(err)
		return
	}
	a, err := codes.Start(ctx, client.GetID(), scopes, resources)
	if err != nil {
		fail(fosite.ErrServerError.WithWrap(err))
		return
	}
	verify := o.p.Issuer() + provider.DevicePath
	w.Header().Set("Cache-Control", "no-store")
	web.WriteJSON(w, http.StatusOK, map[string]any{
		"device_code": a.DeviceCode, "user_code": a.UserCode,
		"verification_uri":          verify,
		"verification_uri_complete": verify + "?" + url.Values{"user_code": {a.UserCode}}.Encode(),
		"expires_in":                int(a.ExpiresIn.Seconds()), "interval": int(a.Interval.Seconds()),
	})
}
