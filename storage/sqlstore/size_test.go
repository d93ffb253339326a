package sqlstore_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tonearm-idp/tonearm/storage"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/pgtest"
)

// The stored size of an access token (table and indexes, PostgreSQL),
// with values as the provider writes them for a user signed in through the
// code flow (user ID, sid, three scopes, an API audience): a guard against
// rows growing back. Client-credentials tokens take under 400 bytes (SPEC);
// such user tokens about 465.
func TestAccessTokenStoredSize(t *testing.T) {
	s := openMigrated(t, pgtest.URL(t))
	ctx := context.Background()
	const n = 5000
	now := time.Now()
	users := make([]string, 100) // each with 50 live tokens
	for i := range users {
		users[i] = uuid.NewString()
	}
	for i := 0; i < n; i++ {
		raw := make([]byte, 48)
		_, _ = rand.Read(raw)
		sum := sha256.Sum256(raw)
		user := users[i%len(users)]
		err := s.CreateOAuthRequest(ctx, storage.OAuthRequest{
			Kind: storage.KindAccessToken, Signature: hex.EncodeToString(sum[:]), RequestID: uuid.NewString(),
			RequestedAt: now, ClientID: "web-app", Subject: user, SID: "3q2-7Fh0QmSgKd1WzJpX9A",
			GrantedScopes: []string{"openid", "profile", "listens:read"}, GrantedAudience: []string{"https://api.example.org/listens"},
			Session: []byte(fmt.Sprintf(`{"v":1,"u":"listener%05d","a":%d}`, i, now.Unix())),
			Active:  true, ExpiresAt: now.Add(time.Hour),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	db, err := s.SQLDB()
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(ctx, "SELECT relname, pg_relation_size(oid) FROM pg_class WHERE relname LIKE 'access_tokens%'")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		var size int64
		_ = rows.Scan(&name, &size)
		t.Logf("%s: %d bytes a token", name, size/n)
	}
	rows.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "VACUUM ANALYZE access_tokens"); err != nil {
		t.Fatal(err)
	}
	var total int64
	if err := db.QueryRowContext(ctx, "SELECT pg_total_relation_size('access_tokens')").Scan(&total); err != nil {
		t.Fatal(err)
	}
	perToken := total / n
	t.Logf("%d access tokens take %d bytes: %d each", n, total, perToken)
	if perToken > 480 {
		t.Fatalf("a user's access token takes %d bytes, want at most 480", perToken)
	}
}
