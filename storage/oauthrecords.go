package storage

import "time"

// The records of the protocol side: clients, APIs, codes and tokens,
// consents, device codes, back-channel logouts, signing keys and events.

// Client is a registered OAuth2 client.
type Client struct {
	ID string
	// SecretHash is a keyed hash of the client secret (nil for public
	// clients); the secret itself is never stored.
	SecretHash []byte
	// OldSecretHash is the hash of the secret a rotation replaced, still
	// accepted until OldSecretExpiresAt (nil: none).
	OldSecretHash      []byte
	OldSecretExpiresAt time.Time
	// IDTokenAlg signs its ID tokens: "RS256" (the default) or "ES256".
	IDTokenAlg             string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	GrantTypes             []string
	ResponseTypes          []string
	Scopes                 []string
	Audience               []string
	Public                 bool // no secret; PKCE required
	FirstParty             bool // no consent screen
	// AllowNoPKCE lets a legacy confidential client leave PKCE out; every
	// other client must send an S256 code challenge.
	AllowNoPKCE bool
	// RequirePAR: the client must push its authorization requests
	// (RFC 9126); a request sent straight to the authorization endpoint
	// is refused.
	RequirePAR bool
	// RequireDPoP: every token request must carry a DPoP proof, so all
	// its access tokens are bound to a key (RFC 9449 §5.2,
	// dpop_bound_access_tokens).
	RequireDPoP bool
	// BackchannelLogoutURI receives logout tokens when a session it holds
	// tokens from ends ("" for none).
	BackchannelLogoutURI string
	// Display metadata (OpenID Connect Dynamic Registration names), shown
	// on the login and consent pages: Name instead of the ID, a logo
	// (https: or data:image/ only) and links to the app, its privacy
	// policy and its terms.
	Name      string
	LogoURI   string
	ClientURI string
	PolicyURI string
	TosURI    string
	// Owner is the user who registered the app on /developer or with an
	// initial access token of theirs ("": an admin, or open
	// registration). Registration says how it was registered: "" by an
	// admin, RegisteredByDeveloper, RegisteredWithToken or
	// RegisteredOpenly; such apps are always third-party.
	Owner        string
	Registration string
	// RegistrationTokenHash is the keyed hash of the RFC 7592
	// registration access token (nil: none).
	RegistrationTokenHash []byte
	// Disabled clients are refused everywhere (an admin's decision).
	Disabled bool
	// TokenEndpointAuthMethod is how the client authenticates (RFC 7591
	// names): "none", "client_secret_basic", "client_secret_post" or
	// "private_key_jwt" (RFC 7523, OIDC Core §9). "" is the default for
	// its kind (none for a public client, a secret otherwise).
	TokenEndpointAuthMethod string
	// JWKS is the client's public keys as a JSON Web Key Set document;
	// JWKSURI is where to fetch them instead. At most one is set.
	JWKS    string
	JWKSURI string
	// RequestURIs are the https URLs it registered for request_uri
	// (RFC 9101 §5.2, OIDC Core request_uris).
	RequestURIs []string
	// RequestObjectSigningAlg is request_object_signing_alg: "" (any
	// supported asymmetric algorithm), "none" (only unsigned objects
	// are accepted from this client), or one algorithm (only it).
	RequestObjectSigningAlg string
	// SubjectType is "public" or "pairwise" (OIDC Core §8); "" reads as
	// public. SectorIdentifierURI names the sector of a pairwise client
	// whose redirect URIs span hosts (§8.1; "" the redirect URIs' host).
	SubjectType         string
	SectorIdentifierURI string
	CreatedAt           time.Time
}

// Subject types (OIDC Core §8).
const (
	SubjectPublic   = "public"
	SubjectPairwise = "pairwise"
)

// How an app was registered (Client.Registration).
const (
	RegisteredByDeveloper = "developer" // on /developer
	RegisteredWithToken   = "token"     // RFC 7591 with an initial access token
	RegisteredOpenly      = "open"      // RFC 7591 without one (TONEARM_CLIENT_REGISTRATION=open)
)

// RegistrationToken is an initial access token for RFC 7591 registration:
// only a keyed hash of it is stored.
type RegistrationToken struct {
	ID        string
	TokenHash []byte
	// Owner is the developer who created it ("": the command line); apps
	// registered with it belong to them.
	Owner       string
	Description string
	CreatedAt   time.Time
	ExpiresAt   time.Time // zero: never
}

