// Package audit records who did what: events are written through the
// store, in the transaction of the change they record when there is one,
// with the actor, client and address the transport put in the context.
// Events never hold secrets (no passwords, tokens or codes).
package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

// Event types.
const (
	SignInSucceeded = "signin.succeeded"
	SignInFailed    = "signin.failed"
	SignOut         = "signout"
	PasswordChanged = "password.changed"
	PasswordReset   = "password.reset"
	UserCreated     = "user.created"
	UserChanged     = "user.changed"
	UserDisabled    = "user.disabled"
	UserDeleted     = "user.deleted"
	ClientCreated   = "client.created"
	ClientChanged   = "client.changed"
	ClientDeleted   = "client.deleted"
	APICreated      = "api.created"
	APIChanged      = "api.changed"
	APIDeleted      = "api.deleted"
	KeysRotated     = "keys.rotated"
	// SecretsResealed: tonearm reseal moved sealed values under the
	// current TONEARM_SECRET (detail: how many of each kind).
	SecretsResealed = "secrets.resealed"
	RefreshReuse    = "refresh.reuse_detected"
	ConsentGranted  = "consent.granted"
	ConsentRevoked  = "consent.revoked"
	EmailVerified   = "email.verified"
	// Passkeys: added or removed, and a sign-in refused because the
	// passkey's signature counter did not move forward (a copied
	// authenticator).
	PasskeyAdded          = "passkey.added"
	PasskeyRemoved        = "passkey.removed"
	PasskeyCloneSuspected = "passkey.clone_suspected"
	// Connectors: created, changed or deleted by an admin; an upstream
	// identity linked to or unlinked from an account; a sign-in through
	// an upstream that failed (its answer refused or unreachable).
	ConnectorCreated = "connector.created"
	ConnectorChanged = "connector.changed"
	ConnectorDeleted = "connector.deleted"
	IdentityLinked   = "identity.linked"
	IdentityUnlinked = "identity.unlinked"
	UpstreamFailed   = "upstream.failed"
	// The second factor: TOTP enrolled or removed (by its owner or an
	// admin), a wrong code, a recovery code used.
	SecondFactorEnrolled = "mfa.enrolled"
	SecondFactorRemoved  = "mfa.removed"
	SecondFactorFailed   = "mfa.failed"
	RecoveryCodeUsed     = "mfa.recovery_code_used"
	// Apps registered by developers (on /developer or RFC 7591): registered,
	// changed, deleted, a registration refused; admins disabling one.
	AppRegistered      = "app.registered"
	AppChanged         = "app.changed"
	AppDeleted         = "app.deleted"
	AppRefused         = "app.registration_refused"
	RegistrationTokens = "app.registration_token"
	// TokenExchanged: a client exchanged a person's access token for one to
	// an API (RFC 8693); user is the person, client the exchanging client,
	// detail the API, the scopes and the subject token's client.
	TokenExchanged = "token.exchanged"
)

// Types lists every event type (for the API's filter).
var Types = []string{SignInSucceeded, SignInFailed, SignOut, PasswordChanged, PasswordReset, UserCreated, UserChanged,
	UserDisabled, UserDeleted, ClientCreated, ClientChanged, ClientDeleted, APICreated, APIChanged, APIDeleted, KeysRotated, RefreshReuse,
	ConsentGranted, ConsentRevoked, EmailVerified, PasskeyAdded, PasskeyRemoved, PasskeyCloneSuspected,
	ConnectorCreated, ConnectorChanged, ConnectorDeleted, IdentityLinked, IdentityUnlinked, UpstreamFailed,
	SecondFactorEnrolled, SecondFactorRemoved, SecondFactorFailed, RecoveryCodeUsed,
	AppRegistered, AppChanged, AppDeleted, AppRefused, RegistrationTokens, SecretsResealed, TokenExchanged}

// Store is where events go.
type Store interface {
	AddEvent(ctx context.Context, e storage.Event) error
}

// Origin is who is acting and from where, as the transport knows it.
type Origin struct {
	Actor  string // a user's ID, "client:ID", "cli"
	Client string
	IP     string
	// RequestID names the request in logs (not recorded in events).
	RequestID string
}

type originKey struct{}

// WithOrigin attaches the origin of a request to ctx. The transport
// starts it with the address, and names the actor once it knows who is
// calling (SetActor), for everything the request then records.
func WithOrigin(ctx context.Context, o Origin) context.Context {
	return context.WithValue(ctx, originKey{}, &o)
}

