package storagetest

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

func connectorCases() []struct {
	name string
	fn   func(t *testing.T, s storage.Storage)
} {
	return []struct {
		name string
		fn   func(t *testing.T, s storage.Storage)
	}{
		{"Interactions", testInteractions},
		{"InteractionUpdatesSerialise", testInteractionUpdatesSerialise},
		{"Connectors", testConnectors},
		{"LinkedIdentities", testLinkedIdentities},
	}
}

func testInteractions(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	i := storage.Interaction{IDHash: []byte{1, 2, 3, 0xff}, Binding: []byte{9, 9}, Data: []byte(`{"step":"identify"}`), CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}
	if err := s.CreateInteraction(ctx, i); err != nil {
		t.Fatalf("CreateInteraction: %v", err)
	}
	if err := s.CreateInteraction(ctx, i); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("duplicate CreateInteraction = %v, want ErrAlreadyExists", err)
	}
	got, err := s.GetInteraction(ctx, i.IDHash, now)
	if err != nil || !bytes.Equal(got.Binding, i.Binding) || string(got.Data) != string(i.Data) ||
		!got.ExpiresAt.Equal(now.Add(10*time.Minute).UTC().Truncate(time.Microsecond)) || got.ExpiresAt.Location() != time.UTC {
		t.Fatalf("GetInteraction = %+v, %v", got, err)
	}
	if _, err := s.GetInteraction(ctx, []byte{7}, now); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetInteraction(unknown) = %v", err)
	}
	// An update's error writes nothing.
	boom := errors.New("boom")
	if _, err := s.UpdateInteraction(ctx, i.IDHash, now, func(x storage.Interaction) (storage.Interaction, error) {
		x.Data = []byte("changed")
		return x, boom
	}); !errors.Is(err, boom) {
		t.Fatalf("UpdateInteraction(error) = %v", err)
	}
	upd, err := s.UpdateInteraction(ctx, i.IDHash, now, func(x storage.Interaction) (storage.Interaction, error) {
		x.Data = []byte(`{"step":"consent"}`)
		x.Binding = []byte("ignored") // only Data changes
		return x, nil
	})
	if err != nil || string(upd.Data) != `{"step":"consent"}` || !bytes.Equal(upd.Binding, i.Binding) {
		t.Fatalf("UpdateInteraction = %+v, %v", upd, err)
	}
	if got, _ := s.GetInteraction(ctx, i.IDHash, now); string(got.Data) != `{"step":"consent"}` || !bytes.Equal(got.Binding, i.Binding) {
		t.Fatalf("after update: %+v", got)
	}
	// Expired: neither read nor updated, then cleaned.
	later := now.Add(10 * time.Minute)
	if _, err := s.GetInteraction(ctx, i.IDHash, later); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetInteraction(expired) = %v", err)
	}
	if _, err := s.UpdateInteraction(ctx, i.IDHash, later, func(x storage.Interaction) (storage.Interaction, error) { return x, nil }); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("UpdateInteraction(expired) = %v", err)
	}
	live := storage.Interaction{IDHash: []byte{4}, Binding: []byte{1}, Data: []byte("{}"), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateInteraction(ctx, live); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteExpiredInteractions(ctx, later.Add(time.Second), 100); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredInteractions = %d, %v", n, err)
	}
	if err := s.DeleteInteraction(ctx, live.IDHash); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteInteraction(ctx, live.IDHash); err != nil {
		t.Fatalf("deleting a missing interaction: %v", err)
	}
	if _, err := s.GetInteraction(ctx, live.IDHash, now); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetInteraction(deleted) = %v", err)
	}
}

