package mail

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
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
	subject, body := Message("https://id.example/", "alice", "tok-123")
	if subject == "" || !strings.Contains(body, "tok-123") || !strings.Contains(body, "https://id.example/password/reset?token=tok-123") {
		t.Fatalf("message = %q %q", subject, body)
	}
}

// smtpStandIn is a minimal SMTP server on loopback: it greets, answers
// EHLO (offering STARTTLS when tlsCert is set), upgrades on STARTTLS and
// records what it is sent.
type smtpStandIn struct {
	ln       net.Listener
	tlsCert  *tls.Certificate
	mu       sync.Mutex
	commands []string
	data     string
	upgraded bool
}

func startSMTPStandIn(t *testing.T, cert *tls.Certificate) *smtpStandIn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpStandIn{ln: ln, tlsCert: cert}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(conn)
		}
	}()
	return s
}

func (s *smtpStandIn) serve(conn net.Conn) {
	defer conn.Close()
	tp := textproto.NewConn(conn)
	tp.PrintfLine("220 stand-in ESMTP")
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.commands = append(s.commands, line)
		s.mu.Unlock()
		verb := strings.ToUpper(strings.Fields(line + " x")[0])
		switch verb {
		case "EHLO":
			if s.tlsCert != nil {
				tp.PrintfLine("250-stand-in")
				tp.PrintfLine("250 STARTTLS")
			} else {
				tp.PrintfLine("250 stand-in")
			}
		case "STARTTLS":
			tp.PrintfLine("220 go ahead")
			tc := tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{*s.tlsCert}})
			if err := tc.Handshake(); err != nil {
				return
			}
			s.mu.Lock()
			s.upgraded = true
			s.mu.Unlock()
			conn = tc
			tp = textproto.NewConn(tc)
		case "DATA":
			tp.PrintfLine("354 go on")
			body, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.data = string(body)
			s.mu.Unlock()
			tp.PrintfLine("250 queued")
		case "QUIT":
			tp.PrintfLine("221 bye")
			return
		default:
			tp.PrintfLine("250 ok")
		}
	}
}

func (s *smtpStandIn) seen() ([]string, string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...), s.data, s.upgraded
}

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (*tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stand-in"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func TestSMTPRequiresSTARTTLS(t *testing.T) {
	cert, pool := selfSigned(t)

	// A server that offers STARTTLS: the mail goes over TLS.
	secure := startSMTPStandIn(t, cert)
	s, err := NewSMTP("smtp://"+secure.ln.Addr().String()+"?from=tonearm@example.org", "https://id.example")
	if err != nil {
		t.Fatal(err)
	}
	s.tlsConfig = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	if err := s.SendPasswordReset(context.Background(), "alice@example.org", "alice", "tok-123"); err != nil {
		t.Fatalf("send over STARTTLS: %v", err)
	}
	cmds, data, upgraded := secure.seen()
	if !upgraded || !strings.Contains(data, "tok-123") || !strings.Contains(data, "Subject: Reset your tonearm password") {
		t.Fatalf("STARTTLS server saw upgraded=%v data=%q commands=%q", upgraded, data, cmds)
	}

	// A server that does not offer it: nothing is sent in cleartext.
	plain := startSMTPStandIn(t, nil)
	s, err = NewSMTP("smtp://"+plain.ln.Addr().String()+"?from=tonearm@example.org", "https://id.example")
	if err != nil {
		t.Fatal(err)
	}
	err = s.SendPasswordReset(context.Background(), "alice@example.org", "alice", "tok-456")
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("send without STARTTLS = %v, want a refusal", err)
	}
	cmds, data, _ = plain.seen()
	for _, c := range cmds {
		if strings.HasPrefix(strings.ToUpper(c), "MAIL") || strings.HasPrefix(strings.ToUpper(c), "AUTH") {
			t.Fatalf("cleartext server received %q", c)
		}
	}
	if data != "" {
		t.Fatalf("cleartext server received the message: %q", data)
	}

	// ?tls=none says cleartext on purpose (a local relay).
	s, err = NewSMTP("smtp://"+plain.ln.Addr().String()+"?from=tonearm@example.org&tls=none", "https://id.example")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SendPasswordReset(context.Background(), "alice@example.org", "alice", "tok-789"); err != nil {
		t.Fatalf("send with tls=none: %v", err)
	}
	if _, data, _ = plain.seen(); !strings.Contains(data, "tok-789") {
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
