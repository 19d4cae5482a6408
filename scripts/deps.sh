#!/usr/bin/env bash
# Installs the system packages the platform and its tests need, once:
# packages already installed are left alone, and apt is not touched at all
# when nothing is missing. Usage: scripts/deps.sh [run|test|bench|image]
set -euo pipefail

# gcc, libc6-dev: cgo for zmq4 (and, with g++ and make, the c and cpp
# sandboxes); flask: examples/flask; nodejs: the node sandbox; the Perl
# modules: the perl sandbox and its PSGI apps.
run_pkgs=(libzmq3-dev pkg-config python3-msgpack python3-flask gcc libc6-dev g++ make nodejs
  libdata-messagepack-perl libplack-perl)
# iproute2: multicast loopback setup; util-linux: flock; nats-server: storage/nats's
# 3-server cluster; chromium: web browser tests; prometheus: promtool
test_pkgs=(nginx python3-zmq iproute2 util-linux nats-server chromium prometheus)
bench_pkgs=(wrk uwsgi uwsgi-plugin-python3 starman libfcgi-dev)  # starman, libfcgi: bench/languages.sh
# image: building and running the Dockerfile with podman (scripts/image-test.sh)
image_pkgs=(podman runc debootstrap)

want=("${run_pkgs[@]}")
case "${1:-run}" in
  test) want+=("${test_pkgs[@]}") ;;
  bench) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  image) want+=("${image_pkgs[@]}") ;;
esac

# Debian's nodejs comes without npm (the one from NodeSource bundles it).
command -v npm >/dev/null || want+=(npm)

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
