#!/usr/bin/env bash
# Smoke test of the container image, without a Docker engine: build it (scripts/build-image.sh),
# check its configuration, run its command with `buildah run --isolation chroot` on the host
# network with a temporary data dir, wait for /readyz, run its HEALTHCHECK command inside the
# container, send one occurrence, list the issue, stop the server. Exits non-zero on any failure.
#
# `make image-test` runs it. SKIP_BUILD=1 tests the image already built; IMAGE names it;
# READY_TIMEOUT bounds the wait for /readyz (seconds, default 90).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE="${IMAGE:-localhost/issue-platform:latest}"
READY_TIMEOUT="${READY_TIMEOUT:-90}"
HOST_PY="${HOST_PY:-python3}"

say() { printf '== image-smoke-test [%3ds]: %s\n' "$SECONDS" "$*" >&2; }
fail() { printf 'image-smoke-test: FAILED: %s\n' "$*" >&2; exit 1; }

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  IMAGE="$IMAGE" scripts/build-image.sh
fi
build_seconds=$SECONDS

# ---- the image's configuration -----------------------------------------------------------------
config="$(buildah inspect --type image "$IMAGE")" || fail "no image $IMAGE"
# Prints three lines: the command (JSON), the healthcheck command (JSON), the user.
checked="$("$HOST_PY" - "$config" <<'PY'
import json
import sys

config = json.loads(sys.argv[1])["Docker"]["config"]
errors = []
cmd = config.get("Cmd") or []
if cmd[:2] != ["issue-platform", "serve"] or "--port" not in cmd or "--host" not in cmd:
    errors.append(f"Cmd is {cmd}")
user = config.get("User") or ""
if user in ("", "root", "0") or user.startswith(("root:", "0:")):
    errors.append(f"User is {user!r}: the image must not run as root")
test = (config.get("Healthcheck") or {}).get("Test") or []
if test[:1] != ["CMD"] or not any("/readyz" in part for part in test):
    errors.append(f"Healthcheck is {test}")
if "8000/tcp" not in (config.get("ExposedPorts") or {}):
    errors.append("port 8000 is not exposed")
if "/data" not in (config.get("Volumes") or {}):
    errors.append("/data is not a volume")
if "ISSUE_PLATFORM_DATA_DIR=/data" not in (config.get("Env") or []):
    errors.append("ISSUE_PLATFORM_DATA_DIR is not /data")
if errors:
    sys.exit("; ".join(errors))
print(json.dumps(cmd))
print(json.dumps(test[1:]))
print(user)
PY
)" || fail "image configuration"
cmd_json="$(sed -n 1p <<<"$checked")"
health_json="$(sed -n 2p <<<"$checked")"
say "configuration ok: command $cmd_json, user $(sed -n 3p <<<"$checked")"

# ---- run the image's command -------------------------------------------------------------------
port="$("$HOST_PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# The image's command, on a free loopback port of the host network instead of 0.0.0.0:8000.
mapfile -t cmd < <("$HOST_PY" - "$cmd_json" "$port" <<'PY'
import json
import sys

cmd, port = json.loads(sys.argv[1]), sys.argv[2]
for option, value in (("--host", "127.0.0.1"), ("--port", port)):
    cmd[cmd.index(option) + 1] = value
print("\n".join(cmd))
PY
)
mapfile -t health < <("$HOST_PY" -c 'import json, sys; print("\n".join(p.replace(":8000/", ":" + sys.argv[2] + "/") for p in json.loads(sys.argv[1])))' "$health_json" "$port")

data="$(mktemp -d /tmp/issue-platform-smoke.XXXXXX)"
log="$data.log"
token="smoke-$("$HOST_PY" -c 'import secrets; print(secrets.token_hex(16))')"
ctr="issue-platform-smoke-$$"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  buildah rm "$ctr" >/dev/null 2>&1 || true
  rm -rf "$data" "$log"
}
trap cleanup EXIT

