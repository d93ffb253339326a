// Package storage defines tonearm's records, the Storage interface every
// backend implements, and the sentinel errors they report. It knows nothing of
// GORM or fosite: backends live in sub-packages and are held to the contract by
// the conformance suite in storage/storagetest.
package storage

import (
	"context"
	"errors"
	"time"

	"github.com/tonearm-idp/tonearm/fault"
)

// Sentinel errors. Backends return them (possibly wrapped) so that callers can
// test with errors.Is and never see a database's own error text. Each carries
// its fault.Kind, so a transport answers one that reaches it unwrapped
// without knowing storage.
var (
	ErrNotFound      = fault.New(fault.NotFound, "storage: not found").Saying("Not found")
	ErrAlreadyExists = fault.New(fault.Conflict, "storage: already exists").Saying("Already exists")
	// ErrLastAdmin: the change would leave no active admin.
	ErrLastAdmin = fault.New(fault.Conflict, "storage: the last active admin cannot be removed, demoted or disabled").
			Saying("The last active admin cannot be deleted, demoted or disabled")
	// ErrUnavailable: the database cannot serve the call right now — it is
	// unreachable, shutting down, read-only, out of disk or locked past the
	// busy timeout. Nothing of the call was kept; the same call may succeed
	// later. Transports answer 503 with Retry-After, never 401 or 500.
	ErrUnavailable = fault.New(fault.Unavailable, "storage: the database is unavailable").
			Saying(UnavailableMessage).After(UnavailableRetryAfter)
	// ErrInTransaction: BeginTx on a context that already carries a
	// transaction (they do not nest). A service that opens its own
	// transaction joins the caller's on it instead.
	ErrInTransaction = errors.New("storage: a transaction is already open on this context")
)

// UnavailableMessage is what a person or an app reads while the database
// is gone: not their fault, nothing kept, try again.
const UnavailableMessage = "The service is temporarily unavailable (its database cannot be reached); nothing was changed, try again shortly"

// UnavailableRetryAfter is how long to wait after ErrUnavailable: a
// restart or fail-over takes seconds, and clients that retry sooner only
// add to the queue behind it.
const UnavailableRetryAfter = 5 * time.Second

// NotWritableError is what Ping returns while the database answers but
// cannot be written: its last write failed for want of room or permission
// (SQLite's file: disk full, read-only, an I/O error) and no write has
// succeeded since. A ping alone would pass, and a load balancer would keep
// sending requests that can only fail; with it /readyz answers 503 until
// writes work again. It is an ErrUnavailable.
type NotWritableError struct {
	// Reason says why, for operators ("disk full", "read-only", "I/O error").
	Reason string
}

func (e *NotWritableError) Error() string {
	return "storage: the database cannot be written (" + e.Reason + ")"
}

// Unwrap makes a NotWritableError an ErrUnavailable.
func (e *NotWritableError) Unwrap() error { return ErrUnavailable }

