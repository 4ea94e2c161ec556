# llmrouter-tui --serve in a container (README, "Deploy").
#
#   docker build -t llmrouter-tui .
#   docker run --rm -p 127.0.0.1:8000:8000 -e LLMROUTER_SERVER_TOKEN=change-me \
#       --env-file .env -v llmrouter-data:/data llmrouter-tui [--workers 2] [--demo]
#
# The server listens on 0.0.0.0 inside the container, so it refuses to start without a token
# (LLMROUTER_SERVER_TOKEN). It answers only to the Host names it knows: localhost and loopback
# addresses work as they are (-p mappings included); add the names clients use to reach it
# (a DNS name, the host's address) with LLMROUTER_ALLOW_HOSTS=name1,name2.
# Everything the server writes (SQLite database, logs) is in the /data volume.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: the wheel, then a virtual environment with it and its dependencies --------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# What the wheel is made of (.dockerignore keeps everything else, .env included, out).
COPY pyproject.toml README.md prompt_templates.toml ./
COPY llmrouter_tui ./llmrouter_tui
RUN python3 -m pip wheel --no-deps --wheel-dir /dist . \
 && python3 -m venv /opt/llmrouter \
 && /opt/llmrouter/bin/pip install /dist/llmrouter_tui-*.whl \
 && /opt/llmrouter/bin/llmrouter-tui --version

# ---- runtime: the virtual environment only, run as an unprivileged user ---------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --gid 10001 llmrouter \
 && useradd --uid 10001 --gid llmrouter --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin llmrouter \
 && mkdir -p /data /app \
 && chown llmrouter:llmrouter /data \
 && chmod 0700 /data
COPY --from=build /opt/llmrouter /opt/llmrouter
ENV PATH=/opt/llmrouter/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/data \
    LLMROUTER_DATA_DIR=/data
# An empty working directory: no ./llmrouter.toml, ./.env or templates of a directory's choosing.
WORKDIR /app
VOLUME ["/data"]
EXPOSE 8000
USER 10001:10001
# /health needs no token; 127.0.0.1 is always an allowed Host. No curl in slim images.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request as u; sys.exit(0 if u.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"]
# SIGTERM (docker stop) lets in-flight requests finish (up to 5 s), then exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["llmrouter-tui", "--serve", "--host", "0.0.0.0", "--port", "8000", "--data-dir", "/data"]
# Extra options go here, e.g. `docker run ... llmrouter-tui --workers 2` or `--demo`.
CMD []
