package storagetest

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

func sealedCases() []struct {
	name string
	fn   func(t *testing.T, s storage.Storage)
} {
	return []struct {
		name string
		fn   func(t *testing.T, s storage.Storage)
	}{
		{"ResealColumns", testResealColumns},
		{"RekeyClientHash", testRekeyClientHash},
	}
}

// testResealColumns: every sealed column is handed over with the ID its
// value is sealed to, changed values are written back, unchanged and empty
// ones are left, a second pass changes nothing, and an error writes
// nothing.
func testResealColumns(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	// Values "old:X" stand for values sealed under a previous secret; the
	// reseal below turns them into "new:X".
	u := newUser("sealed")
	u.TOTPSecret, u.ListenBrainzToken = []byte("old:totp-"+u.ID), []byte("old:lb-"+u.ID)
	mustCreate(t, s, u)
	u2 := newUser("sealed2")
	u2.TOTPSecret = []byte("old:totp-" + u2.ID)
	mustCreate(t, s, u2)
	plain := newUser("plain") // no TOTP, no ListenBrainz token
	mustCreate(t, s, plain)
	c := newConnector("sealed-upstream")
	c.ClientSecret = []byte("old:conn-" + c.ID)
	if err := s.CreateConnector(ctx, c); err != nil {
		t.Fatal(err)
	}
	k := storage.SigningKey{KID: "reseal-kid", Alg: "RS256", Sealed: []byte("old:key-reseal-kid"), CreatedAt: now}
	if _, err := s.EnsureSigningKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnsureInstanceSecret(ctx, "reseal-name", []byte("old:secret-reseal-name")); err != nil {
		t.Fatal(err)
	}
	ih := []byte{0, 0xfe, 7}
	ihID := base64.RawURLEncoding.EncodeToString(ih)
	if err := s.CreateInteraction(ctx, storage.Interaction{IDHash: ih, Binding: []byte{1}, Data: []byte("old:ix-" + ihID), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	var seen []string
	move := func(id string, v []byte) ([]byte, bool, error) {
		seen = append(seen, id)
		rest, ok := bytes.CutPrefix(v, []byte("old:"))
		if !ok {
			return v, false, nil
		}
		if !bytes.HasSuffix(rest, []byte("-"+id)) {
			t.Errorf("value %q handed over with ID %q", v, id)
		}
		return append([]byte("new:"), rest...), true, nil
	}
	resealFailureWritesNothing(t, s, u.ID, u2.ID)
	for _, col := range storage.SealedColumns {
		seen = nil
		want := 1
		if col == storage.SealedTOTPSecrets {
			want = 2
		}
		n, err := s.ResealColumn(ctx, col, move)
		if err != nil || n != want {
			t.Fatalf("ResealColumn(%s) = %d, %v; want %d changed", col, n, err, want)
		}
		for _, id := range seen {
			if id == plain.ID {
				t.Errorf("ResealColumn(%s) handed over an empty value of user %s", col, id)
			}
		}
		if n, err := s.ResealColumn(ctx, col, move); err != nil || n != 0 {
			t.Fatalf("second ResealColumn(%s) = %d, %v; want 0", col, n, err)
		}
	}
	gu, _ := s.GetUser(ctx, u.ID)
	if string(gu.TOTPSecret) != "new:totp-"+u.ID || string(gu.ListenBrainzToken) != "new:lb-"+u.ID {
		t.Errorf("user after reseal: TOTP %q, ListenBrainz %q", gu.TOTPSecret, gu.ListenBrainzToken)
	}
	if gp, _ := s.GetUser(ctx, plain.ID); gp.TOTPSecret != nil || gp.ListenBrainzToken != nil {
		t.Errorf("user without sealed values got %q, %q", gp.TOTPSecret, gp.ListenBrainzToken)
	}
	if gc, _ := s.GetConnector(ctx, c.ID); string(gc.ClientSecret) != "new:conn-"+c.ID {
		t.Errorf("connector secret after reseal = %q", gc.ClientSecret)
	}
	keys, _ := s.ListSigningKeys(ctx)
	found := false
	for _, sk := range keys {
		if sk.KID == k.KID {
			found = string(sk.Sealed) == "new:key-reseal-kid"
		}
	}
	if !found {
		t.Errorf("signing key after reseal: %+v", keys)
	}
	if v, err := s.EnsureInstanceSecret(ctx, "reseal-name", []byte("other")); err != nil || string(v) != "new:secret-reseal-name" {
		t.Errorf("instance secret after reseal = %q, %v", v, err)
	}
	if gi, err := s.GetInteraction(ctx, ih, now); err != nil || string(gi.Data) != "new:ix-"+ihID {
		t.Errorf("interaction after reseal = %q, %v", gi.Data, err)
	}
	if _, err := s.ResealColumn(ctx, "passwords", move); err == nil {
		t.Error("ResealColumn accepted a column that holds no sealed values")
	}
}

// resealFailureWritesNothing: an error midway writes nothing: the first
// value handed over and changed is not written when the second fails (the
// users' TOTP secrets, still "old:…").
func resealFailureWritesNothing(t *testing.T, s storage.Storage, users ...string) {
	ctx := context.Background()
	boom := errors.New("boom")
	calls := 0
	if _, err := s.ResealColumn(ctx, storage.SealedTOTPSecrets, func(id string, v []byte) ([]byte, bool, error) {
		if calls++; calls == 1 {
			return []byte("new:written"), true, nil
		}
		return nil, false, boom
	}); !errors.Is(err, boom) {
		t.Fatalf("ResealColumn with a failing reseal = %v, want boom", err)
	}
	for _, id := range users {
		if g, _ := s.GetUser(ctx, id); !bytes.HasPrefix(g.TOTPSecret, []byte("old:")) {
			t.Fatalf("a failed ResealColumn wrote %q", g.TOTPSecret)
		}
	}
}

// testRekeyClientHash: a hash is replaced in each column that holds it and
// nowhere else; an unknown hash changes nothing.
func testRekeyClientHash(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	c := newClient("rekeyed")
	c.SecretHash, c.OldSecretHash, c.OldSecretExpiresAt = []byte("old-secret"), []byte("old-kept"), time.Now().Add(time.Hour)
	c.RegistrationTokenHash = []byte("old-rat")
	other := newClient("untouched")
	other.SecretHash = []byte("other-secret")
	for _, cl := range []storage.Client{c, other} {
		if err := s.CreateClient(ctx, cl); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateRegistrationToken(ctx, storage.RegistrationToken{ID: "rk", TokenHash: []byte("old-iat"), CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for old, repl := range map[string]string{"old-secret": "new-secret", "old-kept": "new-kept", "old-rat": "new-rat", "old-iat": "new-iat"} {
		if n, err := s.RekeyClientHash(ctx, []byte(old), []byte(repl)); err != nil || n != 1 {
			t.Fatalf("RekeyClientHash(%s) = %d, %v; want 1", old, n, err)
		}
	}
	if n, err := s.RekeyClientHash(ctx, []byte("nobody"), []byte("x")); err != nil || n != 0 {
		t.Fatalf("RekeyClientHash(unknown) = %d, %v", n, err)
	}
	got, err := s.GetClient(ctx, c.ID)
	if err != nil || string(got.SecretHash) != "new-secret" || string(got.OldSecretHash) != "new-kept" || string(got.RegistrationTokenHash) != "new-rat" {
		t.Fatalf("client after RekeyClientHash = %q %q %q, %v", got.SecretHash, got.OldSecretHash, got.RegistrationTokenHash, err)
	}
	if o, _ := s.GetClient(ctx, other.ID); string(o.SecretHash) != "other-secret" {
		t.Fatalf("another client changed: %q", o.SecretHash)
	}
	if tok, err := s.GetRegistrationTokenByHash(ctx, []byte("new-iat"), now); err != nil || tok.ID != "rk" {
		t.Fatalf("registration token after RekeyClientHash = %+v, %v", tok, err)
	}
}
