// Command tonearm-load is a small HTTP load generator for tonearm's hot
// paths, and a stand-in server that answers from memory (the machine's HTTP
// ceiling, measured in the same run for comparison).
//
//	tonearm-load ceiling -listen 127.0.0.1:9099
//	tonearm-load run -target cc -issuer http://127.0.0.1:8080 -client svc -secret S -scope admin -c 64 -d 10s
//	tonearm-load run -target introspect …   (gets one token, then introspects it)
//	tonearm-load run -target jwks|discovery -issuer …
//	tonearm-load run -target code|refresh|userinfo -client web [-secret S] -username U -password P -redirect-uri URI [-json]
//	tonearm-load run -target code … -users 10000 [-username-prefix user] [-password P]   (users of the seed)
//	tonearm-load run … [-server-pid PID] [-db-pid PID] [-database-url postgres://…]   (CPU per operation)
//	tonearm-load run -target cc|code|refresh|userinfo … -dpop   (a fresh ES256 DPoP proof per request, one key per worker)
//	tonearm-load run -target ceiling-post|ceiling-get -issuer http://127.0.0.1:9099
//	tonearm-load seed -database-url postgres://… [-users 10000] [-password P] [-tokens 5000000]
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tonearm-idp/tonearm/provider/dpop"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: tonearm-load ceiling|run|seed [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "ceiling":
		err = ceiling(os.Args[2:])
	case "run":
		err = run(os.Args[2:], os.Stdout)
	case "seed":
		err = seed(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tonearm-load:", err)
		os.Exit(1)
	}
}

// ceiling serves token-shaped answers from memory, doing no work.
func ceiling(args []string) error {
	fs := flag.NewFlagSet("ceiling", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:9099", "listen address")
	fs.Parse(args)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Println("stand-in listening on", ln.Addr())
	return http.Serve(ln, standIn())
}

// standIn answers POSTs with a token-shaped body and GETs with a JWKS-shaped
// one, from memory.
func standIn() http.Handler {
	token := []byte(`{"access_token":"` + strings.Repeat("x", 400) + `","token_type":"bearer","expires_in":3599,"scope":"admin"}`)
	doc := []byte(`{"keys":[{"kty":"EC","kid":"k","alg":"ES256","use":"sig","crv":"P-256","x":"` + strings.Repeat("x", 43) + `","y":"` + strings.Repeat("y", 43) + `"}]}`)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost {
			io.Copy(io.Discard, r.Body)
			w.Write(token)
			return
		}
		w.Write(doc)
	})
}

