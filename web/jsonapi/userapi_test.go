package jsonapi_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/config"
	"github.com/tonearm-idp/tonearm/storage"
)

const pw = "correct-horse-42"

func TestCreateUser(t *testing.T) {
	backends(t, func(t *testing.T, newURL func(*testing.T) string) {
		e := newEnv(t, newURL(t))
		r := e.post(nil, "/api/User/createUser", map[string]string{"username": "Alice", "password": pw})
		if r.status != http.StatusOK || len(r.body) != 1 {
			t.Fatalf("createUser = %d %s, want 200 {\"user\": id}", r.status, r.raw)
		}
		id, _ := r.body["user"].(string)
		u, err := e.store.GetUser(context.Background(), id)
		if err != nil || u.Username != "Alice" || u.Role != storage.RoleUser {
			t.Fatalf("stored user = %+v, %v", u, err)
		}
		if u.PasswordHash == pw || strings.Contains(u.PasswordHash, pw) || !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
			t.Fatalf("password stored as %q: want an argon2id hash", u.PasswordHash)
		}
		for _, name := range []string{"Alice", "alice", "ALICE"} {
			r := e.post(nil, "/api/User/createUser", map[string]string{"username": name, "password": pw})
			r.wantError(t, http.StatusConflict)
		}
	})
}

func TestCreateUserValidation(t *testing.T) {
	e := newEnv(t, "sqlite://"+t.TempDir()+"/t.db")
	cases := []struct {
		name, username, password, wantMsg string
	}{
		{"empty username", "", pw, "Username cannot be empty"},
		{"short username", "ab", pw, "Username cannot be less than 3 or over 100 characters"},
		{"long username", strings.Repeat("a", 101), pw, "Username cannot be less than 3 or over 100 characters"},
		{"space in username", "al ice", pw, "Username cannot contain white space"},
		{"tab in username", "al\tice", pw, "Username cannot contain white space"},
		{"nbsp in username", "al\u00a0ice", pw, "Username cannot contain white space"},
		{"control char", "al\x00ice", pw, "Username cannot contain control or invisible characters"},
		{"empty password", "alice", "", "Password cannot be empty"},
		{"short password", "alice", "1234567", "Password cannot be less than 8 or over 200 characters"},
		{"long password", "alice", strings.Repeat("p", 201), "Password cannot be less than 8 or over 200 characters"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.post(nil, "/api/User/createUser", map[string]string{"username": c.username, "password": c.password})
			if msg := r.wantError(t, http.StatusBadRequest); msg != c.wantMsg {
				t.Fatalf("error = %q, want %q", msg, c.wantMsg)
			}
		})
	}
	// Limits are in characters, not bytes: 100 three-byte runes is fine, as
	// is a 200-character password of multi-byte runes.
	if id := e.createUser(strings.Repeat("é", 100), strings.Repeat("ü", 200)); id == "" {
		t.Fatal("no id")
	}
	if _, err := e.store.GetUserByUsername(context.Background(), "alice"); err == nil {
		t.Fatal("a refused createUser left a user behind")
	}
}

// Two browsers race to take one name: exactly one wins.
func TestCreateUserConcurrentSameName(t *testing.T) {
	backends(t, func(t *testing.T, newURL func(*testing.T) string) {
		e := newEnv(t, newURL(t))
		for round := 0; round < 5; round++ {
			name := "racer" + string(rune('a'+round))
			var wg sync.WaitGroup
			statuses := make([]int, 2)
			start := make(chan struct{})
			for i := range statuses {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					u := name
					if i == 1 {
						u = strings.ToUpper(name)
					}
					statuses[i] = e.post(nil, "/api/User/createUser", map[string]string{"username": u, "password": pw}).status
				}()
			}
			close(start)
			wg.Wait()
			ok, conflict := 0, 0
			for _, s := range statuses {
				switch s {
				case http.StatusOK:
					ok++
				case http.StatusConflict:
					conflict++
				}
			}
			if ok != 1 || conflict != 1 {
				t.Fatalf("round %d: statuses %v, want one 200 and one 409", round, statuses)
			}
		}
	})
}