buildah from --pull=false --name "$ctr" "$IMAGE" >/dev/null
# `buildah run` mounts a private copy over a VOLUME of the image even when --volume names the same
# path; dropping the VOLUME from this working container lets the bind mount below be the data dir.
buildah config --volume /data- "$ctr"
# The container's user must be able to write the volume, as with a named volume under Docker.
chown "$(buildah run --isolation chroot "$ctr" -- id -u):$(buildah run --isolation chroot "$ctr" -- id -g)" "$data"

say "starting ${cmd[*]} (port $port, data dir $data)"
start=$SECONDS
buildah run --isolation chroot --network host --volume "$data:/data" \
  --env "ISSUE_PLATFORM_ADMIN_TOKEN=$token" --env ISSUE_PLATFORM_JOBS_INTERVAL_SECONDS=3600 \
  "$ctr" -- "${cmd[@]}" >"$log" 2>&1 &
server_pid=$!

base="http://127.0.0.1:$port"
ready=""
while (( SECONDS - start < READY_TIMEOUT )); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    cat "$log" >&2
    ls -ld "$data" >&2
    fail "the server exited before it was ready"
  fi
  if [[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/readyz")" == 200 ]]; then ready=yes; break; fi
  sleep 0.5
done
[[ -n "$ready" ]] || { tail -n 40 "$log" >&2; fail "/readyz not 200 within ${READY_TIMEOUT}s"; }
ready_seconds=$((SECONDS - start))
say "/readyz 200 after ${ready_seconds}s"

buildah run --isolation chroot --network host "$ctr" -- "${health[@]}" \
  || fail "the image's HEALTHCHECK command failed against a ready server"
say "HEALTHCHECK command ok"

event_id="$("$HOST_PY" -c 'import uuid; print(uuid.uuid4().hex)')"
fingerprint="image-smoke-$event_id"
body="$(cat <<JSON
{"id": "$("$HOST_PY" -c 'import uuid; print(uuid.uuid4().hex)')", "project_id": 1,
 "fingerprint": ["$fingerprint"], "type": 1, "issue_title": "Image smoke test",
 "subtitle": "sent by scripts/image-smoke-test.sh $event_id", "evidence_display": [],
 "detection_time": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "event_id": "$event_id",
 "event": {"event_id": "$event_id", "project_id": 1, "platform": "python",
           "timestamp": $(date -u +%s)}}
JSON
)"
status="$(curl -s -o "$data.out" -w '%{http_code}' -X POST "$base/occurrences" \
  -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d "$body")"
[[ "$status" == 2* ]] || { cat "$data.out" >&2; rm -f "$data.out"; fail "POST /occurrences answered $status"; }
rm -f "$data.out"
say "POST /occurrences $status"

issues="$(curl -sf "$base/issues?query=$event_id" -H "Authorization: Bearer $token")" \
  || fail "GET /issues failed"
"$HOST_PY" -c 'import json, sys; data = json.loads(sys.argv[1])["data"]; sys.exit(not (len(data) == 1 and data[0]["title"] == "Image smoke test"))' "$issues" \
  || { echo "$issues" >&2; fail "GET /issues does not list the new issue"; }
say "GET /issues lists the new issue"

[[ -s "$data/issue_platform.db" ]] || fail "no SQLite database in the data volume"

kill -TERM "$server_pid"
for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$server_pid" 2>/dev/null; then fail "the server did not stop within 10s of SIGTERM"; fi
server_pid=""
curl -s -o /dev/null "$base/healthz" && fail "the server still answers after it stopped"
say "stopped"
printf 'image-smoke-test: ok (image %s, %s bytes; build %ss; ready after %ss; total %ss)\n' \
  "$IMAGE" "$(podman image inspect --format '{{.Size}}' "$IMAGE")" "$build_seconds" \
  "$ready_seconds" "$SECONDS"
