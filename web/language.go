package web

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/locale"
)

// LangCookie remembers the language a person picked on a page: its tag
// and when it was picked ("de.1765100000").
const LangCookie = "tonearm_lang"

// LangCookieAge is how long the pick is remembered.
const LangCookieAge = 365 * 24 * time.Hour

type langKey struct{}

// langPrefs are the preferences a handler knows beyond the request's
// headers: what the app asked for (ui_locales) and since when, and the
// signed-in person's saved language.
type langPrefs struct {
	uiLocales []string
	since     time.Time
	account   string
}

func prefsOf(ctx context.Context) langPrefs {
	p, _ := ctx.Value(langKey{}).(langPrefs)
	return p
}

// WithUILocales is r carrying an authorization request's ui_locales (space
// separated, OpenID Connect Core §3.1.2.1) from an interaction begun at
// since: they choose the pages' language, unless the person picked one on
// a page after since.
func WithUILocales(r *http.Request, uiLocales string, since time.Time) *http.Request {
	if strings.TrimSpace(uiLocales) == "" {
		return r
	}
	p := prefsOf(r.Context())
	p.uiLocales, p.since = strings.Fields(uiLocales), since
	return r.WithContext(context.WithValue(r.Context(), langKey{}, p))
}

// WithAccountLanguage is r carrying the signed-in person's saved language
// ("" for none), which wins over the picker's cookie and Accept-Language.
func WithAccountLanguage(r *http.Request, tag string) *http.Request {
	if tag == "" {
		return r
	}
	p := prefsOf(r.Context())
	p.account = tag
	return r.WithContext(context.WithValue(r.Context(), langKey{}, p))
}

// Catalogs are the site's languages.
func (s *Site) Catalogs() *locale.Catalogs { return s.cats }

// PickGrace is how long before an interaction began a language picked on
// a page still wins over the app's ui_locales: an interaction's life. A
// pick on the first sign-in page, which the authorization endpoint
// answers itself, sends the browser back through the authorization
// request, which begins a new interaction after the pick.
const PickGrace = 10 * time.Minute

// Lang is the language of the page answering r: the app's ui_locales
// (unless the person picked a language during the sign-in), then the
// account's saved language, then the picker's cookie, then
// Accept-Language, then TONEARM_DEFAULT_LANGUAGE; each matched by BCP 47
// (de-CH is German, pt is Brazilian Portuguese).
func (s *Site) Lang(r *http.Request) *locale.Lang {
	if s.account != nil {
		if p := prefsOf(r.Context()); p.account == "" {
			if tag := s.account(r); tag != "" {
				r = WithAccountLanguage(r, tag)
			}
		}
	}
	return LangOf(s.cats, r)
}

// LangOf is Site.Lang for callers holding only the catalogs (mails).
func LangOf(cats *locale.Catalogs, r *http.Request) *locale.Lang {
	p := prefsOf(r.Context())
	picked, at := PickedLanguage(r)
	if len(p.uiLocales) > 0 {
		if picked != "" && !at.Before(p.since.Add(-PickGrace)) {
			if l, ok := cats.Match(picked); ok {
				return l
			}
		}
		if l, ok := cats.Match(p.uiLocales...); ok {
			return l
		}
	}
	if l, ok := cats.Match(p.account); ok {
		return l
	}
	if l, ok := cats.Match(picked); ok {
		return l
	}
	if l, ok := cats.Match(r.Header.Get("Accept-Language")); ok {
		return l
	}
	return cats.Default()
}

// PickedLanguage is the language the picker's cookie holds and when it was
// picked ("" when none). A time in the future (a forged cookie) counts as
// long ago.
func PickedLanguage(r *http.Request) (string, time.Time) {
	c, err := r.Cookie(LangCookie)
	if err != nil || len(c.Value) > 64 {
		return "", time.Time{}
	}
	tag, at, _ := strings.Cut(c.Value, ".")
	sec, _ := strconv.ParseInt(at, 10, 64)
	when := time.Unix(sec, 0)
	if when.After(time.Now().Add(time.Minute)) {
		when = time.Unix(0, 0)
	}
	return tag, when
}

// SetPickedLanguage remembers tag as picked now, in a cookie sent over
// https only when secure.
func SetPickedLanguage(w http.ResponseWriter, tag string, now time.Time, secure bool) {
	http.SetCookie(w, &http.Cookie{Name: LangCookie, Value: tag + "." + strconv.FormatInt(now.Unix(), 10), Path: "/",
		MaxAge: int(LangCookieAge / time.Second), HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode})
}
