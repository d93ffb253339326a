package pages

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/web"
)

// LanguagePath is where every page's language picker posts (the
// "languages" form in templates/style.html).
const LanguagePath = "/language"

// maxLangField bounds the picked tag (BCP 47 tags in use are far shorter).
const maxLangField = 35

// pickLanguage is POST /language: the language picked on a page is
// remembered in the tonearm_lang cookie and, when the browser is signed in,
// saved on the account; the browser goes back to the page it came from.
// The form works without script and carries no CSRF token (it sits in every
// page's header, whatever the page's data), so a cross-site POST is refused
// by its Origin (or Sec-Fetch-Site) instead: another site must not change
// a person's saved language.
func (p *Pages) pickLanguage(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, web.MaxBodyBytes)
	if !p.sameOrigin(r) {
		p.fail(w, r, http.StatusForbidden, locale.M("Not allowed"), locale.M("Another site cannot change your language. Pick it on this site's pages."))
		return
	}
	if err := r.ParseForm(); err != nil {
		p.fail(w, r, http.StatusRequestEntityTooLarge, "Too much", "This form is too large.")
		return
	}
	tag := strings.TrimSpace(r.PostFormValue("lang"))
	l, ok := p.site.Catalogs().Match(tag)
	if !ok || len(tag) > maxLangField || strings.ContainsAny(tag, ",;") {
		p.fail(w, r, http.StatusBadRequest, locale.M("Unknown language"), locale.M("This site has no pages in that language. Pick one from the list."))
		return
	}
	c, err := web.SessionCaller(r.Context(), r, p.cookies, p.c.Accounts)
	switch {
	case errors.Is(err, web.ErrNoCaller):
	case err != nil:
		p.internal(w, r, err)
		return
	default:
		if c.User.Language != l.Tag {
			if _, err := p.c.Accounts.UpdateOwnProfile(r.Context(), c.User.ID, accounts.ProfileUpdate{Language: accounts.Value(l.Tag)}, accounts.Reauth{}); err != nil {
				p.internal(w, r, err)
				return
			}
		}
	}
	web.SetPickedLanguage(w, l.Tag, p.now(), strings.HasPrefix(p.c.Issuer, "https://"))
	http.Redirect(w, r, p.backTo(r), http.StatusSeeOther)
}

// sameOrigin: the POST comes from a page of this issuer's origin. A browser
// sends Origin with every POST; one that sends neither Origin nor
// Sec-Fetch-Site (a script, curl) is no cross-site page.
func (p *Pages) sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	iss, err := url.Parse(p.c.Issuer)
	return err == nil && origin == iss.Scheme+"://"+iss.Host
}

// backTo is the page to return to: the Referer when it is a page of this
// issuer (same scheme, host and path prefix; pages send Referrer-Policy:
// same-origin, so it is there), else the account page. Never another
// site: no open redirect.
func (p *Pages) backTo(r *http.Request) string {
	fallback := p.base + AccountPath
	ref, err := url.Parse(r.Referer())
	if err != nil || ref.Opaque != "" || ref.User != nil {
		return fallback
	}
	iss, err := url.Parse(p.c.Issuer)
	if err != nil || ref.Scheme != iss.Scheme || ref.Host != iss.Host {
		return fallback
	}
	if p.base != "" && ref.Path != p.base && !strings.HasPrefix(ref.Path, p.base+"/") {
		return fallback
	}
	// "//host/…" would leave the site (a scheme-relative URL).
	if ref.Path == p.base+LanguagePath || !strings.HasPrefix(ref.Path, "/") || strings.HasPrefix(ref.Path, "//") || strings.Contains(ref.Path, "\\") {
		return fallback
	}
	back := ref.EscapedPath()
	if ref.RawQuery != "" {
		back += "?" + ref.RawQuery
	}
	return back
}
