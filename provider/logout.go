package provider

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"time"

	"github.com/ory/fosite/token/jwt"
)

// BackchannelLogoutEvent is the event a logout token carries (OpenID
// Connect Back-Channel Logout 1.0 §2.4).
const BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// LogoutTokenLifetime bounds how long a relying party may accept a logout
// token after it was signed.
const LogoutTokenLifetime = 2 * time.Minute

// LogoutToken signs a logout token telling clientID that subject's session
// sid has ended: iss, aud, iat, exp, jti, sub, sid and the back-channel
// event, never a nonce; typ logout+jwt; signed with the ID-token key.
//
// subject is the user ID and sid the browser session's; the token carries
// the sub and the sid clientID sees (pairwise ones for a pairwise client),
// those of its ID tokens.
func (p *Provider) LogoutToken(ctx context.Context, clientID, subject, sid string) (string, error) {
	subject, err := p.ClientSubject(ctx, clientID, subject)
	if err != nil {
		return "", err
	}
	if sid, err = p.ClientSID(ctx, clientID, sid); err != nil {
		return "", err
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	now := time.Now()
	claims := jwt.MapClaims{
		"iss": p.issuer, "aud": clientID, "iat": now.Unix(), "exp": now.Add(LogoutTokenLifetime).Unix(),
		"jti": base64.RawURLEncoding.EncodeToString(jti), "sub": subject, "sid": sid,
		"events": map[string]any{BackchannelLogoutEvent: map[string]any{}},
	}
	token, _, err := p.idSigner.Generate(ctx, claims, &jwt.Headers{Extra: map[string]interface{}{"typ": "logout+jwt"}})
	return token, err
}