// Storage is the persistence contract. Every method takes ctx first; times are
// stored in UTC truncated to microseconds so both databases round-trip them
// identically.
type Storage interface {
	// CreateUser inserts u. ErrAlreadyExists when the username is taken in any
	// letter case or the ID exists.
	CreateUser(ctx context.Context, u User) error
	// GetUser returns the user with this ID, or ErrNotFound.
	GetUser(ctx context.Context, id string) (User, error)
	// GetUserByUsername looks a user up case-insensitively, or ErrNotFound.
	GetUserByUsername(ctx context.Context, username string) (User, error)
	// GetUserByEmail looks a user up by email case-insensitively, or
	// ErrNotFound.
	GetUserByEmail(ctx context.Context, email string) (User, error)
	// UpdateUser applies update to the current record atomically: no other
	// UpdateUser on the same user interleaves, and when update returns an error
	// nothing is written and that error is returned. ErrAlreadyExists when
	// the new username or email is taken; ErrLastAdmin when the change would
	// leave no active admin (concurrent demotions cannot both pass).
	UpdateUser(ctx context.Context, id string, update func(User) (User, error)) (User, error)
	// DeleteUser removes a user with their sessions, consents, passkeys,
	// password resets and every code and token issued to them, in one
	// transaction.
	// ErrNotFound, or ErrLastAdmin for the last active admin.
	DeleteUser(ctx context.Context, id string) error
	// ListUsers returns a page of users matching f.
	ListUsers(ctx context.Context, f UserFilter) ([]User, error)
	// CountActiveAdmins counts enabled users with the admin role.
	CountActiveAdmins(ctx context.Context) (int64, error)
	// DeleteOAuthRequestsBySubject removes every code, token and protocol
	// session issued to subject (a user ID) and reports how many.
	DeleteOAuthRequestsBySubject(ctx context.Context, subject string) (int64, error)

	// CreatePasswordReset stores a pending reset; ErrNotFound for a missing
	// user.
	CreatePasswordReset(ctx context.Context, r PasswordReset) error
	// ConsumePasswordReset atomically takes the reset with this hash if it
	// has not expired at now, deleting it and every other pending reset of
	// the same user; ErrNotFound otherwise. Of two concurrent consumers,
	// one wins.
	ConsumePasswordReset(ctx context.Context, tokenHash []byte, now time.Time) (PasswordReset, error)
	// DeleteExpiredPasswordResets removes up to limit expired resets.
	DeleteExpiredPasswordResets(ctx context.Context, now time.Time, limit int) (int64, error)

	// CreateEmailVerification stores a pending verification; ErrNotFound
	// for a missing user.
	CreateEmailVerification(ctx context.Context, v EmailVerification) error
	// ConsumeEmailVerification atomically takes the verification with this
	// hash if it has not expired at now, deleting it and every other pending
	// verification of the same user; ErrNotFound otherwise. Of two
	// concurrent consumers, one wins. Whether the address is still the
	// user's is the caller's check.
	ConsumeEmailVerification(ctx context.Context, tokenHash []byte, now time.Time) (EmailVerification, error)
	// DeleteUserEmailVerifications removes every pending verification of a
	// user (their address changed) and reports how many.
	DeleteUserEmailVerifications(ctx context.Context, userID string) (int64, error)
	// DeleteExpiredEmailVerifications removes up to limit expired ones.
	DeleteExpiredEmailVerifications(ctx context.Context, now time.Time, limit int) (int64, error)

	// ClearLoginFailures forgets keys.
	ClearLoginFailures(ctx context.Context, keys []string) error
	// CountAttempts adds n to the counter of each key in one statement and
	// returns the counters as that statement left them: a limit reserves
	// an attempt first (n = 1) and refuses when a count is past it, so that
	// of N simultaneous attempts each sees its own count (a read before and
	// a write after let them all through). For n > 0 a key whose window
	// began at or before now-window starts a new window at now, and Last
	// becomes now. n < 0 gives attempts back: only counters of a live window
	// change, never below zero, and only they are returned. Keys are
	// counted once however often they are named.
	CountAttempts(ctx context.Context, keys []string, n int, now time.Time, window time.Duration) ([]LoginFailure, error)
	// DeleteStaleLoginFailures removes up to limit counters whose latest
	// failure is before before.
	DeleteStaleLoginFailures(ctx context.Context, before time.Time, limit int) (int64, error)

	// UseOnce records key (a client assertion's or a request object's
	// jti, prefixed by its kind and client) as used until expiresAt, in
	// one statement. ErrAlreadyExists when it was recorded before and has
	// not expired at now: of N simultaneous uses exactly one succeeds, on
	// every replica.
	UseOnce(ctx context.Context, key string, now, expiresAt time.Time) error
	// DeleteExpiredUses removes up to limit uses expired before before.
	DeleteExpiredUses(ctx context.Context, before time.Time, limit int) (int64, error)

	// QueueBackchannelLogouts queues, in the caller's transaction, a
	// back-channel logout for every client registered with a back-channel
	// logout URI that holds codes or tokens of subject from the sessions
	// sids (nil: from any session), and deletes those codes and access
	// tokens. Their refresh tokens stay: they are issued only with
	// offline_access, which outlives the session (OpenID Connect
	// Back-Channel Logout 1.0 §2.7); they no longer name the ended session,
	// so a later logout of every session does not queue it again. It
	// reports how many deliveries it queued.
	QueueBackchannelLogouts(ctx context.Context, subject string, sids []string, now time.Time) (int64, error)
	// ClaimBackchannelLogouts leases up to limit deliveries that are due at
	// now and not leased, until now+lease: no other caller (replica) gets
	// them before the lease ends.
	ClaimBackchannelLogouts(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]BackchannelLogout, error)
	// DeleteBackchannelLogout removes a delivery (done, or given up).
	DeleteBackchannelLogout(ctx context.Context, l BackchannelLogout) error
	// RetryBackchannelLogout counts a failed attempt and makes the delivery
	// due again at next.
	RetryBackchannelLogout(ctx context.Context, l BackchannelLogout, next time.Time) error

	// AddEvent records an audit event (in the caller's transaction, when
	// there is one).
	AddEvent(ctx context.Context, e Event) error
	// ListEvents returns a page of events matching f, newest first.
	ListEvents(ctx context.Context, f EventFilter) ([]Event, error)
	// DeleteEventsBefore removes up to limit events older than before.
	DeleteEventsBefore(ctx context.Context, before time.Time, limit int) (int64, error)

	// CreateSession inserts s; ErrAlreadyExists on a duplicate hash.
	CreateSession(ctx context.Context, s Session) error
	// GetSession returns the session with this ID hash, or ErrNotFound. It
	// does not check expiry: that is the caller's decision.
	GetSession(ctx context.Context, idHash []byte) (Session, error)
	// DeleteSessionBySID removes the session of userID with this sid and
	// reports how many it removed (0 or 1).
	DeleteSessionBySID(ctx context.Context, userID, sid string) (int64, error)
	// GetSessionBySID returns the session with this sid (an ID token's
	// sid claim), or ErrNotFound.
	GetSessionBySID(ctx context.Context, sid string) (Session, error)
	// DeleteSession removes one session; deleting a missing one is not an error.
	DeleteSession(ctx context.Context, idHash []byte) error
	// DeleteUserSessions removes every session of the user, moves the
	// user's DeviceEpoch on, and reports how many sessions it removed.
	DeleteUserSessions(ctx context.Context, userID string) (int64, error)
	// ListUserSessions returns the user's sessions that are live at now,
	// most recently used first.
	ListUserSessions(ctx context.Context, userID string, now time.Time) ([]Session, error)
	// TouchSession sets a session's LastUsedAt; a missing session is not an
	// error.
	TouchSession(ctx context.Context, idHash []byte, at time.Time) error
	// DeleteExpiredSessions removes up to limit sessions that expired before
	// now and reports how many, so a cleaner can work in short batches.
	DeleteExpiredSessions(ctx context.Context, now time.Time, limit int) (int64, error)

	// CreateAPI registers an API; ErrAlreadyExists if its ID or one of its
	// scope names is taken (by any API).
	CreateAPI(ctx context.Context, a API) error
	// GetAPI returns an API or ErrNotFound.
	GetAPI(ctx context.Context, id string) (API, error)
	// ListAPIs returns every API ordered by ID.
	ListAPIs(ctx context.Context) ([]API, error)
	// UpdateAPI applies update to an API (its ID and creation time stay)
	// and stores the result, scopes included, in one transaction;
	// ErrNotFound, ErrAlreadyExists when a new scope belongs to another
	// API, or update's error.
	UpdateAPI(ctx context.Context, id string, update func(API) (API, error)) (API, error)
	// DeleteAPI removes an API and its scopes; ErrNotFound.
	DeleteAPI(ctx context.Context, id string) error

	// CreateClient registers a client; ErrAlreadyExists if the ID is taken.
	CreateClient(ctx context.Context, c Client) error
	// GetClient returns a client or ErrNotFound.
	GetClient(ctx context.Context, id string) (Client, error)
	// UpdateClient applies update to a client (its ID and creation time
	// stay) and stores the result in one transaction; ErrNotFound, or
	// update's error.
	UpdateClient(ctx context.Context, id string, update func(Client) (Client, error)) (Client, error)
	// ListClients returns every client ordered by ID.
	ListClients(ctx context.Context) ([]Client, error)
	// DeleteClient removes a client, its consents and every token issued to
	// it; ErrNotFound if there is no such client.
	DeleteClient(ctx context.Context, id string) error

	// CreateRegistrationToken stores an initial access token;
	// ErrAlreadyExists on a duplicate ID or hash.
	CreateRegistrationToken(ctx context.Context, t RegistrationToken) error
	// GetRegistrationTokenByHash returns the token with this hash if it
	// has not expired at now, or ErrNotFound.
	GetRegistrationTokenByHash(ctx context.Context, hash []byte, now time.Time) (RegistrationToken, error)
	// ListRegistrationTokens returns the tokens of owner ("" with all:
	// every token), newest first.
	ListRegistrationTokens(ctx context.Context, owner string, all bool) ([]RegistrationToken, error)
	// DeleteRegistrationToken removes a token of owner (any owner with
	// all); ErrNotFound.
	DeleteRegistrationToken(ctx context.Context, id, owner string, all bool) error
	// RevokeDeveloperCredentials ends what lets owner (a user ID, never
	// "") register and manage apps without signing in: it deletes their
	// initial access tokens and clears the registration access tokens
	// (RFC 7592) of the apps they own, in the caller's transaction when
	// there is one. The apps stay. It reports how many credentials ended.
	RevokeDeveloperCredentials(ctx context.Context, owner string) (int64, error)

	// EnsureSigningKey stores k unless an unretired key with k.Alg exists,
	// and reports whether it stored it. Concurrent callers (replicas
	// starting together) end with exactly one active key per algorithm.
	EnsureSigningKey(ctx context.Context, k SigningKey) (bool, error)
	// RotateSigningKey retires (RetiredAt = now) every unretired key with
	// k.Alg and stores k, atomically.
	RotateSigningKey(ctx context.Context, k SigningKey, now time.Time) error
	// ListSigningKeys returns every stored key, oldest first.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// DeleteSigningKeysRetiredBefore removes keys retired before t.
	DeleteSigningKeysRetiredBefore(ctx context.Context, t time.Time) (int64, error)

	// CreateOAuthRequest stores a protocol request (code, token, PKCE or
	// OpenID session) under (Kind, Signature); ErrAlreadyExists on a
	// duplicate.
	CreateOAuthRequest(ctx context.Context, r OAuthRequest) error
	// CreateOAuthRequests stores requests that belong together (a code,
	// its PKCE challenge and its OpenID session; an access token and its
	// refresh token) all or none, in one statement where the database
	// allows. ErrAlreadyExists on a duplicate.
	CreateOAuthRequests(ctx context.Context, rs []OAuthRequest) error
	// GetOAuthRequest returns the request stored under (kind, signature),
	// active or not, or ErrNotFound.
	GetOAuthRequest(ctx context.Context, kind, signature string) (OAuthRequest, error)
	// GetOAuthRequestsBySignature returns the requests of the given kinds
	// stored under signature (those found, in no order), in one read.
	GetOAuthRequestsBySignature(ctx context.Context, signature string, kinds []string) ([]OAuthRequest, error)
	// DeleteOAuthRequest removes one request; a missing one is not an error.
	DeleteOAuthRequest(ctx context.Context, kind, signature string) error
	// TakeOAuthRequest removes one request and returns it, or ErrNotFound:
	// a read and its delete in one round trip (a code's OpenID session,
	// read once when the code is exchanged).
	TakeOAuthRequest(ctx context.Context, kind, signature string) (OAuthRequest, error)
	// DeactivateOAuthRequest marks one active request inactive. It reports
	// ErrNotFound when no active request matched, so that of two concurrent
	// callers exactly one succeeds.
	DeactivateOAuthRequest(ctx context.Context, kind, signature string) error
	// OpenOAuthRequest is DeactivateOAuthRequest that also sets the
	// request's ExpiresAt: a pushed request waits briefly, once opened it
	// lasts the sign-in.
	OpenOAuthRequest(ctx context.Context, kind, signature string, expiresAt time.Time) error
	// RotateOAuthRequest deactivates a refresh token and records when, like
	// DeactivateOAuthRequest; a token already rotated after rotatedAfter is
	// accepted again (nil, nothing changes) — the grace period of a client
	// that lost the first answer; a zero rotatedAfter accepts no second use.
	// ErrNotFound otherwise.
	RotateOAuthRequest(ctx context.Context, kind, signature string, now, rotatedAfter time.Time) error
	// SpendOAuthRequest is DeactivateOAuthRequest that, when it
	// deactivated the request, also deletes the request of kind alsoDelete
	// under the same signature (a code and its PKCE challenge), in one
	// round trip where the database allows.
	SpendOAuthRequest(ctx context.Context, kind, signature, alsoDelete string) error
	// RotateOAuthRequestFamily is RotateOAuthRequest that, when it lets
	// the token pass, also deletes the access tokens of requestID, in one
	// round trip where the database allows.
	RotateOAuthRequestFamily(ctx context.Context, kind, signature, requestID string, now, rotatedAfter time.Time) error
	// DeactivateOAuthRequestsByRequestID marks every request of kind that
	// descends from requestID inactive and reports how many changed.
	DeactivateOAuthRequestsByRequestID(ctx context.Context, kind, requestID string) (int64, error)
	// DeleteOAuthRequestsByRequestID removes every request of kind that
	// descends from requestID and reports how many.
	DeleteOAuthRequestsByRequestID(ctx context.Context, kind, requestID string) (int64, error)
	// DeleteExpiredOAuthRequests removes up to limit requests that expired
	// before now.
	DeleteExpiredOAuthRequests(ctx context.Context, now time.Time, limit int) (int64, error)

	// CreateDeviceCode stores a new device authorization (RFC 8628);
	// ErrAlreadyExists when either code's hash is taken.
	CreateDeviceCode(ctx context.Context, d DeviceCode) error
	// GetDeviceCodeByUserCode returns the device authorization whose user
	// code has this hash, or ErrNotFound.
	GetDeviceCodeByUserCode(ctx context.Context, userCodeHash []byte) (DeviceCode, error)
	// DecideDeviceCode records a person's answer to a pending, unexpired
	// device authorization: approved by userID with the granted scopes and
	// the sign-in's time and methods (amr), or denied (userID "").
	// ErrNotFound when it is no longer pending or has expired.
	DecideDeviceCode(ctx context.Context, userCodeHash []byte, userID string, granted []string, authTime time.Time, amr []string, now time.Time) error
	// PollDeviceCode records a device's poll and returns the authorization
	// as it stands. A poll sooner than Interval after the last one is
	// "too fast": the interval grows by 5 s (RFC 8628 §3.5) and
	// tooFast is true. ErrNotFound for an unknown code.
	PollDeviceCode(ctx context.Context, deviceCodeHash []byte, now time.Time) (d DeviceCode, tooFast bool, err error)
	// ConsumeDeviceCode marks an approved authorization used; of two
	// concurrent callers one succeeds, the other gets ErrNotFound.
	ConsumeDeviceCode(ctx context.Context, deviceCodeHash []byte) error
	// DeleteExpiredDeviceCodes removes up to limit authorizations that
	// expired before now.
	DeleteExpiredDeviceCodes(ctx context.Context, now time.Time, limit int) (int64, error)

	// CreatePasskey registers a passkey; ErrAlreadyExists when its
	// credential ID is registered (to anyone), ErrNotFound for a missing
	// user.
	CreatePasskey(ctx context.Context, p Passkey) error
	// GetPasskey returns the passkey with this credential ID, or
	// ErrNotFound.
	GetPasskey(ctx context.Context, id []byte) (Passkey, error)
	// ListPasskeys returns a user's passkeys, oldest first.
	ListPasskeys(ctx context.Context, userID string) ([]Passkey, error)
	// UsePasskey records a sign-in with a passkey: its new signature
	// counter, backup state and time. The counter must move forward (or
	// stay 0 for authenticators without one): otherwise nothing changes
	// and ErrNotFound is returned, so of two uses of one counter value
	// only one succeeds.
	UsePasskey(ctx context.Context, id []byte, signCount uint32, backupState bool, at time.Time) error
	// RenamePasskey renames one of userID's passkeys; ErrNotFound.
	RenamePasskey(ctx context.Context, userID string, id []byte, name string) error
	// DeletePasskey removes one of userID's passkeys; ErrNotFound.
	DeletePasskey(ctx context.Context, userID string, id []byte) error
	// DeleteUserPasskeys removes every passkey of a user and reports how
	// many.
	DeleteUserPasskeys(ctx context.Context, userID string) (int64, error)
	// CreatePasskeyChallenge stores a ceremony in progress;
	// ErrAlreadyExists on a duplicate challenge.
	CreatePasskeyChallenge(ctx context.Context, c PasskeyChallenge) error
	// ConsumePasskeyChallenge atomically takes (deletes) the ceremony with
	// this challenge hash if it has not expired at now; ErrNotFound
	// otherwise. Of two concurrent consumers, one wins.
	ConsumePasskeyChallenge(ctx context.Context, challengeHash []byte, now time.Time) (PasskeyChallenge, error)
	// DeleteExpiredPasskeyChallenges removes up to limit ceremonies that
	// expired before now.
	DeleteExpiredPasskeyChallenges(ctx context.Context, now time.Time, limit int) (int64, error)

	// CreateInteraction stores a sign-in in progress; ErrAlreadyExists on a
	// duplicate hash.
	CreateInteraction(ctx context.Context, i Interaction) error
	// GetInteraction returns the interaction with this hash if it has not
	// expired at now, or ErrNotFound.
	GetInteraction(ctx context.Context, idHash []byte, now time.Time) (Interaction, error)
	// UpdateInteraction applies update to an unexpired interaction's Data
	// atomically (no other update interleaves; update's error writes
	// nothing and is returned); ErrNotFound when it is gone or expired.
	UpdateInteraction(ctx context.Context, idHash []byte, now time.Time, update func(Interaction) (Interaction, error)) (Interaction, error)
	// DeleteInteraction removes one; a missing one is not an error.
	DeleteInteraction(ctx context.Context, idHash []byte) error
	// DeleteExpiredInteractions removes up to limit that expired before now.
	DeleteExpiredInteractions(ctx context.Context, now time.Time, limit int) (int64, error)

	// CreateConnector stores a connector; ErrAlreadyExists when its ID is
	// taken.
	CreateConnector(ctx context.Context, c Connector) error
	// GetConnector returns a connector or ErrNotFound.
	GetConnector(ctx context.Context, id string) (Connector, error)
	// ListConnectors returns every connector ordered by ID.
	ListConnectors(ctx context.Context) ([]Connector, error)
	// UpdateConnector applies update to a connector (its ID, kind and
	// creation time stay) in one transaction; ErrNotFound or update's error.
	UpdateConnector(ctx context.Context, id string, update func(Connector) (Connector, error)) (Connector, error)
	// DeleteConnector removes a connector and every identity linked
	// through it; ErrNotFound.
	DeleteConnector(ctx context.Context, id string) error
	// LinkIdentity stores a link; ErrAlreadyExists when the upstream
	// identity is linked already or the user has a link through that
	// connector, ErrNotFound for a missing user or connector.
	LinkIdentity(ctx context.Context, l LinkedIdentity) error
	// GetLinkedIdentity returns the link of an upstream identity, or
	// ErrNotFound.
	GetLinkedIdentity(ctx context.Context, connectorID, issuer, subject string) (LinkedIdentity, error)
	// UseLinkedIdentity records a sign-in through a link: what the upstream
	// said now (username, email) and when; ErrNotFound.
	UseLinkedIdentity(ctx context.Context, l LinkedIdentity) error
	// ListLinkedIdentities returns a user's links ordered by connector.
	ListLinkedIdentities(ctx context.Context, userID string) ([]LinkedIdentity, error)
	// UnlinkIdentity removes the user's link through a connector;
	// ErrNotFound.
	UnlinkIdentity(ctx context.Context, userID, connectorID string) error

	// ReplaceRecoveryCodes replaces every recovery code of a user with
	// these (keyed hashes), in one transaction; ErrNotFound for a missing
	// user.
	ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte, now time.Time) error
	// UseRecoveryCode takes (deletes) the user's code with this hash; of
	// two concurrent uses one succeeds. ErrNotFound when there is none.
	UseRecoveryCode(ctx context.Context, userID string, hash []byte) error
	// CountRecoveryCodes reports how many codes the user has left.
	CountRecoveryCodes(ctx context.Context, userID string) (int, error)

	// SaveConsent records (or replaces) what a user granted a client.
	SaveConsent(ctx context.Context, c Consent) error
	// GetConsent returns the user's consent for a client, or ErrNotFound.
	GetConsent(ctx context.Context, userID, clientID string) (Consent, error)
	// ListConnectedApps returns every app the user granted or that holds
	// live tokens of the user (first-party and device apps need no consent
	// page but are connected all the same), newest grant first, each with
	// the time its latest live token was issued (LastUsed; zero: none).
	// An app with tokens and no consent record lists the scopes of its
	// latest token and its earliest token's time as GrantedAt.
	ListConnectedApps(ctx context.Context, userID string, now time.Time) ([]Consent, error)
	// RevokeConsent deletes the user's consent for a client together with
	// every token, code and refresh token the client holds for the user, in
	// one transaction; ErrNotFound when there was neither.
	RevokeConsent(ctx context.Context, userID, clientID string) error
	// RevokeUserTokens deletes every token, refresh token and code issued
	// to any client for the user, but those issued in the browser session
	// keepSID ("": none kept); device and other sessionless grants always
	// go. It returns how many rows went.
	RevokeUserTokens(ctx context.Context, userID, keepSID string) (int64, error)
	// RevokeUserSessionTokens deletes every code and access token issued
	// to any client for the user and keeps the refresh tokens: those are
	// issued only with offline_access, which outlives the sessions (OpenID
	// Connect Back-Channel Logout 1.0 §2.7). It returns how many rows went.
	RevokeUserSessionTokens(ctx context.Context, userID string) (int64, error)

	// BeginTx opens a transaction: every call made with the returned
	// context joins it until CommitTx or RollbackTx with that context.
	BeginTx(ctx context.Context) (context.Context, error)
	// CommitTx commits the transaction carried by ctx.
	CommitTx(ctx context.Context) error
	// RollbackTx rolls it back; after a commit it does nothing.
	RollbackTx(ctx context.Context) error

	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	// Close releases the connections.
	Close() error

	// ResealColumn passes each stored value of column (not the empty
	// ones) to reseal and writes back those it changed, in one
	// transaction that holds the rows against concurrent writers; an error
	// from reseal writes nothing. It reports how many values changed.
	ResealColumn(ctx context.Context, column SealedColumn, reseal Reseal) (int, error)
	// RekeyClientHash replaces the keyed hash old by new wherever a client
	// secret, a kept old client secret, an app's registration access
	// token or an initial access token is stored as old (TONEARM_SECRET
	// was rotated and a value was just shown to match old), in one
	// transaction, and reports how many it replaced.
	RekeyClientHash(ctx context.Context, old, new []byte) (int64, error)

	// EnsureInstanceSecret stores sealed under name unless a value is
	// stored there already, and returns the stored value: of replicas
	// starting at once on an empty database, every one gets the value the
	// first one stored. The values are sealed (SealedInstanceSecrets).
	EnsureInstanceSecret(ctx context.Context, name string, sealed []byte) ([]byte, error)
}
