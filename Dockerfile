# imaged container image (docs/performance.md, "Container image").
#   docker build -t imaged .
#   docker run --rm -p 8000:8000 imaged --concurrency 4
# Arguments are passed to `imaged`; HOST defaults to 0.0.0.0 so a published port works
# without host networking; mimalloc is preloaded (set LD_PRELOAD= to use glibc malloc).

# --- build: install imaged and the bundled libvips (pyvips-binary) into a venv -----------
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv /opt/imaged \
    && /opt/imaged/bin/pip install --upgrade pip \
    && /opt/imaged/bin/pip install '.[binary]' \
    && find /opt/imaged -name '__pycache__' -prune -exec rm -rf {} +

# --- runtime: slim Debian, mimalloc, non-root -------------------------------------------
FROM python:3.11-slim-bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends libmimalloc2.0 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin imaged \
    && mkdir -p /app && chown imaged:imaged /app
COPY --from=build /opt/imaged /opt/imaged
COPY docker/entrypoint.sh /usr/local/bin/imaged-entrypoint
ENV PATH=/opt/imaged/bin:$PATH \
    HOST=0.0.0.0 \
    PORT=8000 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
USER imaged:imaged
EXPOSE 8000
ENTRYPOINT ["/usr/local/bin/imaged-entrypoint"]
