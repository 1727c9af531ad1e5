# Issue Platform container image. See docs/container.md.
#
#   docker build -t issue-platform .                      # with network: wheels come from PyPI
#   make image                                            # offline: host-built wheelhouse, buildah
#
# Build arguments:
#   BASE        base image; needs python3 (>= 3.11) with the venv module.
#   EXTRAS      extras installed with the service ("kafka" = the `consume` command; "" = none).
#   WHEELHOUSE  a directory of the build context holding every wheel the build needs (the project's
#               build requirements and runtime dependencies). Set: pip never contacts an index.
#               Empty (the default): the build stage downloads the wheels from the package index.
ARG BASE=python:3.12-slim

# ---- build: one wheelhouse with the project wheel and all its runtime dependencies ------------
FROM ${BASE} AS build
ARG EXTRAS=kafka
ARG WHEELHOUSE=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY . /src
RUN set -eu; \
    if [ -n "${WHEELHOUSE}" ]; then \
        [ -d "/src/${WHEELHOUSE}" ] || { echo "WHEELHOUSE=${WHEELHOUSE}: no such directory in the build context" >&2; exit 1; }; \
        set -- --no-index --find-links "/src/${WHEELHOUSE}"; \
    fi; \
    python3 -m venv /opt/build; \
    /opt/build/bin/pip wheel "$@" --wheel-dir /wheels "/src${EXTRAS:+[${EXTRAS}]}"; \
    cd /wheels && sha256sum -- *.whl > /wheels.sha256

# ---- runtime: the service installed from that wheelhouse only; no source tree ---------------------
FROM ${BASE} AS runtime
ARG EXTRAS=kafka
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PATH=/opt/issue-platform/bin:$PATH \
    ISSUE_PLATFORM_DATA_DIR=/data
# The list of wheels with their hashes: it is what the RUN below installs, and copying it makes the
# layer cache see a new wheel (a bind mount's content is not part of every builder's cache key).
COPY --from=build /wheels.sha256 /opt/issue-platform.wheels.sha256
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    set -eu; \
    python3 -m venv /opt/issue-platform; \
    /opt/issue-platform/bin/pip install --no-index --find-links /wheels \
        "issue-platform${EXTRAS:+[${EXTRAS}]}"; \
    useradd --uid 10001 --user-group --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin issue-platform; \
    mkdir -p /data; \
    chown issue-platform:issue-platform /data; \
    chmod 700 /data; \
    issue-platform --help > /dev/null
USER issue-platform
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]
CMD ["issue-platform", "serve", "--host", "0.0.0.0", "--port", "8000"]
