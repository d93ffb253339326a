package storagetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

// What the pages for people read and change: client display metadata, a
// user's sessions, connected apps.
func pageCases() []struct {
	name string
	fn   func(t *testing.T, s storage.Storage)
} {
	return []struct {
		name string
		fn   func(t *testing.T, s storage.Storage)
	}{
		{"ClientDisplayMetadata", testClientDisplayMetadata},
		{"UserSessions", testUserSessions},
		{"ConnectedApps", testConnectedApps},
		{"ConnectedAppsWithoutConsent", testConnectedAppsWithoutConsent},
		{"RevokeUserTokens", testRevokeUserTokens},
	}
}

func testClientDisplayMetadata(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	c := newClient("shown")
	c.Name, c.LogoURI, c.ClientURI, c.PolicyURI, c.TosURI = "Listening Party ♫", "https://app.example/logo.png",
		"https://app.example/", "https://app.example/privacy", "https://app.example/terms"
	c.RequirePAR, c.RequireDPoP = true, true
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetClient(ctx, "shown")
	if err != nil {
		t.Fatal(err)
	}
	if !got.RequirePAR || !got.RequireDPoP || got.Name != c.Name || got.LogoURI != c.LogoURI || got.ClientURI != c.ClientURI || got.PolicyURI != c.PolicyURI || got.TosURI != c.TosURI {
		t.Fatalf("GetClient = %+v, want the display metadata of %+v", got, c)
	}
	list, err := s.ListClients(ctx)
	if err != nil || len(list) != 1 || list[0].Name != c.Name {
		t.Fatalf("ListClients = %+v, %v", list, err)
	}
}

