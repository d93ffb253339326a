package interaction

import "testing"

// TestNextWalksEveryTransition walks the step table: each row is a state
// an interaction can be in and the step that must come next.
func TestNextWalksEveryTransition(t *testing.T) {
	identified := func(st State) State {
		st.UserID, st.SID, st.AMR = "u1", "s1", []string{"pwd"}
		return st
	}
	authz := State{Kind: KindAuthorize, Scopes: []string{"openid"}}
	thirdParty := authz
	firstParty := authz
	firstParty.FirstParty = true
	cont := State{Kind: KindContinue, Continue: "/account"}
	pending := authz
	pending.Pending = &Pending{Reason: PendingUsername}
	created := identified(authz)
	created.Created = "newbie"
	consented := identified(thirdParty)
	consented.Consented = true
	denied := identified(thirdParty)
	denied.Denied = true
	granted := identified(thirdParty)
	granted.Granted = []string{"openid", "email"}
	grantedAgain := granted
	grantedAgain.PromptConsent = true
	grantedFewer := identified(thirdParty)
	grantedFewer.Granted = []string{"email"}
	acr := identified(firstParty)
	acr.RequireMFA = true
	withApp := identified(firstParty)
	withApp.HasTOTP = true
	stepUp := identified(cont)
	stepUp.RequireMFA, stepUp.Admin = true, true
	stepUpPasskey := stepUp
	stepUpPasskey.AMR = []string{"hwk", "user", "mfa"}
	unmet := stepUp
	unmet.SecondFactor, unmet.Unmet = true, true
	for _, c := range []struct {
		name string
		st   State
		want Step
	}{
		{"a new authorization starts by identifying", authz, StepIdentify},
		{"a stand-alone sign-in starts by identifying", cont, StepIdentify},
		{"an upstream identity waiting for its username stays in identify", pending, StepIdentify},
		{"a just-created account is shown before going on", created, StepIdentify},
		{"identified, a third-party app asks consent", identified(thirdParty), StepConsent},
		{"identified, a first-party app finishes", identified(firstParty), StepFinish},
		{"identified, a stand-alone sign-in finishes", identified(cont), StepFinish},
		{"consent given finishes", consented, StepFinish},
		{"consent denied finishes (with access_denied)", denied, StepFinish},
		{"a link goes nowhere but its callback", State{Kind: KindLink, UserID: "u1"}, StepFinish},
		{"granted these scopes before finishes", granted, StepFinish},
		{"granted before, prompt=consent asks anew", grantedAgain, StepConsent},
		{"granted fewer scopes asks consent", grantedFewer, StepConsent},
		{"acr_values asked two factors of a password sign-in", acr, StepSecondFactor},
		{"an account with an authenticator app proves it", withApp, StepSecondFactor},
		{"the console's step-up asks an admin's second factor", stepUp, StepSecondFactor},
		{"a passkey is two factors for the step-up", stepUpPasskey, StepFinish},
		{"a step-up without a factor to give finishes (to the account page)", unmet, StepFinish},
	} {
		if got := Next(c.st); got != c.want {
			t.Errorf("%s: Next = %s, want %s", c.name, got, c.want)
		}
	}
	// Once the second-factor step is settled, nothing else changes the
	// order.
	st := identified(thirdParty)
	st.SecondFactor = true
	if Next(st) != StepConsent {
		t.Errorf("after the second factor: %s", Next(st))
	}
	if a := Decide(FactsOf(unmet)).Answer; a != AnswerUnmet {
		t.Errorf("a step-up without a factor: %s", a)
	}
	if f := FactsOf(stepUp); f.Flow != FlowStepUp || !RequiresMFA(f) {
		t.Errorf("the step-up's facts: %+v", f)
	}
	// Every step of the table is reachable from some state above.
	if len(order) != 3 || order[0].step != StepIdentify || order[1].step != StepSecondFactor || order[2].step != StepConsent {
		t.Fatalf("the step order changed: %+v", order)
	}
}
