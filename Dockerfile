# The whole cloud in one container: `cocaine dev` with the examples.
#
#   podman build -t cocaine .            (or docker build)
#   podman run -p 8080:8080 -v cocaine-data:/var/lib/cocaine cocaine
#   curl -d hello http://127.0.0.1:8080/echo/http/
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
# The toolchain the go sandbox needs, less what building never reads: Go's
# own tests and test data, the API lists, and tools other than the
# compiler, assembler, linker and cgo (about 85 MB).
RUN cp -a /usr/local/go /out/go \
 && rm -rf /out/go/test /out/go/api /out/go/doc /out/go/misc \
 && find /out/go/src -type d -name testdata -prune -exec rm -rf {} + \
 && cd /out/go/pkg/tool/*/ && rm -f vet fix cover preprofile pprof trace test2json covdata doc

# The node sandbox's runtime and the Express example need their npm
# packages, installed from their lock files.
FROM docker.io/library/debian:bookworm-slim AS npm
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY slaves/node/package.json slaves/node/package-lock.json slaves/node/
COPY examples/express/package.json examples/express/package-lock.json examples/express/
# --use-openssl-ca: trust the system's certificate store, like the other
# tools here, rather than only the CAs built into Node.
RUN for d in slaves/node examples/express; do \
      (cd "$d" && NODE_OPTIONS=--use-openssl-ca npm ci --no-audit --no-fund --loglevel=error) || exit 1; \
    done

FROM docker.io/library/debian:bookworm-slim
# What the sandboxes run or build apps with: libzmq for the binary; Python
# with msgpack (flask and zmq for the examples); Node.js; Perl with
# MessagePack and Plack (PSGI); a C and C++ toolchain, since the c and cpp
# sandboxes compile apps at deploy time; certificates for the module proxy
# if a Go app brings a go.mod of its own.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libzmq5 python3 python3-msgpack python3-zmq python3-flask \
      nodejs perl libdata-messagepack-perl libplack-perl \
      gcc g++ make libc6-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/cocaine --create-home cocaine
# The go sandbox's toolchain, the framework source its apps build against,
# and the module cache from the build stage.
COPY --from=build /out/go /usr/local/go
COPY --from=build /out/gomod /opt/cocaine/gomod
COPY --from=build /src /opt/cocaine/src
COPY --from=npm /src/slaves/node/node_modules /opt/cocaine/src/slaves/node/node_modules
COPY --from=npm /src/examples/express/node_modules /opt/cocaine/src/examples/express/node_modules
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