type target struct {
	method, path, contentType string
	body                      []byte
	user, pass                string
	// want must appear in every answer counted as a success (an
	// introspection that says "active": false is not one).
	want []byte
	// dpop: each request carries a fresh DPoP proof of its worker's key
	// for method and the target's URL, and only token_type DPoP counts.
	dpop bool
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	kind := fs.String("target", "cc", "cc, introspect, jwks, discovery, code, refresh, userinfo, ceiling-post, ceiling-get")
	var fc flowConfig
	fs.StringVar(&fc.username, "username", "", "code, refresh, userinfo: the one user every worker signs in as (or -users)")
	fs.IntVar(&fc.users, "users", 0, "code, refresh, userinfo: workers sign in round-robin as this many users, PREFIX0000001, PREFIX0000002, … (those of tonearm-load seed)")
	fs.StringVar(&fc.prefix, "username-prefix", "user", "with -users: the usernames' prefix")
	fs.StringVar(&fc.password, "password", "", "code, refresh, userinfo: the users' password (with -users, default the seed's)")
	fs.StringVar(&fc.redirectURI, "redirect-uri", "", "code, refresh, userinfo: a redirect URI of the (first-party) client; never requested")
	asJSON := fs.Bool("json", false, `print one JSON line: {"rps", "failed", "p50_ms", "p99_ms", "cpu_ms_per_op", "db_cpu_ms_per_op"}`)
	issuer := fs.String("issuer", "http://127.0.0.1:8080", "base URL")
	fs.StringVar(&fc.client, "client", "", "client ID")
	fs.StringVar(&fc.secret, "secret", "", "client secret (none: a public client)")
	scope := fs.String("scope", "", "scope for client credentials")
	conc := fs.Int("c", 64, "concurrent keep-alive clients")
	dur := fs.Duration("d", 10*time.Second, "duration")
	fs.BoolVar(&fc.dpop, "dpop", false, "cc, code, refresh, userinfo: send a fresh DPoP proof (RFC 9449, ES256, one key per worker) with every token request and count only token_type DPoP; userinfo presents the bound token with a proof")
	serverPID := fs.Int("server-pid", 0, "the server's PID, for its CPU per operation (0: the process listening on the issuer's port; -1: none)")
	dbPID := fs.Int("db-pid", 0, "the database's PID (the postmaster; its backends are counted with it) (0: the listener on -database-url's port; -1: none)")
	dbURL := fs.String("database-url", os.Getenv("TONEARM_DATABASE_URL"), "the server's database (TONEARM_DATABASE_URL), to find the database's PID")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fc.users > 0 && fc.password == "" {
		fc.password = SeedPassword
	}
	tr := &http.Transport{MaxIdleConns: *conc * 2, MaxIdleConnsPerHost: *conc * 2, IdleConnTimeout: time.Minute}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	m := newCPUMeter(*serverPID, *dbPID, *issuer, *dbURL, func(s string) { fmt.Fprintln(os.Stderr, "tonearm-load:", s) })
	var r result
	switch *kind {
	case "code", "refresh", "userinfo":
		fc.issuer = *issuer
		c, err := newFlowConfig(hc, fc)
		if err != nil {
			return err
		}
		if r, err = loadFlows(context.Background(), c, *kind, *conc, *dur, m); err != nil {
			return err
		}
	default:
		t, err := newTarget(hc, *kind, *issuer, fc.client, fc.secret, *scope)
		if err != nil {
			return err
		}
		if fc.dpop {
			if *kind != "cc" {
				return fmt.Errorf("-dpop is for cc, code, refresh and userinfo, not %s", *kind)
			}
			t.dpop = true
		}
		r = load(hc, *issuer, t, *conc, *dur, m)
	}
	return report(out, r, m, *kind, *conc, *asJSON)
}

// newTarget is the request of a single-request target.
func newTarget(hc *http.Client, kind, issuer, client, secret, scope string) (target, error) {
	ccForm := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		ccForm.Set("scope", scope)
	}
	form := "application/x-www-form-urlencoded"
	switch kind {
	case "cc", "ceiling-post":
		return target{http.MethodPost, "/oauth2/token", form, []byte(ccForm.Encode()), client, secret, []byte(`"access_token":`), false}, nil
	case "introspect":
		tok, err := fetchToken(hc, issuer, client, secret, ccForm)
		if err != nil {
			return target{}, err
		}
		return target{http.MethodPost, "/oauth2/introspect", form, []byte(url.Values{"token": {tok}}.Encode()), client, secret, []byte(`"active":true`), false}, nil
	case "jwks", "ceiling-get":
		return target{method: http.MethodGet, path: "/.well-known/jwks.json", want: []byte(`"keys":`)}, nil
	case "discovery":
		return target{method: http.MethodGet, path: "/.well-known/openid-configuration", want: []byte(`"issuer":`)}, nil
	}
	return target{}, fmt.Errorf("unknown target %q", kind)
}

