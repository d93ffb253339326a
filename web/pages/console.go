package pages

import (
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/web"
)

// The admin console: users, clients, APIs and signing keys, for a
// signed-in active admin. It is the admin API's actions as forms; the
// rules (last-admin guard, client and API validation) are the same
// because they live below both.

// consolePage is the data every console page shares.
type consolePage struct {
	CSRFToken, Base, Done, Error, Section string
	Me                                    storage.User
}

func (p *Pages) consoleBase(w http.ResponseWriter, r *http.Request, c web.Caller, section string) consolePage {
	return consolePage{
		CSRFToken: p.csrf.Token(w, r), Base: p.base, Me: c.User, Section: section,
		Done: say(p.lang(r), consoleDone[r.URL.Query().Get("done")]),
	}
}

var consoleDone = map[string]string{
	"connector-created": locale.M("The connector is created. Register its callback URL at the provider."),
	"client-disabled":   locale.M("The client is disabled: it is refused everywhere until enabled again."), "client-enabled": locale.M("The client is enabled."),
	"connector-changed": locale.M("The connector is saved."), "connector-deleted": locale.M("The connector is deleted, with every link through it."),
	"role": locale.M("The role is changed."), "disabled": locale.M("The account is disabled; its sessions and tokens are gone."),
	"enabled": locale.M("The account is enabled."), "verified": locale.M("The email address is marked verified."),
	"unverified": locale.M("The email address is marked unverified."), "password": locale.M("The password is set; the user's sessions and tokens are gone."),
	"deleted": locale.M("The account is deleted."), "passkeys-removed": locale.M("Every passkey is removed; the user's sessions and tokens are gone."),
	"second-factor-removed": locale.M("The authenticator app and recovery codes are removed; the user's sessions and tokens are gone."), "client-deleted": locale.M("The client is deleted, with its tokens."),
	"client-changed": locale.M("The client is changed."), "user-created": locale.M("The user is created."), "api-created": locale.M("The API is registered."), "api-changed": locale.M("The API is changed."), "api-deleted": locale.M("The API is deleted."), "rotated": locale.M("New signing keys are in use; the old ones stay published until their tokens expire."),
}

// admin lets only a signed-in active admin through.
func (p *Pages) admin(h func(w http.ResponseWriter, r *http.Request, c web.Caller)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, ok := p.caller(w, r)
		if !ok {
			return
		}
		if !c.User.IsActiveAdmin() {
			p.fail(w, r, http.StatusForbidden, locale.M("Admins only"), locale.M("The console is for this site's administrators."))
			return
		}
		if p.c.AdminMFA == config.AdminMFARequired && c.NeedsAdminSecondFactor() {
			p.stepUp(w, r, c)
			return
		}
		h(w, r, c)
	}
}

func (p *Pages) consoleHome(w http.ResponseWriter, r *http.Request, c web.Caller) {
	p.site.Render(w, r, http.StatusOK, "admin.html", p.consoleBase(w, r, c, "home"))
}

// usersPage is the data of admin_users.html.
type usersPage struct {
	consolePage
	Query, Role, Next string
	Users             []storage.User
	// NewUsername and NewEmail keep the new-user form's values after an
	// error.
	NewUsername, NewEmail string
}

const usersPerPage = 50

func (p *Pages) usersPage(w http.ResponseWriter, r *http.Request, c web.Caller) {
	p.renderUsers(w, r, c, http.StatusOK, usersPage{})
}

