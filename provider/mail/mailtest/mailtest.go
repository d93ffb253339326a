// Package mailtest is an SMTP stand-in on loopback for tests: it greets,
// answers EHLO (offering STARTTLS when given a certificate), upgrades, and
// records the commands and the message it is sent.
package mailtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is the stand-in; Addr is where it listens.
type Server struct {
	Listener net.Listener
	tlsCert  *tls.Certificate
	mu       sync.Mutex
	commands []string
	messages []string
	upgraded bool
	// Received gets one value per message accepted.
	Received chan string
}

// Addr is the host:port to put in an smtp:// URL.
func (s *Server) Addr() string { return s.Listener.Addr().String() }

// Start listens on loopback until the test ends; cert (optional) enables
// STARTTLS.
func Start(t testing.TB, cert *tls.Certificate) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Listener: ln, tlsCert: cert, Received: make(chan string, 100)}
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

func (s *Server) serve(conn net.Conn) {
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
			s.messages = append(s.messages, string(body))
			s.mu.Unlock()
			tp.PrintfLine("250 queued")
			s.Received <- string(body)
		case "QUIT":
			tp.PrintfLine("221 bye")
			return
		default:
			tp.PrintfLine("250 ok")
		}
	}
}

// Seen returns the commands received, the last message, and whether the
// connection was upgraded to TLS.
func (s *Server) Seen() (commands []string, last string, upgraded bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.messages) > 0 {
		last = s.messages[len(s.messages)-1]
	}
	return append([]string(nil), s.commands...), last, s.upgraded
}

// SelfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func SelfSigned(t testing.TB) (*tls.Certificate, *x509.CertPool) {
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