// report prints what a run measured. CPU per operation is the CPU over the
// window divided by the successful operations in it.
func report(out io.Writer, r result, m *cpuMeter, kind string, conc int, asJSON bool) error {
	cpu, db := m.server.msPerOp(r.ok), m.db.msPerOp(r.ok)
	if asJSON {
		return json.NewEncoder(out).Encode(map[string]any{"rps": round2(r.rate()), "ok": r.ok, "failed": r.failed,
			"p50_ms": round2(float64(r.pct(0.50).Microseconds()) / 1000), "p99_ms": round2(float64(r.pct(0.99).Microseconds()) / 1000),
			"cpu_ms_per_op": cpu, "db_cpu_ms_per_op": db, "first_error": r.firstErr})
	}
	fmt.Fprintf(out, "%s c=%d: %.0f req/s ok, %d failed, p50 %v, p99 %v (%d requests in %v)\n",
		kind, conc, r.rate(), r.failed, r.pct(0.50).Round(10*time.Microsecond),
		r.pct(0.99).Round(10*time.Microsecond), r.ok+r.failed, r.elapsed.Round(time.Millisecond))
	for _, x := range []struct {
		name string
		v    *float64
	}{{"server", cpu}, {"database", db}} {
		if x.v != nil {
			fmt.Fprintf(out, "%s CPU: %.3f ms per operation\n", x.name, *x.v)
		}
	}
	if r.firstErr != "" {
		fmt.Fprintln(out, "first error:", r.firstErr)
	}
	return nil
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// result is what one load run measured.
type result struct {
	ok, failed int64
	latencies  []time.Duration // sorted
	elapsed    time.Duration
	firstErr   string
}

func (r result) rate() float64 { return float64(r.ok) / r.elapsed.Seconds() }

func (r result) pct(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	return r.latencies[int(float64(len(r.latencies)-1)*p)]
}

// load sends t from conc keep-alive clients for dur.
func load(hc *http.Client, base string, t target, conc int, dur time.Duration, m *cpuMeter) result {
	var ok, failed atomic.Int64
	lat := make([][]time.Duration, conc)
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	m.begin()
	start := time.Now()
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var key *ecdsa.PrivateKey
			if t.dpop {
				key = newDPoPKey()
			}
			for time.Now().Before(deadline) {
				req, _ := http.NewRequest(t.method, base+t.path, bytes.NewReader(t.body))
				if t.contentType != "" {
					req.Header.Set("Content-Type", t.contentType)
				}
				if t.user != "" {
					req.SetBasicAuth(t.user, t.pass)
				}
				s := time.Now()
				if key != nil { // signing the proof is part of the client's request
					p, err := proof(key, t.method, base+t.path, "")
					if err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
						continue
					}
					req.Header.Set(dpop.HeaderName, p)
				}
				resp, err := hc.Do(req)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				lat[i] = append(lat[i], time.Since(s))
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("HTTP %d", resp.StatusCode))
					continue
				}
				if !bytes.Contains(body, t.want) {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("answer without %s", t.want))
					continue
				}
				if key != nil {
					var a struct {
						TokenType string `json:"token_type"`
					}
					if json.Unmarshal(body, &a) != nil || !isDPoP(a.TokenType) {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, fmt.Sprintf("token_type %q, not DPoP", a.TokenType))
						continue
					}
				}
				ok.Add(1)
			}
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	m.end()
	return collect(ok.Load(), failed.Load(), lat, elapsed, &firstErr)
}

// collect is what a run measured: the workers' latencies sorted together.
func collect(ok, failed int64, lat [][]time.Duration, elapsed time.Duration, firstErr *atomic.Value) result {
	r := result{ok: ok, failed: failed, elapsed: elapsed}
	for _, l := range lat {
		r.latencies = append(r.latencies, l...)
	}
	sort.Slice(r.latencies, func(i, j int) bool { return r.latencies[i] < r.latencies[j] })
	if e, _ := firstErr.Load().(string); e != "" {
		r.firstErr = e
	}
	return r
}

func fetchToken(hc *http.Client, issuer, client, secret string, form url.Values) (string, error) {
	req, _ := http.NewRequest(http.MethodPost, issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(client, secret)
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		return "", errors.New("could not get a token with client credentials: check -client, -secret and -scope")
	}
	return body.AccessToken, nil
}