// testInteractionUpdatesSerialise: concurrent steps of one interaction
// (two tabs posting) each see the other's write.
func testInteractionUpdatesSerialise(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	id := []byte("serial")
	if err := s.CreateInteraction(ctx, storage.Interaction{IDHash: id, Binding: []byte{1}, Data: []byte{}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdateInteraction(ctx, id, now, func(x storage.Interaction) (storage.Interaction, error) {
				x.Data = append(append([]byte{}, x.Data...), 'x')
				return x, nil
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("UpdateInteraction: %v", err)
		}
	}
	if got, _ := s.GetInteraction(ctx, id, now); string(got.Data) != "xxxxxxxx" {
		t.Fatalf("after 8 concurrent updates Data = %q, want 8 x", got.Data)
	}
}

func newConnector(id string) storage.Connector {
	return storage.Connector{
		ID: id, Kind: storage.ConnectorOIDC, Name: "Upstream", ClientID: "tonearm", ClientSecret: []byte{0, 1, 0xfe},
		Issuer: "https://upstream.example", Scopes: []string{"openid", "email"}, CreatedAt: now, UpdatedAt: now,
	}
}

func testConnectors(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	c := newConnector("upstream")
	if err := s.CreateConnector(ctx, c); err != nil {
		t.Fatalf("CreateConnector: %v", err)
	}
	if err := s.CreateConnector(ctx, c); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("duplicate CreateConnector = %v", err)
	}
	mb := newConnector("musicbrainz")
	mb.Kind, mb.Issuer, mb.BaseURL, mb.Scopes = storage.ConnectorMusicBrainz, "", "https://musicbrainz.org", nil
	if err := s.CreateConnector(ctx, mb); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetConnector(ctx, "upstream")
	want := c
	want.CreatedAt, want.UpdatedAt = now.UTC().Truncate(time.Microsecond), now.UTC().Truncate(time.Microsecond)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("GetConnector = %+v, %v; want %+v", got, err, want)
	}
	list, err := s.ListConnectors(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "musicbrainz" || list[1].ID != "upstream" || len(list[0].Scopes) != 0 {
		t.Fatalf("ListConnectors = %+v, %v", list, err)
	}
	boom := errors.New("boom")
	if _, err := s.UpdateConnector(ctx, "upstream", func(x storage.Connector) (storage.Connector, error) {
		x.Name = "changed"
		return x, boom
	}); !errors.Is(err, boom) {
		t.Fatalf("UpdateConnector(error) = %v", err)
	}
	upd, err := s.UpdateConnector(ctx, "upstream", func(x storage.Connector) (storage.Connector, error) {
		x.Name, x.Kind, x.ClientSecret, x.UpdatedAt = "Renamed", "musicbrainz", []byte{7}, now.Add(time.Minute)
		return x, nil
	})
	if err != nil || upd.Name != "Renamed" || upd.Kind != storage.ConnectorOIDC || !bytes.Equal(upd.ClientSecret, []byte{7}) {
		t.Fatalf("UpdateConnector = %+v, %v (the kind stays)", upd, err)
	}
	if got, _ := s.GetConnector(ctx, "upstream"); got.Name != "Renamed" || got.Kind != storage.ConnectorOIDC {
		t.Fatalf("after update: %+v", got)
	}
	if _, err := s.UpdateConnector(ctx, "nope", func(x storage.Connector) (storage.Connector, error) { return x, nil }); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("UpdateConnector(missing) = %v", err)
	}
	if err := s.DeleteConnector(ctx, "upstream"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteConnector(ctx, "upstream"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("DeleteConnector(missing) = %v", err)
	}
	if _, err := s.GetConnector(ctx, "upstream"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetConnector(deleted) = %v", err)
	}
}

func testLinkedIdentities(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	u, v := newUser("linked"), newUser("other")
	mustCreate(t, s, u)
	mustCreate(t, s, v)
	for _, id := range []string{"up", "mb"} {
		if err := s.CreateConnector(ctx, newConnector(id)); err != nil {
			t.Fatal(err)
		}
	}
	l := storage.LinkedIdentity{ConnectorID: "up", Issuer: "https://upstream.example", Subject: "sub-1", UserID: u.ID, Username: "lin", Email: "lin@example.org", CreatedAt: now, LastUsedAt: now}
	if err := s.LinkIdentity(ctx, l); err != nil {
		t.Fatalf("LinkIdentity: %v", err)
	}
	// The same upstream identity cannot be linked twice, nor one user
	// twice through one connector.
	dup := l
	dup.UserID = v.ID
	if err := s.LinkIdentity(ctx, dup); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("linking a linked identity = %v", err)
	}
	second := l
	second.Subject = "sub-2"
	if err := s.LinkIdentity(ctx, second); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("a second link through one connector = %v", err)
	}
	// Same subject at another issuer is another identity.
	otherIss := l
	otherIss.ConnectorID, otherIss.UserID = "mb", v.ID
	if err := s.LinkIdentity(ctx, otherIss); err != nil {
		t.Fatalf("LinkIdentity(other connector): %v", err)
	}
	for _, bad := range []storage.LinkedIdentity{{ConnectorID: "up", Issuer: "i", Subject: "s", UserID: "ghost", CreatedAt: now, LastUsedAt: now}, {ConnectorID: "ghost", Issuer: "i", Subject: "s", UserID: u.ID, CreatedAt: now, LastUsedAt: now}} {
		if err := s.LinkIdentity(ctx, bad); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("LinkIdentity(%+v) = %v, want ErrNotFound", bad, err)
		}
	}
	got, err := s.GetLinkedIdentity(ctx, "up", "https://upstream.example", "sub-1")
	if err != nil || got.UserID != u.ID || got.Email != "lin@example.org" || !got.CreatedAt.Equal(now.Truncate(time.Microsecond)) {
		t.Fatalf("GetLinkedIdentity = %+v, %v", got, err)
	}
	if _, err := s.GetLinkedIdentity(ctx, "up", "https://elsewhere.example", "sub-1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetLinkedIdentity(other issuer) = %v", err)
	}
	used := l
	used.Username, used.Email, used.LastUsedAt = "renamed", "", now.Add(time.Hour)
	if err := s.UseLinkedIdentity(ctx, used); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetLinkedIdentity(ctx, "up", l.Issuer, l.Subject); got.Username != "renamed" || !got.LastUsedAt.Equal(now.Add(time.Hour).Truncate(time.Microsecond)) || !got.CreatedAt.Equal(now.Truncate(time.Microsecond)) {
		t.Fatalf("after use: %+v", got)
	}
	list, err := s.ListLinkedIdentities(ctx, u.ID)
	if err != nil || len(list) != 1 || list[0].ConnectorID != "up" {
		t.Fatalf("ListLinkedIdentities = %+v, %v", list, err)
	}
	if err := s.UnlinkIdentity(ctx, v.ID, "up"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("UnlinkIdentity(not linked) = %v", err)
	}
	if err := s.UnlinkIdentity(ctx, u.ID, "up"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLinkedIdentity(ctx, "up", l.Issuer, l.Subject); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("after unlink: %v", err)
	}
	// Deleting a user or a connector takes its links.
	if err := s.LinkIdentity(ctx, l); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLinkedIdentity(ctx, "up", l.Issuer, l.Subject); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a deleted user's link: %v", err)
	}
	if err := s.DeleteConnector(ctx, "mb"); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.ListLinkedIdentities(ctx, v.ID); len(list) != 0 {
		t.Fatalf("a deleted connector's links: %+v", list)
	}
}
