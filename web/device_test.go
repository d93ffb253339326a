package web

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// A known-device cookie signed before TONEARM_SECRET was rotated still
// vouches while the old secret is a previous one, and no longer once it is
// dropped (it may have leaked).
func TestDeviceCookiesPreviousKeys(t *testing.T) {
	oldKey, newKey := bytes.Repeat([]byte("o"), 32), bytes.Repeat([]byte("n"), 32)
	now := func() time.Time { return time.Unix(1_800_000_000, 0) }
	rec := httptest.NewRecorder()
	NewDeviceCookies(oldKey, "http://id.example", now).Set(rec, "user-1", 3)
	req := httptest.NewRequest(http.MethodGet, "/login", nil)
	for _, c := range rec.Result().Cookies() {
		req.AddCookie(c)
	}
	if id, epoch := NewDeviceCookies(newKey, "http://id.example", now, oldKey).Read(req).Owner(); id != "user-1" || epoch != 3 {
		t.Fatalf("with the previous key: %q %d", id, epoch)
	}
	if id, _ := NewDeviceCookies(newKey, "http://id.example", now).Read(req).Owner(); id != "" {
		t.Fatalf("without the previous key the cookie still vouches for %q", id)
	}
}
