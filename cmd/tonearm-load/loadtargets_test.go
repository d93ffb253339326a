package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/storage/sqlstore"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/pgtest"
)

// The whole run command against a real tonearm on PostgreSQL: a public
// client (PKCE, no secret) gets codes, refreshes and userinfo with no
// error; the workers sign in as distinct seeded users (seen in the
// database's sessions); the server's and the database's CPU per operation
// are found from the ports alone and are positive.
func TestRunPublicClientManyUsersCPU(t *testing.T) {
	ctx := context.Background()
	dbURL := pgtest.URL(t)
	if err := seedDatabase(ctx, dbURL, "a-seeded-password", 50, 0, 1, 1, time.Hour, func(string) {}); err != nil {
		t.Fatal(err)
	}
	srv := newTestServer(t, dbURL)
	srv.cli(t, "", "clients", "create", "--id", "app", "--public", "--first-party", "--redirect-uri", "http://127.0.0.1:9/cb",
		"--scope", "openid offline_access", "--id-token-alg", "ES256")
	srv.start(t)
	for _, kind := range []string{"code", "refresh", "userinfo"} {
		var out bytes.Buffer
		err := run([]string{"-target", kind, "-issuer", srv.issuer, "-client", "app", "-users", "50", "-password", "a-seeded-password",
			"-redirect-uri", "http://127.0.0.1:9/cb", "-c", "3", "-d", "1s", "-json", "-database-url", dbURL}, &out)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		var r struct {
			OK, Failed int64
			CPU        *float64 `json:"cpu_ms_per_op"`
			DBCPU      *float64 `json:"db_cpu_ms_per_op"`
		}
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("%s: %v: %s", kind, err, out.Bytes())
		}
		if r.OK == 0 || r.Failed != 0 || r.CPU == nil || *r.CPU <= 0 || r.DBCPU == nil || *r.DBCPU <= 0 {
			t.Fatalf("%s: %s", kind, out.Bytes())
		}
		t.Logf("%s: %s", kind, bytes.TrimSpace(out.Bytes()))
	}
	store, err := sqlstore.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	users, err := store.ListUsers(ctx, storage.UserFilter{UsernamePrefix: "user", Limit: 100})
	if err != nil || len(users) != 50 {
		t.Fatalf("seeded users: %d %v", len(users), err)
	}
	var signedIn []string
	for _, u := range users {
		if s, err := store.ListUserSessions(ctx, u.ID, time.Now()); err != nil {
			t.Fatal(err)
		} else if len(s) > 0 {
			signedIn = append(signedIn, u.Username)
		}
	}
	// Worker i is user i+1 (mod 50) in every run: three people, each with
	// the browser sessions of the three runs.
	if len(signedIn) != 3 || signedIn[0] != "user0000001" || signedIn[2] != "user0000003" {
		t.Fatalf("users with sessions: %v", signedIn)
	}
}
