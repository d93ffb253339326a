// Command web-app is an example web app that signs its users in with
// tonearm (go-oidc and x/oauth2): sign in with PKCE, see your name and
// ListenBrainz name, refresh, sign out, and back-channel logout.
//
// Register it once, then run it:
//
//	./bin/tonearm clients create --id web-app --name "Example web app" \
//	  --redirect-uri http://127.0.0.1:5555/callback --post-logout-redirect-uri http://127.0.0.1:5555/ \
//	  --backchannel-logout-uri http://127.0.0.1:5555/backchannel-logout \
//	  --scope "openid profile listenbrainz offline_access"
//	WEB_APP_CLIENT_SECRET=… go run ./examples/web-app
//
// and open http://127.0.0.1:5555.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/tonearm-idp/tonearm/examples/web-app/webapp"
)

func main() {
	var c webapp.Config
	var listen string
	flag.StringVar(&c.Issuer, "issuer", "http://127.0.0.1:8080", "tonearm's issuer URL")
	flag.StringVar(&c.ClientID, "client-id", "web-app", "the client ID it was registered with")
	flag.StringVar(&c.ClientSecret, "client-secret", os.Getenv("WEB_APP_CLIENT_SECRET"), "its client secret (or $WEB_APP_CLIENT_SECRET)")
	flag.StringVar(&listen, "listen", "127.0.0.1:5555", "where the app listens")
	flag.StringVar(&c.BaseURL, "base-url", "", "the app's URL as the browser reaches it (default http://LISTEN)")
	flag.Parse()
	if c.BaseURL == "" {
		c.BaseURL = "http://" + listen
	}
	c.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	app, err := webapp.New(context.Background(), c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "web-app:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "example app on %s (signing in with %s as %s)\n", c.BaseURL, c.Issuer, c.ClientID)
	srv := &http.Server{Addr: listen, Handler: app.Handler(), ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "web-app:", err)
		os.Exit(1)
	}
}
