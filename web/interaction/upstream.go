package interaction

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/connectors"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
)

// startUpstream sends the person to a connector's provider. The round's
// state names the interaction and carries a fresh random value, its nonce
// and PKCE verifier stay in the (sealed) interaction: the callback accepts
// one answer, from this browser, for this round.
func (ix *Interactions) startUpstream(w http.ResponseWriter, r *http.Request, id string, st State, connectorID string) {
	ctx := r.Context()
	c, err := ix.c.Connectors.Get(ctx, connectorID)
	if errors.Is(err, storage.ErrNotFound) {
		ix.identifyError(w, r, id, st, http.StatusBadRequest, locale.M("That sign-in method does not exist (any more). Choose another."))
		return
	}
	if err != nil {
		ix.internal(w, r, err)
		return
	}
	round := Round{Connector: c.ID, Round: connectors.Round{State: id + "." + randomToken(), Nonce: randomToken(), Verifier: oauth2.GenerateVerifier()}}
	target, err := ix.c.Connectors.Start(ctx, c, round.Round)
	if err != nil {
		ix.upstreamFailed(r, c, st.UserID, err)
		ix.identifyError(w, r, id, st, http.StatusBadGateway, locale.MF("{{.Connector}} could not be reached. Try again in a moment, or sign in another way.", "Connector", c.Name))
		return
	}
	if _, err := ix.update(r, id, func(s *State) error {
		s.Upstream = &round
		return nil
	}); err != nil {
		if errors.Is(err, ErrGone) {
			ix.expired(w, r)
			return
		}
		ix.internal(w, r, err)
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// identifyError shows the sign-in page again with a message (or, for a
// link from the account page, an error page).
// msg is a marked message (locale.M) or a locale.Message.
func (ix *Interactions) identifyError(w http.ResponseWriter, r *http.Request, id string, st State, status int, msg any) {
	if st.Kind == KindLink {
		ix.fail(w, r, status, locale.M("Not linked"), msg)
		return
	}
	data := ix.loginData(w, r, id, st)
	data.Error = msg
	ix.site.Render(w, r, status, "login.html", data)
}

func (ix *Interactions) upstreamFailed(r *http.Request, c storage.Connector, user string, err error) {
	result := "failed"
	switch {
	case errors.Is(err, connectors.ErrDenied):
		result = "denied"
	case errors.Is(err, connectors.ErrRejected):
		result = "rejected"
	}
	ix.c.Metrics.ConnectorResult(c.ID, result)
	ix.log.Warn("sign-in through a connector failed", "request_id", web.RequestID(r.Context()), "connector", c.ID, "result", result, "err", err)
	ix.record(r, audit.UpstreamFailed, user, map[string]any{"connector": c.ID, "result": result})
}

// callback is GET /connectors/{id}/callback: the upstream's answer.
func (ix *Interactions) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	state := q.Get("state")
	id, _, ok := strings.Cut(state, ".")
	if !ok || len(state) > 200 {
		ix.fail(w, r, http.StatusBadRequest, locale.M("This sign-in answer is not valid"), locale.M("The answer from the other provider does not belong to a sign-in started here. Go back to the application and sign in again."))
		return
	}
	// Take the round out of the interaction before using it: an answer
	// is accepted once.
	var round Round
	st, err := ix.update(r, id, func(s *State) error {
		if s.Upstream == nil || s.Upstream.Connector != r.PathValue("id") ||
			subtle.ConstantTimeCompare([]byte(s.Upstream.State), []byte(state)) != 1 {
			return errReplayed
		}
		round, s.Upstream = *s.Upstream, nil
		return nil
	})
	switch {
	case errors.Is(err, ErrGone):
		ix.expired(w, r)
		return
	case errors.Is(err, errReplayed):
		ix.fail(w, r, http.StatusBadRequest, locale.M("This sign-in answer was already used"),
			locale.M("The answer from the other provider was used already or is not for this sign-in. Go back to the application and sign in again."))
		return
	case err != nil:
		ix.internal(w, r, err)
		return
	}
	r = WithLanguageOf(r, st)
	c, err := ix.c.Connectors.Get(ctx, round.Connector)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			ix.identifyError(w, r, id, st, http.StatusBadRequest, locale.M("That sign-in method does not exist any more. Choose another."))
			return
		}
		ix.internal(w, r, err)
		return
	}
	ident, err := ix.c.Connectors.Finish(ctx, c, round.Round, q)
	if err != nil {
		ix.upstreamFailed(r, c, st.UserID, err)
		msg := locale.MF("{{.Connector}} could not be used to sign you in. Try again in a moment, or sign in another way.", "Connector", c.Name)
		status := http.StatusBadGateway
		switch {
		case errors.Is(err, connectors.ErrDenied):
			msg, status = locale.MF("The sign-in was cancelled at {{.Connector}}. Sign in another way, or try again.", "Connector", c.Name), http.StatusUnauthorized
		case errors.Is(err, connectors.ErrRejected):
			msg, status = locale.MF("The answer from {{.Connector}} could not be trusted, so it was refused. Try again, or sign in another way.", "Connector", c.Name), http.StatusUnauthorized
		}
		ix.identifyError(w, r, id, st, status, msg)
		return
	}
	up := accounts.Upstream{ConnectorID: c.ID, Kind: c.Kind, Issuer: ident.Issuer, Subject: ident.Subject, Username: ident.Username,
		Email: ident.Email, Name: ident.Name, EmailVerified: ident.EmailVerified}
	if st.Kind == KindLink {
		ix.linkFromAccount(w, r, id, st, c, up)
		return
	}
	user, err := ix.c.Accounts.SignInLinked(ctx, up)
	switch {
	case err == nil:
		ix.c.Metrics.ConnectorResult(c.ID, "signed_in")
		ix.signedIn(w, r, id, st, user, "", "")
	case errors.Is(err, accounts.ErrDisabled):
		ix.c.Metrics.ConnectorResult(c.ID, "disabled")
		ix.identifyError(w, r, id, st, http.StatusForbidden, locale.M("This account is disabled. Ask the site's administrators if you think this is a mistake."))
	case errors.Is(err, accounts.ErrNotLinked):
		ix.newIdentity(w, r, id, st, c, up)
	default:
		ix.internal(w, r, err)
	}
}

