# syntax=docker/dockerfile:1
# Ferry's container image: the control plane (`ferry serve`, `ferry worker`,
# `ferry migrate`, `ferry gateway`) with the UI embedded, plus the static
# agent binary for source hosts. Build: docker build -t ferry:dev .
# deploy/deploy_test.go parses this file and runs its build commands outside
# docker (this machine has no docker daemon), so keep each step one command.

# 1. The UI (frontend/dist, embedded by go:embed).
FROM node:20-bookworm-slim AS ui
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund || npm install --no-save --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

# 2. The binaries. The server links SQLite through cgo; the agent is a
# static, cgo-free build that runs on any Linux source host.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
COPY --from=ui /src/frontend/dist/ frontend/dist/
ARG VERSION=dev
RUN CGO_ENABLED=1 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/ferry ./cmd/ferry
RUN CGO_ENABLED=0 go build -trimpath -tags agent -ldflags "-s -w -X main.version=${VERSION}" -o /out/ferry-agent ./cmd/ferry

# 3. The runtime: Debian slim (glibc for the cgo server), no shell tools
# beyond the base, a non-root user, data under /var/lib/ferry.
FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates tzdata && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/ferry --create-home ferry
COPY --from=build /out/ferry /usr/local/bin/ferry
COPY --from=build /out/ferry-agent /usr/local/share/ferry/ferry-agent
USER 10001:10001
ENV FERRY_DATA_DIR=/var/lib/ferry FERRY_ADDR=0.0.0.0:8080
VOLUME ["/var/lib/ferry"]
EXPOSE 8080 8443
ENTRYPOINT ["ferry"]
CMD ["serve"]
