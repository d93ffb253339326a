// Package storage defines tonearm's records, the Storage interface every
// backend implements, and the sentinel errors they report. It knows nothing of
// GORM or fosite: backends live in sub-packages and are held to the contract by
// the conformance suite in storage/storagetest.
package storage

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Backends return them (possibly wrapped) so that callers can
// test with errors.Is and never see a database's own error text.
var (
	ErrNotFound      = errors.New("storage: not found")
	ErrAlreadyExists = errors.New("storage: already exists")
)

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
	// ListenBrainzToken is the user's ListenBrainz token sealed with the
	// server's at-rest key; never the clear token.
	ListenBrainzToken []byte
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// Session is a browser session. Only a hash of the cookie value is stored, so
// a copy of the database does not let anyone sign in.
type Session struct {
	IDHash    []byte
	UserID    string
	AuthTime  time.Time // when the user proved their password
	CreatedAt time.Time
	ExpiresAt time.Time
}

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
	// UpdateUser applies update to the current record atomically: no other
	// UpdateUser on the same user interleaves, and when update returns an error
	// nothing is written and that error is returned.
	UpdateUser(ctx context.Context, id string, update func(User) (User, error)) (User, error)

	// CreateSession inserts s; ErrAlreadyExists on a duplicate hash.
	CreateSession(ctx context.Context, s Session) error
	// GetSession returns the session with this ID hash, or ErrNotFound. It
	// does not check expiry: that is the caller's decision.
	GetSession(ctx context.Context, idHash []byte) (Session, error)
	// DeleteSession removes one session; deleting a missing one is not an error.
	DeleteSession(ctx context.Context, idHash []byte) error
	// DeleteUserSessions removes every session of the user and reports how many.
	DeleteUserSessions(ctx context.Context, userID string) (int64, error)
	// DeleteExpiredSessions removes up to limit sessions that expired before
	// now and reports how many, so a cleaner can work in short batches.
	DeleteExpiredSessions(ctx context.Context, now time.Time, limit int) (int64, error)

	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	// Close releases the connections.
	Close() error
}
