package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tonearm-idp/tonearm/provider/accounts"
	"github.com/tonearm-idp/tonearm/provider/audit"
)

// The audit events an operator can filter on are all in
// docs/configuration.md: the list had fallen behind the code (passkey,
// connector, second-factor and app events were missing), and so had the
// purposes of signin.failed.
func TestDocsListEveryAuditEvent(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Join(strings.Fields(string(raw)), " ")
	for _, typ := range audit.Types {
		if !strings.Contains(doc, "`"+typ+"`") {
			t.Errorf("docs/configuration.md does not name the audit event %q", typ)
		}
	}
	for _, p := range []string{accounts.PurposeSignIn, accounts.PurposePasswordChange, accounts.PurposeAccountDelete,
		accounts.PurposeEmailChange, accounts.PurposeTOTPRemove, accounts.PurposeTOTPEnrol, accounts.PurposeRecoveryCodes} {
		if !strings.Contains(doc, "`"+p+"`") {
			t.Errorf("docs/configuration.md does not name the signin.failed purpose %q", p)
		}
	}
}
