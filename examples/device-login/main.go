// Command device-login signs a device (a scrobbler, a player, a
// command-line tool) in to tonearm with the Device Authorization Grant:
// it prints where to go and the code to type, waits, and prints the tokens
// as JSON.
//
//	go run ./examples/device-login -issuer https://id.example.org -client-id scrobbler -scope "openid listenbrainz offline_access"
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/tonearm-idp/tonearm/examples/device-login/devicelogin"
)

func main() {
	var c devicelogin.Config
	var scope string
	flag.StringVar(&c.Issuer, "issuer", "http://127.0.0.1:8080", "tonearm's issuer URL")
	flag.StringVar(&c.ClientID, "client-id", "", "client ID (registered with --grant-type urn:ietf:params:oauth:grant-type:device_code)")
	flag.StringVar(&c.ClientSecret, "client-secret", os.Getenv("CLIENT_SECRET"), "client secret (confidential clients; or $CLIENT_SECRET)")
	flag.StringVar(&scope, "scope", "openid profile", "scopes to ask for")
	flag.Parse()
	c.Scopes = strings.Fields(scope)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	tok, err := devicelogin.Login(ctx, c, func(p devicelogin.Prompt) {
		fmt.Fprintf(os.Stderr, "To sign this device in, open %s\nand enter the code %s\n(or open %s)\n", p.VerificationURI, p.UserCode, p.VerificationURIComplete)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "device-login:", err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(tok)
}
