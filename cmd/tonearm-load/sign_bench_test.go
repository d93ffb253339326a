package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"
)

// The machine's signing rates, the yardstick of the code-flow targets (a
// code exchange signs one ID token): run with -cpu 2 next to a load test,
// and the rate is 1 / (ns/op) of the parallel benchmark (RunParallel reports
// the wall time per operation, all goroutines together).
//
//	go test -run '^$' -bench 'Sign' -cpu 2 ./cmd/tonearm-load
func BenchmarkRS256Sign(b *testing.B) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256([]byte("header.payload of an ID token"))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkES256Sign(b *testing.B) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256([]byte("header.payload of an ID token"))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := ecdsa.SignASN1(rand.Reader, key, sum[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