func testUserSessions(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u, other := newUser("sessions-owner"), newUser("sessions-other")
	mustCreate(t, s, u)
	mustCreate(t, s, other)
	older := newSession(u.ID, now.Add(24*time.Hour))
	older.UserAgent, older.IP = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0", "203.0.113.7"
	newer := newSession(u.ID, now.Add(24*time.Hour))
	newer.CreatedAt = now.Add(time.Minute)
	expired := newSession(u.ID, now.Add(-time.Second))
	for _, sess := range []storage.Session{older, newer, expired, newSession(other.ID, now.Add(time.Hour))} {
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.ListUserSessions(ctx, u.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	// LastUsedAt starts as CreatedAt: the newer session comes first; the
	// expired one and the other user's are not listed.
	if len(list) != 2 || list[0].SID != newer.SID || list[1].SID != older.SID {
		t.Fatalf("ListUserSessions = %+v", list)
	}
	if list[1].UserAgent != older.UserAgent || list[1].IP != older.IP || !list[1].LastUsedAt.Equal(now.UTC().Truncate(time.Microsecond)) {
		t.Fatalf("listed session = %+v, want user agent, IP and last use", list[1])
	}
	used := now.Add(2 * time.Hour)
	if err := s.TouchSession(ctx, older.IDHash, used); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchSession(ctx, []byte("missing"), used); err != nil {
		t.Fatalf("TouchSession(missing) = %v, want nil", err)
	}
	list, err = s.ListUserSessions(ctx, u.ID, now)
	if err != nil || len(list) != 2 || list[0].SID != older.SID || !list[0].LastUsedAt.Equal(used.UTC().Truncate(time.Microsecond)) {
		t.Fatalf("after TouchSession: %+v, %v", list, err)
	}
	if got, err := s.GetSession(ctx, older.IDHash); err != nil || !got.LastUsedAt.Equal(used.UTC().Truncate(time.Microsecond)) {
		t.Fatalf("GetSession after touch = %+v, %v", got, err)
	}
	if list, err := s.ListUserSessions(ctx, "nobody", now); err != nil || len(list) != 0 {
		t.Fatalf("ListUserSessions(nobody) = %+v, %v", list, err)
	}
}

func testConnectedApps(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u := newUser("user-1") // newRequest's subject
	u.ID = "user-1"
	mustCreate(t, s, u)
	for _, id := range []string{"revoked-app", "kept-app"} {
		if err := s.CreateClient(ctx, newClient(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveConsent(ctx, storage.Consent{UserID: u.ID, ClientID: "revoked-app", Scopes: []string{"openid"}, GrantedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveConsent(ctx, storage.Consent{UserID: u.ID, ClientID: "kept-app", Scopes: []string{"openid", "profile"}, GrantedAt: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListConnectedApps(ctx, u.ID, now)
	if err != nil || len(list) != 2 || !list[0].LastUsed.IsZero() || list[0].ClientID != "kept-app" || !reflect.DeepEqual(list[0].Scopes, []string{"openid", "profile"}) || list[1].ClientID != "revoked-app" {
		t.Fatalf("ListConsents = %+v, %v", list, err)
	}
	// Tokens of both apps: access (its own table), refresh, and a code.
	tokenIn(t, s, "a-revoked", "revoked-app", "sid-1")
	tokenIn(t, s, "a-kept", "kept-app", "sid-1")
	refresh := newRequest(storage.KindRefreshToken, "r-revoked", "req-r", "revoked-app", now.Add(time.Hour))
	code := newRequest(storage.KindAuthorizeCode, "c-revoked", "req-c", "revoked-app", now.Add(time.Hour))
	keptRefresh := newRequest(storage.KindRefreshToken, "r-kept", "req-rk", "kept-app", now.Add(time.Hour))
	for _, r := range []storage.OAuthRequest{refresh, code, keptRefresh} {
		if err := s.CreateOAuthRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeConsent(ctx, u.ID, "revoked-app"); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeConsent(ctx, u.ID, "revoked-app"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("RevokeConsent twice = %v, want ErrNotFound", err)
	}
	if alive(t, s, "a-revoked") || !alive(t, s, "a-kept") {
		t.Fatal("RevokeConsent must delete that app's access tokens and only those")
	}
	for kind, sig := range map[string]string{storage.KindRefreshToken: "r-revoked", storage.KindAuthorizeCode: "c-revoked"} {
		if _, err := s.GetOAuthRequest(ctx, kind, sig); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("%s of the revoked app = %v, want ErrNotFound", kind, err)
		}
	}
	if _, err := s.GetOAuthRequest(ctx, storage.KindRefreshToken, "r-kept"); err != nil {
		t.Fatalf("the other app's refresh token: %v", err)
	}
	if list, err := s.ListConnectedApps(ctx, u.ID, now); err != nil || len(list) != 1 || list[0].ClientID != "kept-app" ||
		!list[0].LastUsed.Equal(now.UTC().Truncate(time.Microsecond)) {
		t.Fatalf("ListConnectedApps after revoke = %+v, %v", list, err)
	}
}

// testConnectedAppsWithoutConsent: an app that needs no consent page
// (first-party, or a device allowed before consents were kept) but holds
// live tokens is connected all the same, and can be revoked; expired and
// rotated tokens do not count.
func testConnectedAppsWithoutConsent(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u := newUser("user-1")
	u.ID = "user-1"
	mustCreate(t, s, u)
	for _, id := range []string{"device-app", "stale-app"} {
		if err := s.CreateClient(ctx, newClient(id)); err != nil {
			t.Fatal(err)
		}
	}
	older := newRequest(storage.KindRefreshToken, "r-device-1", "req-d1", "device-app", now.Add(time.Hour))
	newer := newRequest(storage.KindRefreshToken, "r-device-2", "req-d2", "device-app", now.Add(time.Hour))
	newer.RequestedAt, newer.GrantedScopes = now.Add(time.Minute), []string{"openid", "profile"}
	expired := newRequest(storage.KindRefreshToken, "r-stale", "req-s", "stale-app", now.Add(-time.Minute))
	rotated := newRequest(storage.KindRefreshToken, "r-stale-2", "req-s2", "stale-app", now.Add(time.Hour))
	rotated.Active = false
	for _, r := range []storage.OAuthRequest{older, newer, expired, rotated} {
		if err := s.CreateOAuthRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.ListConnectedApps(ctx, u.ID, now)
	if err != nil || len(list) != 1 || list[0].ClientID != "device-app" || !reflect.DeepEqual(list[0].Scopes, []string{"openid", "profile"}) ||
		!list[0].GrantedAt.Equal(now.UTC().Truncate(time.Microsecond)) || !list[0].LastUsed.Equal(now.Add(time.Minute).UTC().Truncate(time.Microsecond)) {
		t.Fatalf("ListConnectedApps = %+v, %v; want the device app, scopes of its latest token", list, err)
	}
	if err := s.RevokeConsent(ctx, u.ID, "device-app"); err != nil {
		t.Fatalf("revoking an app with tokens and no consent: %v", err)
	}
	if list, err := s.ListConnectedApps(ctx, u.ID, now); err != nil || len(list) != 0 {
		t.Fatalf("after revoking: %+v, %v", list, err)
	}
	if err := s.RevokeConsent(ctx, u.ID, "device-app"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("revoking it again = %v, want ErrNotFound", err)
	}
}

// testRevokeUserTokens: every app's tokens of the user go, sessionless
// (device) ones included, but those of the kept browser session; other
// users' tokens stay.
func testRevokeUserTokens(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u := newUser("user-1")
	u.ID = "user-1"
	mustCreate(t, s, u)
	other := newUser("someone-else")
	mustCreate(t, s, other)
	for _, id := range []string{"web", "device"} {
		if err := s.CreateClient(ctx, newClient(id)); err != nil {
			t.Fatal(err)
		}
	}
	tokenIn(t, s, "a-here", "web", "sid-here")
	tokenIn(t, s, "a-there", "web", "sid-there")
	tokenIn(t, s, "a-device", "device", "")
	theirs := newRequest(storage.KindAccessToken, "a-theirs", "req-theirs", "web", now.Add(time.Hour))
	theirs.Subject = other.ID
	refreshHere := newRequest(storage.KindRefreshToken, "r-here", "req-rh", "web", now.Add(time.Hour))
	refreshHere.SID = "sid-here"
	refreshDevice := newRequest(storage.KindRefreshToken, "r-device", "req-rd", "device", now.Add(time.Hour))
	for _, r := range []storage.OAuthRequest{theirs, refreshHere, refreshDevice} {
		if err := s.CreateOAuthRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.RevokeUserTokens(ctx, u.ID, "sid-here")
	if err != nil || n != 3 {
		t.Fatalf("RevokeUserTokens keeping sid-here = %d, %v; want 3", n, err)
	}
	if !alive(t, s, "a-here") || alive(t, s, "a-there") || alive(t, s, "a-device") || !alive(t, s, "a-theirs") {
		t.Fatal("RevokeUserTokens kept the wrong access tokens")
	}
	if _, err := s.GetOAuthRequest(ctx, storage.KindRefreshToken, "r-here"); err != nil {
		t.Fatalf("the kept session's refresh token: %v", err)
	}
	if _, err := s.GetOAuthRequest(ctx, storage.KindRefreshToken, "r-device"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the device's refresh token = %v, want gone", err)
	}
	if n, err := s.RevokeUserTokens(ctx, u.ID, ""); err != nil || n != 2 || alive(t, s, "a-here") || !alive(t, s, "a-theirs") {
		t.Fatalf("RevokeUserTokens keeping nothing = %d, %v", n, err)
	}
}
