package protocol

import (
	"net/url"
	"reflect"
	"testing"

	"github.com/ory/fosite"
)

// A verified object's claims become the authorization parameters fosite
// reads: strings as they are, numbers as written, lists as repeated values,
// the claims parameter (a JSON object in an object, OpenID Connect Core
// §6.1) as its JSON; the JWT's own claims are not parameters.
func TestObjectParams(t *testing.T) {
	for name, c := range map[string]struct {
		payload string
		want    url.Values
		err     *fosite.RFC6749Error
	}{
		"parameters": {
			`{"iss":"app","aud":"https://id","exp":1,"nbf":1,"iat":1,"jti":"j","sub":"s","scope":"openid","max_age":300,"resource":["https://a","https://b"],"claims":{"id_token":{"email":null}},"ui_locales":null}`,
			url.Values{"client_id": {"app"}, "scope": {"openid"}, "max_age": {"300"}, "resource": {"https://a", "https://b"}, "claims": {`{"id_token":{"email":null}}`}}, nil,
		},
		"client_id matches":     {`{"client_id":"app"}`, url.Values{"client_id": {"app"}}, nil},
		"another client_id":     {`{"client_id":"other"}`, nil, fosite.ErrInvalidRequestObject},
		"not an object":         {`["client_id"]`, nil, fosite.ErrInvalidRequestObject},
		"null":                  {`null`, nil, fosite.ErrInvalidRequestObject},
		"jti that is no string": {`{"jti":7}`, nil, fosite.ErrInvalidRequestObject},
	} {
		obj, err := objectParams([]byte(c.payload), "app")
		if c.err != nil {
			if rfc := fosite.ErrorToRFC6749Error(err); err == nil || rfc.ErrorField != c.err.ErrorField {
				t.Errorf("%s: err %v, want %s", name, err, c.err.ErrorField)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(obj.params, c.want) {
			t.Errorf("%s: %v %v, want %v", name, obj.params, err, c.want)
		}
	}
}
