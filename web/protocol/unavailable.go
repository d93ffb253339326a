package protocol

import (
	"log/slog"
	"net/http"

	"github.com/tonearm-idp/tonearm/web"
)

// writeUnavailable answers an OAuth endpoint's request that failed because
// the database is gone (storage.ErrUnavailable, however fosite wrapped
// it): 503 {"error": "temporarily_unavailable"} with Retry-After, and
// reports whether it did. RFC 6749 §5.2 does not list that code for the
// token endpoint, but fosite would otherwise answer invalid_client (a
// failed client lookup) or server_error, and client libraries take
// invalid_client as "your credentials are wrong" and 500 as a bug. Like
// Keycloak, which answers 503 when its database is down, and Hydra, whose
// 503s its own SDK retries, tonearm gives the one answer clients treat as
// "try again": 503 with Retry-After, and the code §4.1.2.1 defines for
// exactly this.
func writeUnavailable(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) bool {
	if !web.Unavailable(err) {
		return false
	}
	log.Warn("database unavailable", "request_id", web.RequestID(r.Context()), "path", r.URL.Path, "err", err)
	web.SetUnavailable(w)
	web.WriteOAuthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", web.UnavailableMessage+".")
	return true
}
