package web

import (
	"testing"
	"time"
)

// The account-wide wait never exceeds the delay (docs/security.md: at most
// 30 s), even when the window was started by a concurrent request that read
// the clock a moment after this one: Retry-After said 31 then.
func TestAccountRetryAfterClamped(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		name  string
		start time.Time
		delay time.Duration
		want  time.Duration
	}{
		{"window started after this request read the clock", now.Add(300 * time.Millisecond), maxAccountDelay, maxAccountDelay},
		{"window started earlier", now.Add(-10 * time.Second), maxAccountDelay, 20 * time.Second},
		{"window nearly over", now.Add(-maxAccountDelay + time.Millisecond), maxAccountDelay, time.Second},
		{"short delay, concurrent start", now.Add(time.Second), 2 * time.Second, 2 * time.Second},
	} {
		got := accountRetryAfter(tc.start, tc.delay, now)
		if got != tc.want {
			t.Errorf("%s: wait %s, want %s", tc.name, got, tc.want)
		}
		if int((got+time.Second-1)/time.Second) > int(maxAccountDelay/time.Second) {
			t.Errorf("%s: Retry-After %s over %s", tc.name, got, maxAccountDelay)
		}
	}
}
