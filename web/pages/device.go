package pages

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/device"
	"github.com/tonearm-idp/tonearm/web"
)

// devicePage is the data of device.html: enter the code, confirm, done.
type devicePage struct {
	Action, CSRFToken, UserCode string
	// Error and Done are marked messages (locale.M) or locale.Messages.
	Error, Done any
	Confirm     bool
	Client      web.ClientView
	Scopes      []provider.ScopeLine
	Username    string
}

// device is where a person types the user code a device shows (RFC 8628
// §3.3), signed in, and allows or denies the device.
func (p *Pages) device(w http.ResponseWriter, r *http.Request) {
	codes := p.c.Devices
	if codes == nil {
		p.fail(w, r, http.StatusNotFound, locale.M("Not available"), locale.M("Signing in devices is not enabled here."))
		return
	}
	c, ok := p.caller(w, r)
	if !ok {
		return
	}
	data := devicePage{Action: p.base + provider.DevicePath, Username: c.User.Username}
	if r.Method == http.MethodGet {
		data.UserCode = strings.ToUpper(strings.TrimSpace(r.URL.Query().Get("user_code")))
		data.CSRFToken = p.csrf.Token(w, r)
		p.site.Render(w, r, http.StatusOK, "device.html", data)
		return
	}
	if !p.csrf.Valid(r) {
		p.formExpired(w, r)
		return
	}
	data.UserCode = strings.ToUpper(strings.TrimSpace(r.PostFormValue("user_code")))
	data.CSRFToken = p.csrf.Token(w, r)
	ctx := r.Context()
	// Every path that looks a code up counts (confirming, allowing,
	// denying): a guess that allows or denies is a guess too.
	if err := p.c.Limiter.DeviceLookup(ctx, r, c.User.ID); err != nil {
		status, msg := p.said(w, r, err)
		data.Error = msg
		p.site.Render(w, r, status, "device.html", data)
		return
	}
	d, err := codes.Lookup(ctx, data.UserCode)
	if errors.Is(err, device.ErrNotFound) {
		data.Error = locale.M("This code is wrong, already used or expired. Check the code your device shows.")
		p.site.Render(w, r, http.StatusBadRequest, "device.html", data)
		return
	}
	if err != nil {
		p.internal(w, r, err)
		return
	}
	client, err := p.c.Clients.Get(ctx, d.ClientID)
	if err != nil {
		p.internal(w, r, err)
		return
	}
	switch r.PostFormValue("decision") {
	case "":
		data.Confirm, data.Client, data.Scopes = true, web.ViewOf(client), provider.ScopeLines(p.c.Scopes.DescribeScopes(ctx, d.Scopes))
		p.site.Render(w, r, http.StatusOK, "device.html", data)
		return
	case "allow":
		var granted []string
		for _, s := range d.Scopes {
			// Refresh tokens only for clients allowed the refresh grant.
			if s == "offline_access" && !slices.Contains(client.GrantTypes, "refresh_token") {
				continue
			}
			granted = append(granted, s)
		}
		// The approving session's sign-in (when, and with which factors)
		// goes into the device's tokens, as the code flow's.
		err = codes.Decide(ctx, data.UserCode, c.User.ID, granted, c.AuthTime, strings.Fields(c.Session.AMR))
		if err == nil {
			// The device is a connected app: listed on /account, and
			// revoked there, by "sign out everywhere" and by a password
			// change.
			err = p.c.Accounts.GrantApp(ctx, c.User.ID, d.ClientID, granted)
		}
		data.Done = locale.MF("Done: {{.App}} is signed in as you. You can go back to your device.", "App", web.ViewOf(client).DisplayName())
	default:
		err = codes.Decide(ctx, data.UserCode, "", nil, c.AuthTime, nil)
		data.Done = locale.M("Denied: the device gets no access.")
	}
	if errors.Is(err, device.ErrNotFound) {
		data.Done, data.Error = nil, locale.M("This code was used or expired meanwhile. Start again on your device.")
		p.site.Render(w, r, http.StatusConflict, "device.html", data)
		return
	}
	if err != nil {
		p.internal(w, r, err)
		return
	}
	p.log.Info("device authorization decided", "request_id", web.RequestID(ctx), "user", c.User.ID, "client", d.ClientID, "decision", r.PostFormValue("decision"))
	data.UserCode = ""
	p.site.Render(w, r, http.StatusOK, "device.html", data)
}

// deviceContinue is where sign-in sends the person back: the device page
// with the code it was given.
func deviceContinue(r *http.Request) string {
	q := url.Values{}
	if code := r.URL.Query().Get("user_code"); code != "" {
		q.Set("user_code", code)
	}
	if len(q) == 0 {
		return r.URL.Path
	}
	return r.URL.Path + "?" + q.Encode()
}
