#!/usr/bin/env bash
# Makes the two base images the Dockerfile starts from, for machines that
# cannot pull from a registry: a debootstrapped Debian bookworm imported as
# docker.io/library/debian:bookworm-slim, and the same root with this
# machine's Go toolchain and a C compiler as docker.io/library/golang:1.26-bookworm.
# The Dockerfile then stays the standard one. Idempotent: images already in
# podman's store are kept, and the debootstrapped root is cached as a tarball
# under $IMAGE_CACHE (default /var/cache/cocaine-image) so a fresh podman
# store is refilled in seconds.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${IMAGE_CACHE:-/var/cache/cocaine-image}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$root/scripts/podman/containers.conf}"
slim=docker.io/library/debian:bookworm-slim
golang=docker.io/library/golang:1.26-bookworm
mkdir -p "$cache"

step() { echo "image-bases: $*" >&2; }

if ! podman image exists "$slim"; then
  tarball="$cache/bookworm-slim.tar"
  if [ ! -s "$tarball" ]; then
    start=$SECONDS
    work="$(mktemp -d "$cache/root.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
    step "debootstrap bookworm (minbase) from $mirror"
    debootstrap --variant=minbase bookworm "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
      { tail -20 "$work/debootstrap.log" >&2; exit 1; }
    # What makes the official image "slim": no docs, man pages or locales,
    # now or in later apt installs, and no apt lists or caches in the layer.
    cat >"$work/root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
CFG
    cat >"$work/root/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Install-Recommends "false";
CFG
    find "$work/root/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
    rm -rf "$work/root/usr/share/man/"* "$work/root/usr/share/info/"* "$work/root/usr/share/locale/"* \
      "$work/root/var/lib/apt/lists/"* "$work/root/var/cache/apt/"*.bin "$work/root/var/cache/apt/archives/"*.deb \
      "$work/root/var/log/"*.log "$work/root/debootstrap"
    tar -C "$work/root" --numeric-owner -cf "$tarball.tmp" .
    mv -f "$tarball.tmp" "$tarball"
    rm -rf "$work"
    trap - EXIT
    step "debootstrapped in $((SECONDS - start)) s"
  fi
  # The slim image is the pristine root plus, when this machine trusts
  # extra certificate authorities (a TLS-intercepting egress proxy), those
  # too: containers then reach the module proxy the way the host does.
  # They take effect where ca-certificates is installed.
  step "importing $slim"
  ctx="$(mktemp -d)"
  mkdir "$ctx/certs"
  cp /usr/local/share/ca-certificates/*.crt "$ctx/certs/" 2>/dev/null || true
  touch "$ctx/certs/.keep"
  podman import -q "$tarball" localhost/cocaine-base/bookworm-root >/dev/null
  printf 'FROM localhost/cocaine-base/bookworm-root\nCOPY certs/ /usr/local/share/ca-certificates/\nCMD ["bash"]\n' >"$ctx/Containerfile"
  podman build --isolation chroot -q -t "$slim" -f "$ctx/Containerfile" "$ctx" >/dev/null
  rm -rf "$ctx"
fi

if ! podman image exists "$golang"; then
  start=$SECONDS
  goroot="$(go env GOROOT)"
  case "$(go env GOVERSION)" in
    go1.26*) ;;
    *) echo "image-bases: $golang needs a Go 1.26 toolchain here, found $(go env GOVERSION)" >&2; exit 1 ;;
  esac
  step "building $golang from $slim and $goroot ($(go env GOVERSION))"
  # The packages are those golang:bookworm has for cgo builds (from
  # buildpack-deps:bookworm-scm): a C toolchain, pkg-config, git, certificates.
  podman build --isolation chroot -q -t "$golang" -v "$goroot:/hostgo:ro" -f - "$cache" >/dev/null <<'FILE'
FROM docker.io/library/debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      ca-certificates gcc libc6-dev make pkg-config git \
 && rm -rf /var/lib/apt/lists/* \
 && cp -a /hostgo /usr/local/go
ENV GOLANG_VERSION=1.26 GOPATH=/go PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /go
FILE
  step "built $golang in $((SECONDS - start)) s"
fi
