package connectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/oauth2"

	"github.com/tonearm-idp/tonearm/storage"
)

// musicBrainz is MusicBrainz's OAuth2 server
// (https://musicbrainz.org/doc/Development/OAuth2): the authorization code
// flow at {base}/oauth2/authorize and /oauth2/token, the person from
// /oauth2/userinfo. It is not OpenID: there is no ID token, the userinfo
// answer (over TLS, with the access token just issued) is the assertion.
type musicBrainz struct {
	base   string
	config oauth2.Config
	client *http.Client
}

func newMusicBrainz(c storage.Connector, secret, redirect string, client *http.Client) *musicBrainz {
	scopes := []string{"profile"}
	for _, s := range c.Scopes {
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	return &musicBrainz{base: c.BaseURL, client: client, config: oauth2.Config{
		ClientID: c.ClientID, ClientSecret: secret, RedirectURL: redirect, Scopes: scopes,
		Endpoint: oauth2.Endpoint{
			AuthURL: c.BaseURL + "/oauth2/authorize", TokenURL: c.BaseURL + "/oauth2/token",
			// MusicBrainz reads the client's credentials from the form.
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}}
}

func (m *musicBrainz) authURL(round Round) string {
	return m.config.AuthCodeURL(round.State, oauth2.S256ChallengeOption(round.Verifier))
}

// mbUserinfo is MusicBrainz's userinfo answer: sub is the MetaBrainz
// username, metabrainz_user_id the account's stable number.
type mbUserinfo struct {
	Sub              string      `json:"sub"`
	MetaBrainzUserID json.Number `json:"metabrainz_user_id"`
	Email            string      `json:"email"`
	EmailVerified    bool        `json:"email_verified"`
}

func (m *musicBrainz) exchange(ctx context.Context, code string, round Round) (Identity, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, m.client)
	tok, err := m.config.Exchange(ctx, code, oauth2.VerifierOption(round.Verifier))
	if err != nil {
		return Identity{}, tokenError(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.base+"/oauth2/userinfo", nil)
	if err != nil {
		return Identity{}, err
	}
	tok.SetAuthHeader(req)
	req.Header.Set("Accept", "application/json")
	resp, err := m.client.Do(req)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: userinfo: %v", ErrUpstream, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Identity{}, fmt.Errorf("%w: userinfo answered %d", ErrUpstream, resp.StatusCode)
	}
	var info mbUserinfo
	dec := json.NewDecoder(io.LimitReader(resp.Body, 1<<20))
	dec.UseNumber()
	if err := dec.Decode(&info); err != nil {
		return Identity{}, fmt.Errorf("%w: userinfo: %v", ErrUpstream, err)
	}
	id := strings.TrimSpace(info.MetaBrainzUserID.String())
	if _, err := info.MetaBrainzUserID.Int64(); err != nil || id == "" || info.Sub == "" {
		return Identity{}, fmt.Errorf("%w: userinfo lacks metabrainz_user_id or sub", ErrRejected)
	}
	return Identity{Issuer: m.base, Subject: id, Username: info.Sub, Email: info.Email, EmailVerified: info.EmailVerified && info.Email != ""}, nil
}

// tokenError sorts a failed code exchange: the upstream refusing the code
// is a rejected answer; anything else means it could not be used.
func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode >= 400 && re.Response.StatusCode < 500 {
		return fmt.Errorf("%w: the token endpoint refused the code (%s)", ErrRejected, re.ErrorCode)
	}
	return fmt.Errorf("%w: token endpoint: %v", ErrUpstream, err)
}
