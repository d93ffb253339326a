package interaction

import (
	"slices"
	"time"

	"github.com/tonearm-idp/tonearm/provider/accounts"
)

// The sign-in decision, written once: the authorization endpoint asks it
// when a request arrives (to issue at once, to answer prompt=none, or to
// start an interaction at its first step) and the interaction's dispatcher
// asks it after every step (Next). It is a pure function of plain values:
// no HTTP, no storage; the callers read what it needs first.

// Flow is what an interaction is for.
type Flow string

// The flows.
const (
	// FlowAuthorize answers an authorization request (an app's sign-in).
	FlowAuthorize Flow = KindAuthorize
	// FlowContinue signs in on this server and goes on to one of its
	// pages: the stand-alone sign-in, sign-up, and the device page (the
	// device flow asks its consent on its own page, RFC 8628 §3.3).
	FlowContinue Flow = KindContinue
	// FlowLink links an upstream identity to the signed-in account.
	FlowLink Flow = KindLink
	// FlowStepUp proves a second factor for a page of this server that
	// asked for one: the console under TONEARM_ADMIN_MFA=required.
	FlowStepUp Flow = "step_up"
)

// Facts is what is known when the decision is asked.
type Facts struct {
	Flow    Flow
	Request RequestFacts
	// Session is the sign-in at hand: the browser's session when a
	// request arrives, the interaction's own sign-in afterwards. A zero
	// UserID: nobody signed in.
	Session SessionFacts
	Account AccountFacts
	Client  ClientFacts
	Policy  Policy
	Proved  Proved
	// Now is when the request is decided (for max_age).
	Now time.Time
}

// RequestFacts is what the authorization request asks.
type RequestFacts struct {
	// Prompt holds the prompt values (OpenID Connect Core §3.1.2.1):
	// none, login, consent; select_account is accepted and changes nothing
	// (a browser holds one session, the one to use).
	Prompt []string
	// MaxAge is max_age in seconds; negative when absent or unreadable.
	// Once an interaction signed the person in, the dispatcher passes
	// neither prompt=login nor max_age: that sign-in satisfies both.
	MaxAge int64
	// ACRValues are the acr_values asked; ACRMultiFactor asks two factors.
	ACRValues []string
	// Scopes are what consent covers: the scopes the token will carry
	// and those of the claims asked by name (State.ConsentScopes).
	Scopes []string
	// EssentialACR are the acr values the claims parameter asks as an
	// essential claim (OpenID Connect Core §5.5.1.1), nil when it does
	// not: like acr_values, the multi-factor class asks two factors; a
	// list without it can never be met (tonearm states no other acr).
	EssentialACR []string
	// OtherSubject: the claims parameter names a sub (§3.1.2.2) that the
	// session at hand is not; only a sign-in of that subject may answer.
	OtherSubject bool
}

// SessionFacts is a sign-in and how it was made.
type SessionFacts struct {
	UserID   string
	AMR      []string // RFC 8176; "mfa" when it used two factors
	AuthTime time.Time
}

// AccountFacts is what the decision needs of the signed-in account.
type AccountFacts struct {
	HasTOTP bool // an authenticator app is enrolled
	Admin   bool // an active admin
}

// ClientFacts is the app asking, and what the person granted it before.
type ClientFacts struct {
	FirstParty bool
	// Granted are the scopes the person granted the app before (none
	// read when nobody is signed in).
	Granted []string
}

// Policy is the server's settings the decision applies.
type Policy struct {
	// AdminMFA: TONEARM_ADMIN_MFA=required. It is applied to this
	// sign-in's amr where an admin acts (the console's step-up here, the
	// admin API on the token's acr), not to an app's sign-in: an admin
	// signs in to apps like anyone.
	AdminMFA bool
}

// Proved is what the current interaction has settled so far.
type Proved struct {
	// Identifying: the identify step has more to show (an account a
	// connector just created, shown once).
	Identifying bool
	// SecondFactor: the second-factor step is settled (a code was
	// checked, or the person said they have none: Unmet).
	SecondFactor, Unmet bool
	// Consented or Denied: the consent step is answered.
	Consented, Denied bool
}

// Answer is how a decided sign-in ends.
type Answer string

