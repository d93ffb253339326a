package config

import "errors"

// The modes below are plain string types owned here, and the packages
// that act on them (web, web/pages, web/jsonapi, web/protocol, web/interaction)
// import them from config rather than the other way round: config then
// imports nothing it configures, so each value has one spelling, one
// default (in its row of the settings table) and one parser (run once, at
// load). provider/* never sees them: cmd/tonearm turns a mode into the
// plain fact a provider needs (e.g. provider.Config.Registration, a bool).

// Registration is TONEARM_REGISTRATION: who creates user accounts.
type Registration string

const (
	RegistrationOpen  Registration = "open"  // anyone signs up
	RegistrationAdmin Registration = "admin" // only admins create users
)

// ParseRegistration reads TONEARM_REGISTRATION.
func ParseRegistration(v string) (Registration, error) {
	switch r := Registration(v); r {
	case RegistrationOpen, RegistrationAdmin:
		return r, nil
	}
	return "", errors.New("TONEARM_REGISTRATION must be open or admin")
}

// ClientRegistration is TONEARM_CLIENT_REGISTRATION: Dynamic Client
// Registration (RFC 7591) at /oauth2/register.
type ClientRegistration string

const (
	ClientRegistrationToken ClientRegistration = "token" // an initial access token is required
	ClientRegistrationOpen  ClientRegistration = "open"  // anyone, limited per address
	ClientRegistrationOff   ClientRegistration = "off"
)

// ParseClientRegistration reads TONEARM_CLIENT_REGISTRATION.
func ParseClientRegistration(v string) (ClientRegistration, error) {
	switch m := ClientRegistration(v); m {
	case ClientRegistrationToken, ClientRegistrationOpen, ClientRegistrationOff:
		return m, nil
	}
	return "", errors.New("TONEARM_CLIENT_REGISTRATION must be token, open or off")
}

// AdminMFA is TONEARM_ADMIN_MFA: whether admins must have signed in with
// two factors to use the console and the admin API with a user token.
type AdminMFA string

const (
	AdminMFAOptional AdminMFA = "optional"
	AdminMFARequired AdminMFA = "required"
)

// ParseAdminMFA reads TONEARM_ADMIN_MFA.
func ParseAdminMFA(v string) (AdminMFA, error) {
	switch m := AdminMFA(v); m {
	case AdminMFAOptional, AdminMFARequired:
		return m, nil
	}
	return "", errors.New("TONEARM_ADMIN_MFA must be optional or required")
}

// DPoPNonce is TONEARM_DPOP_NONCE: whether DPoP proofs must carry a
// server nonce (RFC 9449 §8 at the token endpoint, §9 at resources).
type DPoPNonce string

const (
	DPoPNonceOff DPoPNonce = "off"
	DPoPNonceOn  DPoPNonce = "on"
)

// ParseDPoPNonce reads TONEARM_DPOP_NONCE.
func ParseDPoPNonce(v string) (DPoPNonce, error) {
	switch m := DPoPNonce(v); m {
	case DPoPNonceOff, DPoPNonceOn:
		return m, nil
	}
	return "", errors.New("TONEARM_DPOP_NONCE must be off or on")
}