// createUser makes an account from the console, with createUser's rules
// (an admin may give any role).
func (p *Pages) createUser(w http.ResponseWriter, r *http.Request, c web.Caller) {
	n := accounts.NewUser{Username: strings.TrimSpace(r.PostFormValue("username")), Password: r.PostFormValue("password"), Role: r.PostFormValue("role")}
	email := strings.TrimSpace(r.PostFormValue("email"))
	if email != "" {
		n.Profile.Email = accounts.Value(email)
	}
	if !accounts.ValidRole(n.Role) {
		n.Role = storage.RoleUser
	}
	u, err := p.c.Accounts.Create(r.Context(), n)
	if err != nil {
		status, msg := p.message(w, r, err)
		data := usersPage{NewUsername: n.Username, NewEmail: email}
		data.Error = msg
		p.renderUsers(w, r, c, status, data)
		return
	}
	p.log.Info("user created by admin", "request_id", web.RequestID(r.Context()), "user", u.ID, "role", u.Role, "by", c.User.ID)
	p.done(w, r, AdminPath+"/users/"+url.PathEscape(u.ID), "user-created")
}

func (p *Pages) renderUsers(w http.ResponseWriter, r *http.Request, c web.Caller, status int, data usersPage) {
	q := r.URL.Query()
	msg := data.Error
	data.consolePage, data.Query, data.Role = p.consoleBase(w, r, c, "users"), strings.TrimSpace(q.Get("q")), q.Get("role")
	if data.Error = say(p.lang(r), msg); msg != "" {
		data.Done = ""
	}
	f := storage.UserFilter{After: q.Get("after"), Limit: usersPerPage + 1}
	if data.Role != "" {
		if !accounts.ValidRole(data.Role) {
			data.Role = ""
		}
		f.Role = data.Role
	}
	if strings.Contains(data.Query, "@") {
		f.EmailPrefix = data.Query
	} else {
		f.UsernamePrefix = data.Query
	}
	users, err := p.c.Accounts.ListUsers(r.Context(), f)
	if err != nil {
		p.internal(w, r, err)
		return
	}
	if len(users) > usersPerPage {
		users = users[:usersPerPage]
		data.Next = "?" + url.Values{"q": {data.Query}, "role": {data.Role}, "after": {strings.ToLower(users[len(users)-1].Username)}}.Encode()
	}
	data.Users = users
	p.site.Render(w, r, status, "admin_users.html", data)
}

// userPage is the data of admin_user.html.
type userPage struct {
	consolePage
	User       storage.User
	PasskeysOn bool
	Passkeys   []passkeyRow
	// TOTP: the user has an authenticator app.
	TOTP bool
}

func (p *Pages) userPage(w http.ResponseWriter, r *http.Request, c web.Caller) {
	p.renderUser(w, r, c, r.PathValue("id"), http.StatusOK, "")
}

func (p *Pages) renderUser(w http.ResponseWriter, r *http.Request, c web.Caller, id string, status int, msg string) {
	u, err := p.c.Accounts.GetUser(r.Context(), id)
	if errors.Is(err, accounts.ErrUserNotFound) {
		p.fail(w, r, http.StatusNotFound, locale.M("No such user"), locale.M("This account does not exist (any more)."))
		return
	}
	if err != nil {
		p.internal(w, r, err)
		return
	}
	data := userPage{consolePage: p.consoleBase(w, r, c, "users"), User: u, TOTP: accounts.HasTOTP(u)}
	if p.c.Passkeys != nil {
		keys, err := p.c.Accounts.Passkeys(r.Context(), id)
		if err != nil {
			p.internal(w, r, err)
			return
		}
		data.PasskeysOn, data.Passkeys = true, passkeyRows(keys)
	}
	data.Error = say(p.lang(r), msg)
	if msg != "" {
		data.Done = ""
	}
	p.site.Render(w, r, status, "admin_user.html", data)
}