func TestRegistrationAdminOnly(t *testing.T) {
	backends(t, func(t *testing.T, newURL func(*testing.T) string) {
		e := newEnv(t, newURL(t), func(o *envOptions) { o.registration = config.RegistrationAdmin })
		body := map[string]string{"username": "newbie", "password": pw}
		e.post(nil, "/api/User/createUser", body).wantError(t, http.StatusUnauthorized)

		if _, err := e.accounts.CreateUser(context.Background(), "plainuser", pw, storage.RoleUser); err != nil {
			t.Fatal(err)
		}
		e.post(e.login("plainuser", pw), "/api/User/createUser", body).wantError(t, http.StatusForbidden)
		if _, err := e.store.GetUserByUsername(context.Background(), "newbie"); err == nil {
			t.Fatal("refused createUser created the user")
		}

		if _, err := e.accounts.CreateUser(context.Background(), "root", pw, storage.RoleAdmin); err != nil {
			t.Fatal(err)
		}
		r := e.post(e.login("root", pw), "/api/User/createUser", body)
		if r.status != http.StatusOK || r.body["user"] == "" {
			t.Fatalf("admin createUser = %d %s", r.status, r.raw)
		}
	})
}

func TestStartSession(t *testing.T) {
	backends(t, func(t *testing.T, newURL func(*testing.T) string) {
		e := newEnv(t, newURL(t))
		id := e.createUser("bob", pw)
		c := e.client()
		r := e.post(c, "/api/User/startSession", map[string]string{"username": "BOB", "password": pw})
		if r.status != http.StatusOK || r.body["user"] != id || len(r.body) != 1 {
			t.Fatalf("startSession = %d %s, want 200 {\"user\": %q}", r.status, r.raw, id)
		}
		cookies := (&http.Response{Header: r.header}).Cookies()
		if len(cookies) != 2 || cookies[1].Name != "tonearm_device" || !cookies[1].HttpOnly || cookies[1].MaxAge < 300*24*3600 {
			t.Fatalf("cookies = %v, want a session cookie and a long-lived HttpOnly known-device cookie", cookies)
		}
		ck := cookies[0]
		if ck.Name != "tonearm_session" || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" ||
			ck.Secure || ck.MaxAge <= 0 || len(ck.Value) != 43 {
			t.Fatalf("session cookie = %+v: want HttpOnly, SameSite=Lax, Path=/, an expiry and a 256-bit value", ck)
		}
		// Only a hash of the cookie value is stored.
		owner, _, err := e.accounts.SessionUser(context.Background(), ck.Value)
		if err != nil || owner.ID != id {
			t.Fatalf("SessionUser(cookie) = %+v, %v", owner, err)
		}
		if _, err := e.store.GetSession(context.Background(), []byte(ck.Value)); err == nil {
			t.Fatal("session is stored under the raw cookie value")
		}

		wrong := e.post(nil, "/api/User/startSession", map[string]string{"username": "bob", "password": "wrong-password"})
		unknown := e.post(nil, "/api/User/startSession", map[string]string{"username": "nobody", "password": pw})
		m1, m2 := wrong.wantError(t, http.StatusUnauthorized), unknown.wantError(t, http.StatusUnauthorized)
		if m1 != m2 {
			t.Fatalf("wrong password says %q, unknown user says %q: the answer must not tell them apart", m1, m2)
		}
		if len((&http.Response{Header: wrong.header}).Cookies()) != 0 {
			t.Fatal("failed sign-in set a cookie")
		}
		e.post(nil, "/api/User/startSession", map[string]string{"username": "bob"}).wantError(t, http.StatusBadRequest)
		e.post(nil, "/api/User/startSession", map[string]string{"password": pw}).wantError(t, http.StatusBadRequest)
		e.post(nil, "/api/User/startSession", map[string]string{"username": "bob", "password": strings.Repeat("x", 201)}).
			wantError(t, http.StatusBadRequest)
	})
}

func TestSecureCookieOnHTTPSIssuer(t *testing.T) {
	e := newEnv(t, "sqlite://"+t.TempDir()+"/t.db", func(o *envOptions) { o.issuer = "https://id.example.org" })
	e.createUser("carol", pw)
	r := e.post(nil, "/api/User/startSession", map[string]string{"username": "carol", "password": pw})
	cookies := (&http.Response{Header: r.header}).Cookies()
	if r.status != http.StatusOK || len(cookies) != 2 || !cookies[0].Secure || cookies[0].Name != "__Host-tonearm_session" ||
		!cookies[1].Secure || cookies[1].Name != "__Host-tonearm_device" {
		t.Fatalf("https issuer: status %d, cookies %+v; want a Secure __Host- cookie", r.status, cookies)
	}
}

