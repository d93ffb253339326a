// Package passkeys runs the WebAuthn ceremonies of passkeys with
// github.com/go-webauthn/webauthn: adding a passkey to a signed-in
// account, and signing in with a discoverable credential (no username).
// Every ceremony's challenge is stored server-side (as its SHA-256) and
// used once; user verification is required; the relying-party ID is the
// issuer's host and the only accepted origin is the issuer's.
package passkeys

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/storage"
)

// Errors of the ceremonies. Whatever the library reports is logged and
// becomes ErrRejected: the browser learns nothing more.
var (
	// ErrUnavailable: the issuer's host is not a domain name (WebAuthn
	// relying-party IDs cannot be IP addresses).
	ErrUnavailable = errors.New("passkeys need an issuer whose host is a domain name")
	// ErrRejected: the answer did not verify (wrong origin or challenge,
	// a used or expired ceremony, no user verification, a bad signature,
	// an unknown passkey).
	ErrRejected = fault.New(fault.Invalid, "the passkey could not be verified").Saying("The passkey could not be verified")
	// ErrCloned: the passkey's signature counter did not move forward,
	// so a copy of it may exist; the sign-in is refused.
	ErrCloned = errors.New("the passkey's signature counter went backwards")
	// ErrExists: the authenticator already holds a passkey of this
	// account.
	ErrExists = fault.New(fault.Conflict, "this passkey is already registered").Saying("This passkey is already registered")
)

// CeremonyTTL is how long a ceremony may take, from its options to the
// answer.
const CeremonyTTL = 5 * time.Minute

// MaxNameLen bounds a passkey's name (in bytes).
const MaxNameLen = 64

// MaxResponseBytes bounds a browser's answer.
const MaxResponseBytes = 16 << 10

// Store is what the ceremonies need from storage.
type Store interface {
	audit.Store
	GetUser(ctx context.Context, id string) (storage.User, error)
	GetPasskey(ctx context.Context, id []byte) (storage.Passkey, error)
	ListPasskeys(ctx context.Context, userID string) ([]storage.Passkey, error)
	CreatePasskey(ctx context.Context, p storage.Passkey) error
	UsePasskey(ctx context.Context, id []byte, signCount uint32, backupState bool, at time.Time) error
	CreatePasskeyChallenge(ctx context.Context, c storage.PasskeyChallenge) error
	ConsumePasskeyChallenge(ctx context.Context, challengeHash []byte, now time.Time) (storage.PasskeyChallenge, error)
}

// Config wires New.
type Config struct {
	Issuer   string
	SiteName string
	Store    Store
	Logger   *slog.Logger
	Now      func() time.Time
}

// Service runs the ceremonies.
type Service struct {
	wa    *webauthn.WebAuthn
	store Store
	log   *slog.Logger
	now   func() time.Time
}

