package accounts

import (
	"context"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/provider/audit"
	"github.com/tonearm-idp/tonearm/provider/audit/audittest"
	"github.com/tonearm-idp/tonearm/storage"
)

// A change that changes nothing (tonearm users update NAME with no flag,
// PATCH {} on the admin API, "enable" on an enabled account) records no
// event and leaves updatedAt; one that does names its fields, never their
// values.
func TestNoOpChangeRecordsNothing(t *testing.T) {
	s, store := newService(t)
	origin := audit.Origin{Actor: "cli"}
	ctx := audit.WithOrigin(context.Background(), origin)
	u, err := s.Create(ctx, NewUser{Username: "root", Password: "a-long-password", Role: storage.RoleUser})
	if err != nil {
		t.Fatal(err)
	}
	events := audittest.New(t, store)
	no, name := false, "Root"
	for what, c := range map[string]AdminChange{
		"no change":                 {},
		"enable an enabled account": {Disabled: &no},
		"the role it has":           {Role: &u.Role},
		"clear the name it has not": {Profile: ProfileUpdate{Name: Optional{Set: true, Null: true}}},
		"claims it has not (null)":  {Claims: []byte("null")},
		"unverify an unset email":   {EmailVerified: &no},
	} {
		time.Sleep(time.Millisecond) // a new write would carry a later updatedAt
		got, err := s.AdminUpdate(ctx, u.ID, c)
		if err != nil || got.ID != u.ID || got.Username != "root" {
			t.Fatalf("%s: %v %+v", what, err, got)
		}
		events.WantNone(t, what)
		if stored, _ := store.GetUser(ctx, u.ID); !stored.UpdatedAt.Equal(u.UpdatedAt) {
			t.Fatalf("%s moved updatedAt from %s to %s", what, u.UpdatedAt, stored.UpdatedAt)
		}
	}
	if _, err := s.AdminUpdate(ctx, u.ID, AdminChange{Profile: ProfileUpdate{Name: Optional{Set: true, Value: name}}}); err != nil {
		t.Fatal(err)
	}
	events.WantOne(t, "a new name", audittest.Want{Type: audit.UserChanged, Actor: "cli", User: u.ID, Detail: `{"fields":["name"]}`})
}
