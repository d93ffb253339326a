package storage

// The account and session records (users, sessions, passkeys, sign-ins in
// progress, connectors); the Storage interface is in storage.go.

import "time"

// Roles a user can hold.
const (
	RoleAdmin = "admin"
	RoleUser  = "user"
	RoleGuest = "guest"
)

// User is an account. Username keeps the case the user chose; uniqueness is
// case-insensitive (the backend keeps a folded copy).
type User struct {
	ID           string
	Username     string
	PasswordHash string // PHC-formatted argon2id hash with its parameters
	Role         string
	// ListenBrainzName is the account name ListenBrainz reported for the token.
	ListenBrainzName string
	// MusicBrainzName is the MetaBrainz username of the MusicBrainz
	// account linked through a musicbrainz connector ("" when none).
	MusicBrainzName string
	// ListenBrainzToken is the user's ListenBrainz token sealed with the
	// server's at-rest key; never the clear token.
	ListenBrainzToken []byte
	// Profile. Email is unique case-insensitively; empty means none.
	Email         string
	EmailVerified bool
	Name          string
	Bio           string
	Pronouns      string
	Website       string
	// Language is the language the person chose for pages and mails: the
	// BCP 47 tag of a catalog ("de", "pt-BR"), "" when none (issue 35).
	Language string
	// Disabled accounts cannot sign in.
	Disabled bool
	// PasskeyOnly accounts sign in with a passkey only: they hold no
	// password (PasswordHash is empty), so every password check fails.
	PasskeyOnly bool
	// TOTPSecret is the user's TOTP key (RFC 6238) sealed with the
	// server's at-rest key (nil: no TOTP); TOTPLastStep the time step of
	// the latest code accepted, so that no code is accepted twice.
	TOTPSecret   []byte
	TOTPLastStep int64
	// Claims are the user's custom claims: a JSON object set by admins,
	// released into the access tokens of APIs that name a key (nil: none).
	Claims []byte
	// DeviceEpoch moves on whenever every session of the user ends
	// (DeleteUserSessions); known-device cookies of an older epoch no longer
	// count. UpdateUser never changes it.
	DeviceEpoch int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// LoginFailure counts the failed password checks of one key (an address,
// an address and an account, an account) in a fixed window.
type LoginFailure struct {
	Key         string
	Count       int
	WindowStart time.Time
	Last        time.Time // the latest failure
}

// IsActiveAdmin reports whether u holds the admin role and may use it.
func (u User) IsActiveAdmin() bool { return u.Role == RoleAdmin && !u.Disabled }

// UserFilter selects a page of users, ordered by username (case-folded).
type UserFilter struct {
	UsernamePrefix string // case-insensitive
	EmailPrefix    string // case-insensitive
	Role           string
	After          string // the folded username the previous page ended with
	Limit          int
}

// PasswordReset is a pending password reset; only a hash of its token is
// stored.
type PasswordReset struct {
	TokenHash []byte
	UserID    string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// EmailVerification is a pending check that a user owns an email address:
// only a hash of the mailed token is stored, with the address it was sent
// to.
type EmailVerification struct {
	TokenHash []byte
	UserID    string
	Email     string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Session is a browser session. Only a hash of the cookie value is stored, so
// a copy of the database does not let anyone sign in.
type Session struct {
	IDHash []byte
	// SID identifies the session to relying parties (the ID token's sid):
	// random, never derived from the cookie.
	SID       string
	UserID    string
	AuthTime  time.Time // when the user proved their password
	CreatedAt time.Time
	ExpiresAt time.Time
	// LastUsedAt is when the session was last seen (updated at most every
	// few minutes); UserAgent and IP describe the browser that opened it,
	// for the account page's list of sessions.
	LastUsedAt time.Time
	UserAgent  string
	IP         string
	// AMR is how the user proved who they are (RFC 8176 values: "pwd" for
	// a password, "hwk" for a passkey), space-separated; the ID token's
	// amr claim.
	AMR string
}

// Passkey is a WebAuthn credential registered to a user (a passkey). Only
// its public key is stored.
type Passkey struct {
	// ID is the credential ID the authenticator chose (at most 1023 bytes).
	ID     []byte
	UserID string
	// Name is what the owner calls it ("Laptop", "Phone").
	Name      string
	PublicKey []byte // COSE_Key
	// SignCount is the authenticator's signature counter at the last use:
	// a use that does not move it forward suggests a cloned authenticator.
	SignCount uint32
	AAGUID    []byte
	// Transports the browser reported (usb, nfc, internal, hybrid …).
	Transports      []string
	AttestationType string
	// BackupEligible and BackupState are the authenticator's flags: a
	// passkey that may be (and is) synced to other devices.
	BackupEligible, BackupState bool
	CreatedAt                   time.Time
	LastUsedAt                  time.Time // zero before its first use
}

// PasskeyChallenge is a WebAuthn ceremony in progress: the challenge sent
// to the browser (stored as its SHA-256) and what the ceremony must check
// when the answer comes back. Each is used once.
type PasskeyChallenge struct {
	ChallengeHash []byte
	// UserID is the user adding a passkey ("" for a sign-in).
	UserID    string
	Data      []byte // the ceremony's state, JSON
	ExpiresAt time.Time
}

// Interaction is a sign-in in progress (identify, second factor, consent,
// finish), stored under a hash of its ID and bound to one browser. Data is
// the interaction's state as its owner encodes it (opaque here).
type Interaction struct {
	IDHash    []byte
	Binding   []byte // the HMAC of the browser's binding cookie
	Data      []byte
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Connector kinds.
const (
	ConnectorMusicBrainz = "musicbrainz"
	ConnectorOIDC        = "oidc"
)

// Connector is an upstream provider people may sign in through.
type Connector struct {
	ID   string // in the callback URL: letters, digits, '-' and '_'
	Kind string // ConnectorMusicBrainz or ConnectorOIDC
	Name string // shown on the buttons: "Continue with {Name}"
	// ClientID and the sealed ClientSecret are tonearm's registration at
	// the upstream.
	ClientID     string
	ClientSecret []byte
	Issuer       string // oidc: the upstream's issuer
	BaseURL      string // musicbrainz: the server's base URL
	Scopes       []string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// LinkedIdentity links an upstream identity (Issuer, Subject) met through
// a connector to a user: at most one per (connector, issuer, subject) and
// one per (user, connector).
type LinkedIdentity struct {
	ConnectorID string
	Issuer      string // the upstream's issuer (oidc) or base URL (musicbrainz)
	Subject     string
	UserID      string
	// Username and Email are what the upstream said at the latest sign-in.
	Username   string
	Email      string
	CreatedAt  time.Time
	LastUsedAt time.Time
}
