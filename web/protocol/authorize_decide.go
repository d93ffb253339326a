package protocol

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/ory/fosite"

	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/web"
	"github.com/tonearm-idp/tonearm/web/interaction"
)

// What the authorization endpoint tells the sign-in decision
// (interaction.Decide), and how it answers the decision's errors.

// interactionOf is the interaction an admitted request would start: the
// request as the browser sent it (a pushed one as its request_uri) and
// what the steps show and ask.
func (o *OAuth) interactionOf(r *http.Request, req authorizeRequest) interaction.State {
	view := viewOfFosite(req.client)
	// From the request as fosite read it: a pushed request's parameters
	// are not in r.Form.
	form := req.ar.GetRequestForm()
	return interaction.State{
		Kind: interaction.KindAuthorize, Request: r.Form.Encode(), Client: &view, FirstParty: req.client.FirstParty, Scopes: req.requested,
		PromptConsent: slices.Contains(strings.Fields(form.Get("prompt")), "consent"), LoginHint: form.Get("login_hint"),
		Claims: req.claims.Claims(), UILocales: form.Get("ui_locales"), Since: o.now().UTC(),
	}
}

// signInFacts is what is known of a request as it arrives: what it asks,
// the browser's session (caller, zero when none) and its account, and the
// scopes the person granted the app before (read only when the decision
// looks at them).
func (o *OAuth) signInFacts(r *http.Request, req authorizeRequest, st interaction.State, caller web.Caller) (interaction.Facts, error) {
	form := req.ar.GetRequestForm()
	maxAge, err := strconv.ParseInt(form.Get("max_age"), 10, 64)
	if err != nil {
		maxAge = -1 // absent, or not a number: no bound
	}
	f := interaction.Facts{
		Flow: interaction.FlowAuthorize, Now: o.now(),
		Request: interaction.RequestFacts{Prompt: strings.Fields(form.Get("prompt")), MaxAge: maxAge,
			ACRValues: strings.Fields(form.Get("acr_values")), Scopes: st.ConsentScopes(), EssentialACR: req.claims.EssentialACR()},
		Client: interaction.ClientFacts{FirstParty: req.client.FirstParty},
	}
	if caller.User.ID == "" {
		return f, nil
	}
	f.Request.OtherSubject = !o.ofSubject(req, caller.User.ID)
	f.Session = interaction.SessionFacts{UserID: caller.User.ID, AMR: strings.Fields(caller.Session.AMR), AuthTime: caller.Session.AuthTime}
	f.Account = interaction.AccountFacts{HasTOTP: accounts.HasTOTP(caller.User), Admin: caller.User.IsActiveAdmin()}
	f.Client.Granted, err = o.ix.GrantedScopes(r.Context(), st, caller.User.ID)
	return f, err
}

// ofSubject reports whether userID may answer the request: the claims
// parameter names no sub, or names this user's as the client sees it
// (OpenID Connect Core §3.1.2.2: never a token for another user, even one
// with a session).
func (o *OAuth) ofSubject(req authorizeRequest, userID string) bool {
	sub, ok := req.claims.Subject()
	return !ok || o.p.SubjectFor(req.client, userID) == sub
}

// answerError is the OAuth error of a decision that issues nothing. A new
// value each time: fosite's errors write to themselves as they are
// rendered (WithLocalizer, Sanitize), so one shared value races between
// two requests.
func answerError(a interaction.Answer) *fosite.RFC6749Error {
	switch a {
	case interaction.AnswerLoginRequired:
		return fosite.ErrLoginRequired.WithHint("The user is not signed in.")
	case interaction.AnswerInteractionRequired:
		return fosite.ErrInteractionRequired.WithHint("The user must prove a second factor.")
	case interaction.AnswerConsentRequired:
		return fosite.ErrConsentRequired.WithHint("The user has not granted these scopes to this client.")
	case interaction.AnswerDenied:
		return fosite.ErrAccessDenied.WithHint("The user denied the request.")
	case interaction.AnswerUnmet:
		// The app asked for two factors (acr_values) and the account has
		// none (OpenID Connect Unmet Authentication Requirements 1.0).
		return &fosite.RFC6749Error{
			ErrorField: "unmet_authentication_requirements", CodeField: http.StatusBadRequest,
			DescriptionField: "The authorization server could not authenticate the user as the request's acr_values or essential acr claim ask.",
			HintField:        "The account has no second factor, or the acr asked is not one this server states.",
		}
	}
	return fosite.ErrServerError.WithDebug("no error for the sign-in decision " + string(a))
}
