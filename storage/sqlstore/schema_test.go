package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/tonearm-idp/tonearm/storage/sqlstore"
	"github.com/tonearm-idp/tonearm/storage/sqlstore/pgtest"
)

// The migrations are written once and translated for SQLite (migrate.go):
// both databases must end with the same schema, or a query that works on
// one fails on the other in front of users. A schema here is what the
// store's SQL depends on: tables, columns with their types normalised
// (TEXT and VARCHAR are text, INTEGER and BIGINT int, TIMESTAMPTZ and
// DATETIME time, BYTEA and BLOB bytes) and whether they take NULL, the
// primary and unique keys, and the indexes by name and columns.

// pgOnlyIndexes exist on PostgreSQL only, for a reason SQLite lacks:
// bytewise prefix ranges (migration 0010; SQLite compares TEXT bytewise
// already, so its unique indexes serve them).
var pgOnlyIndexes = map[string]bool{"users.users_username_key_c": true, "users.users_email_key_c": true}

func TestSchemasMatch(t *testing.T) {
	lite := describe(t, openMigrated(t, sqliteURL(t)))
	pg := describe(t, openMigrated(t, pgtest.URL(t)))
	for k := range pgOnlyIndexes {
		if _, ok := pg[k]; !ok {
			t.Errorf("PostgreSQL lacks %s", k)
		}
		delete(pg, k)
	}
	if len(lite) < 60 {
		t.Fatalf("SQLite schema has %d entries: the description is missing something", len(lite))
	}
	for _, k := range union(lite, pg) {
		if lite[k] != pg[k] {
			t.Errorf("%s:\n  SQLite:     %q\n  PostgreSQL: %q", k, lite[k], pg[k])
		}
	}
}

func union(a, b map[string]string) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// describe maps "table.column" to "type [not null]", "table.key(columns)"
// to "primary key" or "unique", and "table.index_name" to
// "index(columns)" or "unique index(columns)".
func describe(t *testing.T, s *sqlstore.Store) map[string]string {
	t.Helper()
	db, err := s.SQLDB()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	if s.Dialect() == sqlstore.Postgres {
		err = describePostgres(db, out)
	} else {
		err = describeSQLite(db, out)
	}
	if err != nil {
		t.Fatalf("describe %s schema: %v", s.Dialect(), err)
	}
	return out
}

// normalType names a declared column type by what it holds.
func normalType(declared string) string {
	d := strings.ToLower(declared)
	switch {
	case d == "text" || strings.HasPrefix(d, "character varying") || strings.HasPrefix(d, "varchar"):
		return "text"
	case d == "integer" || d == "bigint" || d == "smallint" || d == "int":
		return "int"
	case strings.HasPrefix(d, "timestamp") || d == "datetime":
		return "time"
	case d == "bytea" || d == "blob":
		return "bytes"
	case d == "boolean":
		return "bool"
	}
	return "unknown type " + declared
}

func column(typ string, notNull bool) string {
	if notNull {
		return normalType(typ) + " not null"
	}
	return normalType(typ)
}

func describePostgres(db *sql.DB, out map[string]string) error {
	err := eachRow(db, `SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns
		WHERE table_schema = current_schema()`, func(r *sql.Rows) error {
		var table, col, typ, nullable string
		if err := r.Scan(&table, &col, &typ, &nullable); err != nil {
			return err
		}
		out[table+"."+col] = column(typ, nullable == "NO")
		return nil
	})
	if err != nil {
		return err
	}
	// Every index with its columns in order; those behind a PRIMARY KEY
	// or UNIQUE constraint go by their columns, as SQLite names them
	// sqlite_autoindex_….
	return eachRow(db, `SELECT t.relname, i.relname, ix.indisunique, ix.indisprimary,
			EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = ix.indexrelid),
			string_agg(a.attname, ',' ORDER BY k.ord)
		FROM pg_index ix
		JOIN pg_class i ON i.oid = ix.indexrelid
		JOIN pg_class t ON t.oid = ix.indrelid
		JOIN pg_namespace n ON n.oid = t.relnamespace
		CROSS JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord)
		JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
		WHERE n.nspname = current_schema()
		GROUP BY t.relname, i.relname, ix.indisunique, ix.indisprimary, ix.indexrelid`, func(r *sql.Rows) error {
		var table, index, cols string
		var unique, primary, constraint bool
		if err := r.Scan(&table, &index, &unique, &primary, &constraint, &cols); err != nil {
			return err
		}
		addIndex(out, table, index, cols, unique, primary, constraint)
		return nil
	})
}

func addIndex(out map[string]string, table, index, cols string, unique, primary, constraint bool) {
	switch {
	case primary:
		out[table+".key("+cols+")"] = "primary key"
	case constraint:
		out[table+".key("+cols+")"] = "unique"
	case unique:
		out[table+"."+index] = "unique index(" + cols + ")"
	default:
		out[table+"."+index] = "index(" + cols + ")"
	}
}

func describeSQLite(db *sql.DB, out map[string]string) error {
	var tables []string
	err := eachRow(db, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`, func(r *sql.Rows) error {
		var name string
		tables = append(tables, name)
		return r.Scan(&tables[len(tables)-1])
	})
	if err != nil {
		return err
	}
	for _, table := range tables {
		var pk []string
		err := eachRow(db, fmt.Sprintf(`SELECT name, type, "notnull", pk FROM pragma_table_info('%s') ORDER BY pk`, table), func(r *sql.Rows) error {
			var col, typ string
			var notNull bool
			var pkPos int
			if err := r.Scan(&col, &typ, &notNull, &pkPos); err != nil {
				return err
			}
			if pkPos > 0 {
				pk = append(pk, col)
			}
			// A primary key takes no NULL on PostgreSQL; SQLite lets
			// one in unless told (a quirk the store never uses).
			out[table+"."+col] = column(typ, notNull || pkPos > 0)
			return nil
		})
		if err != nil {
			return err
		}
		if len(pk) > 0 {
			out[table+".key("+strings.Join(pk, ",")+")"] = "primary key"
		}
		if err := describeSQLiteIndexes(db, table, out); err != nil {
			return err
		}
	}
	return nil
}

func describeSQLiteIndexes(db *sql.DB, table string, out map[string]string) error {
	type index struct {
		name, origin string
		unique       bool
	}
	var indexes []index
	err := eachRow(db, fmt.Sprintf(`SELECT name, "unique", origin FROM pragma_index_list('%s')`, table), func(r *sql.Rows) error {
		var ix index
		indexes = append(indexes, ix)
		p := &indexes[len(indexes)-1]
		return r.Scan(&p.name, &p.unique, &p.origin)
	})
	if err != nil {
		return err
	}
	for _, ix := range indexes {
		var cols []string
		err := eachRow(db, fmt.Sprintf(`SELECT name FROM pragma_index_info('%s') ORDER BY seqno`, ix.name), func(r *sql.Rows) error {
			var c string
			cols = append(cols, c)
			return r.Scan(&cols[len(cols)-1])
		})
		if err != nil {
			return err
		}
		addIndex(out, table, ix.name, strings.Join(cols, ","), ix.unique, ix.origin == "pk", ix.origin == "u")
	}
	return nil
}

// eachRow runs query and hands each row to fn.
func eachRow(db *sql.DB, query string, fn func(*sql.Rows) error) error {
	rows, err := db.QueryContext(context.Background(), query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
