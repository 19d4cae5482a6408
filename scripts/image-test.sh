#!/usr/bin/env bash
# Builds the Dockerfile with podman the way it works on machines without a
# Docker daemon or a reachable registry, runs the image, and checks that
# the echo example answers through the container's HTTP front. Nothing is
# deployed by hand: the container's default command deploys the examples.
#
#   scripts/image-test.sh            (make image-test)
#
# Cold (no base images, no debootstrapped root, no build cache) it takes
# several minutes; base roots and the Go build cache are kept under
# $IMAGE_CACHE (default /var/cache/cocaine-image) so reruns are fast.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${IMAGE_CACHE:-/var/cache/cocaine-image}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$root/scripts/podman/containers.conf}"
image="${IMAGE:-localhost/cocaine:test}"
name="cocaine-image-test-$$"
start=$SECONDS
say() { echo "image-test: [$((SECONDS - start)) s] $*" >&2; }

"$root/scripts/deps.sh" image
"$root/scripts/image-bases.sh"
say "base images ready"

mkdir -p "$cache/go-build" "$cache/npm" "$(go env GOMODCACHE)"
# --format docker keeps HEALTHCHECK (OCI images have no such field). The
# volumes only speed the build up: modules from this machine's cache, and
# Go build and npm caches that survive between runs.
podman build --isolation chroot --format docker -t "$image" \
  -v "$(go env GOMODCACHE):/go/pkg/mod" -v "$cache/go-build:/root/.cache/go-build" -v "$cache/npm:/root/.npm" \
  -f "$root/Dockerfile" "$root" >"$cache/build.log" 2>&1 ||
  { tail -40 "$cache/build.log" >&2; echo "image-test: podman build failed (log: $cache/build.log)" >&2; exit 1; }
size=$(podman image inspect --format '{{.Size}}' "$image")
say "built $image: $((size / 1000000)) MB"

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() { podman rm -f "$name" >/dev/null 2>&1 || true; podman volume rm -f "$name-data" >/dev/null 2>&1 || true; }
trap cleanup EXIT
podman run -d --name "$name" -p "127.0.0.1:$port:8080" -v "$name-data:/var/lib/cocaine" "$image" >/dev/null
say "started container $name, front on 127.0.0.1:$port"

# The echo app is a Go app built inside the container at deploy time, with
# a cold build cache: allow a few minutes. Its "http" event is a plain
# net/http handler answering the method, the path and the body.
want=$'POST /image-test\nhello from the image test'
deadline=$((SECONDS + ${ECHO_WAIT:-300}))
while :; do
  got=$(curl -s -m 5 --data-binary 'hello from the image test' "http://127.0.0.1:$port/echo/http/image-test" || true)
  if [ "$got" = "$want" ]; then
    break
  fi
  if [ "$(podman inspect --format '{{.State.Running}}' "$name" 2>/dev/null)" != "true" ]; then
    podman logs "$name" 2>&1 | tail -40 >&2
    echo "image-test: the container stopped" >&2
    exit 1
  fi
  if [ $SECONDS -ge $deadline ]; then
    podman logs "$name" 2>&1 | tail -40 >&2
    echo "image-test: no echo answer through the front within ${ECHO_WAIT:-300} s (last: ${got:-nothing})" >&2
    exit 1
  fi
  sleep 2
done
say "echo/http answered through the container's HTTP front"
# The same app's "echo" event, through the dealer inside the container.
got=$(podman exec "$name" cocaine call echo/echo 'hello through the dealer')
[ "$got" = 'hello through the dealer' ] || { echo "image-test: cocaine call echo/echo answered ${got:-nothing}" >&2; exit 1; }
say "echo/echo answered through the dealer"
ping=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ping")
[ "$ping" = 200 ] || { echo "image-test: /ping answered $ping" >&2; exit 1; }
say "ok (image $((size / 1000000)) MB)"
