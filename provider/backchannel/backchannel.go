// Package backchannel delivers OpenID Connect Back-Channel Logout 1.0
// logout tokens from the outbox that ending a session fills (in the same
// transaction). A worker on every replica leases due deliveries, so a
// delivery is attempted by one replica at a time; a replica that dies
// mid-delivery loses nothing (its lease runs out and another takes it), a
// restart loses nothing (the outbox is in the database), and a relying
// party that is down is retried with backoff for GiveUpAfter. The user's
// request never waits for a relying party.
package backchannel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tonearm-idp/tonearm/storage"
)

// Store is the outbox and the clients.
type Store interface {
	ClaimBackchannelLogouts(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]storage.BackchannelLogout, error)
	DeleteBackchannelLogout(ctx context.Context, l storage.BackchannelLogout) error
	RetryBackchannelLogout(ctx context.Context, l storage.BackchannelLogout, next time.Time) error
	GetClient(ctx context.Context, id string) (storage.Client, error)
}

// Signer makes logout tokens.
type Signer interface {
	LogoutToken(ctx context.Context, clientID, subject, sid string) (string, error)
}

// Defaults.
const (
	DefaultGiveUpAfter = 24 * time.Hour
	// lease outlasts one delivery's timeout with room to spare.
	lease      = time.Minute
	timeout    = 10 * time.Second
	batch      = 20
	maxBackoff = time.Hour
)

// Deliverer sends queued logout tokens.
type Deliverer struct {
	store  Store
	signer Signer
	client *http.Client
	log    *slog.Logger
	now    func() time.Time
	// GiveUpAfter drops a delivery that has failed since this long.
	GiveUpAfter time.Duration
}

// New returns a Deliverer; client may be nil (a client with a timeout that
// follows no redirects is made).
func New(store Store, signer Signer, client *http.Client, log *slog.Logger, now func() time.Time) (*Deliverer, error) {
	if store == nil || signer == nil || log == nil {
		return nil, errors.New("backchannel: store, signer and logger are required")
	}
	if client == nil {
		client = &http.Client{Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if now == nil {
		now = time.Now
	}
	return &Deliverer{store: store, signer: signer, client: client, log: log, now: now, GiveUpAfter: DefaultGiveUpAfter}, nil
}

// Run delivers due logouts every interval until ctx ends.
func (d *Deliverer) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := d.DeliverDue(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("back-channel logout delivery", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// DeliverDue attempts every due delivery once and reports how many
// succeeded.
func (d *Deliverer) DeliverDue(ctx context.Context) (int, error) {
	delivered := 0
	for {
		due, err := d.store.ClaimBackchannelLogouts(ctx, d.now(), lease, batch)
		if err != nil {
			return delivered, err
		}
		for _, l := range due {
			if err := d.deliver(ctx, l); err != nil {
				d.failed(ctx, l, err)
				continue
			}
			delivered++
			if err := d.store.DeleteBackchannelLogout(ctx, l); err != nil {
				return delivered, err
			}
		}
		if len(due) < batch {
			return delivered, nil
		}
	}
}

func (d *Deliverer) deliver(ctx context.Context, l storage.BackchannelLogout) error {
	c, err := d.store.GetClient(ctx, l.ClientID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && c.BackchannelLogoutURI == "") {
		return nil // the client is gone, or no longer listens: nothing to tell
	}
	if err != nil {
		return err
	}
	token, err := d.signer.LogoutToken(ctx, l.ClientID, l.Subject, l.SID)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BackchannelLogoutURI, strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cache-Control", "no-store")
	resp, err := d.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("the relying party answered %s", resp.Status)
	}
	return nil
}

// failed schedules the next attempt (5 s, doubling, at most an hour) or
// gives up after GiveUpAfter.
func (d *Deliverer) failed(ctx context.Context, l storage.BackchannelLogout, cause error) {
	now := d.now()
	if now.Sub(l.CreatedAt) >= d.GiveUpAfter {
		d.log.Warn("back-channel logout given up", "client", l.ClientID, "attempts", l.Attempts+1, "err", cause)
		if err := d.store.DeleteBackchannelLogout(ctx, l); err != nil {
			d.log.Warn("back-channel logout: dropping", "err", err)
		}
		return
	}
	wait := 5 * time.Second << min(l.Attempts, 10)
	if wait > maxBackoff {
		wait = maxBackoff
	}
	d.log.Info("back-channel logout failed; will retry", "client", l.ClientID, "attempt", l.Attempts+1, "retry_in", wait.String(), "err", cause)
	if err := d.store.RetryBackchannelLogout(ctx, l, now.Add(wait)); err != nil {
		d.log.Warn("back-channel logout: rescheduling", "err", err)
	}
}
