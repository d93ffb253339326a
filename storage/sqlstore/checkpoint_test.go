package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/glebarez/sqlite"
)

// Committed tokens reach the database file itself, not only the
// write-ahead log, without any write checkpointing them: the checkpointer
// copies the log back in the background (the writer's own checkpoint
// waits for 4,000 pages of log, far more than these writes make).
func TestCheckpointerCopiesTheLogIntoTheDatabase(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "t.db")
	s, err := Open(context.Background(), "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := s.CreateOAuthRequest(context.Background(), token(i)); err != nil {
			t.Fatal(err)
		}
	}
	// The database file alone, copied aside without its log, holds the
	// 50 rows once a checkpoint has run.
	inFile := func() int {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		copyPath := filepath.Join(dir, fmt.Sprintf("copy-%d.db", time.Now().UnixNano()))
		if err := os.WriteFile(copyPath, b, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open(sqlite.DriverName, "file:"+copyPath)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRow("SELECT count(*) FROM oauth2_requests").Scan(&n); err != nil {
			return -1 // a copy taken in the middle of a checkpoint, or before the tables reached the file
		}
		return n
	}
	deadline := time.Now().Add(5 * time.Second)
	n := inFile()
	for n != 50 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		n = inFile()
	}
	if n != 50 {
		t.Fatalf("the database file holds %d of the 50 committed rows after 5 s: the log was not checkpointed", n)
	}
	if err := s.Close(); err != nil { // and the checkpointer stops with the store
		t.Fatal(err)
	}
}
