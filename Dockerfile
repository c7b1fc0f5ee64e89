# syntax=docker/dockerfile:1
#
# zapgate, two images from one file (docs/deployment.md):
#
#   docker build -t zapgate .                                  # "slim": the simulator engine only
#   docker build --target wppconnect -t zapgate:wppconnect .   # + Node 20, Chromium, the bridge
#
# Both run `zapgate serve` as the unprivileged user "zapgate" (uid 10001) on 0.0.0.0:3000, with
# ZAPGATE_DATA_DIR=/data (a volume: the SQLite file of a single node, the WPPConnect logins).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: a virtualenv with the pinned runtime dependencies and zapgate (no dev tools) ------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/zapgate
WORKDIR /src
COPY requirements.lock ./
RUN /opt/zapgate/bin/pip install -r requirements.lock
COPY pyproject.toml README.md ./
COPY zapgate ./zapgate
RUN /opt/zapgate/bin/pip install --no-deps . \
 && /opt/zapgate/bin/python -c "import zapgate.app, zapgate.db.migrate"

# ---- bridge: the WPPConnect bridge and its npm packages, without a bundled browser -----------
FROM ${NODE_IMAGE} AS bridge
WORKDIR /bridge
COPY zapgate/engines/wppconnect/bridge/package.json \
     zapgate/engines/wppconnect/bridge/package-lock.json ./
RUN PUPPETEER_SKIP_DOWNLOAD=1 npm ci --omit=dev --no-audit --no-fund --loglevel=error
COPY zapgate/engines/wppconnect/bridge/bridge.mjs ./

# ---- base: what both images share -----------------------------------------------------------
FROM ${PYTHON_IMAGE} AS base
# tini is PID 1: it passes SIGTERM to zapgate (which hands its sessions over) and reaps the
# orphans a dying browser may leave
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 zapgate \
 && useradd --system --uid 10001 --gid zapgate --home-dir /home/zapgate --create-home \
      --shell /usr/sbin/nologin zapgate \
 && install -d -o zapgate -g zapgate -m 0700 /data
COPY --from=build /opt/zapgate /opt/zapgate
ENV PATH=/opt/zapgate/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/zapgate \
    ZAPGATE_HOST=0.0.0.0 \
    ZAPGATE_PORT=3000 \
    ZAPGATE_DATA_DIR=/data
# settings are also read from a .env in the working directory: an empty home, not the volume
WORKDIR /home/zapgate
VOLUME ["/data"]
EXPOSE 3000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('ZAPGATE_PORT', '3000'), timeout=2)"]
# the user "zapgate", by number: Kubernetes' runAsNonRoot can check a number, not a name
USER 10001:10001
ENTRYPOINT ["tini", "--", "zapgate"]
CMD ["serve"]

# ---- wppconnect: + Node 20, Debian's Chromium and the bridge's packages ----------------------
FROM base AS wppconnect
USER 0:0
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends chromium fonts-liberation ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=bridge /usr/local/bin/node /usr/local/bin/node
# the bridge with its npm packages goes where zapgate looks for it: beside
# engines/wppconnect/runtime.py (the package carries bridge.mjs, not node_modules)
COPY --from=bridge /bridge/ /opt/zapgate/lib/python3.11/site-packages/zapgate/engines/wppconnect/bridge/
ENV ZAPGATE_WPPCONNECT_NODE=/usr/local/bin/node \
    ZAPGATE_WPPCONNECT_CHROMIUM=/usr/bin/chromium
# fails the build unless node, the bridge and its packages, and Chromium are where zapgate looks
RUN ZAPGATE_DEFAULT_ENGINE=wppconnect zapgate doctor \
 && python -c "from zapgate.engines.wppconnect.runtime import BRIDGE_SCRIPT as s; assert s.is_file(), s"
USER 10001:10001

# ---- slim (the default target): the simulator engine only ------------------------------------
FROM base AS slim
