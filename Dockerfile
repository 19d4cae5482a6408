# The whole cloud in one container: `cocaine dev` with the examples.
#
#   podman build -t cocaine .            (or docker build)
#   podman run -p 8080:8080 -v cocaine-data:/var/lib/cocaine cocaine
#   curl -d hello http://127.0.0.1:8080/echo/echo
#
# Without a registry, scripts/image-bases.sh makes the two base images
# locally (docs/operations.md, "Container image").

FROM docker.io/library/golang:1.26-bookworm AS build
# cgo: pebbe/zmq4 links libzmq.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libzmq3-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -ldflags='-s -w' -o /out/cocaine ./cmd/cocaine
# Apps of the go sandbox are built at deploy time against this source tree
# (slaves/sandbox/golang.go). Building the Go examples here, as the
# sandbox would, fills a module cache with what such builds need, so the
# running container needs no module proxy. The modules come from the one
# `go mod download` filled above, not from the network.
RUN mkdir /tmp/apps \
 && cp -r examples/. /tmp/apps/ \
 && cp go.sum /tmp/apps/ \
 && printf 'module cocaine.app/warm\n\ngo 1.26\n\nrequire github.com/cocaine-cloud/cocaine v0.0.0\n\nreplace github.com/cocaine-cloud/cocaine => /src\n' >/tmp/apps/go.mod \
 && cd /tmp/apps \
 && GOPROXY="file://$(go env GOMODCACHE)/cache/download" GOMODCACHE=/out/gomod GOFLAGS=-mod=mod CGO_ENABLED=0 \
      go build -o /dev/null ./... \
 && chmod -R a+rX /out/gomod

FROM docker.io/library/debian:bookworm-slim
# libzmq for the binary; Python with msgpack (and flask, zmq for the
# examples) for the python sandbox; certificates for the module proxy if
# an app brings a go.mod of its own.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libzmq5 python3 python3-msgpack python3-zmq python3-flask ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/cocaine --create-home cocaine
# The go sandbox's toolchain, the framework source its apps build against,
# and the module cache from the build stage.
COPY --from=build /usr/local/go /usr/local/go
COPY --from=build /out/gomod /opt/cocaine/gomod
COPY --from=build /src /opt/cocaine/src
COPY --from=build /out/cocaine /usr/local/bin/cocaine
ENV PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    GOMODCACHE=/opt/cocaine/gomod \
    GOCACHE=/var/lib/cocaine/go-build \
    GOTOOLCHAIN=local \
    GOPROXY=off
USER cocaine
# The sandbox finds the framework by walking up from here to its go.mod.
WORKDIR /opt/cocaine/src
VOLUME /var/lib/cocaine
# HTTP front, FastCGI front, engine requests. Announces stay on loopback:
# the dealer that reads them runs in this process (a cluster runs
# `cocaine engine` and `cocaine gateway` instead; configs/compose.yaml).
EXPOSE 8080 9000 5000
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/ping', timeout=2)"]
CMD ["cocaine", "dev", "--data", "/var/lib/cocaine", "--apps", "/opt/cocaine/src/examples", \
     "--http", "0.0.0.0:8080", "--fastcgi", "0.0.0.0:9000", \
     "--listen", "tcp://*:5000", "--announce", "tcp://127.0.0.1:5001"]
