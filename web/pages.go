package web

import (
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/templates"
)

// Site renders tonearm's HTML pages under one brand (TONEARM_SITE_NAME,
// TONEARM_THEME_DIR), parsed once at start-up, and serves their
// stylesheet and logo.
type Site struct {
	sets map[string]*template.Template // by language tag
	cats *locale.Catalogs
	// account is SiteConfig.AccountLanguage.
	account func(r *http.Request) string
	log     *slog.Logger
	theme   templates.Theme
	name    string
}

// SiteConfig wires NewSite.
type SiteConfig struct {
	Name   string // default "tonearm"
	Issuer string // its path is the pages' prefix
	Theme  templates.Theme
	Logger *slog.Logger
	// Catalogs are the languages of the pages (nil: the shipped ones,
	// English by default).
	Catalogs *locale.Catalogs
	// AccountLanguage, when set, is the saved language of the account
	// signed in on r's browser ("" for none), for the pages whose handler
	// does not load the account.
	AccountLanguage func(r *http.Request) string
}

// NewSite parses the pages; it fails if any is missing or broken.
func NewSite(c SiteConfig) (*Site, error) {
	if c.Logger == nil {
		return nil, errors.New("web: NewSite needs a Logger")
	}
	if c.Theme.CSS == nil || c.Theme.Logo == nil {
		c.Theme = templates.DefaultTheme()
	}
	if c.Catalogs == nil {
		cats, err := locale.Load("", "")
		if err != nil {
			return nil, err
		}
		c.Catalogs = cats
	}
	sets, err := templates.Parse(templates.Options{SiteName: c.Name, Base: IssuerPath(c.Issuer), Theme: c.Theme}, c.Catalogs)
	if err != nil {
		return nil, err
	}
	name := c.Name
	if name == "" {
		name = "tonearm"
	}
	return &Site{sets: sets, cats: c.Catalogs, account: c.AccountLanguage, log: c.Logger, theme: c.Theme, name: name}, nil
}

// Name is the site's name (TONEARM_SITE_NAME).
func (s *Site) Name() string { return s.name }

// IssuerPath is the issuer URL's path without its trailing slash: the
// prefix of every link in a page ("" for an issuer at the root).
func IssuerPath(issuer string) string {
	i := strings.Index(issuer, "://")
	if i < 0 {
		return ""
	}
	rest := issuer[i+3:]
	j := strings.IndexByte(rest, '/')
	if j < 0 {
		return ""
	}
	return strings.TrimRight(rest[j:], "/")
}

// Routes serves the stylesheet and the logo. Their URLs carry a hash of
// the content, so they may be cached for long.
func (s *Site) Routes(mux *http.ServeMux) {
	serve := func(body []byte, typ string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Type", typ)
			h.Set("Content-Length", strconv.Itoa(len(body)))
			h.Set("Cache-Control", "public, max-age=86400")
			h.Set("X-Content-Type-Options", "nosniff")
			// An SVG opened on its own runs nothing and loads nothing.
			h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
			if r.Method != http.MethodHead {
				_, _ = w.Write(body)
			}
		}
	}
	mux.HandleFunc("GET "+templates.StaticPath+"style.css", serve(s.theme.CSS, "text/css; charset=utf-8"))
	mux.HandleFunc("GET "+templates.StaticPath+"logo.svg", serve(s.theme.Logo, "image/svg+xml"))
	mux.HandleFunc("GET "+templates.StaticPath+"passkey.js", serve(templates.PasskeyScript(), "text/javascript; charset=utf-8"))
	mux.HandleFunc("GET "+templates.StaticPath+"formpost.js", serve(templates.FormPostScript(), "text/javascript; charset=utf-8"))
}

// PageCSP is the Content-Security-Policy of the pages: no script (but
// the passkey script on the pages that offer passkeys, see ScriptCSP),
// the one stylesheet, images from the site, https or data: (client logos),
// forms only to tonearm, never framed.
const PageCSP = "default-src 'none'; style-src 'self'; img-src 'self' https: data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// ProtocolCSP is PageCSP without form-action, for the pages whose form's
// answer redirects to a relying party (browsers apply form-action to the
// redirect).
const ProtocolCSP = "default-src 'none'; style-src 'self'; img-src 'self' https: data:; frame-ancestors 'none'; base-uri 'none'"

// Render writes a page under PageCSP.
func (s *Site) Render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	s.render(w, r, status, name, data, PageCSP)
}

// ScriptCSP is what a page that runs the passkey script adds to its
// policy: scripts and fetches from tonearm only.
const ScriptCSP = "; script-src 'self'; connect-src 'self'"

// ScriptPage is page data that may load the passkey script.
type ScriptPage interface{ RunsScript() bool }

// render writes a page. Pages are never cached and never framed; only a
// page whose data says so may run the script.
func (s *Site) render(w http.ResponseWriter, r *http.Request, status int, name string, data any, csp string) {
	if sp, ok := data.(ScriptPage); ok && sp.RunsScript() {
		csp += ScriptCSP
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	l := s.Lang(r)
	h.Set("Content-Language", l.Tag)
	h.Add("Vary", "Accept-Language, Cookie")
	w.WriteHeader(status)
	if err := s.sets[l.Tag].ExecuteTemplate(w, name, data); err != nil {
		s.log.Error("rendering page", "request_id", RequestID(r.Context()), "page", name, "err", err)
	}
}

// ErrorPage is the data of error.html.
type ErrorPage struct {
	// Title is a marked message (locale.M); Message a marked message, a
	// locale.Message (locale.MF, Said) or an error, which the page
	// translates.
	Title   string
	Message any
	// Detail, when set, is a short technical line for the developers of
	// the application (an OAuth error code), shown below the message.
	Detail string
}

// Admit lets GET and POST through to a page endpoint with a bounded body;
// anything else gets an error page.
func (s *Site) Admit(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		ShowErrorPage(w, r, s, http.StatusMethodNotAllowed, locale.M("Method not allowed"), locale.M("Use GET or POST."))
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	return true
}

// Renderer renders the site's pages under one Content-Security-Policy.
type Renderer struct {
	site *Site
	csp  string
}

// WithCSP is a renderer of the site's pages under csp.
func (s *Site) WithCSP(csp string) *Renderer { return &Renderer{site: s, csp: csp} }

// Render writes a page.
func (p *Renderer) Render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	p.site.render(w, r, status, name, data, p.csp)
}

// Lang is Site.Lang.
func (p *Renderer) Lang(r *http.Request) *locale.Lang { return p.site.Lang(r) }

// Admit is Site.Admit.
func (p *Renderer) Admit(w http.ResponseWriter, r *http.Request) bool { return p.site.Admit(w, r) }
