# tonearm — the two commands of the README, plus helpers.
GO ?= go
BIN := bin/tonearm

.PHONY: run test build bench lint clean screenshots messages

## run: build and serve on the embedded SQLite database, zero configuration.
## PORT=9090 serves on 127.0.0.1:9090 instead (the issuer follows it).
run: build
	$(if $(PORT),TONEARM_LISTEN=127.0.0.1:$(PORT) )./$(BIN) serve

## build: a static binary (no cgo).
build:
	CGO_ENABLED=0 $(GO) build -buildvcs=auto -trimpath -o $(BIN) ./cmd/tonearm

## test: formatting, vet, and every test with the race detector, PostgreSQL included.
test: lint
	$(GO) test -race -count=1 -timeout 45m ./...

## lint: gofmt, go vet and staticcheck (the pinned version is installed into bin/).
STATICCHECK_VERSION := v0.8.2
lint:
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	GOBIN=$(CURDIR)/bin $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	./bin/staticcheck ./...

## bench: the Go benchmarks (password hash, startSession, …).
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

## screenshots: a PNG of every page, desktop and 390 px wide, into docs/screenshots, and of six pages in
## German, Japanese and Arabic (needs chromium, npm, and fonts with Japanese and Arabic glyphs).
screenshots:
	@fc-list :lang=ja | grep -q . && fc-list :lang=ar | grep -q . || \
	  { echo "make screenshots: no Japanese or Arabic font (apt-get install fonts-noto-cjk fonts-noto-core)"; exit 1; }
	TONEARM_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run '^(TestPagesAt390px|TestI35PagesInLanguages)$$' ./cmd/tonearm

## messages: regenerate locale/catalogs/en.json (the translators' template) from the pages and code.
messages:
	$(GO) run ./cmd/tonearm-messages

clean:
	rm -rf bin
