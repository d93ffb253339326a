package sqlstore

import (
	"context"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

type backchannelLogoutModel struct {
	ClientID   string    `gorm:"primaryKey"`
	Subject    string    `gorm:"primaryKey"`
	SID        string    `gorm:"primaryKey;column:sid"`
	CreatedAt  time.Time `gorm:"autoCreateTime:false"`
	Attempts   int
	NextAt     time.Time
	LeaseUntil time.Time
}

func (backchannelLogoutModel) TableName() string { return "backchannel_logouts" }

// QueueBackchannelLogouts implements storage.Storage: one INSERT … SELECT,
// one UPDATE and two DELETEs, in the caller's transaction.
func (s *Store) QueueBackchannelLogouts(ctx context.Context, subject string, sids []string, now time.Time) (int64, error) {
	if sids != nil && len(sids) == 0 {
		return 0, nil
	}
	now = utc(now)
	where := "o.subject = ? AND o.sid <> '' AND c.backchannel_logout_uri <> ''"
	args := []any{now, now, now, subject}
	if sids != nil {
		where += " AND o.sid IN ?"
		args = append(args, sids)
	}
	// PostgreSQL types a parameter in a SELECT list as text unless told.
	ts := s.dialect.timeParam()
	res := s.conn(ctx).Exec(`INSERT INTO backchannel_logouts (client_id, subject, sid, created_at, attempts, next_at, lease_until)
		SELECT DISTINCT o.client_id, o.subject, o.sid, `+ts+`, 0, `+ts+`, `+ts+` FROM
		(SELECT client_id, subject, sid FROM oauth2_requests UNION ALL SELECT client_id, subject, sid FROM access_tokens) o
		JOIN clients c ON c.id = o.client_id
		WHERE `+where+` ON CONFLICT (client_id, subject, sid) DO NOTHING`, args...)
	if res.Error != nil {
		return 0, translate(res.Error)
	}
	del := "subject = ? AND sid <> '' AND client_id IN (SELECT id FROM clients WHERE backchannel_logout_uri <> '')"
	dargs := []any{subject}
	if sids != nil {
		del += " AND sid IN ?"
		dargs = append(dargs, sids)
	}
	// Refresh tokens are issued only with offline_access, which outlives
	// the session (Back-Channel Logout 1.0 §2.7): they stay, cut loose from
	// the ended session so that a later logout does not tell the client
	// about it again (a refresh made since names it anew from the grant's
	// claims: the client may hear of it once more, which it takes as the
	// no-op it is). Codes and the rest go.
	kargs := append(append([]any{}, dargs...), storage.KindRefreshToken)
	if err := s.conn(ctx).Model(&oauthRequestModel{}).Where(del+" AND kind = ?", kargs...).Update("sid", "").Error; err != nil {
		return 0, translate(err)
	}
	if err := s.conn(ctx).Where(del+" AND kind <> ?", kargs...).Delete(&oauthRequestModel{}).Error; err != nil {
		return 0, translate(err)
	}
	if err := s.conn(ctx).Where(del, dargs...).Delete(&accessTokenModel{}).Error; err != nil {
		return 0, translate(err)
	}
	return res.RowsAffected, nil
}

// ClaimBackchannelLogouts implements storage.Storage: each candidate is
// taken with a conditional UPDATE, so of two replicas one wins it.
func (s *Store) ClaimBackchannelLogouts(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]storage.BackchannelLogout, error) {
	now = utc(now)
	var due []backchannelLogoutModel
	if err := s.conn(ctx).Where("next_at <= ? AND lease_until <= ?", now, now).Order("next_at").Limit(limit).Find(&due).Error; err != nil {
		return nil, translate(err)
	}
	var out []storage.BackchannelLogout
	for _, m := range due {
		res := s.conn(ctx).Model(&backchannelLogoutModel{}).
			Where("client_id = ? AND subject = ? AND sid = ? AND lease_until <= ?", m.ClientID, m.Subject, m.SID, now).
			Update("lease_until", now.Add(lease))
		if res.Error != nil {
			return out, translate(res.Error)
		}
		if res.RowsAffected == 1 {
			out = append(out, storage.BackchannelLogout{ClientID: m.ClientID, Subject: m.Subject, SID: m.SID,
				CreatedAt: utc(m.CreatedAt), Attempts: m.Attempts, NextAt: utc(m.NextAt)})
		}
	}
	return out, nil
}

// DeleteBackchannelLogout implements storage.Storage.
func (s *Store) DeleteBackchannelLogout(ctx context.Context, l storage.BackchannelLogout) error {
	return translate(s.conn(ctx).Where("client_id = ? AND subject = ? AND sid = ?", l.ClientID, l.Subject, l.SID).
		Delete(&backchannelLogoutModel{}).Error)
}

// RetryBackchannelLogout implements storage.Storage.
func (s *Store) RetryBackchannelLogout(ctx context.Context, l storage.BackchannelLogout, next time.Time) error {
	return translate(s.conn(ctx).Model(&backchannelLogoutModel{}).
		Where("client_id = ? AND subject = ? AND sid = ?", l.ClientID, l.Subject, l.SID).
		Updates(map[string]any{"attempts": l.Attempts + 1, "next_at": utc(next), "lease_until": utc(l.CreatedAt)}).Error)
}
