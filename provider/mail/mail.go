// Package mail delivers password reset and email verification links: over
// SMTP when TONEARM_SMTP_URL is set, otherwise into the log for
// development.
package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/smtp"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tonearm-idp/tonearm/locale"
)

// Message builds the reset mail in language l (nil: English). Each
// paragraph is one message of the catalogs, its values named placeholders.
func Message(l *locale.Lang, issuer, username, token string) (subject, body string) {
	l = orEnglish(l)
	subject = l.S("Reset your tonearm password")
	body = paragraphs(
		l.S("Hello {{.Username}},", "Username", username),
		l.S("someone asked to reset the password of your account at {{.Issuer}}.", "Issuer", issuer)+"\r\n"+
			l.S("If it was you, open this link within 30 minutes (it works once):"),
		"    "+ResetLink(issuer, token),
		l.S("If it was not you, ignore this mail: your password stays as it is."))
	return subject, body
}

// paragraphs joins the paragraphs of a plain-text mail (CRLF, RFC 5322).
func paragraphs(p ...string) string { return strings.Join(p, "\r\n\r\n") + "\r\n" }

// english is the shipped catalogs, for a mailer given none.
var english = sync.OnceValue(func() *locale.Lang {
	c, err := locale.Load("", "")
	if err != nil {
		panic(err) // the shipped catalogs are embedded and tested
	}
	return c.Default()
})

func orEnglish(l *locale.Lang) *locale.Lang {
	if l == nil {
		return english()
	}
	return l
}

// ResetLink is the page a reset mail points to.
func ResetLink(issuer, token string) string {
	return strings.TrimRight(issuer, "/") + "/password/reset?token=" + url.QueryEscape(token)
}

// VerificationMessage builds the email verification mail in language l
// (nil: English).
func VerificationMessage(l *locale.Lang, issuer, username, token string) (subject, body string) {
	l = orEnglish(l)
	subject = l.S("Verify your tonearm email address")
	body = paragraphs(
		l.S("Hello {{.Username}},", "Username", username),
		l.S("this address was given for your account at {{.Issuer}}.", "Issuer", issuer)+"\r\n"+
			l.S("To confirm it is yours, open this link within 24 hours and press the button (it works once):"),
		"    "+VerifyLink(issuer, token),
		l.S("If it was not you, ignore this mail: the address stays unverified."))
	return subject, body
}

// VerifyLink is the page a verification mail points to.
func VerifyLink(issuer, token string) string {
	return strings.TrimRight(issuer, "/") + "/email/verify?token=" + url.QueryEscape(token)
}

// Log writes reset and verification links to the log at info level
// (development only).
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

// SendEmailVerification implements accounts.Mailer.
func (l *Log) SendEmailVerification(_ context.Context, to, username, token string) error {
	l.Logger.Info("email verification link (TONEARM_SMTP_URL is unset, so it is logged instead of mailed)",
		"to", to, "username", username, "link", VerifyLink(l.Issuer, token))
	return nil
}

// SMTP sends mail through a server given as
// smtp://user:password@host:587?from=tonearm@example.org. The connection
// must turn to TLS with STARTTLS before anything is sent (a server that
// does not offer it is an error, never a fall-back to cleartext), unless
// the URL is smtps:// (TLS from the first byte, port 465 by default) or
// carries ?tls=none (a relay on the same host or network, cleartext on
// purpose). Dialing and every read and write have a deadline, so a
// hanging server costs one failed mail, not a goroutine and a connection
// held forever.
type SMTP struct {
	issuer, addr, host, from string
	auth                     smtp.Auth
	mode                     string // tlsStartTLS, tlsImplicit or tlsNone
	// Timeout bounds the dial and each read or write (DefaultSMTPTimeout).
	Timeout time.Duration
	// Languages are the catalogs the mails are written from, in the
	// language locale.TagOf(ctx) names (nil: English only).
	Languages *locale.Catalogs
	// tlsConfig is nil in production (system roots); tests set their CA.
	tlsConfig *tls.Config
}

// TLS modes of an SMTP URL.
const (
	tlsStartTLS = "starttls"
	tlsImplicit = "implicit"
	tlsNone     = "none"
)

// DefaultSMTPTimeout bounds the dial and every read or write.
const DefaultSMTPTimeout = 15 * time.Second

