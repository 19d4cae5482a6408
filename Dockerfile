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
# The language runtimes and the Go SDK are embedded in the binary
# (docs/sandboxes.md): nothing else of the source is needed to run apps.
RUN CGO_ENABLED=1 go build -trimpath -ldflags='-s -w' -o /out/cocaine ./cmd/cocaine
# The go sandbox builds Go apps with the node's toolchain. This one loses
# what building never reads: Go's own tests and test data, the API lists,
# and tools other than the compiler, assembler, linker and cgo (about 85 MB).
RUN cp -a /usr/local/go /out/go \
 && rm -rf /out/go/test /out/go/api /out/go/doc /out/go/misc \
 && find /out/go/src -type d -name testdata -prune -exec rm -rf {} + \
 && cd /out/go/pkg/tool/*/ && rm -f vet fix cover preprofile pprof trace test2json covdata doc

# The Express example brings its npm packages in its package, as any
# node app does; they are installed here from its lock file.
FROM docker.io/library/debian:bookworm-slim AS npm
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY examples /examples
# --use-openssl-ca: trust the system's certificate store, like the other
# tools here, rather than only the CAs built into Node.
RUN cd /examples/express \
 && NODE_OPTIONS=--use-openssl-ca npm ci --no-audit --no-fund --loglevel=error

FROM docker.io/library/debian:bookworm-slim
# What the sandboxes run or build apps with (docs/sandboxes.md): libzmq
# for the binary; Python with msgpack (flask and zmq for the examples);
# Node.js; Perl with MessagePack and Plack (PSGI); a C and C++ toolchain,
# since the c and cpp sandboxes compile apps at deploy time; certificates
# for the module proxy when a Go app brings a go.mod of its own.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libzmq5 python3 python3-msgpack python3-zmq python3-flask \
      nodejs perl libdata-messagepack-perl libplack-perl \
      gcc g++ make libc6-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/cocaine --create-home cocaine
COPY --from=build /out/go /usr/local/go
COPY --from=build /out/cocaine /usr/local/bin/cocaine
COPY --from=npm /examples /opt/cocaine/examples
ENV PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
USER cocaine
WORKDIR /var/lib/cocaine
VOLUME /var/lib/cocaine
# HTTP front, FastCGI front, engine requests. Announces stay on loopback:
# the dealer that reads them runs in this process (a cluster runs
# `cocaine engine` and `cocaine gateway` instead; configs/compose.yaml).
EXPOSE 8080 9000 5000
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/ping', timeout=2)"]
CMD ["cocaine", "dev", "--data", "/var/lib/cocaine", "--apps", "/opt/cocaine/examples", \
     "--http", "0.0.0.0:8080", "--fastcgi", "0.0.0.0:9000", \
     "--listen", "tcp://*:5000", "--announce", "tcp://127.0.0.1:5001"]
