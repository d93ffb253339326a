package jsonapi_test

import (
	"bytes"
	"net/http"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tonearm-idp/tonearm/provider/accounts"
)

// BenchmarkStartSession is a full password login over HTTP with the
// production argon2id parameters: JSON decoding, rate-limit bookkeeping,
// the hash, the session insert and the cookie. Compare its rate with
// BenchmarkHashDefault in provider/accounts: the target is ≥ 90 % of it.
func BenchmarkStartSession(b *testing.B) {
	params := accounts.DefaultHashParams
	e := newEnv(b, "sqlite://"+filepath.Join(b.TempDir(), "bench.db"), func(o *envOptions) { o.hashParams = &params })
	e.createUser("bench", pw)
	body := []byte(`{"username":"bench","password":"` + pw + `"}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(e.srv.URL+"/api/User/startSession", "application/json", bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
}

// BenchmarkStartSessionBurst500 fires 500 concurrent password logins per
// iteration and reports the peak heap: the hashing queue must keep it near
// GOMAXPROCS × 46 MiB, not 500 × 46 MiB.
func BenchmarkStartSessionBurst500(b *testing.B) {
	params := accounts.DefaultHashParams
	e := newEnv(b, "sqlite://"+filepath.Join(b.TempDir(), "bench.db"), func(o *envOptions) { o.hashParams = &params })
	e.createUser("bench", pw)
	body := []byte(`{"username":"bench","password":"` + pw + `"}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 500, MaxConnsPerHost: 500}}
	var peak uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak {
				peak = ms.HeapAlloc
			}
		}
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		var failed atomic.Int64
		for j := 0; j < 500; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := client.Post(e.srv.URL+"/api/User/startSession", "application/json", bytes.NewReader(body))
				if err != nil {
					failed.Add(1)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			}()
		}
		wg.Wait()
		if n := failed.Load(); n > 0 {
			b.Fatalf("%d of 500 concurrent logins failed", n)
		}
	}
	b.StopTimer()
	close(stop)
	<-sampled
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(500*b.N)/b.Elapsed().Seconds(), "logins/s")
}
