package web

import (
	"log/slog"
	"net/http"
)

// MeAPI is self-service under /api/me: the caller's own account, by
// session cookie or bearer token.
type MeAPI struct{ apiBase }

// NewMeAPI returns the self-service API.
func NewMeAPI(acc Accounts, issuer string, tokens TokenVerifier, log *slog.Logger) (*MeAPI, error) {
	base, err := newAPIBase(acc, issuer, tokens, log)
	if err != nil {
		return nil, err
	}
	return &MeAPI{base}, nil
}

// Endpoints lists the routes.
func (a *MeAPI) Endpoints() []Endpoint {
	return []Endpoint{
		{http.MethodGet, "/api/me"}, {http.MethodPatch, "/api/me"}, {http.MethodDelete, "/api/me"},
		{http.MethodPost, "/api/me/password"},
	}
}

// Routes mounts the endpoints on mux.
func (a *MeAPI) Routes(mux *http.ServeMux) {
	mux.Handle("/api/me", a.route(map[string]apiHandler{
		http.MethodGet: a.get, http.MethodPatch: a.update, http.MethodDelete: a.delete,
	}))
	mux.Handle("/api/me/password", a.route(map[string]apiHandler{http.MethodPost: a.password}))
}

func (a *MeAPI) get(w http.ResponseWriter, r *http.Request) error {
	c, err := a.userCaller(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toUserJSON(c.User))
	return nil
}

func (a *MeAPI) update(w http.ResponseWriter, r *http.Request) error {
	c, err := a.userCaller(r)
	if err != nil {
		return err
	}
	var body profileFields
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	u, err := a.accounts.UpdateProfile(r.Context(), c.User.ID, body.update())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toUserJSON(u))
	return nil
}

type passwordChange struct {
	CurrentPassword string `json:"currentPassword"`
	NewPassword     string `json:"newPassword"`
}

// password changes the password and ends every session of the user; the
// browser that asked gets a fresh session.
func (a *MeAPI) password(w http.ResponseWriter, r *http.Request) error {
	c, err := a.userCaller(r)
	if err != nil {
		return err
	}
	var body passwordChange
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	if body.CurrentPassword == "" {
		return errorf(http.StatusBadRequest, "currentPassword cannot be empty")
	}
	if err := a.accounts.ChangePassword(r.Context(), c.User.ID, body.CurrentPassword, body.NewPassword); err != nil {
		return err
	}
	if !c.Bearer {
		token, sess, err := a.accounts.NewSession(r.Context(), c.User.ID)
		if err != nil {
			return err
		}
		a.cookies.Set(w, token, sess.ExpiresAt)
	}
	a.log.Info("password changed", "request_id", RequestID(r.Context()), "user", c.User.ID)
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

type passwordConfirm struct {
	Password string `json:"password"`
}

func (a *MeAPI) delete(w http.ResponseWriter, r *http.Request) error {
	c, err := a.userCaller(r)
	if err != nil {
		return err
	}
	var body passwordConfirm
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	if body.Password == "" {
		return errorf(http.StatusBadRequest, "password cannot be empty")
	}
	if err := a.accounts.DeleteAccount(r.Context(), c.User.ID, body.Password); err != nil {
		return err
	}
	a.cookies.Clear(w)
	a.log.Info("account deleted by its owner", "request_id", RequestID(r.Context()), "user", c.User.ID)
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}
