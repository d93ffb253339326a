package provider

import (
	"testing"

	"github.com/ory/fosite"

	"github.com/tonearm-idp/tonearm/provider/fositestore"
	"github.com/tonearm-idp/tonearm/storage"
)

func TestSector(t *testing.T) {
	for _, c := range []struct {
		sector    string
		redirects []string
		want      string
	}{
		{"https://Sector.Example:8443/s.json", []string{"https://a.example/cb", "https://b.example/cb"}, "sector.example"},
		{"", []string{"https://app.example/cb", "https://APP.example:444/other"}, "app.example"},
		{"", []string{"https://a.example/cb", "https://b.example/cb"}, "client:c1"},
		{"", nil, "client:c1"},
		{"", []string{"com.example.app:/cb"}, "client:c1"},
	} {
		if got := Sector(c.sector, c.redirects, "c1"); got != c.want {
			t.Errorf("Sector(%q, %q) = %q, want %q", c.sector, c.redirects, got, c.want)
		}
	}
}

func pairwiseClient(id string, redirects ...string) *fositestore.Client {
	return &fositestore.Client{DefaultClient: fosite.DefaultClient{ID: id, RedirectURIs: redirects}, SubjectType: storage.SubjectPairwise}
}

func TestSubjectsFor(t *testing.T) {
	s := &Subjects{key: []byte("0123456789abcdef0123456789abcdef")}
	other := &Subjects{key: []byte("another key, another installation")}
	a, b := pairwiseClient("a", "https://one.example/cb"), pairwiseClient("b", "https://one.example/other")
	c := pairwiseClient("c", "https://two.example/cb")
	public := &fositestore.Client{DefaultClient: fosite.DefaultClient{ID: "p"}, SubjectType: storage.SubjectPublic}
	if got := s.For(public, "u1"); got != "u1" {
		t.Fatalf("public client: %q", got)
	}
	subA := s.For(a, "u1")
	if subA == "u1" || len(subA) != 43 {
		t.Fatalf("pairwise sub = %q", subA)
	}
	if s.For(b, "u1") != subA {
		t.Fatal("two clients of one sector see different subs")
	}
	if s.For(c, "u1") == subA || s.For(a, "u2") == subA || other.For(a, "u1") == subA {
		t.Fatal("another sector, person or key gives the same sub")
	}
	if s.For(a, "a") != "a" {
		t.Fatal("the client itself (client credentials) got a pairwise sub")
	}
	if s.For(a, "") != "" {
		t.Fatal("no user, yet a sub")
	}
}
