package interaction

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tonearm-idp/tonearm/fault"
	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
)

// maxContinueBytes bounds the page a stand-alone sign-in continues to
// (stored with the interaction): a path of this site with its query, the
// size of the authorization endpoint's bound.
const maxContinueBytes = 8 << 10

// loginData is the identify step's sign-in page for an interaction (id
// "" for the stand-alone page before anything is stored).
func (ix *Interactions) loginData(w http.ResponseWriter, r *http.Request, id string, st State) web.LoginPage {
	data := web.LoginPage{
		CSRFToken: ix.csrf.Token(w, r), ForgotURL: ix.base + web.ForgotPath, PasskeyURL: ix.signIn.PasskeyURL(),
		Client: st.Client, Connectors: ix.ConnectorButtons(r.Context()), Username: loginHint(st.LoginHint),
	}
	if id == "" {
		data.Action = ix.base + LoginPath
		data.Hidden = []web.HiddenField{{Name: web.ContinueParam, Value: st.Continue}}
	} else {
		data.Action = ix.url(id)
	}
	if ix.c.Signups.Open() {
		q := url.Values{}
		if id != "" {
			q.Set(Param, id)
		} else if st.Continue != "" {
			q.Set(web.ContinueParam, st.Continue)
		}
		data.SignupURL = ix.base + web.SignupPath
		if len(q) > 0 {
			data.SignupURL += "?" + q.Encode()
		}
	}
	if p := st.Pending; p != nil {
		switch p.Reason {
		case PendingEmail:
			data.Notice = locale.MF("An account here already uses the email address of your {{.Connector}} account. Sign in to that account to link {{.Connector}} to it; it is never linked without you signing in.", "Connector", p.ConnectorName)
		case PendingClosed:
			data.Notice = locale.MF("No account here is linked to your {{.Connector}} account, and only administrators create accounts. Sign in to your account to link {{.Connector}} to it.", "Connector", p.ConnectorName)
		}
	}
	return data
}

// maxLoginHint bounds a login_hint worth showing: the longest email
// address (RFC 5321 §4.5.3.1: a path of 256 octets, 254 of address).
const maxLoginHint = 254

// loginHint is the username field's prefill from an app's login_hint
// (OpenID Connect Core §3.1.2.1: the End-User's login identifier, "a hint
// to the Authorization Server"): it is only a starting value the person
// may change, so anything that could be a username or an email address is
// shown (html/template escapes it); an overlong one, or one with control
// characters, is ignored rather than cut.
func loginHint(hint string) string {
	hint = strings.TrimSpace(hint)
	if len(hint) > maxLoginHint || !utf8.ValidString(hint) || strings.IndexFunc(hint, unicode.IsControl) >= 0 {
		return ""
	}
	return hint
}

// identifyPage shows the sign-in page, the username choice of an upstream
// identity, or the account a connector just created.
func (ix *Interactions) identifyPage(w http.ResponseWriter, r *http.Request, id string, st State, status int) {
	switch {
	case st.Created != "":
		ix.site.Render(w, r, status, "welcome.html", welcomePage{
			Action: ix.url(id), CSRFToken: ix.csrf.Token(w, r), Username: st.Created, Connector: createdThrough(st), Client: st.Client,
		})
	case st.Pending != nil && st.Pending.Reason == PendingUsername:
		ix.site.Render(w, r, status, "choose_username.html", usernamePage{
			Action: ix.url(id), CSRFToken: ix.csrf.Token(w, r), Connector: st.Pending.ConnectorName, Username: st.Pending.Username,
		})
	default:
		ix.site.Render(w, r, status, "login.html", ix.loginData(w, r, id, st))
	}
}

// identifyAnswer handles the identify step's forms: a connector button, a
// chosen username, the welcome's continue, or a password or passkey.
func (ix *Interactions) identifyAnswer(w http.ResponseWriter, r *http.Request, id string, st State) {
	switch {
	case r.PostFormValue("connector") != "":
		ix.startUpstream(w, r, id, st, r.PostFormValue("connector"))
	case r.PostFormValue("tonearm_action") == "welcome" && st.Created != "":
		ix.advance(w, r, id, func(s *State) error {
			s.Created = ""
			return nil
		})
	case r.PostFormValue("tonearm_action") == "username" && st.Pending != nil && st.Pending.Reason == PendingUsername:
		ix.chooseUsername(w, r, id, st)
	case r.PostFormValue("tonearm_action") == "login" && st.Created == "":
		ix.passwordOrPasskey(w, r, id, st)
	default:
		ix.dispatch(w, r, id, st, http.StatusOK)
	}
}