// API is a registered resource server.
type API struct {
	// ID is the API's identifier, an absolute URI; access tokens for it
	// carry it in aud.
	ID   string
	Name string
	// Scopes are the scopes it defines; no other API defines them.
	Scopes []APIScope
	// Claims are the user claims its access tokens carry.
	Claims []string
	// Introspectors are the clients (the API's resource servers) that may
	// introspect tokens whose audience includes the API.
	Introspectors []string
	// ExchangeFrom are the clients that may exchange a person's token for
	// a token to the API (RFC 8693 token exchange).
	ExchangeFrom []string
	// OpenToApps: apps registered by developers may ask for its scopes.
	OpenToApps bool
	CreatedAt  time.Time
}

// APIScope is a scope an API defines, with the description consent shows.
type APIScope struct {
	Name, Description string
}

// Event is an audit event.
type Event struct {
	// ID sorts by time (pages go by it).
	ID   string
	Time time.Time
	Type string
	// Actor did it: a user's ID, "client:ID", "cli", or "" for anyone.
	Actor string
	// User and Client it concerns ("" when none).
	User, Client string
	IP           string
	// Detail is a JSON object, never holding secrets.
	Detail []byte
}

// EventFilter selects a page of events, newest first.
type EventFilter struct {
	Type, User string
	Since      time.Time // zero: from the beginning
	Before     string    // the ID the previous page ended with
	Limit      int
}

// SigningKey is a private signing key, sealed with the server's at-rest key.
type SigningKey struct {
	KID       string
	Alg       string // RS256, ES256
	Sealed    []byte
	CreatedAt time.Time
	RetiredAt time.Time // zero while the key signs
}

// Kinds of OAuthRequest.
const (
	KindAuthorizeCode = "authorize_code"
	KindAccessToken   = "access_token"
	KindRefreshToken  = "refresh_token"
	KindPKCE          = "pkce"
	KindOpenID        = "openid"
	KindPAR           = "par" // a pushed authorization request (RFC 9126)
)

// OAuthRequest is one protocol artefact (authorization code, access or
// refresh token, PKCE or OpenID session) as fosite describes it. Signature is
// a hash of the token's signature: raw tokens are never stored.
type OAuthRequest struct {
	Kind            string
	Signature       string
	RequestID       string
	RequestedAt     time.Time
	ClientID        string
	Subject         string
	Scopes          []string
	GrantedScopes   []string
	Audience        []string
	GrantedAudience []string
	Form            string // URL-encoded, only the parameters worth keeping
	Session         []byte // JSON
	Active          bool
	ExpiresAt       time.Time
	AccessSignature string // refresh tokens: the access token issued with it
	// SID is the browser session the grant was made in ("" for client
	// credentials).
	SID string
	// RotatedAt is when a refresh token was rotated (zero: not yet).
	RotatedAt time.Time
}

// BackchannelLogout is a pending OpenID Connect Back-Channel Logout
// delivery: tell ClientID that Subject's session SID has ended.
type BackchannelLogout struct {
	ClientID, Subject, SID string
	CreatedAt              time.Time
	Attempts               int
	NextAt                 time.Time
}

// Device authorization states.
const (
	DevicePending  = "pending"
	DeviceApproved = "approved"
	DeviceDenied   = "denied"
	DeviceUsed     = "used"
)

// DeviceCode is a device authorization (RFC 8628): both codes are stored
// only as keyed hashes.
type DeviceCode struct {
	DeviceCodeHash []byte
	UserCodeHash   []byte
	ClientID       string
	Scopes         []string // requested
	Resources      []string // RFC 8707 resource indicators
	RequestedAt    time.Time
	ExpiresAt      time.Time
	Interval       time.Duration // the least time between two polls
	LastPolledAt   time.Time     // zero before the first poll
	Status         string
	// Set by the person's decision.
	UserID        string
	GrantedScopes []string
	AuthTime      time.Time
	// AMR says how the approving sign-in was made (RFC 8176: pwd, otp,
	// mfa…), so the device's tokens say it as the code flow's do.
	AMR []string
}

// Consent is what a user granted a client.
type Consent struct {
	UserID    string
	ClientID  string
	Scopes    []string
	GrantedAt time.Time
	// LastUsed (ListConnectedApps only): when the app's latest live token
	// was issued; zero when it holds none.
	LastUsed time.Time
}
