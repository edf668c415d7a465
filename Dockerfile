# sync-status-exporter as a container image.
#
#   docker build -t sync-status-exporter .
#   docker run -p 9869:9869 -v "$PWD/config.yml:/etc/sync-status-exporter/config.yml:ro" \
#     sync-status-exporter
#   docker run -p 9869:9869 sync-status-exporter demo --web.listen-address :9869
#
# The image runs as a numeric non-root user and writes nothing (it works with a read-only
# root filesystem). tests/test_container.py lints this file with hadolint and performs its
# COPY and RUN steps in fresh virtual environments, then runs the result.

FROM python:3.11.13-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY exporter/ exporter/
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11.13-slim-bookworm
LABEL org.opencontainers.image.title="sync-status-exporter" \
      org.opencontainers.image.description="Prometheus exporter for managed data-sync APIs (Paragon Managed Sync, Terminal, Sequin)" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SYNC_EXPORTER_HEALTH_URL=http://127.0.0.1:9869/-/healthy
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-cache-dir /wheels/*.whl
USER 65532:65532
EXPOSE 9869
# Plain HTTP on the default port: with --web.config.file (TLS, basic auth) or another port,
# set SYNC_EXPORTER_HEALTH_URL or override the check. Kubernetes ignores HEALTHCHECK.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['SYNC_EXPORTER_HEALTH_URL'], timeout=4)"]
ENTRYPOINT ["sync-status-exporter"]
CMD ["--config.file", "/etc/sync-status-exporter/config.yml"]
