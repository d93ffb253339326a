package clients

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/storage"
)

// Apps registered by their developers (on /developer, or by RFC 7591
// dynamic registration) are always third-party: consent every time it is
// new, never the account or admin scopes, an API's scopes only where the
// API is open to apps, and only the grants a person takes part in.

// App types.
const (
	AppWeb    = "web"    // a server: confidential, a secret
	AppNative = "native" // a mobile, desktop or browser app: public, PKCE
	AppDevice = "device" // a device without a browser: public, the device grant
)

// AppScopes are the built-in scopes an app may ask for.
var AppScopes = []string{"openid", "profile", "email", "listenbrainz", "offline_access", "roles"}

// DefaultAppScopes are what an app registered without scopes may ask for:
// the standard OpenID Connect scopes (Core §5.4, §11), so a registration
// without `scope` (RFC 7591 §2 leaves the default to the server) can sign
// people in and, with the refresh_token grant, keep access. listenbrainz,
// roles and API scopes are asked for by name.
var DefaultAppScopes = []string{"openid", "profile", "email", "offline_access"}

// AppGrants are the grants an app may use.
var AppGrants = []string{"authorization_code", "refresh_token", DeviceCodeGrant}

// AuthMethods are the token endpoint authentication methods (RFC 7591
// token_endpoint_auth_method) an app may register.
var AuthMethods = []string{AuthNone, AuthSecretBasic, AuthSecretPost, AuthPrivateKeyJWT}

// AppSpec is an app as its developer describes it.
type AppSpec struct {
	Type         string // AppWeb, AppNative or AppDevice ("": from AuthMethod and GrantTypes)
	RedirectURIs []string
	// AuthMethod and GrantTypes as RFC 7591 names them ("": from Type).
	AuthMethod string
	GrantTypes []string
	Scopes     []string // empty: DefaultAppScopes
	IDTokenAlg string
	// PostLogoutRedirectURIs (RP-Initiated Logout 1.0 §3.1) and
	// BackchannelLogoutURI (Back-Channel Logout 1.0 §2.2), checked by the
	// rules the command line's --post-logout-redirect-uri and
	// --backchannel-logout-uri follow.
	PostLogoutRedirectURIs []string
	BackchannelLogoutURI   string
	// RequireDPoP is RFC 9449 §5.2's dpop_bound_access_tokens.
	RequireDPoP bool
	Display
	// Keys: its public keys, request URIs and subject type (its
	// TokenEndpointAuthMethod is AuthMethod's). An app gets pairwise
	// subjects unless it asks for public ones: it is a third party, and
	// must not join what it knows of people with another app on sub.
	Keys
}

// App is a registered app: the client, its secret (confidential apps:
// shown once) and, for RFC 7591 registrations, the registration access
// token (RFC 7592, shown once).
type App struct {
	Client            storage.Client
	Secret            string
	RegistrationToken string
}

// ErrNotYours: the app belongs to someone else (or is no developer's).
var ErrNotYours = errors.New("clients: not your app")

func newAppID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return "app-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

