# Multi-stage build: a static tonearm binary on a minimal, non-root image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/tonearm ./cmd/tonearm \
 && mkdir -p /out/data

# distroless/static has CA certificates (for ListenBrainz over https) and a
# nonroot user (65532), and nothing else: no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tonearm /usr/local/bin/tonearm
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
WORKDIR /data
ENV TONEARM_LISTEN=0.0.0.0:8080 \
    TONEARM_DATABASE_URL=sqlite:///data/tonearm.db
EXPOSE 8080
VOLUME ["/data"]
ENTRYPOINT ["/usr/local/bin/tonearm"]
CMD ["serve"]
