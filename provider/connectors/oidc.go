package connectors

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/storage"
)

// discoveryTTL is how long an upstream's discovery document is reused.
const discoveryTTL = 10 * time.Minute

type cachedProvider struct {
	p  *oidc.Provider
	at time.Time
}

// openID is any OpenID provider: code flow with PKCE S256, state and
// nonce; the ID token's signature (upstream JWKS), iss, aud, exp and nonce
// are checked by go-oidc and here.
type openID struct {
	issuer   string
	config   oauth2.Config
	verifier *oidc.IDTokenVerifier
	provider *oidc.Provider
	client   *http.Client
}

func (r *Registry) discover(ctx context.Context, issuer string) (*oidc.Provider, error) {
	r.mu.Lock()
	c, ok := r.discovery[issuer]
	r.mu.Unlock()
	if ok && r.now().Sub(c.at) < discoveryTTL {
		return c.p, nil
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, r.client), issuer)
	if err != nil {
		return nil, fmt.Errorf("%w: discovery of %s: %v", ErrUpstream, issuer, err)
	}
	for _, e := range []struct{ name, url string }{{"authorization_endpoint", p.Endpoint().AuthURL}, {"token_endpoint", p.Endpoint().TokenURL}} {
		if err := UpstreamURL(e.name, e.url); err != nil {
			return nil, fmt.Errorf("%w: %s %q is not https", ErrUpstream, e.name, e.url)
		}
	}
	r.mu.Lock()
	r.discovery[issuer] = cachedProvider{p: p, at: r.now()}
	r.mu.Unlock()
	return p, nil
}

func (r *Registry) forget(issuer string) {
	r.mu.Lock()
	delete(r.discovery, issuer)
	r.mu.Unlock()
}

func (r *Registry) newOIDC(ctx context.Context, c storage.Connector, secret string) (*openID, error) {
	p, err := r.discover(ctx, c.Issuer)
	if err != nil {
		return nil, err
	}
	scopes := []string{oidc.ScopeOpenID, "profile", "email"}
	for _, s := range c.Scopes {
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	return &openID{
		issuer: c.Issuer, provider: p, client: r.client,
		config:   oauth2.Config{ClientID: c.ClientID, ClientSecret: secret, RedirectURL: r.CallbackURL(c.ID), Scopes: scopes, Endpoint: p.Endpoint()},
		verifier: p.VerifierContext(oidc.ClientContext(context.Background(), r.client), &oidc.Config{ClientID: c.ClientID, Now: r.now}),
	}, nil
}

func (o *openID) authURL(round Round) string {
	return o.config.AuthCodeURL(round.State, oauth2.S256ChallengeOption(round.Verifier), oidc.Nonce(round.Nonce))
}

type idClaims struct {
	Email             string `json:"email"`
	EmailVerified     *bool  `json:"email_verified"`
	PreferredUsername string `json:"preferred_username"`
	Name              string `json:"name"`
}

func (o *openID) exchange(ctx context.Context, code string, round Round) (Identity, error) {
	ctx = oidc.ClientContext(ctx, o.client)
	tok, err := o.config.Exchange(ctx, code, oauth2.VerifierOption(round.Verifier))
	if err != nil {
		return Identity{}, tokenError(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, fmt.Errorf("%w: no ID token in the token answer", ErrRejected)
	}
	idt, err := o.verifier.Verify(ctx, raw)
	if err != nil {
		var expired *oidc.TokenExpiredError
		if errors.As(err, &expired) {
			return Identity{}, fmt.Errorf("%w: the ID token expired", ErrRejected)
		}
		return Identity{}, fmt.Errorf("%w: ID token: %v", ErrRejected, err)
	}
	if idt.Nonce != round.Nonce {
		return Identity{}, fmt.Errorf("%w: the ID token's nonce is not this sign-in's", ErrRejected)
	}
	var cl idClaims
	if err := idt.Claims(&cl); err != nil {
		return Identity{}, fmt.Errorf("%w: ID token claims: %v", ErrRejected, err)
	}
	if cl.PreferredUsername == "" && o.provider.UserInfoEndpoint() != "" {
		// Some providers put the profile only in userinfo.
		if info, err := o.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil && info.Subject == idt.Subject {
			var more idClaims
			if info.Claims(&more) == nil {
				cl.PreferredUsername, cl.Name = more.PreferredUsername, cmpOr(cl.Name, more.Name)
				if cl.Email == "" {
					cl.Email, cl.EmailVerified = more.Email, more.EmailVerified
				}
			}
		}
	}
	return Identity{
		Issuer: o.issuer, Subject: idt.Subject, Username: cl.PreferredUsername, Email: cl.Email, Name: cl.Name,
		EmailVerified: cl.Email != "" && cl.EmailVerified != nil && *cl.EmailVerified,
	}, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
