# syntax=docker/dockerfile:1
# pinpipe in one image: docker build -t pinpipe . (docker-compose.yml builds it too).

# --- build: cgo on, DuckDB (github.com/duckdb/duckdb-go/v2) links its bundled C++ library.
FROM golang:1.26-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=1 GOFLAGS=-buildvcs=false
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /pinpipe .

# --- run: glibc + libstdc++ for DuckDB, CA certificates for real S3, curl for the healthcheck.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libstdc++6 tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 pinpipe \
 && useradd --system --uid 10001 --gid pinpipe --home-dir /data --no-create-home --shell /usr/sbin/nologin pinpipe \
 && mkdir -p /data && chown pinpipe:pinpipe /data
COPY --from=build /pinpipe /usr/local/bin/pinpipe
ENV PINPIPE_ADDR=0.0.0.0:8000 \
    PINPIPE_DATA_DIR=/data
VOLUME /data
WORKDIR /data
EXPOSE 8000
USER pinpipe:pinpipe
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=5 \
  CMD curl -fsS -o /dev/null http://127.0.0.1:8000/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/pinpipe"]
CMD ["serve"]
