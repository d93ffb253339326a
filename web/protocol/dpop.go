package protocol

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/ory/fosite"

	"github.com/tonearm-idp/tonearm/provider"
	"github.com/tonearm-idp/tonearm/provider/dpop"
	"github.com/tonearm-idp/tonearm/web"
)

// DPoP (RFC 9449) at the token and PAR endpoints: the proof is checked
// around the whole endpoint, so every grant (those fosite handles, the
// device grant, token exchange) sees only requests whose proof, if any,
// verified; the grant then binds what it issues to the proof's key
// (bindDPoP).

type proofKey struct{}

// proofFrom is the verified proof of the request, if it had one.
func proofFrom(ctx context.Context) (dpop.Proof, bool) {
	p, ok := ctx.Value(proofKey{}).(dpop.Proof)
	return p, ok
}

// endpointURL is the URL a client addresses path at: the issuer's
// external URL (behind a proxy or a path prefix r.Host and r.URL say
// something else), which a proof's htu must name.
func (o *OAuth) endpointURL(path string) string {
	return strings.TrimRight(o.p.Issuer(), "/") + path
}

// withDPoP checks the DPoP proof of a request to the endpoint at path. A
// request with more than one DPoP header, or a proof that does not verify,
// is refused with 400 invalid_dpop_proof (§5.2, §7.1 of RFC 9449 for the
// token endpoint; §10.1 for PAR), or use_dpop_nonce with the nonce to use
// (§8). At the token endpoint a client registered to require DPoP is
// refused without a proof.
func (o *OAuth) withDPoP(path string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := o.p.DPoP()
		if v.NoncesOn() {
			w.Header().Set(dpop.NonceHeader, v.Nonce())
		}
		raw, err := dpop.FromHeader(r.Header)
		if err == nil && raw != "" {
			var p dpop.Proof
			if p, err = v.Check(r.Context(), raw, dpop.Request{Method: r.Method, URL: o.endpointURL(path)}); err == nil {
				r = r.WithContext(context.WithValue(r.Context(), proofKey{}, p))
			}
		}
		if err != nil {
			o.writeProofError(w, r, err)
			return
		}
		// Only the token endpoint: a client that must use DPoP may push
		// its request without a proof (RFC 9449 §10.1 makes it optional
		// there); its code is then redeemed with one.
		if raw == "" && r.Method == http.MethodPost && path == provider.TokenPath {
			ok, ferr := parseBoundedForm(w, r)
			if !ok {
				return
			}
			if ferr == nil {
				if c, cerr := o.p.Client(r.Context(), requestClientID(r)); cerr == nil && c.RequireDPoP {
					web.WriteOAuthError(w, http.StatusBadRequest, "invalid_request", "This client is registered to use DPoP: send a DPoP proof (RFC 9449).")
					return
				}
			}
		}
		next(w, r)
	}
}

// writeProofError answers a refused proof at the token or PAR endpoint.
func (o *OAuth) writeProofError(w http.ResponseWriter, r *http.Request, err error) {
	if writeUnavailable(w, r, o.log, err) {
		return
	}
	var de *dpop.Error
	if !errors.As(err, &de) {
		de = &dpop.Error{Code: dpop.ErrInvalidProof, Description: "The DPoP proof is invalid."}
	}
	if de.Nonce != "" {
		w.Header().Set(dpop.NonceHeader, de.Nonce)
	}
	w.Header().Set("Cache-Control", "no-store")
	web.WriteOAuthError(w, http.StatusBadRequest, de.Code, de.Description)
}

// bindDPoP binds what a token request issues to the key of its proof, or
// to none. A code obtained with dpop_jkt (§10) is redeemed only with that
// key; a public client's refresh token only with the key it was bound to
// (§5: a confidential client authenticates, so its refresh token is not
// bound, but the new access token is bound to the proof it presents).
func bindDPoP(ctx context.Context, ar fosite.AccessRequester) error {
	proof, has := proofFrom(ctx)
	sess := ar.GetSession()
	bound := provider.BoundKey(sess)
	keyMatches := has && proof.JKT == bound
	switch gt := ar.GetGrantTypes(); {
	case bound == "" || keyMatches:
	case gt.ExactOne("authorization_code"):
		return fosite.ErrInvalidGrant.WithHint("The authorization code is bound to a DPoP key (dpop_jkt): present a proof signed with that key.")
	case gt.ExactOne("refresh_token") && ar.GetClient().IsPublic():
		return fosite.ErrInvalidGrant.WithHint("The refresh token is bound to a DPoP key: present a proof signed with that key.")
	}
	provider.BindToKey(sess, proof.JKT)
	return nil
}

// validJKT reports whether a dpop_jkt parameter can be a thumbprint: a
// SHA-256 hash, base64url without padding (43 characters).
func validJKT(s string) bool {
	if len(s) != 43 {
		return false
	}
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// parDPoP binds a pushed request to the key of its proof (§10.1): the
// proof's thumbprint becomes its dpop_jkt; a dpop_jkt that names another
// key is refused.
func (o *OAuth) parDPoP(next http.HandlerFunc) http.HandlerFunc {
	return o.withDPoP(provider.PARPath, func(w http.ResponseWriter, r *http.Request) {
		p, has := proofFrom(r.Context())
		if !has {
			next(w, r)
			return
		}
		if ok, err := parseBoundedForm(w, r); !ok {
			return
		} else if err == nil {
			if jkt := r.PostForm.Get("dpop_jkt"); jkt != "" && jkt != p.JKT {
				web.WriteOAuthError(w, http.StatusBadRequest, dpop.ErrInvalidProof, "The dpop_jkt parameter does not name the key of the DPoP proof.")
				return
			}
			r.PostForm.Set("dpop_jkt", p.JKT)
			r.Form.Set("dpop_jkt", p.JKT)
		}
		next(w, r)
	})
}
