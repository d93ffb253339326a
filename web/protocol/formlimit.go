package protocol

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/tonearm-idp/tonearm/web"
)

// parseBoundedForm bounds r's body at web.MaxBodyBytes and parses its form
// for the endpoints clients post forms to. A body over the bound is
// answered here — 413 invalid_request, as /oauth2/register and the JSON
// APIs answer it; fosite would read the cut-short body as an empty one
// and say so — and ok is false. Any other error is returned for the
// endpoint to answer its own way (a second ParseForm would not repeat it).
func parseBoundedForm(w http.ResponseWriter, r *http.Request) (ok bool, err error) {
	r.Body = http.MaxBytesReader(w, r.Body, web.MaxBodyBytes)
	err = r.ParseForm()
	if tooLarge(err) {
		web.WriteOAuthError(w, http.StatusRequestEntityTooLarge, "invalid_request", errTooLargeDescription)
		return false, err
	}
	return true, err
}

var errTooLargeDescription = fmt.Sprintf("The request body is larger than %d bytes.", web.MaxBodyBytes)

// tooLarge reports whether err is a body cut at its bound.
func tooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}
