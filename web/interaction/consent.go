package interaction

import (
	"net/http"
	"slices"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/web"
)

type consentPageData struct {
	Action, CSRFToken, Username string
	Client                      web.ClientView
	Scopes                      []provider.ScopeLine
	// Claims are the claims asked for by name (the claims parameter).
	Claims []provider.ClaimWords
	Hidden []web.HiddenField
}

// consentPage asks the person to allow a third-party app.
func (ix *Interactions) consentPage(w http.ResponseWriter, r *http.Request, id string, st State, status int) {
	var client web.ClientView
	if st.Client != nil {
		client = *st.Client
	}
	scopes := ix.c.Scopes.DescribeScopes(r.Context(), st.Scopes)
	if client.Pairwise {
		scopes = provider.PairwiseScopeWords(st.Scopes, scopes)
	}
	ix.site.Render(w, r, status, "consent.html", consentPageData{
		Action: ix.url(id), CSRFToken: ix.csrf.Token(w, r), Username: st.Username, Client: client,
		Scopes: provider.ScopeLines(scopes), Claims: provider.DescribeClaims(st.Claims),
	})
}

// ConsentScopes are what consent to the authorization covers: the scopes
// the token will carry and those that carry the claims asked by name (an
// earlier consent covers a claims request only when it covered them).
func (st State) ConsentScopes() []string {
	out := slices.Clone(st.Scopes)
	for _, s := range provider.ClaimScopes(st.Claims) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// consentAnswer records the decision: allowed (and remembered for the
// next time), or denied (the app hears access_denied).
func (ix *Interactions) consentAnswer(w http.ResponseWriter, r *http.Request, id string, st State) {
	if r.PostFormValue("tonearm_action") != "consent" {
		ix.dispatch(w, r, id, st, http.StatusOK)
		return
	}
	allow := r.PostFormValue("decision") == "allow"
	if allow && st.Client != nil {
		if err := ix.c.Accounts.GrantApp(r.Context(), st.UserID, st.Client.ID, st.ConsentScopes()); err != nil {
			ix.internal(w, r, err)
			return
		}
	}
	ix.advance(w, r, id, func(s *State) error {
		s.Consented, s.Denied = allow, !allow
		return nil
	})
}
