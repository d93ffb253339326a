// Package mail delivers password reset tokens: over SMTP when
// TONEARM_SMTP_URL is set, otherwise into the log for development.
package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/smtp"
	"net/url"
	"strings"
	"time"
)

// Message builds the reset mail body.
func Message(issuer, username, token string) (subject, body string) {
	subject = "Reset your tonearm password"
	body = fmt.Sprintf("Hello %s,\r\n\r\nsomeone asked to reset the password of your account at %s.\r\n"+
		"If it was you, open this link within 30 minutes (it works once):\r\n\r\n    %s\r\n\r\n"+
		"If it was not you, ignore this mail: your password stays as it is.\r\n", username, issuer, ResetLink(issuer, token))
	return subject, body
}

// ResetLink is the page a reset mail points to.
func ResetLink(issuer, token string) string {
	return strings.TrimRight(issuer, "/") + "/password/reset?token=" + url.QueryEscape(token)
}

// Log writes reset tokens to the log at info level (development only).
type Log struct {
	Issuer string
	Logger *slog.Logger
}

// SendPasswordReset implements accounts.Mailer.
func (l *Log) SendPasswordReset(_ context.Context, to, username, token string) error {
	l.Logger.Info("password reset token (TONEARM_SMTP_URL is unset, so it is logged instead of mailed)",
		"to", to, "username", username, "link", ResetLink(l.Issuer, token))
	return nil
}

// SMTP sends mail through a server given as
// smtp://user:password@host:port?from=tonearm@example.org (STARTTLS when the
// server offers it; authentication only over TLS or to localhost).
type SMTP struct {
	issuer, addr, host, from string
	auth                     smtp.Auth
}

// NewSMTP parses the URL.
func NewSMTP(rawURL, issuer string) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "smtp" || u.Hostname() == "" {
		return nil, errors.New("TONEARM_SMTP_URL must look like smtp://user:password@host:587?from=tonearm@example.org")
	}
	from := u.Query().Get("from")
	if from == "" {
		return nil, errors.New("TONEARM_SMTP_URL needs a from= address")
	}
	port := u.Port()
	if port == "" {
		port = "587"
	}
	s := &SMTP{issuer: issuer, addr: net.JoinHostPort(u.Hostname(), port), host: u.Hostname(), from: from}
	if u.User != nil {
		pw, _ := u.User.Password()
		s.auth = smtp.PlainAuth("", u.User.Username(), pw, u.Hostname())
	}
	return s, nil
}

// SendPasswordReset implements accounts.Mailer.
func (s *SMTP) SendPasswordReset(ctx context.Context, to, username, token string) error {
	if strings.ContainsAny(to, "\r\n") {
		return errors.New("mail: bad recipient")
	}
	subject, body := Message(s.issuer, username, token)
	msg := "From: " + s.from + "\r\nTo: " + to + "\r\nSubject: " + subject +
		"\r\nDate: " + time.Now().UTC().Format(time.RFC1123Z) + "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body
	done := make(chan error, 1)
	go func() { done <- smtp.SendMail(s.addr, s.auth, s.from, []string{to}, []byte(msg)) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