// NewSMTP parses the URL.
func NewSMTP(rawURL, issuer string) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
		return nil, errors.New("TONEARM_SMTP_URL must look like smtp://user:password@host:587?from=tonearm@example.org (or smtps://…:465)")
	}
	q := u.Query()
	from := q.Get("from")
	if from == "" || strings.ContainsAny(from, "\r\n") {
		return nil, errors.New("TONEARM_SMTP_URL needs a from= address")
	}
	mode, port := tlsStartTLS, "587"
	switch {
	case u.Scheme == "smtps":
		mode, port = tlsImplicit, "465"
		if q.Has("tls") {
			return nil, errors.New("TONEARM_SMTP_URL: tls= does not go with smtps:// (always TLS)")
		}
	case q.Get("tls") == "none":
		mode = tlsNone
	case q.Has("tls") && q.Get("tls") != "starttls":
		return nil, errors.New("TONEARM_SMTP_URL: tls= must be starttls (the default) or none")
	}
	if u.Port() != "" {
		port = u.Port()
	}
	s := &SMTP{issuer: issuer, addr: net.JoinHostPort(u.Hostname(), port), host: u.Hostname(), from: from, mode: mode, Timeout: DefaultSMTPTimeout}
	if u.User != nil {
		pw, _ := u.User.Password()
		// PlainAuth itself refuses to send the password without TLS,
		// except to localhost.
		s.auth = smtp.PlainAuth("", u.User.Username(), pw, u.Hostname())
	}
	return s, nil
}

// SendPasswordReset implements accounts.Mailer.
func (s *SMTP) SendPasswordReset(ctx context.Context, to, username, token string) error {
	subject, body := Message(s.lang(ctx), s.issuer, username, token)
	return s.sendText(ctx, to, subject, body)
}

// SendEmailVerification implements accounts.Mailer.
func (s *SMTP) SendEmailVerification(ctx context.Context, to, username, token string) error {
	subject, body := VerificationMessage(s.lang(ctx), s.issuer, username, token)
	return s.sendText(ctx, to, subject, body)
}

// lang is the language of a mail sent in ctx: the one locale.WithTag put
// there (the account's saved language, else the page's that asked for
// the mail), matched against the catalogs.
func (s *SMTP) lang(ctx context.Context) *locale.Lang {
	if s.Languages == nil {
		return nil
	}
	l, _ := s.Languages.Match(locale.TagOf(ctx))
	return l
}

// sendText mails a plain-text message; a subject beyond ASCII (a
// translation) is an RFC 2047 encoded word, ASCII stays as it is. A
// recipient with a line break would inject headers: it is refused.
func (s *SMTP) sendText(ctx context.Context, to, subject, body string) error {
	if strings.ContainsAny(to, "\r\n") {
		return errors.New("mail: bad recipient")
	}
	msg := "From: " + s.from + "\r\nTo: " + to + "\r\nSubject: " + mime.QEncoding.Encode("utf-8", subject) +
		"\r\nDate: " + time.Now().UTC().Format(time.RFC1123Z) + "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body
	return s.send(ctx, to, []byte(msg))
}

func (s *SMTP) tlsConf() *tls.Config {
	if s.tlsConfig != nil {
		return s.tlsConfig.Clone()
	}
	return &tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12}
}

// send delivers one message. Cancelling ctx closes the connection.
func (s *SMTP) send(ctx context.Context, to string, msg []byte) error {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultSMTPTimeout
	}
	d := net.Dialer{Timeout: timeout}
	raw, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("mail: dial %s: %w", s.addr, err)
	}
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	var conn net.Conn = &deadlineConn{Conn: raw, timeout: timeout}
	if s.mode == tlsImplicit {
		// smtp.Client sees a *tls.Conn and knows the channel is secure.
		conn = tls.Client(conn, s.tlsConf())
	}
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		raw.Close()
		return fmt.Errorf("mail: greeting: %w", err)
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return fmt.Errorf("mail: EHLO: %w", err)
	}
	if s.mode == tlsStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("mail: the server does not offer STARTTLS; refusing to send in cleartext (use smtps:// or, for a local relay, ?tls=none)")
		}
		if err := c.StartTLS(s.tlsConf()); err != nil {
			return fmt.Errorf("mail: STARTTLS: %w", err)
		}
	}
	if s.auth != nil {
		if err := c.Auth(s.auth); err != nil {
			return fmt.Errorf("mail: AUTH: %w", err)
		}
	}
	if err := c.Mail(s.from); err != nil {
		return fmt.Errorf("mail: MAIL FROM: %w", err)
	}
	if err := c.Rcpt(to); err != nil {
		return fmt.Errorf("mail: RCPT TO: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("mail: DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("mail: message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("mail: message: %w", err)
	}
	return c.Quit()
}

// deadlineConn gives every read and write its own deadline.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c *deadlineConn) Read(b []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}
