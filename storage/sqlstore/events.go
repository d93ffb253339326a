package sqlstore

import (
	"context"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

type eventModel struct {
	ID       string `gorm:"primaryKey"`
	Time     time.Time
	Type     string
	Actor    string
	UserID   string
	ClientID string
	IP       string `gorm:"column:ip"`
	Detail   string
}

func (eventModel) TableName() string { return "events" }

// AddEvent implements storage.Storage.
func (s *Store) AddEvent(ctx context.Context, e storage.Event) error {
	detail := string(e.Detail)
	if detail == "" {
		detail = "{}"
	}
	m := eventModel{ID: e.ID, Time: utc(e.Time), Type: e.Type, Actor: e.Actor, UserID: e.User, ClientID: e.Client, IP: e.IP, Detail: detail}
	return translate(s.conn(ctx).Create(&m).Error)
}

// ListEvents implements storage.Storage: keyset pages by id, newest first.
func (s *Store) ListEvents(ctx context.Context, f storage.EventFilter) ([]storage.Event, error) {
	q := s.conn(ctx).Model(&eventModel{})
	if f.Type != "" {
		q = q.Where("type = ?", f.Type)
	}
	if f.User != "" {
		q = q.Where("user_id = ?", f.User)
	}
	if !f.Since.IsZero() {
		q = q.Where("time >= ?", utc(f.Since))
	}
	if f.Before != "" {
		q = q.Where("id < ?", f.Before)
	}
	var ms []eventModel
	if err := q.Order("id DESC").Limit(f.Limit).Find(&ms).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]storage.Event, len(ms))
	for i, m := range ms {
		out[i] = storage.Event{ID: m.ID, Time: utc(m.Time), Type: m.Type, Actor: m.Actor, User: m.UserID, Client: m.ClientID, IP: m.IP, Detail: []byte(m.Detail)}
	}
	return out, nil
}

// DeleteEventsBefore implements storage.Storage.
func (s *Store) DeleteEventsBefore(ctx context.Context, before time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, nil
	}
	sub := s.db.Model(&eventModel{}).Select("id").Where("time < ?", utc(before)).Limit(limit)
	res := s.conn(ctx).Where("id IN (?)", sub).Delete(&eventModel{})
	return res.RowsAffected, translate(res.Error)
}
