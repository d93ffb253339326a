package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"testing"

	"github.com/tonearm-idp/tonearm/storage/sqlstore"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/pgtest"
)

// releasedMigrations is schema_migrations as the releases with two
// migration trees (migrations/postgres, migrations/sqlite) left it, on
// both databases. It is frozen: a database they migrated must be found up
// to date, so the single list must record the same versions under the
// same names. Append new migrations; never edit these.
var releasedMigrations = []string{
	"1 0001_users_sessions.sql", "2 0002_oauth2.sql", "3 0003_accounts.sql", "4 0004_email_verifications.sql",
	"5 0005_login_failures.sql", "6 0006_apis.sql", "7 0007_logout_pkce.sql", "8 0008_backchannel.sql",
	"9 0009_events.sql", "10 0010_prefix_indexes.sql", "11 0011_drop_subject_index.sql", "12 0012_access_tokens.sql",
	"13 0013_pages.sql", "14 0014_lean_access_tokens.sql", "15 0015_par.sql", "16 0016_device_codes.sql",
	"17 0017_passkeys.sql", "18 0018_api_introspectors.sql", "19 0019_client_secret_rotation.sql",
	"20 0020_client_id_token_alg.sql", "21 0021_connectors.sql", "22 0022_second_factor.sql",
	"23 0023_developer_apps.sql", "24 0024_device_amr.sql", "25 0025_client_keys.sql",
	"26 0026_instance_secrets.sql",
}

// TestMigrateUpgradesReleasedDatabases: the single migration list keeps the
// bookkeeping of the two trees it replaced, and a database of an earlier
// release gets exactly the migrations it lacks and ends with the schema of
// a new one.
func TestMigrateUpgradesReleasedDatabases(t *testing.T) {
	for name, newURL := range map[string]func(*testing.T) string{"sqlite": sqliteURL, "postgres": func(t *testing.T) string { return pgtest.URL(t) }} {
		t.Run(name, func(t *testing.T) {
			url := newURL(t)
			s := openMigrated(t, url)
			recorded := migrationRows(t, s)
			if !reflect.DeepEqual(recorded[:min(len(recorded), len(releasedMigrations))], releasedMigrations) {
				t.Fatalf("schema_migrations = %q\nwant it to begin with the released %q", recorded, releasedMigrations)
			}
			// The release before 0024: its column, 0025's to 0029's and their rows gone.
			exec(t, s, "ALTER TABLE device_codes DROP COLUMN amr")
			exec(t, s, "ALTER TABLE users DROP COLUMN language")
			for _, col := range []string{"token_endpoint_auth_method", "jwks", "jwks_uri", "request_uris", "request_object_signing_alg", "subject_type", "sector_identifier_uri", "require_dpop"} {
				exec(t, s, "ALTER TABLE clients DROP COLUMN "+col)
			}
			exec(t, s, "ALTER TABLE apis DROP COLUMN exchange_from")
			exec(t, s, "DROP TABLE used_jtis")
			exec(t, s, "DROP TABLE instance_secrets")
			exec(t, s, "DELETE FROM schema_migrations WHERE version >= 24")

			s = openMigrated(t, url) // migrates
			if got := migrationRows(t, s); !reflect.DeepEqual(got, recorded) {
				t.Fatalf("after the upgrade schema_migrations = %q, want %q", got, recorded)
			}
			again, err := s.Migrate(context.Background())
			if err != nil || len(again) != 0 {
				t.Fatalf("Migrate after the upgrade = %v, %v; want nothing to do", again, err)
			}
			fresh := describe(t, openMigrated(t, newURL(t)))
			upgraded := describe(t, s)
			for _, k := range union(fresh, upgraded) {
				if fresh[k] != upgraded[k] {
					t.Errorf("%s: upgraded %q, new database %q", k, upgraded[k], fresh[k])
				}
			}
		})
	}
}

func migrationRows(t *testing.T, s *sqlstore.Store) []string {
	t.Helper()
	db, err := s.SQLDB()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	err = eachRow(db, "SELECT version, name FROM schema_migrations ORDER BY version", func(r *sql.Rows) error {
		var v int
		var name string
		if err := r.Scan(&v, &name); err != nil {
			return err
		}
		out = append(out, fmt.Sprint(v, " ", name))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func exec(t *testing.T, s *sqlstore.Store, q string) {
	t.Helper()
	db, err := s.SQLDB()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(context.Background(), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