// The answers.
const (
	// AnswerIssue: nothing is left to ask; issue (or go on to the page).
	AnswerIssue Answer = "issue"
	// The prompt=none answers (OpenID Connect Core §3.1.2.6), and the two
	// ends of an interaction that issue nothing.
	AnswerLoginRequired       Answer = "login_required"
	AnswerInteractionRequired Answer = "interaction_required"
	AnswerConsentRequired     Answer = "consent_required"
	AnswerUnmet               Answer = "unmet_authentication_requirements"
	AnswerDenied              Answer = "access_denied"
)

// Decision is the next step to show, or, when Step is StepFinish, the
// answer.
type Decision struct {
	Step   Step
	Answer Answer
}

// noneAnswers is what prompt=none answers instead of showing a step.
var noneAnswers = map[Step]Answer{
	StepIdentify:     AnswerLoginRequired,
	StepSecondFactor: AnswerInteractionRequired,
	StepConsent:      AnswerConsentRequired,
}

// Decide is the sign-in decision: the first pending step of the table in
// steps.go, or the answer when none is. prompt=none turns a pending step
// into its error, in the table's order: login, then the second factor,
// then consent.
func Decide(f Facts) Decision {
	if unmeetableACR(f) {
		return Decision{Step: StepFinish, Answer: AnswerUnmet}
	}
	for _, s := range order {
		if !s.pending(f) {
			continue
		}
		if f.Flow == FlowAuthorize && slices.Contains(f.Request.Prompt, "none") {
			return Decision{Step: StepFinish, Answer: noneAnswers[s.step]}
		}
		return Decision{Step: s.step}
	}
	switch {
	case f.Proved.Denied:
		return Decision{Step: StepFinish, Answer: AnswerDenied}
	case f.Proved.Unmet:
		return Decision{Step: StepFinish, Answer: AnswerUnmet}
	}
	return Decision{Step: StepFinish, Answer: AnswerIssue}
}

// needsLogin: nobody is signed in, or the app asked for a new sign-in
// (prompt=login) or for another subject than the session's (a claims
// sub value), or the session is older than max_age allows (OpenID
// Connect Core §3.1.2.1).
func needsLogin(f Facts) bool {
	if f.Session.UserID == "" || f.Request.OtherSubject || slices.Contains(f.Request.Prompt, "login") {
		return true
	}
	return f.Request.MaxAge >= 0 && f.Now.Sub(f.Session.AuthTime) > time.Duration(f.Request.MaxAge)*time.Second
}

// RequiresMFA: two factors are asked of this sign-in whatever the
// account, by the app (acr_values with the multi-factor class, OpenID
// PAPE) or, on a step-up, by TONEARM_ADMIN_MFA=required for an admin.
func RequiresMFA(f Facts) bool {
	if slices.Contains(f.Request.ACRValues, accounts.ACRMultiFactor) || slices.Contains(f.Request.EssentialACR, accounts.ACRMultiFactor) {
		return true
	}
	return f.Flow == FlowStepUp && f.Policy.AdminMFA && f.Account.Admin
}

// unmeetableACR: an app's essential acr names only classes no sign-in
// here states (OpenID Connect Core §5.5.1.1 asks an error, not a token
// without the acr); no step could change that.
func unmeetableACR(f Facts) bool {
	return f.Flow == FlowAuthorize && f.Request.EssentialACR != nil && !slices.Contains(f.Request.EssentialACR, accounts.ACRMultiFactor)
}

// needsSecondFactor: the sign-in used one factor (a passkey is two), and
// the account has an authenticator app or two factors are asked.
func needsSecondFactor(f Facts) bool {
	if f.Proved.SecondFactor || slices.Contains(f.Session.AMR, accounts.AMRMFA) {
		return false
	}
	return f.Account.HasTOTP || RequiresMFA(f)
}

// needsConsent: a third-party app asks for the person's consent unless
// they granted it these scopes before and prompt=consent does not ask
// anew. Only an authorization has an app to consent to.
func needsConsent(f Facts) bool {
	if f.Flow != FlowAuthorize || f.Client.FirstParty || f.Proved.Consented || f.Proved.Denied {
		return false
	}
	return slices.Contains(f.Request.Prompt, "consent") || !Covers(f.Client.Granted, f.Request.Scopes)
}

// Covers reports whether the scopes granted include every scope asked.
func Covers(granted, asked []string) bool {
	for _, s := range asked {
		if !slices.Contains(granted, s) {
			return false
		}
	}
	return true
}
