package jsonapi

import (
	_ "embed"
	"net/http"

	"github.com/tonearm-idp/tonearm/web"
)

//go:embed openapi.json
var openAPIDocument []byte

// OpenAPIPath is where the document is served.
const OpenAPIPath = "/api/openapi.json"

// ServeOpenAPI serves the OpenAPI 3 document of the JSON APIs. A test holds
// it to the routes: every route is documented and every documented
// operation is routed.
func ServeOpenAPI(mux *http.ServeMux) {
	mux.HandleFunc("GET "+OpenAPIPath, func(w http.ResponseWriter, r *http.Request) {
		web.ServeCached(w, r, openAPIDocument, "", 300)
	})
	// Another method is 405 with Allow in the APIs' shape (RFC 9110
	// §15.5.6), not the catch-all's 404.
	mux.HandleFunc(OpenAPIPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET, HEAD")
		web.WriteError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed: use GET, HEAD")
	})
}
