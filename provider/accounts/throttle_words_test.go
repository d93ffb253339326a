package accounts

import (
	"strings"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/locale"
)

// Found from outside (issue 35): the throttle message was English on every
// page. It is built from catalogued parts, which a page reads back and
// translates, the wait as a plural.
func TestThrottleMessageIsTranslated(t *testing.T) {
	cats, err := locale.Load("", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		err  *ThrottledError
		lang string
		want string
	}{
		{&ThrottledError{RetryAfter: 2 * time.Second, Account: true}, "en",
			"Too many failed sign-ins for this account from browsers it has not signed in on; try again in 2 seconds"},
		{&ThrottledError{RetryAfter: time.Second}, "en", "Too many failed password attempts; try again in 1 second"},
		{&ThrottledError{RetryAfter: 2 * time.Second}, "ja", "パスワードの入力失敗が多すぎます。2秒後にもう一度お試しください"},
		{&ThrottledError{RetryAfter: 90 * time.Second, Reason: "sign-ups from this address"}, "de", ""},
		{&ThrottledError{RetryAfter: 3 * time.Second}, "ar", ""},
	} {
		msg := c.err.Message()
		l, _ := cats.Match(c.lang)
		got := l.Lenient(msg)
		if c.want != "" && got != c.want {
			t.Errorf("%s: %q, want %q", c.lang, got, c.want)
		}
		if c.lang != "en" && (got == msg || strings.Contains(got, "Too many") || strings.Contains(got, "second") || strings.Contains(got, "minute")) {
			t.Errorf("%s: %q is still English (from %q)", c.lang, got, msg)
		}
	}
}
