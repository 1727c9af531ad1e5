#!/usr/bin/env bash
# Build the container image without a Docker engine and without pulling a registry base image:
#
#   1. base image: a Debian root file system made with debootstrap (the host's suite), imported
#      into the local container storage with `podman import` — skipped when it already exists;
#   2. wheelhouse: every wheel the build needs, downloaded on the host with pip (`.wheelhouse/`);
#   3. `buildah bud --isolation chroot` of ./Dockerfile on that base, pip installing from the
#      wheelhouse only (--no-index).
#
# Needs root and the Debian packages buildah, debootstrap and podman. `make image` runs it.
# Settings (environment): IMAGE, EXTRAS, SUITE, BASE_IMAGE, DEBIAN_MIRROR, PYTHON, REBUILD_BASE=1.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck disable=SC1091
. /etc/os-release
IMAGE="${IMAGE:-localhost/issue-platform:latest}"
EXTRAS="${EXTRAS-kafka}"
SUITE="${SUITE:-${VERSION_CODENAME:?cannot tell the Debian suite from /etc/os-release; set SUITE}}"
BASE_IMAGE="${BASE_IMAGE:-localhost/issue-platform-base:${SUITE}}"
# The mirror the host's apt already uses for this suite (deb822 sources, then one-line sources);
# when there is none, debootstrap's own default.
host_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    awk -v suite="$SUITE" 'BEGIN { RS = "" } {
        uri = ""; ok = 0; n = split($0, lines, "\n")
        for (i = 1; i <= n; i++) {
          m = split(lines[i], w, /[ \t]+/)
          if (w[1] == "URIs:") uri = w[2]
          if (w[1] == "Suites:") for (j = 2; j <= m; j++) if (w[j] == suite) ok = 1
        }
        if (ok && uri != "") { print uri; exit }
      }' "$f"
  done
  awk -v suite="$SUITE" '$1 == "deb" {
      i = 2; if ($i ~ /^\[/) while ($i !~ /\]$/) i++
      if ($(i + 2) == suite) { print $(i + 1); exit }
    }' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
  return 0
}
DEBIAN_MIRROR="${DEBIAN_MIRROR:-$(host_mirror | head -n 1 || true)}"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
WHEELHOUSE=.wheelhouse
PY_LABEL=org.issue-platform.python-version

say() { printf '== build-image [%3ds]: %s\n' "$SECONDS" "$*" >&2; }
die() { printf 'build-image: %s\n' "$*" >&2; exit 1; }

for tool in buildah podman debootstrap; do
  command -v "$tool" >/dev/null || die "$tool not found; install the Debian packages buildah debootstrap podman"
done
[[ $(id -u) -eq 0 ]] || die "run as root (debootstrap and buildah --isolation chroot need it)"

# ---- 1. the base image -----------------------------------------------------------------------
if [[ "${REBUILD_BASE:-0}" == 1 ]] && buildah inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
  buildah rmi "$BASE_IMAGE" >/dev/null
fi
if buildah inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
  say "base $BASE_IMAGE exists (REBUILD_BASE=1 to make it again)"
else
  say "making base $BASE_IMAGE with debootstrap ($SUITE from ${DEBIAN_MIRROR:-the default mirror of debootstrap})"
  rootfs="$(mktemp -d /var/tmp/issue-platform-rootfs.XXXXXX)"
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$SUITE" "$rootfs" ${DEBIAN_MIRROR:+"$DEBIAN_MIRROR"} >"$rootfs.log" 2>&1 \
    || { tail -n 20 "$rootfs.log" >&2; rm -f "$rootfs.log"; die "debootstrap failed"; }
  rm -f "$rootfs.log"
  # What a slim image leaves out: package caches and lists, documentation, translations.
  rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
  base_py="$(chroot "$rootfs" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  tar -C "$rootfs" --numeric-owner -c . \
    | podman import --change "LABEL $PY_LABEL=$base_py" --change 'CMD ["/bin/bash"]' \
      - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
fi
base_py="$(podman image inspect --format "{{index .Labels \"$PY_LABEL\"}}" "$BASE_IMAGE")"

# ---- 2. the wheelhouse -------------------------------------------------------------------------
host_py="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[[ -z "$base_py" || "$host_py" == "$base_py" ]] \
  || die "$PYTHON is Python $host_py but the base has $base_py: wheels would not fit; set PYTHON"
say "wheelhouse $WHEELHOUSE/ with $PYTHON (Python $host_py)"
rm -rf "$WHEELHOUSE"
mkdir -p "$WHEELHOUSE"
printf '# made by scripts/build-image.sh\n*\n' >"$WHEELHOUSE/.gitignore"
# The runtime dependencies (with the extras) and what building the project's own wheel needs.
"$PYTHON" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$WHEELHOUSE" \
  ".${EXTRAS:+[$EXTRAS]}" "setuptools>=68" wheel
# The project wheel is built in the image from the source in the build context, not taken from here.
rm -f "$WHEELHOUSE"/issue_platform-*.whl

# ---- 3. the image ------------------------------------------------------------------------------
say "buildah bud -> $IMAGE"
buildah bud --isolation chroot --format docker --layers --pull=false \
  --build-arg "BASE=$BASE_IMAGE" --build-arg "WHEELHOUSE=$WHEELHOUSE" --build-arg "EXTRAS=$EXTRAS" \
  --tag "$IMAGE" .
say "built $IMAGE ($(podman image inspect --format '{{.Size}}' "$IMAGE") bytes)"
