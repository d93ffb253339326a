package config

import (
	"github.com/tonearm-idp/tonearm/locale"
	"github.com/tonearm-idp/tonearm/storage/sqlstore"
	"github.com/tonearm-idp/tonearm/templates"
)

// testParsers are the real parsers cmd/tonearm passes in (only this test
// file imports storage and templates; the package itself does not).
var testParsers = Parsers{
	Database: func(url string) (Database, error) {
		loc, err := sqlstore.ParseURL(url)
		return Database{Dialect: string(loc.Dialect), Path: loc.Path}, err
	},
	Theme: func(dir string) error {
		_, err := templates.LoadTheme(dir)
		return err
	},
	Language: func(tag, themeDir string) error {
		_, err := locale.Load(tag, templates.LocalesDir(themeDir))
		return err
	},
}
