package fault

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

var errTaken = New(Conflict, "store: taken").Saying("That name is taken")

// Sentinels keep working with errors.Is through wrapping and through the
// copies Saying, On and After make of a fresh error.
func TestSentinels(t *testing.T) {
	wrapped := fmt.Errorf("create: %w", errTaken)
	if !errors.Is(wrapped, errTaken) || KindOf(wrapped) != Conflict || !Is(wrapped, Conflict) {
		t.Fatalf("wrapped sentinel: Is %v, kind %s", errors.Is(wrapped, errTaken), KindOf(wrapped))
	}
	if errTaken.Error() != "store: taken" || errTaken.Message() != "That name is taken" {
		t.Errorf("text %q, message %q", errTaken.Error(), errTaken.Message())
	}
	cause := errors.New("driver said no")
	e := Errorf(Invalid, "field %q: %w", "name", cause).On("name")
	if !errors.Is(e, cause) || e.Field() != "name" || e.Message() != `field "name": driver said no` {
		t.Errorf("Errorf: Is %v, field %q, message %q", errors.Is(e, cause), e.Field(), e.Message())
	}
	other := errors.New("and this")
	if two := Errorf(Invalid, "%w, %w", cause, other); !errors.Is(two, cause) || !errors.Is(two, other) || KindOf(two) != Invalid {
		t.Errorf("two causes: %v", two)
	}
	if Errorf(Invalid, "no cause").Unwrap() != nil {
		t.Error("Errorf without %w wraps something")
	}
	if KindOf(errors.New("plain")) != Internal || Is(nil, Internal) || WaitOf(errTaken) != 0 {
		t.Error("an error without a kind is Internal, nil is nothing, a conflict has no wait")
	}
}

// An Unavailable error decides the answer wherever it sits in the tree;
// otherwise the first kind found does.
func TestFindPrefersUnavailable(t *testing.T) {
	gone := New(Unavailable, "db gone").After(5 * time.Second)
	for name, err := range map[string]error{
		"joined":          errors.Join(errTaken, fmt.Errorf("x: %w", gone)),
		"wrapped twice":   fmt.Errorf("%w: %w", errTaken, gone),
		"inside a custom": fmt.Errorf("a: %w", fmt.Errorf("b: %w", gone)),
	} {
		if d, ok := Find(err); !ok || d != gone || WaitOf(err) != 5*time.Second {
			t.Errorf("%s: found %v", name, d)
		}
	}
	if d, _ := Find(fmt.Errorf("%w: %w", errTaken, New(NotFound, "nf"))); d != errTaken {
		t.Errorf("first kind: %v", d)
	}
}
