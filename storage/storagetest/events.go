package storagetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

func eventCases() []struct {
	name string
	fn   func(t *testing.T, s storage.Storage)
} {
	return []struct {
		name string
		fn   func(t *testing.T, s storage.Storage)
	}{{"Events", testEvents}}
}

func testEvents(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		typ, user := "signin.failed", "u1"
		if i%2 == 1 {
			typ, user = "user.changed", "u2"
		}
		e := storage.Event{ID: fmt.Sprintf("%016x", i+1), Time: now.Add(time.Duration(i) * time.Minute), Type: typ, Actor: "cli",
			User: user, Client: "app", IP: "192.0.2.1", Detail: []byte(`{"n":` + fmt.Sprint(i) + `}`)}
		if err := s.AddEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddEvent(ctx, storage.Event{ID: "0000000000000010", Time: now, Type: "signout"}); err != nil {
		t.Fatalf("an event without detail: %v", err)
	}
	page, err := s.ListEvents(ctx, storage.EventFilter{Limit: 2})
	if err != nil || len(page) != 2 || page[0].ID != "0000000000000010" || page[1].ID != "0000000000000005" {
		t.Fatalf("first page = %+v, %v", page, err)
	}
	if string(page[1].Detail) != `{"n":4}` || page[1].Actor != "cli" || page[1].IP != "192.0.2.1" || !page[1].Time.Equal(now.Add(4*time.Minute).Truncate(time.Microsecond)) {
		t.Fatalf("event = %+v", page[1])
	}
	next, _ := s.ListEvents(ctx, storage.EventFilter{Limit: 10, Before: page[1].ID})
	if len(next) != 4 || next[0].ID != "0000000000000004" {
		t.Fatalf("next page = %+v", next)
	}
	if got, _ := s.ListEvents(ctx, storage.EventFilter{Limit: 10, Type: "signin.failed", User: "u1"}); len(got) != 3 {
		t.Fatalf("by type and user: %d", len(got))
	}
	if got, _ := s.ListEvents(ctx, storage.EventFilter{Limit: 10, Since: now.Add(3 * time.Minute)}); len(got) != 2 {
		t.Fatalf("since: %d", len(got))
	}
	if n, err := s.DeleteEventsBefore(ctx, now.Add(2*time.Minute), 2); err != nil || n != 2 {
		t.Fatalf("DeleteEventsBefore = %d, %v", n, err)
	}
	if n, _ := s.DeleteEventsBefore(ctx, now.Add(2*time.Minute), 10); n != 1 {
		t.Fatalf("second batch = %d", n)
	}
}
