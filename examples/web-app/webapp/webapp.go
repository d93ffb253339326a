// Package webapp is a small web app that signs its users in with tonearm,
// as any Go relying party would: github.com/coreos/go-oidc/v3 for discovery
// and ID-token verification, golang.org/x/oauth2 for the code flow with
// PKCE. It shows who is signed in (name and ListenBrainz name), refreshes
// its tokens, signs out through tonearm (RP-Initiated Logout) and honours
// Back-Channel Logout.
package webapp

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Config is what the app needs to know.
type Config struct {
	Issuer       string // tonearm's issuer URL
	ClientID     string
	ClientSecret string
	// BaseURL is where the app is reached (http://127.0.0.1:5555): the
	// callback, the post-logout page and the back-channel logout URI are
	// under it.
	BaseURL string
	// HTTPClient talks to tonearm (nil: a client with a 15 s timeout).
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// App is the web app.
type App struct {
	cfg      Config
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	oauth    oauth2.Config
	endURL   string // tonearm's end_session_endpoint
	log      *slog.Logger

	mu       sync.Mutex
	sessions map[string]*session // by the app's own cookie value
}

// session is one browser's state: a sign-in in progress, then its tokens.
type session struct {
	state, nonce, verifier string
	token                  *oauth2.Token
	idToken                string
	sid                    string // tonearm's session, for back-channel logout
	name, username, lbName string
	refreshed              int
}

const cookieName = "webapp_session"

// New discovers tonearm and returns the app.
func New(ctx context.Context, c Config) (*App, error) {
	if c.Issuer == "" || c.ClientID == "" || c.BaseURL == "" {
		return nil, errors.New("webapp: Issuer, ClientID and BaseURL are required")
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	ctx = oidc.ClientContext(ctx, c.HTTPClient)
	p, err := oidc.NewProvider(ctx, c.Issuer)
	if err != nil {
		return nil, fmt.Errorf("webapp: discovery: %w", err)
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, err
	}
	return &App{
		cfg: c, provider: p, verifier: p.Verifier(&oidc.Config{ClientID: c.ClientID}), endURL: meta.EndSession, log: c.Logger,
		oauth: oauth2.Config{
			ClientID: c.ClientID, ClientSecret: c.ClientSecret, Endpoint: p.Endpoint(), RedirectURL: c.BaseURL + "/callback",
			Scopes: []string{oidc.ScopeOpenID, "profile", "listenbrainz", oidc.ScopeOfflineAccess},
		},
		sessions: map[string]*session{},
	}, nil
}

// Handler serves the app.
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("GET /login", a.login)
	mux.HandleFunc("GET /callback", a.callback)
	mux.HandleFunc("POST /refresh", a.refresh)
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("POST /backchannel-logout", a.backchannelLogout)
	return mux
}

func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// current returns the browser's session, making one when asked.
func (a *App) current(w http.ResponseWriter, r *http.Request, create bool) *session {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, err := r.Cookie(cookieName); err == nil {
		if s, ok := a.sessions[c.Value]; ok {
			return s
		}
	}
	if !create {
		return nil
	}
	id := random()
	s := &session{}
	a.sessions[id] = s
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return s
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Example app</title></head>
<body><main>
<h1>Example app</h1>
{{if .SignedIn}}
  <p id="who">Signed in as <strong id="name">{{.Name}}</strong> (<span id="username">{{.Username}}</span>).</p>
  <p>ListenBrainz: <span id="listenbrainz">{{if .LBName}}{{.LBName}}{{else}}not linked{{end}}</span></p>
  <p>Access token expires {{.Expiry}}{{if .Refreshed}}; refreshed <span id="refreshed">{{.Refreshed}}</span> times{{end}}.</p>
  <form method="post" action="/refresh"><button type="submit" id="refresh">Refresh the tokens</button></form>
  <form method="post" action="/logout"><button type="submit" id="logout">Sign out</button></form>
{{else}}
  <p id="signed-out">You are not signed in.</p>
  <p><a id="login" href="/login">Sign in with tonearm</a></p>
{{end}}
{{with .Error}}<p id="error" role="alert">{{.}}</p>{{end}}
</main></body></html>`))

type pageData struct {
	SignedIn                              bool
	Name, Username, LBName, Expiry, Error string
	Refreshed                             int
}

func (a *App) render(w http.ResponseWriter, status int, s *session, msg string) {
	d := pageData{Error: msg}
	if s != nil && s.token != nil {
		d.SignedIn, d.Name, d.Username, d.LBName, d.Refreshed = true, s.name, s.username, s.lbName, s.refreshed
		d.Expiry = s.token.Expiry.UTC().Format("15:04:05 UTC")
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = page.Execute(w, d)
}

func (a *App) home(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	s := a.sessionLocked(r)
	a.mu.Unlock()
	a.render(w, http.StatusOK, s, r.URL.Query().Get("error"))
}

func (a *App) sessionLocked(r *http.Request) *session {
	if c, err := r.Cookie(cookieName); err == nil {
		return a.sessions[c.Value]
	}
	return nil
}

// login starts the code flow: state against CSRF, nonce against replayed
// ID tokens, PKCE (S256) against stolen codes.
func (a *App) login(w http.ResponseWriter, r *http.Request) {
	s := a.current(w, r, true)
	a.mu.Lock()
	s.state, s.nonce, s.verifier = random(), random(), oauth2.GenerateVerifier()
	authURL := a.oauth.AuthCodeURL(s.state, oidc.Nonce(s.nonce), oauth2.S256ChallengeOption(s.verifier))
	a.mu.Unlock()
	http.Redirect(w, r, authURL, http.StatusSeeOther)
}

// callback finishes the code flow and verifies the ID token.
func (a *App) callback(w http.ResponseWriter, r *http.Request) {
	s := a.current(w, r, false)
	q := r.URL.Query()
	if s == nil || s.state == "" || q.Get("state") != s.state {
		a.render(w, http.StatusBadRequest, nil, "This sign-in did not start here (state mismatch); sign in again.")
		return
	}
	if e := q.Get("error"); e != "" {
		a.render(w, http.StatusOK, nil, "Sign-in refused: "+e)
		return
	}
	ctx := oidc.ClientContext(r.Context(), a.cfg.HTTPClient)
	tok, err := a.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(s.verifier))
	if err != nil {
		a.log.Warn("code exchange failed", "err", err)
		a.render(w, http.StatusBadGateway, nil, a.exchangeProblem(err))
		return
	}
	if err := a.accept(ctx, s, tok, true); err != nil {
		a.log.Warn("ID token refused", "err", err)
		a.render(w, http.StatusBadGateway, nil, "The ID token did not verify; sign in again.")
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// exchangeProblem says why tonearm refused a code exchange, naming the real
// cause: a wrong client secret is the app's configuration, not the code,
// and signing in again would not help (RFC 6749 §5.2 error codes).
func (a *App) exchangeProblem(err error) string {
	if msg, ok := a.clientProblem(err); ok {
		return msg
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode != "" {
		return fmt.Sprintf("tonearm refused the code (%s); sign in again.", re.ErrorCode)
	}
	return "The code exchange with tonearm failed; sign in again."
}

// clientProblem is the message for a token request refused because the app
// did not authenticate (invalid_client / unauthorized_client).
func (a *App) clientProblem(err error) (string, bool) {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return "", false
	}
	switch re.ErrorCode {
	case "invalid_client":
		return fmt.Sprintf("The client secret was refused (invalid_client): this app runs as client %q with a secret tonearm does not accept "+
			"(WEB_APP_CLIENT_SECRET or -client-secret). Use the secret tonearm printed when the client was created, or make a new one "+
			"with: tonearm clients rotate-secret %s", a.cfg.ClientID, a.cfg.ClientID), true
	case "unauthorized_client":
		return fmt.Sprintf("tonearm does not allow client %q this grant (unauthorized_client): check its registration (tonearm clients list).", a.cfg.ClientID), true
	}
	return "", false
}

// accept verifies a token response's ID token (with the sign-in's nonce
// the first time) and keeps the tokens and claims.
func (a *App) accept(ctx context.Context, s *session, tok *oauth2.Token, first bool) error {
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		return errors.New("no id_token in the answer")
	}
	idt, err := a.verifier.Verify(ctx, raw)
	if err != nil {
		return err
	}
	var claims struct {
		Name             string `json:"name"`
		Username         string `json:"preferred_username"`
		ListenBrainzName string `json:"listenbrainz_name"`
		SID              string `json:"sid"`
	}
	if err := idt.Claims(&claims); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if first && idt.Nonce != s.nonce {
		return errors.New("nonce mismatch")
	}
	s.token, s.idToken, s.sid = tok, raw, claims.SID
	s.name, s.username, s.lbName = claims.Name, claims.Username, claims.ListenBrainzName
	if s.name == "" {
		s.name = claims.Username
	}
	s.state, s.nonce, s.verifier = "", "", ""
	return nil
}

// refresh trades the refresh token for new tokens (tonearm rotates it).
func (a *App) refresh(w http.ResponseWriter, r *http.Request) {
	s := a.current(w, r, false)
	if s == nil || s.token == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	ctx := oidc.ClientContext(r.Context(), a.cfg.HTTPClient)
	a.mu.Lock()
	old := &oauth2.Token{RefreshToken: s.token.RefreshToken, Expiry: time.Unix(1, 0)} // force the refresh
	a.mu.Unlock()
	tok, err := a.oauth.TokenSource(ctx, old).Token()
	if err == nil {
		if tok.Extra("id_token") == nil {
			err = errors.New("no ID token in the refresh answer")
		} else {
			err = a.accept(ctx, s, tok, false)
		}
	}
	if err != nil {
		a.log.Warn("refresh failed", "err", err)
		a.forget(s)
		if msg, ok := a.clientProblem(err); ok {
			a.render(w, http.StatusBadGateway, nil, msg)
			return
		}
		a.render(w, http.StatusOK, nil, "Your session at tonearm has ended; sign in again.")
		return
	}
	a.mu.Lock()
	s.refreshed++
	a.mu.Unlock()
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// logout ends the app's session and sends the browser to tonearm's
// end_session_endpoint with the ID token as hint (RP-Initiated Logout).
func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	s := a.current(w, r, false)
	if s == nil || s.token == nil || a.endURL == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	a.mu.Lock()
	hint := s.idToken
	a.mu.Unlock()
	a.forget(s)
	q := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {a.cfg.BaseURL + "/"}, "client_id": {a.cfg.ClientID}}
	http.Redirect(w, r, a.endURL+"?"+q.Encode(), http.StatusSeeOther)
}

// backchannelLogout receives tonearm's logout token (Back-Channel Logout
// 1.0): verified like an ID token (signature, iss, aud, exp), it must carry
// the back-channel event and no nonce; the sessions with its sid end.
func (a *App) backchannelLogout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	raw := r.PostFormValue("logout_token")
	ctx := oidc.ClientContext(r.Context(), a.cfg.HTTPClient)
	tok, err := a.verifier.Verify(ctx, raw)
	var claims struct {
		SID    string         `json:"sid"`
		Events map[string]any `json:"events"`
		Nonce  *string        `json:"nonce"`
	}
	if err == nil {
		err = tok.Claims(&claims)
	}
	if err == nil && (claims.Events["http://schemas.openid.net/event/backchannel-logout"] == nil || claims.Nonce != nil || claims.SID == "") {
		err = errors.New("not a logout token with a sid")
	}
	if err != nil {
		a.log.Warn("logout token refused", "err", err)
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	for id, s := range a.sessions {
		if s.sid == claims.SID {
			delete(a.sessions, id)
		}
	}
	a.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// forget ends a session of the app.
func (a *App) forget(s *session) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, x := range a.sessions {
		if x == s {
			delete(a.sessions, id)
		}
	}
}
