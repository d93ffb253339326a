package mail

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
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
