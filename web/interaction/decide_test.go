package interaction

import (
	"slices"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/provider/accounts"
)

// TestDecide is the sign-in decision's table: what is known (the request,
// the session and how it was made, the account, the client and consent,
// the policy, what the interaction proved) and the step or answer that
// must follow. Every row is what the authorization endpoint and the
// interaction did before they shared this one decision (the end-to-end
// tests in cmd/tonearm: TestPromptAndMaxAge, TestPromptLoginThenConsent,
// TestConsentDenied, TestSecondFactor, TestAdminMFAPolicy,
// TestRound3AdminMFA*, TestDeviceAuthorizationGrant, TestOIDCConnector).
//
// A pushed request (PAR) has no row of its own: the reading unit
// (web/protocol/authorize_read.go) resolves it to the pushed parameters,
// which are then decided like a direct request's.
func TestDecide(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	scopes := []string{"openid", "profile"}
	mfa := accounts.ACRMultiFactor
	pwd := []string{accounts.AMRPassword}
	passkey := []string{accounts.AMRPasskey, accounts.AMRUser, accounts.AMRMFA}
	otp := []string{accounts.AMRPassword, accounts.AMROTP, accounts.AMRMFA}
	fed := []string{accounts.AMRFederated}

	// An app's request as it arrives, and the facts to vary.
	type row struct {
		name       string
		flow       Flow
		prompt     []string
		maxAge     *int64 // seconds; nil: none
		acr        []string
		essential  []string // the claims parameter's essential acr values
		other      bool     // the claims parameter names another sub
		signedIn   bool
		amr        []string
		totp       bool
		admin      bool
		adminMFA   bool
		firstParty bool
		granted    []string
		proved     Proved
		want       Step
		answer     Answer // with StepFinish
	}
	secs := func(n int64) *int64 { return &n }
	finish := func(a Answer) (Step, Answer) { return StepFinish, a }
	rows := []row{
		// Nobody signed in.
		{name: "no session: sign in", want: StepIdentify},
		{name: "no session, first party: sign in", firstParty: true, want: StepIdentify},
		{name: "no session, prompt=none: login_required", prompt: []string{"none"}, answer: AnswerLoginRequired},
		{name: "no session, prompt=none, first party: login_required", prompt: []string{"none"}, firstParty: true, answer: AnswerLoginRequired},
		{name: "no session, prompt=none, acr mfa: login first", prompt: []string{"none"}, acr: []string{mfa}, answer: AnswerLoginRequired},
		{name: "no session, prompt=select_account: sign in", prompt: []string{"select_account"}, want: StepIdentify},
		{name: "no session, granted before (nobody to know it): sign in", granted: scopes, want: StepIdentify},

		// A session, first-party apps.
		{name: "session, first party: issue", signedIn: true, firstParty: true, answer: AnswerIssue},
		{name: "session, first party, prompt=none: issue", signedIn: true, firstParty: true, prompt: []string{"none"}, answer: AnswerIssue},
		{name: "session, first party, prompt=login: sign in again", signedIn: true, firstParty: true, prompt: []string{"login"}, want: StepIdentify},
		{name: "session, first party, prompt=consent: no consent for a first party", signedIn: true, firstParty: true, prompt: []string{"consent"}, answer: AnswerIssue},
		{name: "session, prompt=select_account: the session's account", signedIn: true, firstParty: true, prompt: []string{"select_account"}, answer: AnswerIssue},

		// max_age (OpenID Connect Core §3.1.2.1).
		{name: "max_age=0: sign in again", signedIn: true, firstParty: true, maxAge: secs(0), want: StepIdentify},
		{name: "max_age=0, prompt=none: login_required", signedIn: true, firstParty: true, maxAge: secs(0), prompt: []string{"none"}, answer: AnswerLoginRequired},
		{name: "max_age elapsed: sign in again", signedIn: true, firstParty: true, maxAge: secs(300), want: StepIdentify},
		{name: "max_age not elapsed: issue", signedIn: true, firstParty: true, maxAge: secs(3600), answer: AnswerIssue},
		{name: "max_age exactly reached: still within", signedIn: true, firstParty: true, maxAge: secs(600), answer: AnswerIssue},
		{name: "max_age not elapsed, prompt=none: issue", signedIn: true, firstParty: true, maxAge: secs(3600), prompt: []string{"none"}, answer: AnswerIssue},
		{name: "max_age elapsed, third party granted: sign in first", signedIn: true, granted: scopes, maxAge: secs(60), want: StepIdentify},

		// Third-party apps and consent.
		{name: "third party, nothing granted: consent", signedIn: true, want: StepConsent},
		{name: "third party, nothing granted, prompt=none: consent_required", signedIn: true, prompt: []string{"none"}, answer: AnswerConsentRequired},
		{name: "third party, granted these scopes: issue", signedIn: true, granted: scopes, answer: AnswerIssue},
		{name: "third party, granted more: issue", signedIn: true, granted: []string{"openid", "profile", "email"}, answer: AnswerIssue},
		{name: "third party, granted fewer: consent", signedIn: true, granted: []string{"openid"}, want: StepConsent},
		{name: "third party, granted fewer, prompt=none: consent_required", signedIn: true, granted: []string{"openid"}, prompt: []string{"none"}, answer: AnswerConsentRequired},
		{name: "third party, granted, prompt=consent: consent anew", signedIn: true, granted: scopes, prompt: []string{"consent"}, want: StepConsent},
		{name: "third party, granted, prompt=none: issue", signedIn: true, granted: scopes, prompt: []string{"none"}, answer: AnswerIssue},
		{name: "third party, prompt=login and consent: sign in first", signedIn: true, granted: scopes, prompt: []string{"login", "consent"}, want: StepIdentify},

		// acr_values: two factors asked (OpenID PAPE multi-factor).
		{name: "acr mfa, password session: second factor", signedIn: true, firstParty: true, acr: []string{mfa}, amr: pwd, want: StepSecondFactor},
		{name: "acr mfa, password session, prompt=none: interaction_required", signedIn: true, firstParty: true, acr: []string{mfa}, amr: pwd, prompt: []string{"none"}, answer: AnswerInteractionRequired},
		{name: "acr mfa, passkey session: issue", signedIn: true, firstParty: true, acr: []string{mfa}, amr: passkey, answer: AnswerIssue},
		{name: "acr mfa, code session, third party granted: issue", signedIn: true, granted: scopes, acr: []string{mfa}, amr: otp, answer: AnswerIssue},
		{name: "acr mfa among others: second factor", signedIn: true, firstParty: true, acr: []string{"urn:example:silver", mfa}, amr: pwd, want: StepSecondFactor},
		{name: "another acr only: issue", signedIn: true, firstParty: true, acr: []string{"urn:example:silver"}, amr: pwd, answer: AnswerIssue},
		{name: "acr mfa, third party not granted, prompt=none: the second factor first", signedIn: true, acr: []string{mfa}, amr: pwd, prompt: []string{"none"}, answer: AnswerInteractionRequired},
		{name: "acr mfa, prompt=login: sign in first", signedIn: true, firstParty: true, acr: []string{mfa}, amr: passkey, prompt: []string{"login"}, want: StepIdentify},

		// An account with an authenticator app.
		{name: "app enrolled, password session: second factor", signedIn: true, firstParty: true, totp: true, amr: pwd, want: StepSecondFactor},
		{name: "app enrolled, code session: issue", signedIn: true, firstParty: true, totp: true, amr: otp, answer: AnswerIssue},
		{name: "app enrolled, passkey session: issue", signedIn: true, firstParty: true, totp: true, amr: passkey, answer: AnswerIssue},
		{name: "app enrolled, prompt=none: interaction_required", signedIn: true, firstParty: true, totp: true, amr: pwd, prompt: []string{"none"}, answer: AnswerInteractionRequired},
		{name: "app enrolled, third party not granted: second factor before consent", signedIn: true, totp: true, amr: pwd, want: StepSecondFactor},

		// A connector's sign-in (amr fed): one factor here.
		{name: "connector session, first party: issue", signedIn: true, firstParty: true, amr: fed, answer: AnswerIssue},
		{name: "connector session, app enrolled: second factor", signedIn: true, firstParty: true, amr: fed, totp: true, want: StepSecondFactor},
		{name: "connector session, acr mfa: second factor", signedIn: true, firstParty: true, amr: fed, acr: []string{mfa}, want: StepSecondFactor},
		{name: "connector session, third party: consent", signedIn: true, amr: fed, want: StepConsent},

		// TONEARM_ADMIN_MFA=required: applied where an admin acts (the
		// console's step-up, the admin API on the token's acr), not to an
		// app's sign-in.
		{name: "admin policy, admin with one factor, an app's sign-in: issue", signedIn: true, firstParty: true, admin: true, adminMFA: true, amr: pwd, answer: AnswerIssue},
		{name: "admin policy, admin with an app, an app's sign-in: second factor (the app's)", signedIn: true, firstParty: true, admin: true, adminMFA: true, totp: true, amr: pwd, want: StepSecondFactor},
		{name: "step-up, admin without a second factor: the step (no factor to give)", flow: FlowStepUp, signedIn: true, admin: true, adminMFA: true, amr: pwd, want: StepSecondFactor},
		{name: "step-up, admin with an app: second factor", flow: FlowStepUp, signedIn: true, admin: true, adminMFA: true, totp: true, amr: pwd, want: StepSecondFactor},
		{name: "step-up, admin signed in with a passkey: go on", flow: FlowStepUp, signedIn: true, admin: true, adminMFA: true, amr: passkey, answer: AnswerIssue},
		{name: "step-up, policy optional: go on", flow: FlowStepUp, signedIn: true, admin: true, amr: pwd, answer: AnswerIssue},
		{name: "step-up, no longer an admin: go on", flow: FlowStepUp, signedIn: true, adminMFA: true, amr: pwd, answer: AnswerIssue},
		{name: "step-up, said they have none: unmet", flow: FlowStepUp, signedIn: true, admin: true, adminMFA: true, amr: pwd, proved: Proved{SecondFactor: true, Unmet: true}, answer: AnswerUnmet},
		{name: "step-up, code checked: go on", flow: FlowStepUp, signedIn: true, admin: true, adminMFA: true, totp: true, amr: otp, proved: Proved{SecondFactor: true}, answer: AnswerIssue},

		// Sign-ins that go on to a page of this server: the stand-alone
		// sign-in, sign-up, and the device page (which asks its own
		// consent, RFC 8628 §3.3), and linking a connector.
		{name: "continue, nobody yet: sign in", flow: FlowContinue, want: StepIdentify},
		{name: "continue, signed in: go on", flow: FlowContinue, signedIn: true, answer: AnswerIssue},
		{name: "continue, app enrolled: second factor", flow: FlowContinue, signedIn: true, totp: true, amr: pwd, want: StepSecondFactor},
		{name: "device page sign-in, third party: no consent here", flow: FlowContinue, signedIn: true, amr: pwd, answer: AnswerIssue},
		{name: "continue, prompt=none means nothing here", flow: FlowContinue, prompt: []string{"none"}, want: StepIdentify},
		{name: "link, the account signed in: go on", flow: FlowLink, signedIn: true, answer: AnswerIssue},

		// What an interaction proved.
		{name: "a just-created account is shown first", signedIn: true, firstParty: true, proved: Proved{Identifying: true}, want: StepIdentify},
		{name: "consent given: issue", signedIn: true, proved: Proved{Consented: true}, answer: AnswerIssue},
		{name: "consent denied: access_denied", signedIn: true, proved: Proved{Denied: true}, answer: AnswerDenied},
		{name: "code checked, third party: consent", signedIn: true, totp: true, amr: otp, proved: Proved{SecondFactor: true}, want: StepConsent},
		{name: "said they have none, first party: unmet", signedIn: true, firstParty: true, acr: []string{mfa}, amr: pwd, proved: Proved{SecondFactor: true, Unmet: true}, answer: AnswerUnmet},
		{name: "said they have none, third party: consent still asked", signedIn: true, acr: []string{mfa}, amr: pwd, proved: Proved{SecondFactor: true, Unmet: true}, want: StepConsent},
		{name: "unmet then denied: access_denied", signedIn: true, acr: []string{mfa}, amr: pwd, proved: Proved{SecondFactor: true, Unmet: true, Denied: true}, answer: AnswerDenied},

		// The claims parameter (OpenID Connect Core §5.5): an essential
		// acr behaves like acr_values, and one no sign-in here states is
		// unmet whatever the session; a sub value asks a sign-in of that
		// subject.
		{name: "essential acr mfa, password session: second factor", signedIn: true, firstParty: true, essential: []string{mfa}, amr: pwd, want: StepSecondFactor},
		{name: "essential acr mfa, passkey session: issue", signedIn: true, firstParty: true, essential: []string{mfa}, amr: passkey, answer: AnswerIssue},
		{name: "essential acr mfa, prompt=none: interaction_required", signedIn: true, firstParty: true, essential: []string{mfa}, amr: pwd, prompt: []string{"none"}, answer: AnswerInteractionRequired},
		{name: "essential acr mfa, said they have none: unmet", signedIn: true, firstParty: true, essential: []string{mfa}, amr: pwd, proved: Proved{SecondFactor: true, Unmet: true}, answer: AnswerUnmet},
		{name: "essential acr another class: unmet", signedIn: true, firstParty: true, essential: []string{"urn:example:silver"}, amr: passkey, answer: AnswerUnmet},
		{name: "essential acr another class, nobody signed in: unmet at once", essential: []string{"urn:example:silver"}, answer: AnswerUnmet},
		{name: "essential acr another class, prompt=none: unmet", signedIn: true, firstParty: true, essential: []string{"urn:example:silver"}, prompt: []string{"none"}, answer: AnswerUnmet},
		{name: "essential acr among others: second factor", signedIn: true, firstParty: true, essential: []string{"urn:example:silver", mfa}, amr: pwd, want: StepSecondFactor},
		{name: "another sub asked: sign in again", signedIn: true, firstParty: true, other: true, want: StepIdentify},
		{name: "another sub asked, prompt=none: login_required", signedIn: true, firstParty: true, other: true, prompt: []string{"none"}, answer: AnswerLoginRequired},
		{name: "another sub asked, third party granted: sign in again", signedIn: true, granted: scopes, other: true, want: StepIdentify},
	}
	if len(rows) < 40 {
		t.Fatalf("only %d rows", len(rows))
	}
	for _, c := range rows {
		f := Facts{Flow: c.flow, Now: now,
			Request: RequestFacts{Prompt: c.prompt, ACRValues: c.acr, Scopes: scopes, EssentialACR: c.essential, OtherSubject: c.other},
			Account: AccountFacts{HasTOTP: c.totp, Admin: c.admin},
			Client:  ClientFacts{FirstParty: c.firstParty, Granted: c.granted},
			Policy:  Policy{AdminMFA: c.adminMFA},
			Proved:  c.proved,
		}
		f.Request.MaxAge = -1
		if c.maxAge != nil {
			f.Request.MaxAge = *c.maxAge
		}
		if f.Flow == "" {
			f.Flow = FlowAuthorize
		}
		if c.signedIn {
			f.Session = SessionFacts{UserID: "u1", AMR: c.amr, AuthTime: now.Add(-10 * time.Minute)}
		}
		want := Decision{Step: c.want}
		if c.answer != "" {
			want.Step, want.Answer = finish(c.answer)
		}
		if got := Decide(f); got != want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, want)
		}
	}
}

// TestConsentScopesOfClaims: consent covers the scopes that carry the
// claims asked by name, so an earlier consent to fewer scopes asks again.
func TestConsentScopesOfClaims(t *testing.T) {
	st := State{Kind: KindAuthorize, Scopes: []string{"openid"}, Claims: []string{"email", "email_verified", "name"},
		UserID: "u1", Granted: []string{"openid", "profile"}}
	got := st.ConsentScopes()
	if want := []string{"openid", "email", "profile"}; !slices.Equal(got, want) {
		t.Fatalf("ConsentScopes = %v, want %v", got, want)
	}
	if d := Decide(FactsOf(st)); d.Step != StepConsent {
		t.Fatalf("granted openid profile, claims of email asked: %+v, want the consent step", d)
	}
	st.Granted = append(st.Granted, "email")
	if d := Decide(FactsOf(st)); d.Answer != AnswerIssue {
		t.Fatalf("granted the claims' scopes before: %+v, want issue", d)
	}
}
