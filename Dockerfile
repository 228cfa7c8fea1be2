# Slim CPU-only TorchServe image serving the catsdogs model (models/catsdogs.mar, from `make package`).
#
#   make image         # scripts/image.sh build: docker build with the arguments below as needed
#   make image-test    # build, run it the way the Deployment does, smoke-test it, clean up
#
# Build arguments:
#   BASE_IMAGE       a Debian bookworm image with or without Python. Default python:3.11-slim-bookworm;
#                    on a plain bookworm base (scripts/container_engine.sh makes one where no registry
#                    is reachable) Python 3.11 comes from Debian. CI builds on it by digest
#                    (scripts/image.sh PIN_BASE=1 resolves the tag to name@sha256:..., recorded in the
#                    org.opencontainers.image.base.name label); to pin it here too, put the digest
#                    `docker buildx imagetools inspect python:3.11-slim-bookworm` prints after the tag.
#   TORCH_INDEX_URL  where the CPU-only torch wheel comes from: PyTorch's CPU index by default. A
#                    torch wheel in build/image/wheels/ of the context is used instead: scripts/image.sh
#                    stages one there on machines that cannot reach that index.
#   MODEL_ARCHIVE    the .mar to serve, relative to the context (default models/catsdogs.mar;
#                    scripts/image.sh stages any other under build/image/); it is served as
#                    catsdogs.mar, the name serving/config.container.properties loads.
#   MODEL_VERSION, DATA_VERSION, TEST_ACCURACY, MODEL_COMMIT
#                    the release's facts for the image labels (scripts/image.sh RELEASE=dist/... passes
#                    them from the bundle's release.json; `docker inspect` shows them).
# Build secret (optional, absent by default):
#   extra_ca         a PEM bundle for HTTPS through a re-signing proxy, read by pip only while
#                    installing and never stored in a layer:
#                    --secret id=extra_ca,src=/etc/ssl/certs/ca-certificates.crt
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---- base: Python 3.11 on Debian bookworm, whichever base was given ------------------------------
FROM ${BASE_IMAGE} AS base
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
# Debian packages are not pinned (DL3008): bookworm's security updates replace exact versions, so
# pins would break rebuilds; the release is pinned by the base image, Python packages by ==.
# hadolint ignore=DL3008
RUN if ! command -v python3 >/dev/null; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 python3-venv \
        && apt-get clean && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version'

# ---- build: the serving virtualenv -------------------------------------------------------------
FROM base AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
COPY requirements-serve.txt /tmp/install/
# Globs in every missing part: copies nothing when build/ or build/image/wheels/ is absent (the usual case).
COPY buil[d]/image/wheel[s] /tmp/install/wheels/
# torch first and alone, from the CPU-only source (PyPI's default torch is a multi-GB CUDA build);
# then every other pin from PyPI, which finds torch already satisfied. Serving compiles no extensions,
# runs no C++ tests and no pip: torch's headers and test binaries and pip itself stay out.
RUN --mount=type=secret,id=extra_ca \
    if [ -s /run/secrets/extra_ca ]; then export PIP_CERT=/run/secrets/extra_ca; fi \
    && python3 -m venv /opt/venv \
    && ( set -- /tmp/install/wheels/torch-*.whl \
        && if [ -e "$1" ]; then \
            export PIP_NO_INDEX=1 PIP_FIND_LINKS=/tmp/install/wheels; \
        else \
            export PIP_INDEX_URL="${TORCH_INDEX_URL}"; \
        fi \
        && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-deps \
            "$(grep '^torch==' /tmp/install/requirements-serve.txt)" ) \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check -r /tmp/install/requirements-serve.txt \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/python -c 'import torch; assert torch.version.cuda is None, "not the CPU-only torch"' \
    && site=/opt/venv/lib/python3.11/site-packages \
    && find "$site/torch/bin" -type f ! -name torch_shm_manager -delete \
    && rm -rf "$site/torch/include" "$site/torch/test" "$site"/pip "$site"/pip-*.dist-info /opt/venv/bin/pip*

# ---- runtime ---------------------------------------------------------------------------------------
FROM base AS runtime
# JRE 17 for TorchServe's frontend; tini as PID 1 forwards SIGTERM to the whole process group (the
# torchserve launcher does not forward signals to the JVM and its workers). The man directory must
# exist for the JRE's postinst on slim images.
# hadolint ignore=DL3008
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless tini \
    && apt-get clean && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 model-server \
    && useradd --uid 10001 --gid 10001 --home-dir /home/model-server --create-home \
        --shell /usr/sbin/nologin model-server
COPY --from=build /opt/venv /opt/venv
# KServe's TorchServe layout: config/config.properties beside model-store/.
COPY serving/config.container.properties /srv/catsdogs/config/config.properties
COPY serving/log4j2.xml serving/metrics.yaml /srv/catsdogs/
COPY scripts/model_ready.py /srv/catsdogs/bin/model_ready.py
ARG MODEL_ARCHIVE=models/catsdogs.mar
COPY ${MODEL_ARCHIVE} /srv/catsdogs/model-store/catsdogs.mar

# The Deployment sets the same values (tests/deploy check it): the pod and `docker run` behave alike.
# One OMP thread per worker: two workers with default threads oversubscribe two cores.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OMP_NUM_THREADS=1 \
    LOG_LOCATION=/home/model-server/logs \
    METRICS_LOCATION=/home/model-server/logs
# Writable at run time (tmpfs/emptyDir when the root filesystem is read-only): /tmp (archive
# extraction, JVM and pid files) and the logs directory.
USER 10001:10001
WORKDIR /home/model-server
RUN mkdir -p /home/model-server/logs
# 8081 (management) listens on 127.0.0.1 inside the container only and is not exposed.
EXPOSE 8080 8082
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "/srv/catsdogs/bin/model_ready.py", "--config", "/srv/catsdogs/config/config.properties"]
ENTRYPOINT ["tini", "-g", "--"]
CMD ["torchserve", "--foreground", "--ncs", "--ts-config", "/srv/catsdogs/config/config.properties", "--log-config", "/srv/catsdogs/log4j2.xml"]
# What this image serves, readable without running it (`docker inspect`, registries). Last: it holds
# no files, and new values rebuild nothing above it.
ARG BASE_IMAGE
ARG MODEL_VERSION=unreleased
ARG DATA_VERSION=unknown
ARG TEST_ACCURACY=unknown
ARG MODEL_COMMIT=unknown
LABEL org.opencontainers.image.title="catsdogs" \
      org.opencontainers.image.description="TorchServe serving the catsdogs cat-or-dog classifier" \
      org.opencontainers.image.version="${MODEL_VERSION}" \
      org.opencontainers.image.revision="${MODEL_COMMIT}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}" \
      catsdogs.model.version="${MODEL_VERSION}" \
      catsdogs.data.version="${DATA_VERSION}" \
      catsdogs.model.test-accuracy="${TEST_ACCURACY}"
