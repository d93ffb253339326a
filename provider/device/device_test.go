package device

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/storage/sqlstore"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/sqlitetest"
)

// clock is a test clock that moves only when told.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// newCodes returns codes over a real SQLite store with a client "tv" and a
// user, on a clock the test moves.
func newCodes(t *testing.T) (*Codes, *sqlstore.Store, *clock, string) {
	t.Helper()
	store := sqlitetest.Open(t)
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	ctx := context.Background()
	if err := store.CreateClient(ctx, storage.Client{ID: "tv", GrantTypes: []string{"urn:ietf:params:oauth:grant-type:device_code"},
		Scopes: []string{"openid", "profile"}, CreatedAt: c.t}); err != nil {
		t.Fatal(err)
	}
	u := storage.User{ID: "u-1", Username: "couch", Role: storage.RoleUser, CreatedAt: c.t, UpdatedAt: c.t}
	if err := store.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	codes, err := New(store, bytes.Repeat([]byte("k"), 32), c.now)
	if err != nil {
		t.Fatal(err)
	}
	return codes, store, c, u.ID
}

func TestNewRefusesMissingStoreOrShortKey(t *testing.T) {
	t.Parallel()
	if _, err := New(nil, make([]byte, 32), nil); err == nil {
		t.Error("no store accepted")
	}
	if _, err := New(sqlitetest.Open(t), make([]byte, 31), nil); err == nil {
		t.Error("a 31-byte key accepted")
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	for typed, want := range map[string]string{
		"BCDF-GHJK":    "BCDFGHJK",
		"bcdf ghjk":    "BCDFGHJK",
		" b-c-d-fghjk": "BCDFGHJK",
	} {
		if got, ok := Normalize(typed); !ok || got != want {
			t.Errorf("Normalize(%q) = %q %v, want %q", typed, got, ok, want)
		}
	}
	for _, typed := range []string{"", "BCDF-GHJ", "BCDF-GHJKL", "ABCD-EFGH" /* vowels are not in the alphabet */, "BCDF-GHJ1", "BCDF_GHJK"} {
		if got, ok := Normalize(typed); ok {
			t.Errorf("Normalize(%q) = %q, accepted", typed, got)
		}
	}
}

func TestStartStoresOnlyHashes(t *testing.T) {
	t.Parallel()
	codes, store, _, _ := newCodes(t)
	ctx := context.Background()
	a, err := codes.Start(ctx, "tv", []string{"openid"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.ExpiresIn != Lifespan || a.Interval != Interval || len(a.UserCode) != UserCodeLength+1 || a.UserCode[4] != '-' {
		t.Fatalf("authorization = %+v", a)
	}
	raw, _ := Normalize(a.UserCode)
	for _, r := range raw {
		if !strings.ContainsRune(Alphabet, r) {
			t.Fatalf("user code %q has %q, outside the alphabet", a.UserCode, r)
		}
	}
	// The store is keyed by hashes: the plain user code finds nothing,
	// and what is stored is neither code.
	if _, err := store.GetDeviceCodeByUserCode(ctx, []byte(raw)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the plain user code finds a row: %v", err)
	}
	d, err := store.GetDeviceCodeByUserCode(ctx, codes.hash("user", raw))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(d.DeviceCodeHash, []byte(a.DeviceCode)) || bytes.Equal(d.UserCodeHash, []byte(raw)) || d.ClientID != "tv" {
		t.Fatalf("stored row = %+v", d)
	}
	// Another key does not find the row: the hash is keyed.
	other, _ := New(store, bytes.Repeat([]byte("o"), 32), nil)
	if _, err := other.Lookup(ctx, a.UserCode); !errors.Is(err, ErrNotFound) {
		t.Fatalf("lookup under another key = %v", err)
	}
	if b, _ := codes.Start(ctx, "tv", nil, nil); b.DeviceCode == a.DeviceCode || b.UserCode == a.UserCode {
		t.Fatal("two authorizations share a code")
	}
}

func TestLookupDecidePollConsume(t *testing.T) {
	t.Parallel()
	codes, _, clk, userID := newCodes(t)
	ctx := context.Background()
	a, err := codes.Start(ctx, "tv", []string{"openid", "profile"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// What a person types: lower case, spaces instead of the dash.
	typed := strings.ToLower(strings.Replace(a.UserCode, "-", " ", 1))
	if d, err := codes.Lookup(ctx, typed); err != nil || d.Status != storage.DevicePending || d.ClientID != "tv" {
		t.Fatalf("lookup = %+v %v", d, err)
	}
	for _, wrong := range []string{"", "nonsense", "BCDF-GHJK"} {
		if _, err := codes.Lookup(ctx, wrong); !errors.Is(err, ErrNotFound) {
			t.Errorf("lookup(%q) = %v", wrong, err)
		}
		if err := codes.Decide(ctx, wrong, userID, nil, clk.t, nil); !errors.Is(err, ErrNotFound) {
			t.Errorf("decide(%q) = %v", wrong, err)
		}
	}
	// Pending: a poll says so; a second poll within the interval is too
	// fast (RFC 8628 §3.5 slow_down), one after it is not.
	if d, fast, err := codes.Poll(ctx, a.DeviceCode); err != nil || fast || d.Status != storage.DevicePending {
		t.Fatalf("first poll = %+v %v %v", d, fast, err)
	}
	if _, fast, err := codes.Poll(ctx, a.DeviceCode); err != nil || !fast {
		t.Fatalf("an immediate second poll: fast=%v %v", fast, err)
	}
	clk.t = clk.t.Add(Interval + 5*time.Second + time.Second) // the interval grew by 5 s
	if _, fast, err := codes.Poll(ctx, a.DeviceCode); err != nil || fast {
		t.Fatalf("a poll after the grown interval: fast=%v %v", fast, err)
	}
	if _, _, err := codes.Poll(ctx, "not-a-device-code"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("poll of an unknown code = %v", err)
	}
	if err := codes.Consume(ctx, a.DeviceCode); !errors.Is(err, ErrNotFound) {
		t.Fatalf("consuming a pending code = %v", err)
	}
	authTime := clk.t.Add(-time.Minute)
	if err := codes.Decide(ctx, a.UserCode, userID, []string{"openid"}, authTime, []string{"pwd"}); err != nil {
		t.Fatal(err)
	}
	// Decided: no longer found by its user code, not decided twice.
	if _, err := codes.Lookup(ctx, a.UserCode); !errors.Is(err, ErrNotFound) {
		t.Fatalf("lookup after the decision = %v", err)
	}
	if err := codes.Decide(ctx, a.UserCode, "", nil, clk.t, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a second decision = %v", err)
	}
	clk.t = clk.t.Add(time.Minute)
	d, _, err := codes.Poll(ctx, a.DeviceCode)
	if err != nil || d.Status != storage.DeviceApproved || d.UserID != userID || len(d.GrantedScopes) != 1 || len(d.AMR) != 1 || d.AMR[0] != "pwd" {
		t.Fatalf("poll after approval = %+v %v", d, err)
	}
	// Tokens once.
	if err := codes.Consume(ctx, a.DeviceCode); err != nil {
		t.Fatal(err)
	}
	if err := codes.Consume(ctx, a.DeviceCode); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a second consume = %v", err)
	}
}

func TestDeniedAndExpired(t *testing.T) {
	t.Parallel()
	codes, _, clk, userID := newCodes(t)
	ctx := context.Background()
	denied, _ := codes.Start(ctx, "tv", nil, nil)
	if err := codes.Decide(ctx, denied.UserCode, "", nil, time.Time{}, nil); err != nil {
		t.Fatal(err)
	}
	if d, _, err := codes.Poll(ctx, denied.DeviceCode); err != nil || d.Status != storage.DeviceDenied || d.UserID != "" {
		t.Fatalf("denied = %+v %v", d, err)
	}
	if err := codes.Consume(ctx, denied.DeviceCode); !errors.Is(err, ErrNotFound) {
		t.Fatalf("consuming a denied code = %v", err)
	}

	late, _ := codes.Start(ctx, "tv", nil, nil)
	clk.t = clk.t.Add(Lifespan - time.Second)
	if _, err := codes.Lookup(ctx, late.UserCode); err != nil {
		t.Fatalf("a second before expiry = %v", err)
	}
	clk.t = clk.t.Add(time.Second)
	if _, err := codes.Lookup(ctx, late.UserCode); !errors.Is(err, ErrNotFound) {
		t.Fatalf("lookup at expiry = %v", err)
	}
	if err := codes.Decide(ctx, late.UserCode, userID, nil, clk.t, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("approval at expiry = %v", err)
	}
	if !codes.Now().Equal(clk.t) {
		t.Fatal("Now is not the injected clock")
	}
}
