package main

import (
	"encoding/json"
	"flag"
	"io"
	"time"

	"github.com/tonearm-idp/tonearm/provider/keys"
)

// The one rule of --json (docs/configuration.md, "Command line"): a
// command that creates, shows or changes something prints that object
// after the change; one that deletes or revokes prints {} (nothing is
// left to show), so a script can always parse standard output. Client
// metadata uses the RFC 7591 names, everything else the admin API's.

// jsonFlag adds --json to fs.
func jsonFlag(fs *flag.FlagSet, v *bool) {
	fs.BoolVar(v, "json", false, "print JSON")
}

// printJSON writes v as one line of JSON.
func printJSON(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// deletedJSON is what a delete prints with --json.
func deletedJSON(w io.Writer) error {
	return printJSON(w, struct{}{})
}

// keyJSON is a signing key as keys list and keys rotate print it: kid and
// alg are the JWK names (RFC 7517 §4.5, §4.4), the times the admin API's
// camelCase RFC 3339.
type keyJSON struct {
	KID       string `json:"kid"`
	Alg       string `json:"alg"`
	CreatedAt string `json:"createdAt"`
	RetiredAt string `json:"retiredAt,omitempty"` // set once it only verifies
}

func toKeyJSON(k *keys.Key) keyJSON {
	out := keyJSON{KID: k.KID, Alg: k.Alg, CreatedAt: k.CreatedAt.UTC().Format(time.RFC3339)}
	if !k.RetiredAt.IsZero() {
		out.RetiredAt = k.RetiredAt.UTC().Format(time.RFC3339)
	}
	return out
}