func TestStartSessionRateLimit(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := newEnv(t, "sqlite://"+t.TempDir()+"/t.db", func(o *envOptions) { o.now = clock })
	e.createUser("dave", pw)
	bad := map[string]string{"username": "dave", "password": "not-the-password"}
	for i := 0; i < 10; i++ {
		e.post(nil, "/api/User/startSession", bad).wantError(t, http.StatusUnauthorized)
	}
	r := e.post(nil, "/api/User/startSession", bad)
	r.wantError(t, http.StatusTooManyRequests)
	if r.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	// Blocked means blocked: the right password does not get through either.
	e.post(nil, "/api/User/startSession", map[string]string{"username": "dave", "password": pw}).
		wantError(t, http.StatusTooManyRequests)
	// Other accounts from the same address are not locked by this one.
	e.createUser("erin", pw)
	e.login("erin", pw)

	mu.Lock()
	now = now.Add(16 * time.Minute)
	mu.Unlock()
	e.login("dave", pw)
}

func TestAssociateToken(t *testing.T) {
	backends(t, func(t *testing.T, newURL func(*testing.T) string) {
		e := newEnv(t, newURL(t))
		ctx := context.Background()
		id := e.createUser("frank", pw)
		other := e.createUser("grace", pw)
		browser := e.login("frank", pw)
		assoc := func(c *http.Client, user, token string) response {
			return e.post(c, "/api/User/associateToken", map[string]string{"user": user, "scrobbleToken": token})
		}
		// No session, someone else's account.
		assoc(nil, id, lbGoodToken).wantError(t, http.StatusUnauthorized)
		assoc(browser, other, lbGoodToken).wantError(t, http.StatusForbidden)
		assoc(nil, "", lbGoodToken).wantError(t, http.StatusUnauthorized) // no user given, nobody signed in
		assoc(browser, id, "").wantError(t, http.StatusBadRequest)
		assoc(browser, id, "has space").wantError(t, http.StatusBadRequest)
		assoc(browser, id, strings.Repeat("t", 201)).wantError(t, http.StatusBadRequest)
		if n := e.lb.Calls(); n != 0 {
			t.Fatalf("ListenBrainz was asked %d times for requests refused before the check", n)
		}

		r := assoc(browser, id, lbGoodToken)
		if r.status != http.StatusOK || r.body["listenBrainzName"] != "rob_listens" || len(r.body) != 1 {
			t.Fatalf("associateToken = %d %s, want 200 {\"listenBrainzName\": \"rob_listens\"}", r.status, r.raw)
		}
		u, _ := e.store.GetUser(ctx, id)
		if u.ListenBrainzName != "rob_listens" || len(u.ListenBrainzToken) == 0 {
			t.Fatalf("stored user = %+v", u)
		}
		if bytes.Contains(u.ListenBrainzToken, []byte(lbGoodToken)) {
			t.Fatal("ListenBrainz token stored in clear")
		}
		if tok, err := e.accounts.ListenBrainzToken(u); err != nil || tok != lbGoodToken {
			t.Fatalf("sealed token opens to %q, %v", tok, err)
		}
		// The sealed token is bound to its user: copied onto another
		// user's row it does not open.
		o, _ := e.store.GetUser(ctx, other)
		o.ListenBrainzToken = u.ListenBrainzToken
		if _, err := e.accounts.ListenBrainzToken(o); err == nil {
			t.Fatal("a sealed token copied to another user opened")
		}

		// Invalid, ListenBrainz failing, ListenBrainz hanging: each refused,
		// and the stored association stays as it was.
		assoc(browser, id, lbBadToken).wantError(t, http.StatusBadRequest)
		assoc(browser, id, lbBrokenToken).wantError(t, http.StatusBadGateway)
		start := time.Now()
		assoc(browser, id, lbHangingToken).wantError(t, http.StatusBadGateway)
		t.Logf("hanging ListenBrainz answered in %v", time.Since(start))
		after, _ := e.store.GetUser(ctx, id)
		if after.ListenBrainzName != "rob_listens" || !bytes.Equal(after.ListenBrainzToken, u.ListenBrainzToken) {
			t.Fatalf("a refused associateToken changed the user: %+v", after)
		}

		// An admin may act on any user; a missing user is a 404 for them.
		if _, err := e.accounts.CreateUser(ctx, "root", pw, storage.RoleAdmin); err != nil {
			t.Fatal(err)
		}
		admin := e.login("root", pw)
		if r := assoc(admin, other, lbGoodToken); r.status != http.StatusOK {
			t.Fatalf("admin associateToken for another user = %d %s", r.status, r.raw)
		}
		assoc(admin, "00000000-0000-4000-8000-000000000000", lbGoodToken).wantError(t, http.StatusNotFound)

		// Guests cannot hold a ListenBrainz token.
		guest := e.createUser("guesty", pw)
		if _, err := e.store.UpdateUser(ctx, guest, func(u storage.User) (storage.User, error) {
			u.Role = storage.RoleGuest
			return u, nil
		}); err != nil {
			t.Fatal(err)
		}
		assoc(e.login("guesty", pw), guest, lbGoodToken).wantError(t, http.StatusForbidden)
	})
}

