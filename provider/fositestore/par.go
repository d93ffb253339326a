package fositestore

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/tonearm-idp/tonearm/storage"
)

// Pushed authorization requests (RFC 9126) in the adapter: fosite's
// PARStorage, and the end of a pushed request once its sign-in is over.

// parParameters are what a pushed authorization request keeps besides
// keptParameters: the authorization endpoint continues from them.
// dpop_jkt binds the code to a DPoP key (RFC 9449 §10): dropped, a code
// pushed with a proof would be redeemable with any key.
var parParameters = []string{"state", "resource", "response_mode", "login_hint", "ui_locales", "claims", "dpop_jkt"}

// parRedirectKey holds, in a stored PAR's form, the redirect URI the
// request resolved to (the only registered one, when it named none):
// kept apart from redirect_uri, whose presence the token endpoint checks.
const parRedirectKey = "_resolved_redirect_uri"

func parForm(req fosite.Requester) string {
	form := req.GetRequestForm()
	out := url.Values{}
	for _, k := range append(keptParameters, parParameters...) {
		if v, ok := form[k]; ok {
			out[k] = v
		}
	}
	if ar, ok := req.(fosite.AuthorizeRequester); ok && ar.GetRedirectURI() != nil {
		out.Set(parRedirectKey, ar.GetRedirectURI().String())
	}
	return out.Encode()
}

// PARLifespan is how long a pushed authorization request waits for the
// browser (its expires_in; RFC 9126 §2.2 suggests a short time), and
// PARInteraction how long it then serves the login and consent steps that
// post it back. The stored row expires with the request_uri (so
// housekeeping drops an unopened push after PARLifespan) and, once opened,
// PARInteraction after it was opened.
const (
	PARLifespan    = 60 * time.Second
	PARInteraction = 10 * time.Minute
)

// CreatePARSession implements fosite.PARStorage, keyed by the SHA-256 of
// the request_uri.
func (a *Adapter) CreatePARSession(ctx context.Context, requestURI string, req fosite.AuthorizeRequester) error {
	return a.create(ctx, storage.KindPAR, requestURI, "", req)
}

// GetPARSession implements fosite.PARStorage: a live, unexpired pushed
// request, rebuilt as the authorization request it was.
func (a *Adapter) GetPARSession(ctx context.Context, requestURI string) (fosite.AuthorizeRequester, error) {
	req, row, err := a.loadRow(ctx, storage.KindPAR, requestURI, nil)
	if err != nil {
		return nil, err
	}
	// Not yet opened (active): it waits PARLifespan for the browser;
	// opened, it lasts the interaction.
	now := a.now()
	if !now.Before(row.ExpiresAt) || row.Active && !now.Before(row.RequestedAt.Add(PARLifespan)) {
		return nil, fosite.ErrNotFound
	}
	redirect, err := url.Parse(req.Form.Get(parRedirectKey))
	if err != nil || req.Form.Get(parRedirectKey) == "" {
		return nil, fosite.ErrNotFound
	}
	req.Form.Del(parRedirectKey)
	ar := &fosite.AuthorizeRequest{
		Request: *req, RedirectURI: redirect, State: req.Form.Get("state"),
		ResponseTypes:        fosite.Arguments(strings.Fields(req.Form.Get("response_type"))),
		ResponseMode:         fosite.ResponseModeType(req.Form.Get("response_mode")),
		HandledResponseTypes: fosite.Arguments{},
	}
	if ar.ResponseMode == "" {
		ar.ResponseMode = fosite.ResponseModeDefault
	}
	return ar, nil
}

// DeletePARSession implements fosite.PARStorage. fosite calls it the first
// time the authorization endpoint reads a pushed request; tonearm's login
// and consent steps post that request back, so it is only marked opened
// here and stays usable until the interaction ends — the authorization
// endpoint then calls ConsumePARSession — or PARInteraction has passed
// (RFC 9126 §4 allows a reload to reuse it).
func (a *Adapter) DeletePARSession(ctx context.Context, requestURI string) error {
	err := a.openPAR(ctx, requestURI)
	if errors.Is(err, storage.ErrNotFound) {
		return nil // opened before: a post-back
	}
	return err
}

// ErrPAROpened: the pushed request was opened before (by another
// browser, unless the caller knows better).
var ErrPAROpened = errors.New("fositestore: pushed request already opened")

// OpenPARSession marks a live pushed request opened, once: of concurrent
// openers one succeeds, the others get ErrPAROpened; an unknown or
// expired request_uri is fosite.ErrNotFound.
func (a *Adapter) OpenPARSession(ctx context.Context, requestURI string) error {
	if _, err := a.GetPARSession(ctx, requestURI); err != nil {
		return fosite.ErrNotFound
	}
	err := a.openPAR(ctx, requestURI)
	if errors.Is(err, storage.ErrNotFound) {
		return ErrPAROpened
	}
	return err
}

// openPAR marks a pushed request opened, and keeps it for the interaction.
func (a *Adapter) openPAR(ctx context.Context, requestURI string) error {
	return a.store.OpenOAuthRequest(ctx, storage.KindPAR, hashSignature(requestURI), a.now().Add(PARInteraction))
}

// ConsumePARSession ends a pushed request: its request_uri works no more.
func (a *Adapter) ConsumePARSession(ctx context.Context, requestURI string) error {
	return a.store.DeleteOAuthRequest(ctx, storage.KindPAR, hashSignature(requestURI))
}