func randomSecret() string {
	b := make([]byte, minSecretBytes)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func redirectInvalid(format string, args ...any) error {
	return invalid(format, args...).On("redirect_uris")
}

// appClient checks spec by the rules for apps and returns the client it
// describes (ID, secret and registration left to the caller).
func (r *Registry) appClient(ctx context.Context, spec AppSpec) (storage.Client, error) {
	grants := dedupe(spec.GrantTypes)
	typ := spec.Type
	switch typ {
	case AppWeb, AppNative, AppDevice:
	case "":
		switch {
		case spec.AuthMethod != "" && spec.AuthMethod != "none":
			typ = AppWeb
		case len(grants) > 0 && !slices.Contains(grants, "authorization_code") && slices.Contains(grants, DeviceCodeGrant):
			typ = AppDevice
		case spec.AuthMethod == "none":
			typ = AppNative
		default:
			typ = AppWeb
		}
	default:
		return storage.Client{}, invalid("the app type must be web, native or device")
	}
	method := spec.AuthMethod
	if method == "" {
		method = "client_secret_basic"
		if typ != AppWeb {
			method = "none"
		}
	}
	if !slices.Contains(AuthMethods, method) {
		return storage.Client{}, invalid("token_endpoint_auth_method must be none, client_secret_basic, client_secret_post or private_key_jwt")
	}
	if (method == "none") != (typ != AppWeb) {
		return storage.Client{}, invalid("a web app authenticates with a secret (client_secret_basic or client_secret_post) or its keys (private_key_jwt); native and device apps with none")
	}
	if len(grants) == 0 {
		grants = []string{"authorization_code"}
		if typ == AppDevice {
			grants = []string{DeviceCodeGrant}
		}
	}
	for _, g := range grants {
		if !slices.Contains(AppGrants, g) {
			return storage.Client{}, invalid("grant type %q is not for apps: use authorization_code, refresh_token or %s", g, DeviceCodeGrant)
		}
	}
	if typ == AppDevice && slices.Contains(grants, "authorization_code") {
		return storage.Client{}, invalid("a device app uses the device grant, not authorization_code")
	}
	scopes, err := r.appScopes(ctx, spec.Scopes)
	if err != nil {
		return storage.Client{}, err
	}
	redirects := dedupe(spec.RedirectURIs)
	if slices.Contains(grants, "authorization_code") && len(redirects) == 0 {
		return storage.Client{}, redirectInvalid("at least one redirect URI is required")
	}
	for _, raw := range redirects {
		if err := appRedirect(raw, typ); err != nil {
			return storage.Client{}, err
		}
	}
	postLogout := dedupe(spec.PostLogoutRedirectURIs)
	for _, raw := range postLogout {
		if err := validatePostLogoutURI(raw); err != nil {
			return storage.Client{}, err
		}
		if u, _ := url.Parse(raw); u.Scheme != "https" && u.Scheme != "http" && typ != AppNative {
			return storage.Client{}, invalid("post-logout redirect URI %q: a private-use scheme is for native apps; use https, or http on loopback", raw).
				On("post_logout_redirect_uris")
		}
	}
	if spec.LogoURI != "" && (strings.HasPrefix(spec.LogoURI, "data:") || webURL(spec.LogoURI, true) != nil) {
		return storage.Client{}, invalid("logo_uri must be an https URL")
	}
	keys := spec.Keys
	keys.TokenEndpointAuthMethod = method
	if keys.SubjectType == "" {
		keys.SubjectType = storage.SubjectPairwise
	}
	c, err := r.validate(ctx, Spec{
		RedirectURIs: redirects, GrantTypes: grants, Scopes: scopes, Public: typ != AppWeb, IDTokenAlg: spec.IDTokenAlg, Display: spec.Display,
		PostLogoutRedirectURIs: postLogout, BackchannelLogoutURI: spec.BackchannelLogoutURI, Keys: keys,
		RequireDPoP: spec.RequireDPoP,
	})
	if err != nil {
		return storage.Client{}, err
	}
	if strings.TrimSpace(c.Name) == "" {
		return storage.Client{}, invalid("an app needs a name (client_name): people see it on the consent page")
	}
	return c, nil
}

// appScopes checks the scopes an app asks for (none: DefaultAppScopes):
// the built-in ones, or those of an API open to apps; never account or
// admin.
func (r *Registry) appScopes(ctx context.Context, requested []string) ([]string, error) {
	scopes := dedupe(requested)
	if len(scopes) == 0 {
		scopes = append([]string(nil), DefaultAppScopes...)
	}
	for _, s := range scopes {
		if slices.Contains(AppScopes, s) {
			continue
		}
		if s == "account" || s == "admin" {
			return nil, invalid("apps registered by developers cannot ask for the %s scope", s)
		}
		open := false
		if r.apiScopes != nil {
			var err error
			if open, err = r.apiScopes.ScopeOpenToApps(ctx, s); err != nil {
				return nil, err
			}
		}
		if !open {
			return nil, invalid("scope %q is not open to apps: ask for the built-in scopes (%s) or those of an API open to all apps", s, strings.Join(AppScopes, " "))
		}
	}
	return scopes, nil
}

// appRedirect adds the apps' rule to validateRedirectURI's: a private-use
// scheme (reverse domain name) is for native apps only.
func appRedirect(raw, typ string) error {
	if err := validateRedirectURI(raw); err != nil {
		return err
	}
	if u, _ := url.Parse(raw); u.Scheme != "https" && u.Scheme != "http" && typ != AppNative {
		return redirectInvalid("redirect URI %q: a private-use scheme is for native apps; use https, or http on loopback", raw)
	}
	return nil
}

// AppKind names an app's type from its client.
func AppKind(c storage.Client) string {
	switch {
	case !c.Public:
		return AppWeb
	case slices.Contains(c.GrantTypes, DeviceCodeGrant) && !slices.Contains(c.GrantTypes, "authorization_code"):
		return AppDevice
	}
	return AppNative
}

// RegisterApp registers an app for owner ("" for none) by registration
// (storage.Registered…). A registration access token (RFC 7592) is made
// for RFC 7591 registrations.
func (r *Registry) RegisterApp(ctx context.Context, spec AppSpec, owner, registration string) (App, error) {
	c, err := r.appClient(ctx, spec)
	if err != nil {
		return App{}, err
	}
	c.ID, c.Owner, c.Registration, c.FirstParty, c.CreatedAt = newAppID(), owner, registration, false, r.now().UTC()
	app := App{}
	if !c.Public && c.TokenEndpointAuthMethod != AuthPrivateKeyJWT {
		app.Secret = randomSecret()
		c.SecretHash, _ = r.hasher.Hash(ctx, []byte(app.Secret))
	}
	if registration == storage.RegisteredWithToken || registration == storage.RegisteredOpenly {
		app.RegistrationToken = randomSecret()
		c.RegistrationTokenHash, _ = r.hasher.Hash(ctx, []byte(app.RegistrationToken))
	}
	registered := audit.Change{Type: audit.AppRegistered, User: owner, Client: c.ID, Detail: map[string]any{"how": registration}}
	if err := r.apply(ctx, registered, func(ctx context.Context) error { return r.store.CreateClient(ctx, c) }); err != nil {
		return App{}, err
	}
	app.Client = c
	return app, nil
}

// UpdateApp replaces an app's metadata (RFC 7592 PUT, or its developer's
// edit); its ID, type, secret, owner and registration stay.
func (r *Registry) UpdateApp(ctx context.Context, id string, spec AppSpec) (storage.Client, error) {
	cur, err := r.Get(ctx, id)
	if err != nil {
		return storage.Client{}, err
	}
	if cur.Registration == "" {
		return storage.Client{}, ErrNotYours
	}
	if spec.Type == "" && spec.AuthMethod == "" {
		spec.Type = AppKind(cur)
	}
	if err := keepSubject(cur, &spec.Keys); err != nil {
		return storage.Client{}, err
	}
	next, err := r.appClient(ctx, spec)
	if err != nil {
		return storage.Client{}, err
	}
	if next.Public != cur.Public {
		return storage.Client{}, invalid("an app cannot change between confidential (a secret) and public (none): register a new one")
	}
	if AuthMethod(cur) == AuthPrivateKeyJWT && next.TokenEndpointAuthMethod != AuthPrivateKeyJWT {
		// It has no secret, and this answer could not hand one over
		// safely on every path: a new app gets one.
		return storage.Client{}, invalid("an app that authenticates with its keys (private_key_jwt) keeps doing so: register a new app to use a secret")
	}
	return r.updateClient(ctx, id, audit.Change{Type: audit.AppChanged, User: cur.Owner, Client: id}, func(old storage.Client) (storage.Client, error) {
		if err := r.keepSector(old, next); err != nil {
			return old, err
		}
		next.SecretHash, next.OldSecretHash, next.OldSecretExpiresAt = old.SecretHash, old.OldSecretHash, old.OldSecretExpiresAt
		if next.TokenEndpointAuthMethod == AuthPrivateKeyJWT {
			next.SecretHash, next.OldSecretHash, next.OldSecretExpiresAt = nil, nil, time.Time{}
		}
		next.Owner, next.Registration, next.RegistrationTokenHash, next.Disabled = old.Owner, old.Registration, old.RegistrationTokenHash, old.Disabled
		next.FirstParty = false
		return next, nil
	})
}

// AppByRegistrationToken returns the app id if token is its RFC 7592
// registration access token (compared by keyed hash, in constant time)
// and the app's owner, if it has one, is an active account.
func (r *Registry) AppByRegistrationToken(ctx context.Context, id, token string) (storage.Client, error) {
	c, err := r.Get(ctx, id)
	if errors.Is(err, storage.ErrUnavailable) {
		return storage.Client{}, err // not the token's fault: 503, not 401
	}
	if err != nil || len(c.RegistrationTokenHash) == 0 || token == "" {
		return storage.Client{}, ErrNotYours
	}
	if r.hasher.Compare(ctx, c.RegistrationTokenHash, []byte(token)) != nil {
		return storage.Client{}, ErrNotYours
	}
	if ok, err := ownerActive(ctx, r.store, c.Owner); err != nil || !ok {
		return storage.Client{}, ErrNotYours
	}
	return c, nil
}

// AppsOf lists owner's apps.
func (r *Registry) AppsOf(ctx context.Context, owner string) ([]storage.Client, error) {
	all, err := r.store.ListClients(ctx)
	if err != nil {
		return nil, err
	}
	var out []storage.Client
	for _, c := range all {
		if c.Owner == owner && owner != "" {
			out = append(out, c)
		}
	}
	return out, nil
}

// SetDisabled disables or enables a client (an admin's decision); one
// already so is left as it is, and nothing is recorded.
func (r *Registry) SetDisabled(ctx context.Context, id string, disabled bool) (storage.Client, error) {
	return r.updateClient(ctx, id, audit.Change{Type: audit.ClientChanged, Client: id}, func(c storage.Client) (storage.Client, error) {
		c.Disabled = disabled
		return c, nil
	})
}

// RefusalCode is the RFC 7591 §3.2.2 error code of app metadata the
// registry refused: invalid_redirect_uri for a redirect URI, else
// invalid_client_metadata. The registration endpoint answers with it, and
// every front door's app.registration_refused event names it.
func RefusalCode(err error) string {
	var fe *fault.Error
	if errors.As(err, &fe) && fe.Field() == "redirect_uris" {
		return "invalid_redirect_uri"
	}
	return "invalid_client_metadata"
}