// New returns the ceremonies for the issuer, or ErrUnavailable when its
// host is an IP address.
func New(c Config) (*Service, error) {
	if c.Store == nil || c.Logger == nil {
		return nil, errors.New("passkeys: New needs a Store and a Logger")
	}
	u, err := url.Parse(c.Issuer)
	if err != nil || u.Hostname() == "" {
		return nil, fmt.Errorf("passkeys: bad issuer %q", c.Issuer)
	}
	if net.ParseIP(u.Hostname()) != nil {
		return nil, ErrUnavailable
	}
	if c.SiteName == "" {
		c.SiteName = "tonearm"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	wa, err := webauthn.New(&webauthn.Config{
		RPID:                  u.Hostname(),
		RPDisplayName:         c.SiteName,
		RPOrigins:             []string{u.Scheme + "://" + u.Host},
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementRequired,
			UserVerification: protocol.VerificationRequired,
		},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: CeremonyTTL, TimeoutUVD: CeremonyTTL},
			Registration: webauthn.TimeoutConfig{Timeout: CeremonyTTL, TimeoutUVD: CeremonyTTL},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("passkeys: %w", err)
	}
	return &Service{wa: wa, store: c.Store, log: c.Logger, now: c.Now}, nil
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// account is a user as the library sees them: the user handle is the
// user's ID (random, no personal data).
type account struct {
	u     storage.User
	creds []webauthn.Credential
}

func (a account) WebAuthnID() []byte                         { return []byte(a.u.ID) }
func (a account) WebAuthnName() string                       { return a.u.Username }
func (a account) WebAuthnDisplayName() string                { return a.u.Username }
func (a account) WebAuthnCredentials() []webauthn.Credential { return a.creds }

func credentialOf(p storage.Passkey) webauthn.Credential {
	c := webauthn.Credential{
		ID: p.ID, PublicKey: p.PublicKey, AttestationType: p.AttestationType,
		Flags:         webauthn.CredentialFlags{UserPresent: true, UserVerified: true, BackupEligible: p.BackupEligible, BackupState: p.BackupState},
		Authenticator: webauthn.Authenticator{AAGUID: p.AAGUID, SignCount: p.SignCount},
	}
	for _, t := range p.Transports {
		c.Transport = append(c.Transport, protocol.AuthenticatorTransport(t))
	}
	return c
}

// begin stores a ceremony's state under its challenge.
func (s *Service) begin(ctx context.Context, userID string, sd *webauthn.SessionData) error {
	data, err := json.Marshal(sd)
	if err != nil {
		return err
	}
	h := sha256.Sum256([]byte(sd.Challenge))
	return s.store.CreatePasskeyChallenge(ctx, storage.PasskeyChallenge{
		ChallengeHash: h[:], UserID: userID, Data: data, ExpiresAt: s.clock().Add(CeremonyTTL),
	})
}

// take spends the ceremony the answer names (by its challenge), once.
func (s *Service) take(ctx context.Context, challenge string, userID string) (webauthn.SessionData, error) {
	h := sha256.Sum256([]byte(challenge))
	c, err := s.store.ConsumePasskeyChallenge(ctx, h[:], s.clock())
	if errors.Is(err, storage.ErrNotFound) {
		return webauthn.SessionData{}, fmt.Errorf("%w: unknown, used or expired challenge", ErrRejected)
	}
	if err != nil {
		return webauthn.SessionData{}, err
	}
	if c.UserID != userID {
		return webauthn.SessionData{}, fmt.Errorf("%w: the challenge belongs to another ceremony", ErrRejected)
	}
	var sd webauthn.SessionData
	if err := json.Unmarshal(c.Data, &sd); err != nil {
		return webauthn.SessionData{}, err
	}
	return sd, nil
}

// BeginRegistration starts adding a passkey to u's account and returns the
// options for navigator.credentials.create ({"publicKey": …}). The
// authenticator is asked for a discoverable credential with user
// verification and told which of u's passkeys it may already hold.
func (s *Service) BeginRegistration(ctx context.Context, u storage.User) ([]byte, error) {
	existing, err := s.store.ListPasskeys(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	a := account{u: u}
	var exclude []protocol.CredentialDescriptor
	for _, p := range existing {
		c := credentialOf(p)
		exclude = append(exclude, c.Descriptor())
	}
	creation, sd, err := s.wa.BeginRegistration(a, webauthn.WithExclusions(exclude),
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired))
	if err != nil {
		return nil, err
	}
	if err := s.begin(ctx, u.ID, sd); err != nil {
		return nil, err
	}
	return json.Marshal(creation)
}

// FinishRegistration checks the browser's answer (a PublicKeyCredential as
// JSON) against u's ceremony and stores the passkey under name.
func (s *Service) FinishRegistration(ctx context.Context, u storage.User, name string, response []byte) (storage.Passkey, error) {
	if len(response) > MaxResponseBytes {
		return storage.Passkey{}, fmt.Errorf("%w: answer too large", ErrRejected)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return storage.Passkey{}, s.rejected("parsing a new passkey", err)
	}
	sd, err := s.take(ctx, parsed.Response.CollectedClientData.Challenge, u.ID)
	if err != nil {
		return storage.Passkey{}, err
	}
	cred, err := s.wa.CreateCredential(account{u: u}, sd, parsed)
	if err != nil {
		return storage.Passkey{}, s.rejected("verifying a new passkey", err)
	}
	if !cred.Flags.UserVerified {
		return storage.Passkey{}, fmt.Errorf("%w: no user verification", ErrRejected)
	}
	now := s.clock()
	p := storage.Passkey{
		ID: cred.ID, UserID: u.ID, Name: name, PublicKey: cred.PublicKey, SignCount: cred.Authenticator.SignCount,
		AAGUID: cred.Authenticator.AAGUID, AttestationType: cred.AttestationType,
		BackupEligible: cred.Flags.BackupEligible, BackupState: cred.Flags.BackupState, CreatedAt: now,
	}
	for _, t := range cred.Transport {
		p.Transports = append(p.Transports, string(t))
	}
	if err := s.store.CreatePasskey(ctx, p); err != nil {
		if errors.Is(err, storage.ErrAlreadyExists) {
			return storage.Passkey{}, ErrExists
		}
		return storage.Passkey{}, err
	}
	if err := audit.Record(ctx, s.store, now, audit.PasskeyAdded, u.ID, "", map[string]any{"name": name}); err != nil {
		s.log.Warn("recording an added passkey", "err", err)
	}
	return p, nil
}

// BeginLogin starts a sign-in with a discoverable credential and returns
// the options for navigator.credentials.get ({"publicKey": …}).
func (s *Service) BeginLogin(ctx context.Context) ([]byte, error) {
	assertion, sd, err := s.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, err
	}
	if err := s.begin(ctx, "", sd); err != nil {
		return nil, err
	}
	return json.Marshal(assertion)
}

