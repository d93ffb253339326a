package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// MaxBodyBytes caps every JSON request body.
const MaxBodyBytes = 64 << 10

// HTTPError is an error with the status and client-safe message to send.
type HTTPError struct {
	status  int
	message string
	// header is set on the answer (WWW-Authenticate, Retry-After).
	header map[string]string
}

func (e *HTTPError) Error() string { return e.message }

// Status is the HTTP status to answer with.
func (e *HTTPError) Status() int { return e.status }

// Errorf is an HTTPError with a formatted message.
func Errorf(status int, format string, args ...any) *HTTPError {
	return &HTTPError{status: status, message: fmt.Sprintf(format, args...)}
}

// With sets a header on the answer.
func (e *HTTPError) With(name, value string) *HTTPError {
	if e.header == nil {
		e.header = map[string]string{}
	}
	e.header[name] = value
	return e
}

// Challenge sets the answer's WWW-Authenticate to Challenge(scheme,
// params...).
func (e *HTTPError) Challenge(scheme string, params ...string) *HTTPError {
	return e.With("WWW-Authenticate", Challenge(scheme, params...))
}

// Challenged reports whether the answer carries its own challenge.
func (e *HTTPError) Challenged() bool { return e.header["WWW-Authenticate"] != "" }

// WriteJSON sends v with status. API answers are never cached.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteRawJSON sends an encoded JSON document with 200.
func WriteRawJSON(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// WriteError sends {"error": message}.
func WriteError(w http.ResponseWriter, status int, message string) {
	WriteJSON(w, status, map[string]string{"error": message})
}

// DecodeJSON reads exactly one JSON object of at most MaxBodyBytes into dst,
// refusing other content types, unknown fields, wrong types and trailing data.
func DecodeJSON(w http.ResponseWriter, r *http.Request, dst any) *HTTPError {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || mt != "application/json" {
		return Errorf(http.StatusUnsupportedMediaType, "Content-Type must be application/json")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return Errorf(http.StatusUnsupportedMediaType, "JSON must be UTF-8")
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return jsonError(err)
		}
		return Errorf(http.StatusBadRequest, "request body must hold a single JSON object")
	}
	return nil
}

// FieldError is a field decoder's complaint, safe to show.
type FieldError struct{ Msg string }

func (e *FieldError) Error() string { return e.Msg }

func jsonError(err error) *HTTPError {
	var (
		mbe       *http.MaxBytesError
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		fe        *FieldError
	)
	switch {
	case errors.As(err, &fe):
		return Errorf(http.StatusBadRequest, "%s", fe.Msg)
	case errors.As(err, &mbe):
		return Errorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", MaxBodyBytes)
	case errors.Is(err, io.EOF):
		return Errorf(http.StatusBadRequest, "request body is empty: a JSON object is required")
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		return Errorf(http.StatusBadRequest, "request body is not valid JSON")
	case errors.As(err, &typeErr):
		if typeErr.Field == "" || typeErr.Type == nil {
			return Errorf(http.StatusBadRequest, "request body must be a JSON object")
		}
		return Errorf(http.StatusBadRequest, "field %q must be a %s", typeErr.Field, typeName(typeErr.Type.Kind().String()))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return Errorf(http.StatusBadRequest, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	default:
		return Errorf(http.StatusBadRequest, "request body is not valid JSON")
	}
}

func typeName(kind string) string {
	if kind == "ptr" {
		return "string"
	}
	return kind
}

// ServeCached answers from memory with an entity tag, so clients and
// proxies may cache (and revalidate) the documents. Headers are set with
// their canonical keys directly: these documents are fetched at the
// highest rates of all.
func ServeCached(w http.ResponseWriter, r *http.Request, body []byte, etag string, maxAge int) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = []string{"public, max-age=" + strconv.Itoa(maxAge)}
	h["Access-Control-Allow-Origin"] = anyOrigin
	if etag != "" {
		h["Etag"] = []string{etag}
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	_, _ = w.Write(body)
}

var (
	jsonContentType = []string{"application/json"}
	anyOrigin       = []string{"*"}
)
