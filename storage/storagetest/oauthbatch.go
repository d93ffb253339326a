package storagetest

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

// testCreateOAuthRequests: a code's rows are stored together, all or none
// (one statement, issue 36): a duplicate among them stores none of the
// others, so there is never a code without its PKCE challenge.
func testCreateOAuthRequests(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	exp := now.Add(time.Hour)
	rows := []storage.OAuthRequest{
		newRequest(storage.KindAuthorizeCode, "code-1", "req-b1", "web-app", exp),
		newRequest(storage.KindPKCE, "code-1", "req-b1", "web-app", exp),
		newRequest(storage.KindOpenID, "raw-code-1", "req-b1", "web-app", exp),
	}
	if err := s.CreateOAuthRequests(ctx, rows); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		got, err := s.GetOAuthRequest(ctx, r.Kind, r.Signature)
		if err != nil || got.RequestID != "req-b1" || !got.Active {
			t.Fatalf("%s after CreateOAuthRequests: %+v, %v", r.Kind, got, err)
		}
	}
	// The second code's OpenID row collides with the first's: nothing of
	// the second code may be stored.
	again := []storage.OAuthRequest{
		newRequest(storage.KindAuthorizeCode, "code-2", "req-b2", "web-app", exp),
		newRequest(storage.KindPKCE, "code-2", "req-b2", "web-app", exp),
		newRequest(storage.KindOpenID, "raw-code-1", "req-b2", "web-app", exp),
	}
	if err := s.CreateOAuthRequests(ctx, again); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("duplicate in a batch = %v, want ErrAlreadyExists", err)
	}
	for _, r := range again[:2] {
		if _, err := s.GetOAuthRequest(ctx, r.Kind, r.Signature); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("%s of a failed batch was stored: %v", r.Kind, err)
		}
	}
	if got, _ := s.GetOAuthRequest(ctx, storage.KindOpenID, "raw-code-1"); got.RequestID != "req-b1" {
		t.Fatalf("the failed batch changed the existing row: %+v", got)
	}
	// An access token and its refresh token (two tables) go together too,
	// all or none.
	reqID := "0190f3a2-7c1e-7a3b-9f00-0000000000b3"
	pair := []storage.OAuthRequest{
		newRequest(storage.KindAccessToken, strings.Repeat("b3b3", 16), reqID, "web-app", exp),
		newRequest(storage.KindRefreshToken, "rt-b3", reqID, "web-app", exp),
	}
	if err := s.CreateOAuthRequests(ctx, pair); err != nil {
		t.Fatal(err)
	}
	for _, r := range pair {
		if got, err := s.GetOAuthRequest(ctx, r.Kind, r.Signature); err != nil || got.RequestID != reqID {
			t.Fatalf("%s after CreateOAuthRequests: %+v, %v", r.Kind, got, err)
		}
	}
	clash := []storage.OAuthRequest{
		newRequest(storage.KindAccessToken, strings.Repeat("b4b4", 16), reqID, "web-app", exp),
		newRequest(storage.KindRefreshToken, "rt-b3", reqID, "web-app", exp),
	}
	if err := s.CreateOAuthRequests(ctx, clash); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("duplicate refresh token in a batch = %v, want ErrAlreadyExists", err)
	}
	if _, err := s.GetOAuthRequest(ctx, storage.KindAccessToken, strings.Repeat("b4b4", 16)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the access token of a failed batch was stored: %v", err)
	}
	if _, err := s.GetOAuthRequest(ctx, storage.KindAccessToken, strings.Repeat("b5b5", 16)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("lookup: %v", err)
	}
}

