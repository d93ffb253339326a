package mail

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/provider/mail/mailtest"
)

func TestNewSMTP(t *testing.T) {
	for _, bad := range []string{"", "http://x", "smtp://", "smtp://host:25", "smtp:///?from=a@b.example"} {
		if _, err := NewSMTP(bad, "https://id.example"); err == nil {
			t.Errorf("NewSMTP(%q) accepted", bad)
		}
	}
	s, err := NewSMTP("smtp://user:pw@mail.example?from=tonearm@example.org", "https://id.example")
	if err != nil || s.addr != "mail.example:587" || s.from != "tonearm@example.org" || s.auth == nil {
		t.Fatalf("NewSMTP = %+v, %v", s, err)
	}
	if err := s.SendPasswordReset(context.Background(), "a@b.example\r\nBcc: all@example.org", "u", "t"); err == nil {
		t.Fatal("a recipient with a line break was accepted (header injection)")
	}
	if err := s.SendEmailVerification(context.Background(), "a@b.example\nBcc: all@example.org", "u", "t"); err == nil {
		t.Fatal("a verification recipient with a line break was accepted (header injection)")
	}
	if _, err := NewSMTP("smtp://mail.example?from=a@b.example%0d%0aBcc:x@y.example", "https://id.example"); err == nil {
		t.Fatal("a from= address with a line break was accepted")
	}
}

func TestLogMailer(t *testing.T) {
	var buf bytes.Buffer
	l := &Log{Issuer: "https://id.example", Logger: slog.New(slog.NewJSONHandler(&buf, nil))}
	if err := l.SendPasswordReset(context.Background(), "a@b.example", "alice", "tok-123"); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, `"level":"INFO"`) || !strings.Contains(out, "tok-123") || !strings.Contains(out, "a@b.example") {
		t.Fatalf("log = %s", out)
	}
	subject, body := Message(nil, "https://id.example/", "alice", "tok-123")
	if subject == "" || !strings.Contains(body, "tok-123") || !strings.Contains(body, "https://id.example/password/reset?token=tok-123") {
		t.Fatalf("message = %q %q", subject, body)
	}
	buf.Reset()
	if err := l.SendEmailVerification(context.Background(), "a@b.example", "alice", "ver-456"); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, `"level":"INFO"`) || !strings.Contains(out, "https://id.example/email/verify?token=ver-456") {
		t.Fatalf("log = %s", out)
	}
	subject, body = VerificationMessage(nil, "https://id.example/", "alice", "ver-456")
	if subject != "Verify your tonearm email address" || !strings.Contains(body, "https://id.example/email/verify?token=ver-456") || !strings.Contains(body, "24 hours") {
		t.Fatalf("verification message = %q %q", subject, body)
	}
}

func TestSMTPRequiresSTARTTLS(t *testing.T) {
	cert, pool := mailtest.SelfSigned(t)

	// A server that offers STARTTLS: the mail goes over TLS.
	secure := mailtest.Start(t, cert)
	s, err := NewSMTP("smtp://"+secure.Addr()+"?from=tonearm@example.org", "https://id.example")
	if err != nil {
		t.Fatal(err)
	}
	s.tlsConfig = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	if err := s.SendPasswordReset(context.Background(), "alice@example.org", "alice", "tok-123"); err != nil {
		t.Fatalf("send over STARTTLS: %v", err)
	}
	cmds, data, upgraded := secure.Seen()
	if !upgraded || !strings.Contains(data, "tok-123") || !strings.Contains(data, "Subject: Reset your tonearm password") {
		t.Fatalf("STARTTLS server saw upgraded=%v data=%q commands=%q", upgraded, data, cmds)
	}

	// A server that does not offer it: nothing is sent in cleartext.
	plain := mailtest.Start(t, nil)
	s, err = NewSMTP("smtp://"+plain.Addr()+"?from=tonearm@example.org", "https://id.example")
	if err != nil {
		t.Fatal(err)
	}
	err = s.SendPasswordReset(context.Background(), "alice@example.org", "alice", "tok-456")
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("send without STARTTLS = %v, want a refusal", err)
	}
	cmds, data, _ = plain.Seen()
	for _, c := range cmds {
		if strings.HasPrefix(strings.ToUpper(c), "MAIL") || strings.HasPrefix(strings.ToUpper(c), "AUTH") {
			t.Fatalf("cleartext server received %q", c)
		}
	}
	if data != "" {
		t.Fatalf("cleartext server received the message: %q", data)
	}

	// ?tls=none says cleartext on purpose (a local relay).
	s, err = NewSMTP("smtp://"+plain.Addr()+"?from=tonearm@example.org&tls=none", "https://id.example")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SendPasswordReset(context.Background(), "alice@example.org", "alice", "tok-789"); err != nil {
		t.Fatalf("send with tls=none: %v", err)
	}
	if _, data, _ = plain.Seen(); !strings.Contains(data, "tok-789") {
		t.Fatalf("relay received %q", data)
	}
}

// A server that accepts and then says nothing: the send fails on its
// deadline and closes the connection instead of waiting forever.
func TestSMTPDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	closed := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			closed <- err
			return
		}
		defer conn.Close()
		_, err = io.Copy(io.Discard, conn) // returns when the client hangs up
		closed <- err
	}()
	s, err := NewSMTP("smtp://"+ln.Addr().String()+"?from=tonearm@example.org", "https://id.example")
	if err != nil {
		t.Fatal(err)
	}
	s.Timeout = 200 * time.Millisecond
	done := make(chan error, 1)
	go func() { done <- s.SendPasswordReset(context.Background(), "alice@example.org", "alice", "tok") }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the send is still waiting on a silent server")
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("send to a silent server = %v, want a timeout", err)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("server side: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the client kept the connection open after giving up")
	}
}

func TestSMTPURLModes(t *testing.T) {
	for raw, want := range map[string]struct{ addr, mode string }{
		"smtp://mail.example?from=a@b.example":             {"mail.example:587", tlsStartTLS},
		"smtp://mail.example:25?from=a@b.example&tls=none": {"mail.example:25", tlsNone},
		"smtps://mail.example?from=a@b.example":            {"mail.example:465", tlsImplicit},
	} {
		s, err := NewSMTP(raw, "https://id.example")
		if err != nil || s.addr != want.addr || s.mode != want.mode {
			t.Errorf("NewSMTP(%q) = %+v, %v; want %+v", raw, s, err, want)
		}
	}
	for _, bad := range []string{"smtp://mail.example?from=a@b.example&tls=maybe", "smtps://mail.example?from=a@b.example&tls=none"} {
		if _, err := NewSMTP(bad, "https://id.example"); err == nil {
			t.Errorf("NewSMTP(%q) accepted", bad)
		}
	}
}