// The ListenBrainz token is not readable anywhere in the SQLite file.
func TestTokenNotInDatabaseFile(t *testing.T) {
	path := t.TempDir() + "/t.db"
	e := newEnv(t, "sqlite://"+path)
	id := e.createUser("heidi", pw)
	if r := e.post(e.login("heidi", pw), "/api/User/associateToken", map[string]string{"user": id, "scrobbleToken": lbGoodToken}); r.status != http.StatusOK {
		t.Fatalf("associateToken = %d %s", r.status, r.raw)
	}
	e.store.Close() // flush the WAL into the file
	for _, f := range []string{path, path + "-wal"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if bytes.Contains(data, []byte(lbGoodToken)) || bytes.Contains(data, []byte(pw)) {
			t.Fatalf("%s holds the token or the password in clear", f)
		}
		if f == path && !bytes.Contains(data, []byte("heidi")) {
			t.Fatalf("%s does not hold the user: the scan looked at the wrong file", f)
		}
	}
}

func TestEndSession(t *testing.T) {
	backends(t, func(t *testing.T, newURL func(*testing.T) string) {
		e := newEnv(t, newURL(t))
		id := e.createUser("ivan", pw)
		other := e.createUser("judy", pw)
		laptop, phone := e.login("ivan", pw), e.login("ivan", pw)
		judy := e.login("judy", pw)
		end := func(c *http.Client, user string) response {
			return e.post(c, "/api/User/endSession", map[string]string{"user": user})
		}
		end(nil, id).wantError(t, http.StatusUnauthorized)
		end(judy, id).wantError(t, http.StatusForbidden)
		end(nil, "").wantError(t, http.StatusUnauthorized) // no user given, nobody signed in

		r := end(laptop, id)
		if r.status != http.StatusOK || r.raw != "{}\n" {
			t.Fatalf("endSession = %d %q, want 200 {}", r.status, r.raw)
		}
		// Every session of the user ended: neither browser is signed in.
		for name, c := range map[string]*http.Client{"laptop": laptop, "phone": phone} {
			end(c, id).wantError(t, http.StatusUnauthorized)
			e.post(c, "/api/User/associateToken", map[string]string{"user": id, "scrobbleToken": lbGoodToken}).
				wantError(t, http.StatusUnauthorized)
			_ = name
		}
		// Judy's session is untouched.
		if r := end(judy, other); r.status != http.StatusOK {
			t.Fatalf("judy's own endSession = %d %s", r.status, r.raw)
		}

		// An admin ends another user's sessions; ending a missing user is 404.
		if _, err := e.accounts.CreateUser(context.Background(), "root", pw, storage.RoleAdmin); err != nil {
			t.Fatal(err)
		}
		admin := e.login("root", pw)
		victim := e.login("ivan", pw)
		if r := end(admin, id); r.status != http.StatusOK {
			t.Fatalf("admin endSession = %d %s", r.status, r.raw)
		}
		end(victim, id).wantError(t, http.StatusUnauthorized)
		end(admin, "00000000-0000-4000-8000-000000000000").wantError(t, http.StatusNotFound)
	})
}

// A cookie outlives nothing: once the session expires it opens nothing,
// even before the cleaner has deleted the row.
func TestExpiredSession(t *testing.T) {
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := newEnv(t, "sqlite://"+t.TempDir()+"/t.db", func(o *envOptions) { o.now = clock })
	id := e.createUser("kim", pw)
	c := e.login("kim", pw)
	mu.Lock()
	now = now.Add(e.accounts.SessionTTL() + time.Second)
	mu.Unlock()
	e.post(c, "/api/User/endSession", map[string]string{"user": id}).wantError(t, http.StatusUnauthorized)
}

