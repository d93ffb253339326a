package totp

import (
	"testing"
	"time"
)

// RFC 6238 Appendix B, SHA-1 (8 digits there; the last 6 here).
func TestRFC6238Vectors(t *testing.T) {
	secret := []byte("12345678901234567890")
	for _, c := range []struct {
		unix int64
		want string
	}{
		{59, "287082"}, {1111111109, "081804"}, {1111111111, "050471"}, {1234567890, "005924"}, {2000000000, "279037"}, {20000000000, "353130"},
	} {
		if got := Code(secret, Step(time.Unix(c.unix, 0))); got != c.want {
			t.Errorf("T=%d: %s, want %s", c.unix, got, c.want)
		}
	}
}

func TestMatchSkewAndReplay(t *testing.T) {
	secret := NewSecret()
	now := time.Unix(1_800_000_000, 0)
	cur := Step(now)
	for _, c := range []struct {
		name  string
		step  int64
		after int64
		ok    bool
	}{
		{"now", cur, 0, true}, {"one step early", cur - 1, 0, true}, {"one step late", cur + 1, 0, true},
		{"two steps early", cur - 2, 0, false}, {"two steps late", cur + 2, 0, false},
		{"already used", cur, cur, false}, {"an older step after a newer one was used", cur - 1, cur, false},
	} {
		step, ok := Match(secret, Code(secret, c.step), now, c.after)
		if ok != c.ok || (ok && step != c.step) {
			t.Errorf("%s: Match = %d, %v", c.name, step, ok)
		}
	}
	if _, ok := Match(secret, "12345", now, 0); ok {
		t.Error("a 5-digit code matched")
	}
	if _, ok := Match(secret, Code(secret, cur)[:3]+" "+Code(secret, cur)[3:], now, 0); !ok {
		t.Error("a code typed with a space did not match")
	}
	if u := URI("tonearm", "ada@x", []byte("12345678901234567890")); u != "otpauth://totp/tonearm:ada@x?algorithm=SHA1&digits=6&issuer=tonearm&period=30&secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" {
		t.Errorf("URI = %s", u)
	}
}