// userAction applies one change to a user.
func (p *Pages) userAction(w http.ResponseWriter, r *http.Request, c web.Caller) {
	id, action := r.PathValue("id"), r.PathValue("action")
	ctx := r.Context()
	yes, no := true, false
	var err error
	done := action
	if (action == "disable" || action == "remove-passkeys" || action == "remove-second-factor" || action == "delete") && r.PostFormValue("confirm") != "yes" {
		p.renderUser(w, r, c, id, http.StatusBadRequest, locale.M("Tick the box to confirm."))
		return
	}
	switch action {
	case "role":
		role := r.PostFormValue("role")
		_, err = p.c.Accounts.AdminUpdate(ctx, id, accounts.AdminChange{Role: &role})
	case "disable":
		_, err = p.c.Accounts.AdminUpdate(ctx, id, accounts.AdminChange{Disabled: &yes})
		done = "disabled"
	case "enable":
		_, err = p.c.Accounts.AdminUpdate(ctx, id, accounts.AdminChange{Disabled: &no})
		done = "enabled"
	case "verify-email":
		_, err = p.c.Accounts.AdminUpdate(ctx, id, accounts.AdminChange{EmailVerified: &yes})
		done = "verified"
	case "unverify-email":
		_, err = p.c.Accounts.AdminUpdate(ctx, id, accounts.AdminChange{EmailVerified: &no})
		done = "unverified"
	case "password":
		err = p.c.Accounts.AdminSetPassword(ctx, id, r.PostFormValue("password"))
	case "remove-passkeys":
		_, err = p.c.Accounts.AdminRemovePasskeys(ctx, id)
		done = "passkeys-removed"
	case "remove-second-factor":
		err = p.c.Accounts.AdminRemoveSecondFactor(ctx, id)
		done = "second-factor-removed"
	case "delete":
		if err = p.c.Accounts.DeleteUser(ctx, id); err == nil {
			p.log.Info("user deleted by admin", "request_id", web.RequestID(ctx), "user", id, "by", c.User.ID)
			p.done(w, r, AdminPath+"/users", "deleted")
			return
		}
	default:
		p.fail(w, r, http.StatusNotFound, locale.M("Not found"), locale.M("There is no such action."))
		return
	}
	if err != nil {
		if errors.Is(err, accounts.ErrUserNotFound) {
			p.fail(w, r, http.StatusNotFound, locale.M("No such user"), locale.M("This account does not exist (any more)."))
			return
		}
		status, msg := p.message(w, r, err)
		p.renderUser(w, r, c, id, status, msg)
		return
	}
	p.log.Info("user changed by admin", "request_id", web.RequestID(ctx), "user", id, "action", action, "by", c.User.ID)
	p.done(w, r, AdminPath+"/users/"+url.PathEscape(id), done)
}

// keysPage is the data of admin_keys.html.
type keysPage struct {
	consolePage
	Keys []keyRow
}

// keyRow is a published key: Retired is zero while it signs.
type keyRow struct {
	KID, Alg         string
	Created, Retired time.Time
}

func (p *Pages) keysPage(w http.ResponseWriter, r *http.Request, c web.Caller) {
	data := keysPage{consolePage: p.consoleBase(w, r, c, "keys")}
	for _, k := range p.c.Keys.Published() {
		data.Keys = append(data.Keys, keyRow{KID: k.KID, Alg: k.Alg, Created: k.CreatedAt, Retired: k.RetiredAt})
	}
	sort.SliceStable(data.Keys, func(i, j int) bool { return data.Keys[i].Created.After(data.Keys[j].Created) })
	p.site.Render(w, r, http.StatusOK, "admin_keys.html", data)
}

func (p *Pages) rotateKeys(w http.ResponseWriter, r *http.Request, c web.Caller) {
	if r.PostFormValue("confirm") != "yes" {
		p.fail(w, r, http.StatusBadRequest, locale.M("Not confirmed"), locale.M("Tick the box next to Rotate to confirm."))
		return
	}
	added, err := p.c.Keys.Rotate(r.Context())
	if err != nil {
		p.internal(w, r, err)
		return
	}
	kids := make([]string, len(added))
	for i, k := range added {
		kids[i] = k.KID
	}
	p.log.Info("signing keys rotated by admin", "request_id", web.RequestID(r.Context()), "kids", kids, "by", c.User.ID)
	p.record(r, audit.KeysRotated, "", "", map[string]any{"added": kids})
	p.done(w, r, AdminPath+"/keys", "rotated")
}
