#!/usr/bin/env bash
# Builds the test FerretDB (tools/ferretdb, a separate Go module) once and
# prints the binary's path on stdout. Cold, the build takes about 100 s, so the
# binary is cached outside the work tree and rebuilt only when it is missing
# or tools/ferretdb's sources changed since it was built.
#
#   FERRETDB_BIN=/path/to/ferretdb  use (and if missing, build) this path
#
# Build output goes to stderr so that `bin=$(scripts/ferretdb.sh)` works.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/tools/ferretdb"
bin="${FERRETDB_BIN:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/cocaine/ferretdb-v1.24.2}"
stamp="$bin.src-sha256"

# The stamp ties the cached binary to the sources it came from, so an edit to
# the tool is picked up without anyone having to clear the cache by hand.
want="$(cd "$src" && cat go.mod go.sum ./*.go | sha256sum | cut -d' ' -f1)"
if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$(dirname "$bin")"
# Two test packages may ask at once: one builds while the other waits for it
# (two cold builds at once would double a 100 s build on two cores).
exec 9>"$bin.lock"
flock 9
if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "$bin"
  exit 0
fi
# Build beside the target and rename: a concurrent caller (two test packages
# at once) then sees either no binary or a whole one, never half a file.
tmp="$(mktemp "$bin.tmp.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
echo "ferretdb: building $bin (about 100 s on a cold cache)" >&2
start=$SECONDS
# GOWORK=off keeps a go.work elsewhere in the tree from pulling this module's
# dependencies into the platform's build, or the platform's into this one.
(cd "$src" && GOWORK=off go build -buildvcs=false -trimpath -o "$tmp" .)
mv -f "$tmp" "$bin"
echo "$want" >"$stamp"
echo "ferretdb: built in $((SECONDS - start)) s" >&2
echo "$bin"