// SetActor names who is acting in the request of ctx (when WithOrigin
// started one).
func SetActor(ctx context.Context, actor, client string) {
	if o, ok := ctx.Value(originKey{}).(*Origin); ok {
		o.Actor, o.Client = actor, client
	}
}

// OriginOf returns the origin attached to ctx.
func OriginOf(ctx context.Context) Origin {
	if o, ok := ctx.Value(originKey{}).(*Origin); ok {
		return *o
	}
	return Origin{}
}

// NewID returns an event ID that sorts by time.
func NewID(t time.Time) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%016x", t.UTC().UnixNano()) + hex.EncodeToString(b)
}

// ValidID reports whether id has the shape NewID gives every event ID (28
// lowercase hex digits), so that a page cursor that is not one is refused
// instead of silently listing from somewhere else.
func ValidID(id string) bool {
	if len(id) != 28 {
		return false
	}
	for _, c := range id {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Record writes an event of type typ about user, with the origin in ctx
// and detail (a JSON object; nil for none). Client, when set in detail's
// place, goes to the event's client field.
func Record(ctx context.Context, store Store, now time.Time, typ, user, client string, detail map[string]any) error {
	o := OriginOf(ctx)
	if client == "" {
		client = o.Client
	}
	var raw []byte
	if len(detail) > 0 {
		var err error
		if raw, err = json.Marshal(detail); err != nil {
			return err
		}
	}
	return store.AddEvent(ctx, storage.Event{
		ID: NewID(now), Time: now.UTC().Truncate(time.Microsecond), Type: typ, Actor: o.Actor,
		User: user, Client: client, IP: o.IP, Detail: raw,
	})
}

// TxStore is a Store that opens transactions: what a registry (clients,
// APIs, connectors, registration tokens) writes its changes through.
type TxStore interface {
	Store
	BeginTx(ctx context.Context) (context.Context, error)
	CommitTx(ctx context.Context) error
	RollbackTx(ctx context.Context) error
}

// Change is the event recording one change a registry makes. Who made it
// is not here: it is the actor of ctx's Origin, set by the transport (the
// signed-in admin or developer, the admin API's caller, "cli" on the
// command line), so every front door gets the same event from one place.
type Change struct {
	Type   string
	User   string // the account concerned (an app's developer), if any
	Client string
	Detail map[string]any
}

// ErrUnchanged is what a change's write returns when the change would leave
// the record as it is (an update that repeats the stored values): Apply
// then writes nothing, records no event and returns nil, so the log and
// the record's updatedAt only move when something did.
var ErrUnchanged = errors.New("audit: nothing to change")

// Apply runs write and records c in one transaction: the event is on
// record exactly when the change is (a refused or failed write records
// nothing; an event that cannot be written undoes the change). When ctx
// already carries a transaction (tonearm apply --dry-run runs in one it
// rolls back), both join it. A write that returns ErrUnchanged records
// nothing.
func Apply(ctx context.Context, store TxStore, now time.Time, c Change, write func(ctx context.Context) error) error {
	return ApplyDiff(ctx, store, now, c, func(ctx context.Context) (map[string]any, error) { return nil, write(ctx) })
}

// ApplyDiff is Apply for a change whose detail is known only once the
// write has seen the stored record (which fields it changed, compared
// under the row's lock): write returns the detail to add to c's, or
// ErrUnchanged.
func ApplyDiff(ctx context.Context, store TxStore, now time.Time, c Change, write func(ctx context.Context) (map[string]any, error)) error {
	tx, err := store.BeginTx(ctx)
	switch {
	case errors.Is(err, storage.ErrInTransaction):
		tx = ctx
	case err != nil:
		return err
	default:
		defer store.RollbackTx(tx) //nolint:errcheck // after a commit it does nothing
	}
	more, err := write(tx)
	if errors.Is(err, ErrUnchanged) {
		return nil // nothing was written; the deferred rollback ends the transaction
	}
	if err != nil {
		return err
	}
	detail := c.Detail
	if len(more) > 0 {
		detail = make(map[string]any, len(c.Detail)+len(more))
		for k, v := range c.Detail {
			detail[k] = v
		}
		for k, v := range more {
			detail[k] = v
		}
	}
	if err := Record(tx, store, now, c.Type, c.User, c.Client, detail); err != nil {
		return err
	}
	if tx == ctx {
		return nil // the caller's transaction: it commits or rolls back
	}
	return store.CommitTx(tx)
}
