package web

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/tonearm-idp/tonearm/provider/dpop"
)

// DPoP-bound access tokens at tonearm's resources (userinfo, /api/me, the
// admin and User APIs): RFC 9449 §7.

// ProofChecker checks DPoP proofs (provider/dpop.Verifier).
type ProofChecker interface {
	Check(ctx context.Context, proof string, req dpop.Request) (dpop.Proof, error)
}

// AccessToken is the access token of r's Authorization header, and
// whether it came with the DPoP scheme (RFC 9449 §7.1) rather than Bearer
// (RFC 6750 §2.1).
func AccessToken(r *http.Request) (token string, dpopScheme bool) {
	if t := BearerToken(r); t != "" {
		return t, false
	}
	h := r.Header.Get("Authorization")
	if len(h) > 5 && strings.EqualFold(h[:5], "dpop ") {
		return strings.TrimSpace(h[5:]), true
	}
	return "", false
}

// TokenBindingError refuses a token under RFC 9449 §7: 401 with a DPoP
// challenge naming the error, and the nonce to use when that was it.
type TokenBindingError struct {
	Code, Description string
	Nonce             string
}

func (e *TokenBindingError) Error() string { return e.Description }

// HTTP is the refusal as a JSON API answers it.
func (e *TokenBindingError) HTTP() *HTTPError {
	he := Errorf(http.StatusUnauthorized, "%s", e.Description).Challenge("DPoP", e.challenge()...)
	if e.Nonce != "" {
		he.With(dpop.NonceHeader, e.Nonce)
	}
	return he
}

// WriteOAuth answers the refusal as an OAuth resource does (userinfo).
func (e *TokenBindingError) WriteOAuth(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", Challenge("DPoP", e.challenge()...))
	if e.Nonce != "" {
		w.Header().Set(dpop.NonceHeader, e.Nonce)
	}
	WriteOAuthError(w, http.StatusUnauthorized, e.Code, e.Description)
}

func (e *TokenBindingError) challenge() []string {
	return []string{"error", e.Code, "error_description", e.Description, "algs", strings.Join(dpop.SigningAlgs, " ")}
}

// CheckTokenBinding applies RFC 9449 §7 to a live access token bound to
// jkt ("" for a bearer token) presented at r: a bound token only with the
// DPoP scheme and a proof by its key for this request (htm, htu at the
// issuer's external URL, ath of this token); a bearer token only as
// Bearer. An outage is returned as is (503, not the token's fault).
func CheckTokenBinding(r *http.Request, proofs ProofChecker, issuer, token, jkt string, dpopScheme bool) error {
	switch {
	case jkt == "" && !dpopScheme:
		return nil
	case jkt == "":
		return &TokenBindingError{Code: "invalid_token", Description: "The access token is not DPoP-bound: present it as a Bearer token."}
	case !dpopScheme:
		// §7.2: a bound token sent as a bearer token is refused, else a
		// copied token would work without the key after all.
		return &TokenBindingError{Code: "invalid_token", Description: "The access token is DPoP-bound: present it with the DPoP scheme and a DPoP proof."}
	}
	raw, err := dpop.FromHeader(r.Header)
	if err == nil && raw == "" {
		err = &dpop.Error{Code: dpop.ErrInvalidProof, Description: "A DPoP proof is required with a DPoP-bound token."}
	}
	var p dpop.Proof
	if err == nil {
		p, err = proofs.Check(r.Context(), raw, dpop.Request{Method: r.Method, URL: strings.TrimRight(issuer, "/") + r.URL.Path, AccessToken: token})
	}
	var de *dpop.Error
	switch {
	case errors.As(err, &de) && de.Err != nil:
		return de.Err
	case errors.As(err, &de):
		return &TokenBindingError{Code: de.Code, Description: de.Description, Nonce: de.Nonce}
	case err != nil:
		return err
	case p.JKT != jkt:
		return &TokenBindingError{Code: dpop.ErrInvalidProof, Description: "The DPoP proof is not signed with the key the access token is bound to."}
	}
	return nil
}
