// Command tonearm-load is a small HTTP load generator for tonearm's hot
// paths, and a stand-in server that answers from memory (the machine's HTTP
// ceiling, measured in the same run for comparison).
//
//	tonearm-load ceiling -listen 127.0.0.1:9099
//	tonearm-load run -target cc -issuer http://127.0.0.1:8080 -client svc -secret S -scope admin -c 64 -d 10s
//	tonearm-load run -target introspect …   (gets one token, then introspects it)
//	tonearm-load run -target jwks|discovery -issuer …
//	tonearm-load run -target code|refresh|userinfo -client web -secret S -username U -password P -redirect-uri URI [-json]
//	tonearm-load run -target ceiling-post|ceiling-get -issuer http://127.0.0.1:9099
//	tonearm-load seed -database-url postgres://… -users 1000000 -tokens 5000000
package main

import (
	"bytes"
	"context"
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
		err = run(os.Args[2:])
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
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	kind := fs.String("target", "cc", "cc, introspect, jwks, discovery, code, refresh, userinfo, ceiling-post, ceiling-get")
	username := fs.String("username", "", "code, refresh, userinfo: the user each worker signs in as")
	password := fs.String("password", "", "code, refresh, userinfo: that user's password")
	redirectURI := fs.String("redirect-uri", "", "code, refresh, userinfo: a redirect URI of the (first-party) client; never requested")
	asJSON := fs.Bool("json", false, `print one JSON line: {"rps", "failed", "p50_ms", "p99_ms"}`)
	issuer := fs.String("issuer", "http://127.0.0.1:8080", "base URL")
	client := fs.String("client", "", "client ID")
	secret := fs.String("secret", "", "client secret")
	scope := fs.String("scope", "", "scope for client credentials")
	conc := fs.Int("c", 64, "concurrent keep-alive clients")
	dur := fs.Duration("d", 10*time.Second, "duration")
	fs.Parse(args)

	tr := &http.Transport{MaxIdleConns: *conc * 2, MaxIdleConnsPerHost: *conc * 2, IdleConnTimeout: time.Minute}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	ccForm := url.Values{"grant_type": {"client_credentials"}}
	if *scope != "" {
		ccForm.Set("scope", *scope)
	}
	form := "application/x-www-form-urlencoded"
	report := func(r result) {
		if *asJSON {
			_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"rps": round2(r.rate()), "failed": r.failed,
				"p50_ms": round2(float64(r.pct(0.50).Microseconds()) / 1000), "p99_ms": round2(float64(r.pct(0.99).Microseconds()) / 1000)})
			return
		}
		fmt.Printf("%s c=%d: %.0f req/s ok, %d failed, p50 %v, p99 %v (%d requests in %v)\n",
			*kind, *conc, r.rate(), r.failed, r.pct(0.50).Round(10*time.Microsecond),
			r.pct(0.99).Round(10*time.Microsecond), r.ok+r.failed, r.elapsed.Round(time.Millisecond))
		if r.firstErr != "" {
			fmt.Println("first error:", r.firstErr)
		}
	}
	switch *kind {
	case "code", "refresh", "userinfo":
		c, err := newFlowConfig(hc, *issuer, *client, *secret, *username, *password, *redirectURI)
		if err != nil {
			return err
		}
		r, err := loadFlows(context.Background(), c, *kind, *conc, *dur)
		if err != nil {
			return err
		}
		report(r)
		return nil
	}
	var t target
	switch *kind {
	case "cc":
		t = target{http.MethodPost, "/oauth2/token", form, []byte(ccForm.Encode()), *client, *secret, []byte(`"access_token":`)}
	case "introspect":
		tok, err := fetchToken(hc, *issuer, *client, *secret, ccForm)
		if err != nil {
			return err
		}
		t = target{http.MethodPost, "/oauth2/introspect", form, []byte(url.Values{"token": {tok}}.Encode()), *client, *secret, []byte(`"active":true`)}
	case "jwks":
		t = target{method: http.MethodGet, path: "/.well-known/jwks.json", want: []byte(`"keys":`)}
	case "discovery":
		t = target{method: http.MethodGet, path: "/.well-known/openid-configuration", want: []byte(`"issuer":`)}
	case "ceiling-post":
		t = target{http.MethodPost, "/oauth2/token", form, []byte(ccForm.Encode()), *client, *secret, []byte(`"access_token":`)}
	case "ceiling-get":
		t = target{method: http.MethodGet, path: "/.well-known/jwks.json", want: []byte(`"keys":`)}
	default:
		return fmt.Errorf("unknown target %q", *kind)
	}

	report(load(hc, *issuer, t, *conc, *dur))
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
func load(hc *http.Client, base string, t target, conc int, dur time.Duration) result {
	var ok, failed atomic.Int64
	lat := make([][]time.Duration, conc)
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for time.Now().Before(deadline) {
				req, _ := http.NewRequest(t.method, base+t.path, bytes.NewReader(t.body))
				if t.contentType != "" {
					req.Header.Set("Content-Type", t.contentType)
				}
				if t.user != "" {
					req.SetBasicAuth(t.user, t.pass)
				}
				s := time.Now()
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
				ok.Add(1)
			}
		}(i)
	}
	wg.Wait()
	return collect(ok.Load(), failed.Load(), lat, time.Since(start), &firstErr)
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