var errReplayed = errors.New("interaction: the upstream answer is not this round's")

// newIdentity handles an upstream identity no account is linked to
// (accounts.Signups.CreateLinked decides): an account holding its email
// must be signed in to first (never linked automatically); otherwise a new
// account is created when registration is open, asking for another
// username when the upstream's is taken or not valid here.
func (ix *Interactions) newIdentity(w http.ResponseWriter, r *http.Request, id string, st State, c storage.Connector, up accounts.Upstream) {
	pending := &Pending{Upstream: up, ConnectorName: c.Name}
	user, err := ix.c.Signups.CreateLinked(r.Context(), up, ix.c.Limiter.Attempts(r))
	switch {
	case err == nil:
		ix.c.Metrics.ConnectorResult(c.ID, "created")
		ix.signedIn(w, r, id, st, user, user.Username, c.Name)
		return
	case errors.Is(err, accounts.ErrEmailHeld):
		pending.Reason = PendingEmail
	case errors.Is(err, accounts.ErrRegistrationClosed):
		pending.Reason = PendingClosed
	case fault.Is(err, fault.Throttled):
		status, msg, _ := web.ErrorAnswer(w, err)
		ix.identifyError(w, r, id, st, status, web.Said(ix.site.Lang(r), msg))
		return
	case errors.Is(err, accounts.ErrUsernameTaken) || fault.Is(err, fault.Invalid):
		pending.Reason = PendingUsername
	case errors.Is(err, accounts.ErrLinkedElsewhere):
		ix.linkFailed(w, r, c.ID, c.Name, err)
		return
	default:
		ix.internal(w, r, err)
		return
	}
	ix.c.Metrics.ConnectorResult(c.ID, "pending")
	_, err = ix.update(r, id, func(s *State) error {
		s.Pending = pending
		return nil
	})
	if err != nil {
		ix.internal(w, r, err)
		return
	}
	http.Redirect(w, r, ix.url(id), http.StatusSeeOther)
}

// chooseUsername creates the account of an upstream identity whose
// username was taken, with the one the person chose.
func (ix *Interactions) chooseUsername(w http.ResponseWriter, r *http.Request, id string, st State) {
	p := st.Pending
	username := strings.TrimSpace(r.PostFormValue("username"))
	user, err := ix.c.Accounts.CreateLinked(r.Context(), username, p.Upstream)
	if err != nil {
		status, msg, ok := web.ErrorAnswer(w, err)
		if !ok {
			ix.internal(w, r, err)
			return
		}
		ix.site.Render(w, r, status, "choose_username.html", usernamePage{
			Action: ix.url(id), CSRFToken: ix.csrf.Token(w, r), Connector: p.ConnectorName, Username: username, Error: web.Said(ix.site.Lang(r), msg),
		})
		return
	}
	ix.c.Metrics.ConnectorResult(p.ConnectorID, "created")
	ix.signedIn(w, r, id, st, user, user.Username, p.ConnectorName)
}

// StartLink links another sign-in method to the signed-in account
// (from the account page): an interaction that goes to the upstream and
// back to the account page.
func (ix *Interactions) StartLink(w http.ResponseWriter, r *http.Request, user storage.User, connectorID string) {
	st := State{Kind: KindLink, Continue: ix.base + "/account", UserID: user.ID, Username: user.Username}
	id, err := ix.create(w, r, st)
	if err != nil {
		ix.internal(w, r, err)
		return
	}
	ix.startUpstream(w, r, id, st, connectorID)
}

func (ix *Interactions) linkFromAccount(w http.ResponseWriter, r *http.Request, id string, st State, c storage.Connector, up accounts.Upstream) {
	if err := ix.c.Accounts.Link(r.Context(), st.UserID, up); err != nil {
		ix.linkFailed(w, r, c.ID, c.Name, err)
		return
	}
	ix.c.Metrics.ConnectorResult(c.ID, "linked")
	_ = ix.Delete(r.Context(), id)
	http.Redirect(w, r, ix.base+"/account?done=connector-linked#sign-in-methods", http.StatusSeeOther)
}
