package web

import (
	"html/template"
	"strings"

	"github.com/tonearm-idp/tonearm/storage"
)

// ClientView is what a page shows of a client: its display name (or ID),
// its logo and its links. The registry accepted only https and data:image/
// logos; they are checked again here, since a page must never carry
// anything else (html/template would blank a data: URI it is not told is
// safe).
type ClientView struct {
	ID, Name                     string
	Logo                         template.URL
	ClientURI, PolicyURI, TosURI string
	// Registration says how an app registered by a developer was
	// registered ("": by this site's admins): the consent page says the
	// site has not reviewed it, louder when anyone could register it.
	Registration string
	// Pairwise: the client sees a sub of its own for each person (OpenID
	// Connect Core §8), not the account ID; the consent page says so.
	Pairwise bool
}

// Unreviewed: the app was registered by a developer, not reviewed by
// this site.
func (c ClientView) Unreviewed() bool { return c.Registration != "" }

// OpenlyRegistered: anyone could register this app (no token, no
// account).
func (c ClientView) OpenlyRegistered() bool { return c.Registration == "open" }

// DisplayName is the name, or the ID when none was registered.
func (c ClientView) DisplayName() string {
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}

// SafeLogo passes a logo URL to a page only if it is https: or data:image/.
func SafeLogo(u string) template.URL {
	if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "data:image/") && !strings.ContainsAny(u, "\"'<> ") {
		return template.URL(u)
	}
	return ""
}

// ViewOf is the view of a stored client.
func ViewOf(c storage.Client) ClientView {
	return ClientView{ID: c.ID, Name: c.Name, Logo: SafeLogo(c.LogoURI), ClientURI: c.ClientURI, PolicyURI: c.PolicyURI, TosURI: c.TosURI, Registration: c.Registration,
		Pairwise: c.SubjectType == storage.SubjectPairwise}
}
