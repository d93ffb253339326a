package provider

import (
	"crypto/rand"
	"encoding/base64"
	"testing"

	"github.com/ory/fosite"

	"github.com/tonearm-idp/tonearm/provider/fositestore"
	"github.com/tonearm-idp/tonearm/storage"
)

// A pairwise client's sid is the session's encrypted under its sector's
// key: tonearm turns it back, clients of one sector see the same, another
// sector or installation sees another, a public client the session's.
func TestPairwiseSID(t *testing.T) {
	s := &Subjects{key: []byte("0123456789abcdef0123456789abcdef"), sidKey: []byte("fedcba9876543210fedcba9876543210")}
	other := &Subjects{key: s.key, sidKey: []byte("another key, another installation")}
	a, b := pairwiseClient("a", "https://one.example/cb"), pairwiseClient("b", "https://one.example/other")
	c := pairwiseClient("c", "https://two.example/cb")
	public := &fositestore.Client{DefaultClient: fosite.DefaultClient{ID: "p"}, SubjectType: storage.SubjectPublic}
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	sid := base64.RawURLEncoding.EncodeToString(raw)

	if s.SID(public, sid) != sid || s.SessionSID(public, sid) != sid {
		t.Fatal("a public client does not see the session's sid")
	}
	sidA := s.SID(a, sid)
	if sidA == sid || len(sidA) != len(sid) {
		t.Fatalf("pairwise sid = %q for session %q", sidA, sid)
	}
	if s.SID(a, sid) != sidA || s.SID(b, sid) != sidA {
		t.Fatal("the sid of one session and sector is not stable")
	}
	if got := s.SessionSID(a, sidA); got != sid {
		t.Fatalf("round trip: %q, want %q", got, sid)
	}
	sidC := s.SID(c, sid)
	if sidC == sidA || sidC == sid || other.SID(a, sid) == sidA {
		t.Fatal("another sector or installation sees the same sid")
	}
	// A's sid read as another sector's names another session.
	if s.SessionSID(c, sidA) == sid {
		t.Fatal("one sector's sid maps back through another sector")
	}

	// A sid not of one block: one-way, still per sector.
	const legacy = "not-a-16-byte-sid"
	if l := s.SID(a, legacy); l == legacy || l == s.SID(c, legacy) || s.SessionSID(a, l) != "" {
		t.Fatalf("legacy sid: %q (sector c %q), mapped back to %q", l, s.SID(c, legacy), s.SessionSID(a, l))
	}
	if s.SID(a, "") != "" {
		t.Fatal("no session, yet a sid")
	}
}