// passwordOrPasskey signs in with the form. An upstream identity waiting
// for its account is linked to the account the person proves (once the
// session opens: after the second factor, if the account has one).
func (ix *Interactions) passwordOrPasskey(w http.ResponseWriter, r *http.Request, id string, st State) {
	user, amr, no := ix.signIn.Check(w, r)
	if no != nil {
		data := ix.loginData(w, r, id, st)
		data.Username, data.Error = r.PostFormValue("username"), no.Words(ix.site.Lang(r))
		ix.site.Render(w, r, no.Status, "login.html", data)
		return
	}
	ix.proved(w, r, id, st, user, amr, nil)
}

// linkFailed shows why an upstream identity could not be linked.
func (ix *Interactions) linkFailed(w http.ResponseWriter, r *http.Request, connectorID, name string, err error) {
	switch {
	case errors.Is(err, accounts.ErrLinkedElsewhere):
		ix.fail(w, r, http.StatusConflict, locale.M("Already linked"), locale.MF("This {{.Connector}} account is linked to another account here. Sign in with it, or unlink it there first.", "Connector", name))
	case errors.Is(err, accounts.ErrAlreadyLinked):
		ix.fail(w, r, http.StatusConflict, locale.M("Already linked"), locale.MF("Your account is already linked to another {{.Connector}} account. Unlink it on your account page first.", "Connector", name))
	default:
		ix.internal(w, r, err)
	}
}

// loginPage is the stand-alone sign-in page (GET /login?continue=…): it
// stores nothing until the person answers.
func (ix *Interactions) loginPage(w http.ResponseWriter, r *http.Request) {
	cont := ix.localContinue(r.URL.Query().Get(web.ContinueParam))
	if cont == "" {
		cont = ix.base + "/account"
	}
	ix.site.Render(w, r, http.StatusOK, "login.html", ix.loginData(w, r, "", State{Continue: cont}))
}

// login answers the stand-alone sign-in page (and the sign-up page's
// connector buttons): it starts an interaction that continues to the page
// and runs its identify step.
func (ix *Interactions) login(w http.ResponseWriter, r *http.Request) {
	raw := r.PostFormValue(web.ContinueParam)
	if len(raw) > maxContinueBytes {
		ix.fail(w, r, http.StatusBadRequest, locale.M("This sign-in link is too long"), locale.M("The page to continue to is too long to remember. Go back and follow a link of this site again."))
		return
	}
	cont := ix.localContinue(raw)
	if cont == "" {
		cont = ix.base + "/account"
	}
	st := State{Kind: KindContinue, Continue: cont}
	// Counted before it is stored, per address, like the authorization
	// endpoint's sign-ins (one budget): each answer leaves an interaction
	// for 10 minutes, whether the password was right or not.
	if err := ix.c.Limiter.StoredSignIn(r.Context(), r); err != nil {
		if !fault.Is(err, fault.Throttled) {
			ix.internal(w, r, err)
			return
		}
		status, msg, _ := web.ErrorAnswer(w, err)
		ix.identifyError(w, r, "", st, status, web.Said(ix.site.Lang(r), msg))
		return
	}
	id, err := ix.create(w, r, st)
	if err != nil {
		ix.internal(w, r, err)
		return
	}
	ix.identifyAnswer(w, r, id, st)
}

type welcomePage struct {
	Action, CSRFToken, Username, Connector string
	Client                                 *web.ClientView
}

type usernamePage struct {
	Action, CSRFToken, Connector, Username string
	Error                                  any // a locale.Message
}

func createdThrough(st State) string { return st.CreatedVia }

// signedIn goes on with a person an upstream vouched for (amr "fed"):
// the second factor next if their account has one.
func (ix *Interactions) signedIn(w http.ResponseWriter, r *http.Request, id string, st State, user storage.User, created string, connectorName string) {
	ix.proved(w, r, id, st, user, accounts.AMRFederated, func(s *State) {
		s.Created, s.CreatedVia, s.Pending = created, connectorName, nil
	})
}
