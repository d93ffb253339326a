package web

import (
	"html/template"
	"log/slog"
	"net/http"

	"github.com/tonearm-idp/tonearm/templates"
)

// pages renders the HTML pages, parsed once at start-up.
type pages struct {
	t   *template.Template
	log *slog.Logger
	// csp is the Content-Security-Policy of every page. form-action is left
	// out where a form's answer redirects to a relying party (browsers
	// apply it to the redirect).
	csp string
}

const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"

func newPages(log *slog.Logger, csp string) (*pages, error) {
	t, err := templates.Parse()
	if err != nil {
		return nil, err
	}
	return &pages{t: t, log: log, csp: csp}, nil
}

// render writes a page. Pages are never cached and never framed.
func (p *pages) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", p.csp)
	w.WriteHeader(status)
	if err := p.t.ExecuteTemplate(w, name, data); err != nil {
		p.log.Error("rendering page", "request_id", RequestID(r.Context()), "page", name, "err", err)
	}
}

// admit lets GET and POST through to a page endpoint with a bounded body;
// anything else gets an error page.
func (p *pages) admit(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		p.render(w, r, http.StatusMethodNotAllowed, "error.html", errorPage{Title: "Method not allowed", Message: "Use GET or POST."})
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	return true
}
