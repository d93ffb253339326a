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
	} {
		if got := Next(c.st); got != c.want {
			t.Errorf("%s: Next = %s, want %s", c.name, got, c.want)
		}
	}
	// The second-factor step settles itself (no account has one yet):
	// its page marks it done, and nothing else changes the order.
	st := identified(thirdParty)
	st.SecondFactor = true
	if Next(st) != StepConsent {
		t.Errorf("after the second factor: %s", Next(st))
	}
	// Every step of the table is reachable from some state above but the
	// second factor's, which needs an enrolled factor (next issue).
	if len(order) != 3 || order[0].step != StepIdentify || order[1].step != StepSecondFactor || order[2].step != StepConsent {
		t.Fatalf("the step order changed: %+v", order)
	}
}
