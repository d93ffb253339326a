package interaction

import (
	"net/http"
	"slices"

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

// order is the interaction's step table: the steps in the order they run,
// each with what leaves it pending. The next step is the first pending
// one; a step's handler records what it proved in the State and returns
// to the dispatcher, which asks this table again.
var order = []struct {
	step    Step
	pending func(State) bool
}{
	// Nobody proved who they are yet, or an upstream identity is waiting
	// for its account, or a just-created account is to be shown.
	{StepIdentify, func(st State) bool { return st.UserID == "" || st.Created != "" }},
	// An account with an authenticator app proves it, unless the sign-in
	// was two factors already (a passkey); so does any account the app
	// asked two factors of (acr_values), or hears that it has none.
	{StepSecondFactor, func(st State) bool { return !st.SecondFactor && needsSecondFactor(st) }},
	// A third-party app asks for the person's consent unless they gave
	// it before for these scopes (and prompt=consent did not ask anew).
	{StepConsent, func(st State) bool {
		return st.Kind == KindAuthorize && !st.FirstParty && !st.Consented && !st.Denied
	}},
	{StepFinish, func(State) bool { return true }},
}

// needsSecondFactor: the sign-in has one factor, and the account has an
// app or the app asked for two.
func needsSecondFactor(st State) bool {
	return !slices.Contains(st.AMR, accounts.AMRMFA) && (st.HasTOTP || st.RequireMFA)
}

// Next is the interaction's next step.
func Next(st State) Step {
	for _, s := range order {
		if s.pending(st) {
			return s.step
		}
	}
	return StepFinish
}

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