// testGetOAuthRequestsBySignature: one read returns the rows of the kinds
// asked for under one signature, and nothing of another signature or kind.
func testGetOAuthRequestsBySignature(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	exp := now.Add(time.Hour)
	for _, r := range []storage.OAuthRequest{
		newRequest(storage.KindAuthorizeCode, "code-s", "req-s", "web-app", exp),
		newRequest(storage.KindPKCE, "code-s", "req-s", "web-app", exp),
		newRequest(storage.KindOpenID, "code-s", "req-s", "web-app", exp),
		newRequest(storage.KindPKCE, "code-t", "req-t", "web-app", exp),
	} {
		if err := s.CreateOAuthRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.GetOAuthRequestsBySignature(ctx, "code-s", []string{storage.KindAuthorizeCode, storage.KindPKCE})
	if err != nil || len(got) != 2 {
		t.Fatalf("GetOAuthRequestsBySignature = %d rows, %v; want the code and its challenge", len(got), err)
	}
	kinds := map[string]bool{}
	for _, r := range got {
		want, _ := s.GetOAuthRequest(ctx, r.Kind, "code-s")
		if !reflect.DeepEqual(r, want) {
			t.Fatalf("%s: %+v\nwant %+v", r.Kind, r, want)
		}
		kinds[r.Kind] = true
	}
	if !kinds[storage.KindAuthorizeCode] || !kinds[storage.KindPKCE] {
		t.Fatalf("kinds read: %v", kinds)
	}
	if got, err := s.GetOAuthRequestsBySignature(ctx, "code-t", []string{storage.KindAuthorizeCode}); err != nil || len(got) != 0 {
		t.Fatalf("another kind's row read: %+v, %v", got, err)
	}
}

// testSpendOAuthRequest: spending a code deactivates it and deletes its
// challenge; of two spends only the first passes, and the second deletes
// nothing.
func testSpendOAuthRequest(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	exp := now.Add(time.Hour)
	for _, r := range []storage.OAuthRequest{
		newRequest(storage.KindAuthorizeCode, "code-p", "req-p", "web-app", exp),
		newRequest(storage.KindPKCE, "code-p", "req-p", "web-app", exp),
	} {
		if err := s.CreateOAuthRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SpendOAuthRequest(ctx, storage.KindAuthorizeCode, "code-p", storage.KindPKCE); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetOAuthRequest(ctx, storage.KindAuthorizeCode, "code-p"); err != nil || got.Active {
		t.Fatalf("spent code: %+v, %v", got, err)
	}
	if _, err := s.GetOAuthRequest(ctx, storage.KindPKCE, "code-p"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("challenge of a spent code: %v", err)
	}
	// A row under the challenge's key again: a failed second spend leaves it.
	if err := s.CreateOAuthRequest(ctx, newRequest(storage.KindPKCE, "code-p", "req-p", "web-app", exp)); err != nil {
		t.Fatal(err)
	}
	if err := s.SpendOAuthRequest(ctx, storage.KindAuthorizeCode, "code-p", storage.KindPKCE); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second spend = %v, want ErrNotFound", err)
	}
	if _, err := s.GetOAuthRequest(ctx, storage.KindPKCE, "code-p"); err != nil {
		t.Fatalf("a failed spend deleted: %v", err)
	}
}

// testRotateOAuthRequestFamily: a rotation deactivates the refresh token
// and deletes its family's access tokens; a second rotation (no grace)
// fails and deletes nothing.
func testRotateOAuthRequestFamily(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	exp := now.Add(time.Hour)
	reqID := "0190f3a2-7c1e-7a3b-9f00-0000000000f1"
	access := func(sig string) storage.OAuthRequest {
		return newRequest(storage.KindAccessToken, strings.Repeat(sig, 16), reqID, "web-app", exp)
	}
	for _, r := range []storage.OAuthRequest{
		newRequest(storage.KindRefreshToken, "rt-f", reqID, "web-app", exp), access("a1b2"),
		newRequest(storage.KindAccessToken, strings.Repeat("c3d4", 16), "0190f3a2-7c1e-7a3b-9f00-0000000000f2", "web-app", exp),
	} {
		if err := s.CreateOAuthRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RotateOAuthRequestFamily(ctx, storage.KindRefreshToken, "rt-f", reqID, now, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetOAuthRequest(ctx, storage.KindRefreshToken, "rt-f"); err != nil || got.Active || got.RotatedAt.IsZero() {
		t.Fatalf("rotated token: %+v, %v", got, err)
	}
	if _, err := s.GetOAuthRequest(ctx, storage.KindAccessToken, strings.Repeat("a1b2", 16)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("access token of a rotated family: %v", err)
	}
	if _, err := s.GetOAuthRequest(ctx, storage.KindAccessToken, strings.Repeat("c3d4", 16)); err != nil {
		t.Fatalf("another family's access token: %v", err)
	}
	if err := s.CreateOAuthRequest(ctx, access("e5f6")); err != nil {
		t.Fatal(err)
	}
	if err := s.RotateOAuthRequestFamily(ctx, storage.KindRefreshToken, "rt-f", reqID, now, time.Time{}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second rotation = %v, want ErrNotFound", err)
	}
	if _, err := s.GetOAuthRequest(ctx, storage.KindAccessToken, strings.Repeat("e5f6", 16)); err != nil {
		t.Fatalf("a failed rotation deleted: %v", err)
	}
	// Within the grace period the retry passes and the family's access
	// tokens go, as on the first use.
	if err := s.RotateOAuthRequestFamily(ctx, storage.KindRefreshToken, "rt-f", reqID, now, now.Add(-time.Minute)); err != nil {
		t.Fatalf("retry within grace: %v", err)
	}
	if _, err := s.GetOAuthRequest(ctx, storage.KindAccessToken, strings.Repeat("e5f6", 16)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("access token after a retry within grace: %v", err)
	}
}

// testTakeOAuthRequest: a take returns the row and removes it; a second
// take finds nothing.
func testTakeOAuthRequest(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	r := newRequest(storage.KindOpenID, "raw-code-t", "req-t", "web-app", now.Add(time.Hour))
	if err := s.CreateOAuthRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	want, _ := s.GetOAuthRequest(ctx, storage.KindOpenID, "raw-code-t")
	got, err := s.TakeOAuthRequest(ctx, storage.KindOpenID, "raw-code-t")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("TakeOAuthRequest = %+v, %v\nwant %+v", got, err, want)
	}
	if _, err := s.GetOAuthRequest(ctx, storage.KindOpenID, "raw-code-t"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("after take: %v", err)
	}
	if _, err := s.TakeOAuthRequest(ctx, storage.KindOpenID, "raw-code-t"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second take = %v, want ErrNotFound", err)
	}
}
