package fositestore

import "github.com/ory/fosite"

// fosite honours response_mode only for a client that lists the modes it
// may use (fosite.ResponseModeClient); every tonearm client may use the
// query (the default of the code flow) and form_post (OAuth 2.0 Form Post
// Response Mode). The fragment mode is not offered: it carries the code
// flow's answer where scripts of the page read it, and tonearm issues no
// implicit or hybrid responses that would need it.
var responseModes = []fosite.ResponseModeType{fosite.ResponseModeDefault, fosite.ResponseModeQuery, fosite.ResponseModeFormPost}

var _ fosite.ResponseModeClient = (*Client)(nil)

// GetResponseModes implements fosite.ResponseModeClient.
func (c *Client) GetResponseModes() []fosite.ResponseModeType {
	return append([]fosite.ResponseModeType(nil), responseModes...)
}
