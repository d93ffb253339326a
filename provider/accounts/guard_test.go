package accounts

import (
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/fault"
)

// Waits read as people write them: "1 second", not "1 seconds".
func TestWaitText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Second: "1 second", 500 * time.Millisecond: "1 second", 30 * time.Second: "30 seconds",
		time.Minute: "1 minute", 15 * time.Minute: "15 minutes", 61 * time.Second: "2 minutes",
	} {
		if got := waitText(d); got != want {
			t.Errorf("waitText(%s) = %q, want %q", d, got, want)
		}
	}
}

// A ThrottledError is a fault.Throttled that says how long to wait, in
// its Retry-After and in its words.
func TestThrottledIsAFault(t *testing.T) {
	err := error(&ThrottledError{RetryAfter: 1500 * time.Millisecond, Reason: "sign-ups from this address"})
	if fault.KindOf(err) != fault.Throttled || fault.WaitOf(err) != 1500*time.Millisecond {
		t.Fatalf("kind %s, wait %s", fault.KindOf(err), fault.WaitOf(err))
	}
	d, _ := fault.Find(err)
	if want := "Too many sign-ups from this address; try again in 2 seconds"; d.Message() != want {
		t.Errorf("message %q, want %q", d.Message(), want)
	}
	for te, want := range map[*ThrottledError]string{
		{RetryAfter: 15 * time.Minute}:                "Too many failed password attempts; try again in 15 minutes",
		{RetryAfter: time.Second, Account: true}:      "Too many failed sign-ins for this account from browsers it has not signed in on; try again in 1 second",
		{RetryAfter: time.Second, Reason: "attempts"}: "Too many attempts; try again in 1 second",
	} {
		if te.Message() != want {
			t.Errorf("%+v: %q, want %q", *te, te.Message(), want)
		}
	}
}
