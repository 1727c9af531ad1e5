#!/usr/bin/env bash
# Debian packages that the browser test (/docs in headless Chromium) and the container image
# (make image, make image-test) need. Installs only what is missing; needs root. `make system-deps`.
set -euo pipefail
need=()
for pair in chromium:chromium chromedriver:chromium-driver buildah:buildah \
  debootstrap:debootstrap podman:podman curl:curl; do
  command -v "${pair%%:*}" >/dev/null || need+=("${pair##*:}")
done
if ((${#need[@]} == 0)); then
  echo "system packages: all present"
  exit 0
fi
[[ $(id -u) -eq 0 ]] || { echo "system-deps: run as root to install: ${need[*]}" >&2; exit 1; }
echo "system packages: installing ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
