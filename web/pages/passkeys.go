package pages

import (
	"context"
	"encoding/base64"
	"net/http"

	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
)

// Passkeys runs the passkey ceremonies (provider/passkeys).
type Passkeys interface {
	web.PasskeyLogin
	BeginRegistration(ctx context.Context, u storage.User) ([]byte, error)
	FinishRegistration(ctx context.Context, u storage.User, name string, response []byte) (storage.Passkey, error)
}

// passkeyID reads the posted passkey's credential ID.
func passkeyID(r *http.Request) ([]byte, bool) {
	id, err := base64.RawURLEncoding.DecodeString(r.PostFormValue("passkey"))
	return id, err == nil && len(id) > 0 && len(id) <= 1023
}

func (p *Pages) passkeyActions() map[string]http.HandlerFunc {
	if p.c.Passkeys == nil {
		return nil
	}
	return map[string]http.HandlerFunc{
		"passkeys/options": p.signedIn(p.passkeyOptions),
		"passkeys/add":     p.signedIn(p.addPasskey),
		"passkeys/rename":  p.signedIn(p.renamePasskey),
		"passkeys/remove":  p.signedIn(p.removePasskey),
		"passkeys/only":    p.signedIn(p.passkeyOnly),
		"password/set":     p.signedIn(p.setPassword),
	}
}

// passkeyOptions answers the account page's script with the options of
// a new passkey for the signed-in person.
func (p *Pages) passkeyOptions(w http.ResponseWriter, r *http.Request, c web.Caller) {
	if err := p.c.Limiter.PasskeyCeremony(r.Context(), r); err != nil {
		web.WriteAPIError(w, r, p.log, err)
		return
	}
	opts, err := p.c.Passkeys.BeginRegistration(r.Context(), c.User)
	if err != nil {
		web.WriteAPIError(w, r, p.log, err)
		return
	}
	web.WriteRawJSON(w, opts)
}

func (p *Pages) passkeyError(w http.ResponseWriter, r *http.Request, c web.Caller, field string, err error) {
	status, msg := p.message(w, r, err)
	p.renderAccount(w, r, c, status, profileOf(c.User), fieldErrors{field: msg})
}

func (p *Pages) addPasskey(w http.ResponseWriter, r *http.Request, c web.Caller) {
	name, err := accounts.PasskeyName(r.PostFormValue("passkey_name"))
	if err != nil {
		p.passkeyError(w, r, c, "passkey_name", err)
		return
	}
	answer := r.PostFormValue("passkey_attestation")
	if answer == "" {
		p.renderAccount(w, r, c, http.StatusBadRequest, profileOf(c.User), fieldErrors{"passkeys": locale.M("Use the “Add a passkey” button: your browser creates the passkey.")})
		return
	}
	if _, err := p.c.Passkeys.FinishRegistration(r.Context(), c.User, name, []byte(answer)); err != nil {
		p.passkeyError(w, r, c, "passkeys", err)
		return
	}
	p.done(w, r, AccountPath, "passkey-added")
}

func (p *Pages) renamePasskey(w http.ResponseWriter, r *http.Request, c web.Caller) {
	p.changePasskey(w, r, c, "passkey-renamed", func(id []byte) error {
		return p.c.Accounts.RenamePasskey(r.Context(), c.User.ID, id, r.PostFormValue("passkey_name"))
	})
}

func (p *Pages) removePasskey(w http.ResponseWriter, r *http.Request, c web.Caller) {
	p.changePasskey(w, r, c, "passkey-removed", func(id []byte) error {
		return p.c.Accounts.RemovePasskey(r.Context(), c.User.ID, id)
	})
}

// changePasskey applies change to the posted passkey of the caller.
func (p *Pages) changePasskey(w http.ResponseWriter, r *http.Request, c web.Caller, done string, change func(id []byte) error) {
	id, ok := passkeyID(r)
	if !ok {
		p.passkeyError(w, r, c, "passkeys", accounts.ErrNoPasskey)
		return
	}
	if err := change(id); err != nil {
		p.passkeyError(w, r, c, "passkeys", err)
		return
	}
	p.done(w, r, AccountPath, done)
}

// passkeyOnly turns the password off: only from a session opened with a
// passkey, after a ticked confirmation.
func (p *Pages) passkeyOnly(w http.ResponseWriter, r *http.Request, c web.Caller) {
	if r.PostFormValue("confirm") != "yes" {
		p.renderAccount(w, r, c, http.StatusBadRequest, profileOf(c.User), fieldErrors{"passkeys": locale.M("Tick the box to turn off your password.")})
		return
	}
	if err := p.c.Accounts.SetPasskeyOnly(r.Context(), c.User.ID, c.Session); err != nil {
		p.passkeyError(w, r, c, "passkeys", err)
		return
	}
	p.done(w, r, AccountPath, "passkey-only")
}

// setPassword gives a passkey-only account a password again.
func (p *Pages) setPassword(w http.ResponseWriter, r *http.Request, c web.Caller) {
	err := p.c.Accounts.SetPassword(r.Context(), c.User.ID, r.PostFormValue("new_password"), accounts.Reauth{AuthTime: c.Session.AuthTime})
	if err != nil {
		p.passkeyError(w, r, c, "new_password", err)
		return
	}
	p.done(w, r, AccountPath, "password-set")
}
