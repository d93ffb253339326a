package provider

import (
	"context"
	"errors"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"

	"github.com/tonearm-idp/tonearm/provider/device"
	"github.com/tonearm-idp/tonearm/provider/fositestore"
	"github.com/tonearm-idp/tonearm/storage"
)

// DeviceCodeGrant is the grant type of the Device Authorization Grant.
const DeviceCodeGrant = "urn:ietf:params:oauth:grant-type:device_code"

// The token endpoint's errors of RFC 8628 §3.5, answered with status 400
// like every token endpoint error (RFC 6749 §5.2; fosite's access_denied
// is 403, for the authorization endpoint).
var (
	ErrDeviceAccessDenied = &fosite.RFC6749Error{ErrorField: "access_denied", CodeField: 400,
		DescriptionField: "The user denied the request."}
	ErrAuthorizationPending = &fosite.RFC6749Error{ErrorField: "authorization_pending", CodeField: 400,
		DescriptionField: "The authorization request is still pending: the user has not yet decided."}
	ErrSlowDown = &fosite.RFC6749Error{ErrorField: "slow_down", CodeField: 400,
		DescriptionField: "The authorization request is still pending and polling should slow down: the interval grows by 5 seconds."}
	ErrExpiredToken = &fosite.RFC6749Error{ErrorField: "expired_token", CodeField: 400,
		DescriptionField: "The device_code has expired: start a new device authorization."}
)

// deviceGrant is tonearm's token endpoint handler for the device code
// grant, composed beside fosite's (fosite v0.49 has none): it polls the
// device authorization and, once the person has approved it, spends the
// device code and issues tokens as the code flow would (an access token;
// a refresh token with offline_access; an ID token with openid).
type deviceGrant struct {
	p       *Provider
	codes   *device.Codes
	helper  *oauth2.HandleHelper
	refresh oauth2.RefreshTokenStrategy
	store   *fositestore.Adapter
	idToken openid.OpenIDConnectTokenStrategy
	config  fosite.Configurator
}

var _ fosite.TokenEndpointHandler = (*deviceGrant)(nil)

func newDeviceGrant(codes *device.Codes, access *AccessTokenStrategy, store *fositestore.Adapter, idToken openid.OpenIDConnectTokenStrategy, config *fosite.Config) *deviceGrant {
	return &deviceGrant{codes: codes, refresh: access, store: store, idToken: idToken, config: config,
		helper: &oauth2.HandleHelper{AccessTokenStrategy: access, AccessTokenStorage: store, Config: config}}
}

func (g *deviceGrant) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool { return false }

func (g *deviceGrant) CanHandleTokenEndpointRequest(_ context.Context, req fosite.AccessRequester) bool {
	return req.GetGrantTypes().ExactOne(DeviceCodeGrant)
}

// HandleTokenEndpointRequest checks the poll (RFC 8628 §3.4, §3.5).
func (g *deviceGrant) HandleTokenEndpointRequest(ctx context.Context, req fosite.AccessRequester) error {
	if !g.CanHandleTokenEndpointRequest(ctx, req) {
		return fosite.ErrUnknownRequest
	}
	client := req.GetClient()
	if !client.GetGrantTypes().Has(DeviceCodeGrant) {
		return fosite.ErrUnauthorizedClient.WithHint("This client is not registered for the device code grant.")
	}
	code := req.GetRequestForm().Get("device_code")
	if code == "" {
		return fosite.ErrInvalidRequest.WithHint("The device_code parameter is missing.")
	}
	d, tooFast, err := g.codes.Poll(ctx, code)
	if errors.Is(err, device.ErrNotFound) || (err == nil && d.ClientID != client.GetID()) {
		return fosite.ErrInvalidGrant.WithHint("The device_code is unknown, or was issued to another client.")
	}
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	switch {
	case d.Status == storage.DeviceUsed:
		return fosite.ErrInvalidGrant.WithHint("The device_code has already yielded tokens.")
	case !g.codes.Now().Before(d.ExpiresAt):
		return ErrExpiredToken
	case d.Status == storage.DeviceDenied:
		return ErrDeviceAccessDenied
	case tooFast:
		return ErrSlowDown
	case d.Status != storage.DeviceApproved:
		return ErrAuthorizationPending
	}
	u, err := g.p.users.GetUser(ctx, d.UserID)
	if err != nil || u.Disabled {
		return ErrDeviceAccessDenied.WithHint("The account that approved the request can no longer sign in.")
	}
	if err := g.codes.Consume(ctx, code); err != nil {
		return fosite.ErrInvalidGrant.WithHint("The device_code has already yielded tokens.")
	}
	req.SetID(NewRequestID())
	// amr (and with it acr) of the sign-in that approved the device: an
	// approval from a two-factor session gives multi-factor tokens.
	session := UserSession(IdentityOf(u), "", d.AMR, d.AuthTime, d.RequestedAt, d.GrantedScopes)
	if c, ok := client.(*fositestore.Client); ok {
		SetIDTokenAlg(session, c.IDTokenAlg)
	}
	req.SetSession(session)
	return g.p.Grant(ctx, req, d.GrantedScopes, d.Resources)
}

// PopulateTokenEndpointResponse issues the tokens of an approved poll.
func (g *deviceGrant) PopulateTokenEndpointResponse(ctx context.Context, req fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !g.CanHandleTokenEndpointRequest(ctx, req) {
		return fosite.ErrUnknownRequest
	}
	if _, err := g.helper.IssueAccessToken(ctx, g.config.GetAccessTokenLifespan(ctx), req, resp); err != nil {
		return err
	}
	if req.GetGrantedScopes().Has("offline_access") && req.GetClient().GetGrantTypes().Has("refresh_token") {
		token, signature, err := g.refresh.GenerateRefreshToken(ctx, req)
		if err != nil {
			return fosite.ErrServerError.WithWrap(err)
		}
		if exp := g.config.GetRefreshTokenLifespan(ctx); exp > 0 {
			req.GetSession().SetExpiresAt(fosite.RefreshToken, time.Now().UTC().Add(exp).Round(time.Second))
		}
		if err := g.store.CreateRefreshTokenSession(ctx, signature, "", req.Sanitize([]string{})); err != nil {
			return fosite.ErrServerError.WithWrap(err)
		}
		resp.SetExtra("refresh_token", token)
	}
	if req.GetGrantedScopes().Has("openid") {
		token, err := g.idToken.GenerateIDToken(ctx, g.config.GetIDTokenLifespan(ctx), req)
		if err != nil {
			return fosite.ErrServerError.WithWrap(err)
		}
		resp.SetExtra("id_token", token)
	}
	return nil
}

// IdentityOf is what a user's tokens say of them.
func IdentityOf(u storage.User) Identity {
	return Identity{
		ID: u.ID, Username: u.Username, Name: u.Name, Email: u.Email, EmailVerified: u.EmailVerified,
		Website: u.Website, Locale: u.Language, Role: u.Role, ListenBrainzName: u.ListenBrainzName, MusicBrainzName: u.MusicBrainzName,
	}
}