func TestBadInput(t *testing.T) {
	e := newEnv(t, "sqlite://"+t.TempDir()+"/t.db")
	id := e.createUser("mallory", pw)
	browser := e.login("mallory", pw)
	paths := []string{"/api/User/createUser", "/api/User/associateToken", "/api/User/startSession", "/api/User/endSession"}
	bodies := []struct {
		name   string
		body   string
		status int
	}{
		{"empty", "", http.StatusBadRequest},
		{"malformed", `{"username": "x",`, http.StatusBadRequest},
		{"not an object", `["a", "b"]`, http.StatusBadRequest},
		{"string", `"hello"`, http.StatusBadRequest},
		{"wrong type", `{"username": 42, "password": true, "user": 1, "scrobbleToken": []}`, http.StatusBadRequest},
		{"unknown field", `{"username": "mallory", "password": "` + pw + `", "user": "` + id + `", "admin": true}`, http.StatusBadRequest},
		{"trailing data", `{"user": "` + id + `"} {"user": "x"}`, http.StatusBadRequest},
		{"too large", `{"username": "` + strings.Repeat("a", 70<<10) + `"}`, http.StatusRequestEntityTooLarge},
		{"missing fields", `{}`, http.StatusBadRequest},
	}
	for _, p := range paths {
		for _, b := range bodies {
			if p == "/api/User/endSession" && b.name == "missing fields" {
				continue // {} ends the caller's own sessions (user defaults to the caller)
			}
			t.Run(p+"/"+b.name, func(t *testing.T) {
				r := e.post(browser, p, b.body)
				r.wantError(t, b.status)
			})
		}
		t.Run(p+"/wrong method", func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, e.srv.URL+p, nil)
			r := e.do(browser, req)
			r.wantError(t, http.StatusMethodNotAllowed)
			if r.header.Get("Allow") != http.MethodPost {
				t.Fatalf("Allow = %q", r.header.Get("Allow"))
			}
		})
		t.Run(p+"/wrong content type", func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+p, strings.NewReader("username=a&password=b"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			e.do(browser, req).wantError(t, http.StatusUnsupportedMediaType)
		})
		t.Run(p+"/cross-site", func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+p, strings.NewReader(`{"user":"`+id+`"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Origin", "https://evil.example")
			e.do(browser, req).wantError(t, http.StatusForbidden)
		})
	}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/api/User/nothing", nil)
	e.do(nil, req).wantError(t, http.StatusNotFound)

	// None of that changed anything: mallory is still signed in and alone.
	if r := e.post(browser, "/api/User/endSession", map[string]string{"user": id}); r.status != http.StatusOK {
		t.Fatalf("after bad input: endSession = %d %s", r.status, r.raw)
	}
	if strings.Contains(e.logs.String(), `"level":"ERROR"`) {
		t.Fatalf("bad input logged an error (a 500 path):\n%s", e.logs.String())
	}
}

// Passwords, hashes, tokens and cookie values never reach a response body
// or a log line.
func TestSecretsNeverLeak(t *testing.T) {
	e := newEnv(t, "sqlite://"+t.TempDir()+"/t.db")
	secretPw := "Sup3r-Secret-Passw0rd"
	var bodies []string
	r := e.post(nil, "/api/User/createUser", map[string]string{"username": "nina", "password": secretPw})
	bodies = append(bodies, r.raw)
	id := r.body["user"].(string)
	c := e.client()
	r = e.post(c, "/api/User/startSession", map[string]string{"username": "nina", "password": secretPw})
	bodies = append(bodies, r.raw)
	cookie := (&http.Response{Header: r.header}).Cookies()[0].Value
	bodies = append(bodies, e.post(nil, "/api/User/startSession", map[string]string{"username": "nina", "password": secretPw + "x"}).raw)
	bodies = append(bodies, e.post(c, "/api/User/associateToken", map[string]string{"user": id, "scrobbleToken": lbGoodToken}).raw)
	bodies = append(bodies, e.post(c, "/api/User/associateToken", map[string]string{"user": id, "scrobbleToken": lbBrokenToken}).raw)
	u, _ := e.store.GetUser(context.Background(), id)
	logs := e.logs.String()
	if !strings.Contains(logs, id) {
		t.Fatal("logs do not mention the user at all: the log capture is broken")
	}
	for _, secret := range []string{secretPw, u.PasswordHash, lbGoodToken, lbBrokenToken, cookie} {
		if strings.Contains(logs, secret) {
			t.Errorf("a log line contains the secret %q", secret)
		}
		for _, b := range bodies {
			if strings.Contains(b, secret) {
				t.Errorf("a response body contains the secret %q: %s", secret, b)
			}
		}
	}
}

func TestHealth(t *testing.T) {
	e := newEnv(t, "sqlite://"+t.TempDir()+"/t.db")
	for _, p := range []string{"/healthz", "/readyz"} {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+p, nil)
		if r := e.do(nil, req); r.status != http.StatusOK {
			t.Fatalf("%s = %d %s", p, r.status, r.raw)
		}
	}
	e.store.Close()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/readyz", nil)
	if r := e.do(nil, req); r.status != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with the database closed = %d, want 503", r.status)
	}
	req, _ = http.NewRequest(http.MethodGet, e.srv.URL+"/healthz", nil)
	if r := e.do(nil, req); r.status != http.StatusOK {
		t.Fatalf("/healthz with the database closed = %d, want 200 (the process is up)", r.status)
	}
}
