package interaction

import (
	"net/http"

	"github.com/tonearm-idp/tonearm/web"
)

// The language of an interaction's pages (issue 35): the app's ui_locales
// (State.UILocales, since State.Since), then the saved language of the
// account the person proved to be (State.Language).

// InLanguage is r carrying the languages of this browser's interaction id
// (r as it is when there is none): the pages an interaction links to, such
// as sign-up, speak its language too.
func (ix *Interactions) InLanguage(r *http.Request, id string) *http.Request {
	st, err := ix.Load(r, id)
	if err != nil {
		return r
	}
	return WithLanguageOf(r, st)
}

// WithLanguageOf is r carrying the languages st chooses for its pages: the
// app's ui_locales, then the account's saved language (issue 35); a
// language the person picked on a page of this interaction beats both.
func WithLanguageOf(r *http.Request, st State) *http.Request {
	r = web.WithUILocales(r, st.UILocales, st.Since)
	if _, at := web.PickedLanguage(r); st.Since.IsZero() || !at.After(st.Since) {
		r = web.WithAccountLanguage(r, st.Language)
	}
	return r
}