// FinishLogin checks the browser's answer to a sign-in ceremony and
// returns the passkey's owner (a sign-in event is recorded unless the
// account is disabled: the caller refuses those). The signature counter must move forward:
// a passkey whose counter does not is refused (ErrCloned) and its owner
// learns of it in their account's activity.
func (s *Service) FinishLogin(ctx context.Context, response []byte) (storage.User, error) {
	if len(response) > MaxResponseBytes {
		return storage.User{}, fmt.Errorf("%w: answer too large", ErrRejected)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return storage.User{}, s.rejected("parsing a passkey sign-in", err)
	}
	sd, err := s.take(ctx, parsed.Response.CollectedClientData.Challenge, "")
	if err != nil {
		return storage.User{}, err
	}
	var owner storage.User
	lookup := func(rawID, userHandle []byte) (webauthn.User, error) {
		p, err := s.store.GetPasskey(ctx, rawID)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal([]byte(p.UserID), userHandle) {
			return nil, errors.New("the user handle is not the passkey's owner")
		}
		u, err := s.store.GetUser(ctx, p.UserID)
		if err != nil {
			return nil, err
		}
		owner = u
		return account{u: u, creds: []webauthn.Credential{credentialOf(p)}}, nil
	}
	_, cred, err := s.wa.ValidatePasskeyLogin(lookup, sd, parsed)
	if err != nil {
		return storage.User{}, s.rejected("verifying a passkey sign-in", err)
	}
	if !cred.Flags.UserVerified {
		return storage.User{}, fmt.Errorf("%w: no user verification", ErrRejected)
	}
	now := s.clock()
	if cred.Authenticator.CloneWarning {
		return storage.User{}, s.cloned(ctx, owner, cred.ID, now)
	}
	err = s.store.UsePasskey(ctx, cred.ID, cred.Authenticator.SignCount, cred.Flags.BackupState, now)
	if errors.Is(err, storage.ErrNotFound) {
		// Another sign-in used this counter value first.
		return storage.User{}, s.cloned(ctx, owner, cred.ID, now)
	}
	if err != nil {
		return storage.User{}, err
	}
	if !owner.Disabled {
		if err := audit.Record(ctx, s.store, now, audit.SignInSucceeded, owner.ID, "", map[string]any{"method": "passkey"}); err != nil {
			return storage.User{}, err
		}
	}
	return owner, nil
}

func (s *Service) cloned(ctx context.Context, owner storage.User, id []byte, now time.Time) error {
	s.log.Warn("passkey sign-in refused: its signature counter did not move forward", "user", owner.ID)
	p, _ := s.store.GetPasskey(ctx, id)
	if err := audit.Record(ctx, s.store, now, audit.PasskeyCloneSuspected, owner.ID, "", map[string]any{"name": p.Name}); err != nil {
		s.log.Warn("recording a suspected passkey clone", "err", err)
	}
	return ErrCloned
}

// rejected logs why the library refused an answer and reports
// ErrRejected.
func (s *Service) rejected(what string, err error) error {
	var pe *protocol.Error
	detail := err.Error()
	if errors.As(err, &pe) {
		detail = strings.TrimSpace(pe.Details + " " + pe.DevInfo)
	}
	s.log.Info("passkey refused", "step", what, "reason", detail)
	return fmt.Errorf("%w: %s", ErrRejected, what)
}
