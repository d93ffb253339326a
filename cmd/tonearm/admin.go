package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/clients"
	"github.com/tonearm-idp/tonearm/provider/fositestore"
	"github.com/tonearm-idp/tonearm/provider/keys"
	"github.com/tonearm-idp/tonearm/storage"
)

// requireArg refuses an empty argument (read once the flags are parsed:
// it may come from a flag) with the usage line.
func requireArg(v *string, usage string) func() error {
	return func() error {
		if *v == "" {
			return usageError{usage}
		}
		return nil
	}
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

type clientJSON struct {
	ClientID               string   `json:"client_id"`
	ClientSecret           string   `json:"client_secret,omitempty"`
	RedirectURIs           []string `json:"redirect_uris"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	GrantTypes             []string `json:"grant_types"`
	Scope                  string   `json:"scope"`
	Public                 bool     `json:"public"`
	FirstParty             bool     `json:"first_party"`
	AllowNoPKCE            bool     `json:"allow_no_pkce"`
	RequirePAR             bool     `json:"require_pushed_authorization_requests"`
	// RequireDPoP is RFC 9449 §5.2's dpop_bound_access_tokens.
	RequireDPoP          bool   `json:"dpop_bound_access_tokens"`
	BackchannelLogoutURI string `json:"backchannel_logout_uri,omitempty"`
	// BackchannelLogoutSessionRequired (Back-Channel Logout 1.0 §2.2) is
	// true with a back-channel URI, as RFC 7591 registration answers it:
	// every logout token tonearm sends carries sid.
	BackchannelLogoutSessionRequired *bool  `json:"backchannel_logout_session_required,omitempty"`
	TokenEndpointAuth                string `json:"token_endpoint_auth_method"`
	Name                             string `json:"client_name,omitempty"`
	LogoURI                          string `json:"logo_uri,omitempty"`
	ClientURI                        string `json:"client_uri,omitempty"`
	PolicyURI                        string `json:"policy_uri,omitempty"`
	TosURI                           string `json:"tos_uri,omitempty"`
	IDTokenAlg                       string `json:"id_token_signed_response_alg"`
	// The RFC 7591 / OpenID Connect Dynamic Registration names of its
	// keys, request objects and subject type; jwks as the JWK Set itself.
	JWKS                    json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                 string          `json:"jwks_uri,omitempty"`
	RequestURIs             []string        `json:"request_uris"`
	RequestObjectSigningAlg string          `json:"request_object_signing_alg,omitempty"`
	SubjectType             string          `json:"subject_type"`
	SectorIdentifierURI     string          `json:"sector_identifier_uri,omitempty"`
	CreatedAt               string          `json:"created_at"`
}

func toClientJSON(c storage.Client, secret string) clientJSON {
	k := clients.KeysOf(c)
	auth := k.TokenEndpointAuthMethod
	out := clientJSON{
		JWKS: k.RawJWKS(), JWKSURI: k.JWKSURI, RequestURIs: k.RequestURIs, RequestObjectSigningAlg: k.RequestObjectSigningAlg,
		SubjectType: k.SubjectType, SectorIdentifierURI: k.SectorIdentifierURI,
		ClientID: c.ID, ClientSecret: secret, RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		GrantTypes: c.GrantTypes, Scope: strings.Join(c.Scopes, " "), Public: c.Public, FirstParty: c.FirstParty, AllowNoPKCE: c.AllowNoPKCE, RequirePAR: c.RequirePAR,
		RequireDPoP: c.RequireDPoP, BackchannelLogoutURI: c.BackchannelLogoutURI, TokenEndpointAuth: auth, CreatedAt: c.CreatedAt.UTC().Format(time.RFC3339),
		Name: c.Name, LogoURI: c.LogoURI, ClientURI: c.ClientURI, PolicyURI: c.PolicyURI, TosURI: c.TosURI, IDTokenAlg: c.IDTokenAlg,
	}
	if c.BackchannelLogoutURI != "" {
		yes := true
		out.BackchannelLogoutSessionRequired = &yes
	}
	return out
}

const clientsUsage = `usage: tonearm clients create --id ID [--public] [--secret S] [--redirect-uri URI…] [flags]
       tonearm clients update ID [flags]
       tonearm clients rotate-secret ID [--keep-old DURATION] [--json]
       tonearm clients show ID [--json]
       tonearm clients list [--json]
       tonearm clients delete ID [--json]
(flags and ID in any order; "tonearm clients SUBCOMMAND -h" shows its flags)`

// clientCommands are the rows of tonearm clients.
var clientCommands = []command{
	{name: "clients create", needs: needClients, flags: clientsCreate},
	{name: "clients update", pos: "ID", missing: "usage: tonearm clients update ID [any flag of clients create but --id and --public]", needs: needClients, flags: clientsUpdate},
	{name: "clients rotate-secret", pos: "ID", missing: "usage: tonearm clients rotate-secret ID [--keep-old DURATION] [--json]", needs: needClients, flags: clientsRotateSecret},
	{name: "clients show", pos: "ID", missing: "usage: tonearm clients show ID [--json]", needs: needClients, flags: jsonRun(clientsShow)},
	{name: "clients list", needs: needClients, flags: jsonRun(func(ctx context.Context, s *services, in *input) error {
		list, err := s.clients.List(ctx)
		if err != nil {
			return err
		}
		return printList(in, list, func(c storage.Client) any { return toClientJSON(c, "") },
			[]string{"ID", "TYPE", "GRANTS", "SCOPES", "REDIRECT URIS"}, func(c storage.Client) []string {
				return []string{c.ID, clients.Kind(c), strings.Join(c.GrantTypes, ","), strings.Join(c.Scopes, " "), strings.Join(c.RedirectURIs, " ")}
			})
	})},
	deleteRow("clients delete", "ID", "client ID", needClients, func(ctx context.Context, s *services, id string) error {
		if err := s.clients.Delete(ctx, id); err != nil {
			return err
		}
		return nil
	}, "deleted client %s and every token issued to it\n"),
}

func clientsCreate(fs *flag.FlagSet, in *input) runFunc {
	var f clientFlagValues
	f.register(fs, true, &in.asJSON)
	in.check = func() error {
		// Checked here: the validation of an empty ID speaks of the
		// client, not of the flag the operator left out.
		if f.spec.ID == "" {
			return usageError{"--id is required (tonearm clients create -h lists the flags)"}
		}
		return nil
	}
	return func(ctx context.Context, s *services, in *input) error {
		if err := f.load(in); err != nil {
			return err
		}
		spec := f.spec
		spec.RequestURIs = f.requestURIs
		spec.RedirectURIs, spec.PostLogoutRedirectURIs, spec.GrantTypes, spec.Scopes = f.redirects, f.postLogout, f.grants, f.scopes
		c, secret, err := s.clients.Create(ctx, spec)
		if err != nil {
			return err
		}
		if c.TokenEndpointAuthMethod == clients.AuthPrivateKeyJWT {
			return in.show(toClientJSON(c, ""), "client_id:     %s\n(private_key_jwt: no secret; it signs its client assertions with the private keys whose public halves are in its JWK Set)\n", c.ID)
		}
		if secret != "" && spec.Secret == "" {
			return in.show(toClientJSON(c, secret), "client_id:     %s\nclient_secret: %s\n(shown once: it is stored only as a hash)\n", c.ID, secret)
		}
		return in.show(toClientJSON(c, secret), "client_id:     %s\n", c.ID)
	}
}

func clientsShow(ctx context.Context, s *services, in *input) error {
	c, err := s.clients.Get(ctx, in.id)
	if err != nil {
		return err
	}
	if in.asJSON {
		return printJSON(in.stdout, toClientJSON(c, ""))
	}
	keys := "-"
	switch {
	case c.JWKS != "":
		keys = "jwks (inline)"
	case c.JWKSURI != "":
		keys = c.JWKSURI
	}
	return in.show(nil, "client_id:                  %s\ntype:                       %s\ntoken_endpoint_auth_method: %s\nkeys:                       %s\nsubject_type:               %s\ngrant_types:                %s\nscope:                      %s\nredirect_uris:              %s\ndpop:                       %s\n",
		c.ID, clients.Kind(c), clients.AuthMethod(c), keys, toClientJSON(c, "").SubjectType, strings.Join(c.GrantTypes, " "), strings.Join(c.Scopes, " "), strings.Join(c.RedirectURIs, " "), dpopMode(c))
}

// dpopMode says whether a client's token requests must carry a DPoP proof
// (--require-dpop).
func dpopMode(c storage.Client) string {
	if c.RequireDPoP {
		return "required"
	}
	return "optional"
}

func clientsUpdate(fs *flag.FlagSet, in *input) runFunc {
	var f clientFlagValues
	f.register(fs, false, &in.asJSON)
	return func(ctx context.Context, s *services, in *input) error {
		if err := f.load(in); err != nil {
			return err
		}
		c, err := s.clients.Update(ctx, in.id, func(spec *clients.Spec) { in.given.Visit(func(fl *flag.Flag) { f.apply(fl.Name, spec) }) })
		if err != nil {
			return err
		}
		if clients.NeedsSecret(c) {
			// Turned from private_key_jwt to a secret method: it has no
			// secret yet, and one is shown only when made.
			return in.show(toClientJSON(c, ""), "updated client %s\nit has no secret yet: give it one with: tonearm clients rotate-secret %s\n", c.ID, c.ID)
		}
		return in.show(toClientJSON(c, ""), "updated client %s\n", c.ID)
	}
}

func clientsRotateSecret(fs *flag.FlagSet, in *input) runFunc {
	var keepOld time.Duration
	fs.DurationVar(&keepOld, "keep-old", 0, "keep the old secret valid this long (e.g. 24h, at most 720h) while the app switches over; 0: it ends now")
	fs.BoolVar(&in.asJSON, "json", false, `print JSON: {"secret": …}`)
	return func(ctx context.Context, s *services, in *input) error {
		secret, err := s.clients.RotateSecret(ctx, in.id, keepOld)
		if err != nil {
			return err
		}
		// A running server keeps clients for ClientCacheTTL: it accepts
		// the new secret at once (a refused secret re-reads the client)
		// but may take the old one until its copy expires.
		old := fmt.Sprintf("the new secret works at once; the old one stops now, or within %s on a server that read this client just before (its client cache)", fositestore.ClientCacheTTL)
		if keepOld > 0 {
			old = fmt.Sprintf("the old secret stays valid for %s", keepOld)
		}
		return in.show(map[string]string{"secret": secret}, "client_secret: %s\n(shown once: it is stored only as a hash)\n%s\n", secret, old)
	}
}

// clientFlagValues are the flags of clients create and update.
type clientFlagValues struct {
	spec                                               clients.Spec
	redirects, postLogout, grants, scopes, requestURIs listFlag
	jwksFile                                           string
}

// load reads the JWK Set --jwks-file names ("-": standard input), at most
// one byte over the registry's limit so it can say the set is too long.
func (f *clientFlagValues) load(in *input) error {
	if f.jwksFile == "" {
		return nil
	}
	b, err := readFileFlag("--jwks-file", f.jwksFile, in.stdin, 64<<10+1)
	if err != nil {
		return err
	}
	f.spec.JWKS = string(b)
	return nil
}

// register adds the flags; withID: create's --id and --secret.
func (f *clientFlagValues) register(fs *flag.FlagSet, withID bool, asJSON *bool) {
	if withID {
		fs.StringVar(&f.spec.ID, "id", "", "client ID")
		fs.StringVar(&f.spec.Secret, "secret", "", "client secret (≥ 32 characters); omitted: one is generated and printed once")
		fs.BoolVar(&f.spec.Public, "public", false, "public client: no secret, PKCE required")
	} else {
		// The client's secret, as on create: the server's own secret
		// comes from TONEARM_SECRET only, never from a flag.
		fs.StringVar(&f.spec.Secret, "secret", "", "set the client's secret (≥ 32 characters); the old one stops at once (tonearm clients rotate-secret generates one and can keep the old one a while)")
	}
	fs.Var(&f.redirects, "redirect-uri", "redirect URI (repeatable)")
	fs.Var(&f.postLogout, "post-logout-redirect-uri", "post-logout redirect URI (repeatable)")
	fs.Var(&f.grants, "grant-type", "authorization_code, refresh_token, client_credentials or urn:ietf:params:oauth:grant-type:device_code (repeatable)")
	fs.Var(&f.scopes, "scope", `allowed scopes, e.g. "openid profile email listenbrainz offline_access"`)
	fs.BoolVar(&f.spec.FirstParty, "first-party", false, "first-party client: no consent screen")
	fs.StringVar(&f.spec.BackchannelLogoutURI, "backchannel-logout-uri", "", "receives a logout token when a session it holds tokens from ends (OpenID Connect Back-Channel Logout)")
	fs.BoolVar(&f.spec.AllowNoPKCE, "allow-no-pkce", false, "a legacy confidential client that cannot send PKCE (every other client must)")
	fs.BoolVar(&f.spec.RequirePAR, "require-par", false, "authorization requests must be pushed to /oauth2/par first (RFC 9126)")
	fs.BoolVar(&f.spec.RequireDPoP, "require-dpop", false, "token requests must carry a DPoP proof, so every access token is bound to the app's key (RFC 9449)")
	fs.StringVar(&f.spec.Name, "name", "", "display name shown on the login and consent pages")
	fs.StringVar(&f.spec.LogoURI, "logo-uri", "", "logo shown on the login and consent pages: an https URL or a data:image/ URI")
	fs.StringVar(&f.spec.ClientURI, "client-uri", "", "the app's home page")
	fs.StringVar(&f.spec.PolicyURI, "policy-uri", "", "the app's privacy policy")
	fs.StringVar(&f.spec.TosURI, "tos-uri", "", "the app's terms of service")
	fs.StringVar(&f.spec.TokenEndpointAuthMethod, "token-endpoint-auth-method", "", "how it authenticates: client_secret_basic (default: a secret, also accepted in the body), client_secret_post, private_key_jwt (its keys: --jwks-file or --jwks-uri) or none (public clients)")
	fs.StringVar(&f.jwksFile, "jwks-file", "", "a JSON file with its public keys as a JWK Set (- for standard input)")
	fs.StringVar(&f.spec.JWKSURI, "jwks-uri", "", "where its public keys are published as a JWK Set (https)")
	fs.Var(&f.requestURIs, "request-uri", "an https URL it may pass as request_uri (repeatable; RFC 9101)")
	fs.StringVar(&f.spec.RequestObjectSigningAlg, "request-object-signing-alg", "", "the algorithm of its request objects: RS256, PS256, ES256, EdDSA (or Ed25519, the same), or none to allow unsigned ones (default: any signed one)")
	fs.StringVar(&f.spec.SubjectType, "subject-type", "", "public (default: one sub per person) or pairwise (a sub of its own per person; cannot change later)")
	fs.StringVar(&f.spec.SectorIdentifierURI, "sector-identifier-uri", "", "pairwise clients whose redirect URIs span hosts: an https URL listing them (OpenID Connect Core 8.1)")
	fs.StringVar(&f.spec.IDTokenAlg, "id-token-alg", "RS256", "the algorithm of its ID tokens: RS256, or ES256 (about 20× cheaper to sign; the app's library must accept it)")
	fs.BoolVar(asJSON, "json", false, "print JSON")
}

// apply copies the flag name, given on the command line, onto spec (an
// update changes what it is given, lists as a whole).
func (f *clientFlagValues) apply(name string, spec *clients.Spec) {
	switch name {
	case "redirect-uri":
		spec.RedirectURIs = f.redirects
	case "post-logout-redirect-uri":
		spec.PostLogoutRedirectURIs = f.postLogout
	case "grant-type":
		spec.GrantTypes = f.grants
	case "scope":
		spec.Scopes = f.scopes
	case "first-party":
		spec.FirstParty = f.spec.FirstParty
	case "backchannel-logout-uri":
		spec.BackchannelLogoutURI = f.spec.BackchannelLogoutURI
	case "allow-no-pkce":
		spec.AllowNoPKCE = f.spec.AllowNoPKCE
	case "require-par":
		spec.RequirePAR = f.spec.RequirePAR
	case "require-dpop":
		spec.RequireDPoP = f.spec.RequireDPoP
	case "name":
		spec.Name = f.spec.Name
	case "logo-uri":
		spec.LogoURI = f.spec.LogoURI
	case "client-uri":
		spec.ClientURI = f.spec.ClientURI
	case "policy-uri":
		spec.PolicyURI = f.spec.PolicyURI
	case "tos-uri":
		spec.TosURI = f.spec.TosURI
	case "id-token-alg":
		spec.IDTokenAlg = f.spec.IDTokenAlg
	case "secret":
		spec.Secret = f.spec.Secret
	case "token-endpoint-auth-method":
		spec.TokenEndpointAuthMethod = f.spec.TokenEndpointAuthMethod
	case "jwks-file":
		spec.JWKS, spec.JWKSURI = f.spec.JWKS, ""
	case "jwks-uri":
		spec.JWKSURI, spec.JWKS = f.spec.JWKSURI, ""
	case "request-uri":
		spec.RequestURIs = f.requestURIs
	case "request-object-signing-alg":
		spec.RequestObjectSigningAlg = f.spec.RequestObjectSigningAlg
	case "subject-type":
		spec.SubjectType = f.spec.SubjectType
	case "sector-identifier-uri":
		spec.SectorIdentifierURI = f.spec.SectorIdentifierURI
	}
}

// keyCommands are the rows of tonearm keys.
var keyCommands = []command{
	{name: "keys list", needs: needKeys, flags: jsonRun(func(ctx context.Context, s *services, in *input) error {
		return printList(in, s.keys.Published(), func(k *keys.Key) any { return toKeyJSON(k) },
			[]string{"KID", "ALG", "CREATED", "STATUS"}, func(k *keys.Key) []string {
				status := "signing"
				if !k.RetiredAt.IsZero() {
					status = "retired " + k.RetiredAt.UTC().Format(time.RFC3339) + ", verifying only"
				}
				return []string{k.KID, k.Alg, k.CreatedAt.UTC().Format(time.RFC3339), status}
			})
	})},
	{name: "keys rotate", needs: needKeys, flags: jsonRun(func(ctx context.Context, s *services, in *input) error {
		added, err := s.keys.Rotate(ctx)
		if err != nil {
			return err
		}
		kids := make([]string, len(added))
		for i, k := range added {
			kids[i] = k.KID
		}
		s.cliEvent(ctx, audit.KeysRotated, "", map[string]any{"added": kids})
		if in.asJSON {
			// The keys the rotation added (one per algorithm).
			out := make([]keyJSON, len(added))
			for i, k := range added {
				out[i] = toKeyJSON(k)
			}
			return printJSON(in.stdout, out)
		}
		for _, k := range added {
			fmt.Fprintf(in.stdout, "new %s signing key %s\n", k.Alg, k.KID)
		}
		_, err = fmt.Fprintln(in.stdout, "previous keys stay published until every token they signed has expired")
		return err
	})},
}
