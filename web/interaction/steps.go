package interaction

import (
	"net/http"

	"github.com/tonearm-idp/tonearm/provider/accounts"
)

// Step is a step of the interaction.
type Step string

// The steps.
const (
	StepIdentify     Step = "identify"
	StepSecondFactor Step = "second_factor"
	StepConsent      Step = "consent"
	StepFinish       Step = "finish"
)

// order is the sign-in's step table: the steps in the order they run,
// each with what leaves it pending (decide.go). The next step is the first
// pending one; a step's handler records what it proved in the State and
// returns to the dispatcher, which asks the decision again.
var order = []struct {
	step    Step
	pending func(Facts) bool
}{
	// Nobody proved who they are yet (or prompt=login or max_age asks
	// again), or an upstream identity is waiting for its account, or a
	// just-created account is to be shown.
	{StepIdentify, func(f Facts) bool { return f.Proved.Identifying || needsLogin(f) }},
	// An account with an authenticator app proves it, unless the sign-in
	// was two factors already (a passkey); so does any account two
	// factors are asked of (acr_values, the admin step-up), or hears that
	// it has none.
	{StepSecondFactor, needsSecondFactor},
	// A third-party app asks for the person's consent unless they gave
	// it before for these scopes (and prompt=consent did not ask anew).
	{StepConsent, needsConsent},
	// None pending: StepFinish, with the decision's answer.
}

// FactsOf is what an interaction's State tells the decision. Its own
// sign-in (or the session it started with) satisfies prompt=login and
// max_age already: the authorization endpoint started it unidentified
// when they asked again.
func FactsOf(st State) Facts {
	f := Facts{
		Flow:    Flow(st.Kind),
		Request: RequestFacts{MaxAge: -1, Scopes: st.ConsentScopes()},
		Session: SessionFacts{UserID: st.UserID, AMR: st.AMR, AuthTime: st.AuthTime},
		Account: AccountFacts{HasTOTP: st.HasTOTP, Admin: st.Admin},
		Client:  ClientFacts{FirstParty: st.FirstParty, Granted: st.Granted},
		Proved: Proved{Identifying: st.Created != "", SecondFactor: st.SecondFactor, Unmet: st.Unmet,
			Consented: st.Consented, Denied: st.Denied},
	}
	if st.PromptConsent {
		f.Request.Prompt = []string{"consent"}
	}
	switch {
	case st.Kind == KindContinue && st.RequireMFA:
		// A page of this server asked for two factors: the console's
		// step-up, which only TONEARM_ADMIN_MFA=required starts.
		f.Flow, f.Policy.AdminMFA = FlowStepUp, true
	case st.RequireMFA:
		f.Request.ACRValues = []string{accounts.ACRMultiFactor}
	}
	return f
}

// Next is the interaction's next step.
func Next(st State) Step { return Decide(FactsOf(st)).Step }

type stepHandler struct {
	show   func(w http.ResponseWriter, r *http.Request, id string, st State, status int)
	answer func(w http.ResponseWriter, r *http.Request, id string, st State)
}

func (ix *Interactions) handlers() map[Step]stepHandler {
	return map[Step]stepHandler{
		StepIdentify:     {show: ix.identifyPage, answer: ix.identifyAnswer},
		StepSecondFactor: {show: ix.secondFactorPage, answer: ix.secondFactorAnswer},
		StepConsent:      {show: ix.consentPage, answer: ix.consentAnswer},
	}
}
