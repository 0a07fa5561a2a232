# paper-digest: a daily digest of new research papers.
#
# Long-running (scheduler + feeds over HTTP):
#   docker run -d --name paper-digest -p 8080:8080 \
#     -v "$PWD/config.toml:/config/config.toml:ro" -v paper-digest-data:/data paper-digest
# From cron or a Kubernetes CronJob (one run, then exit):
#   docker run --rm -v "$PWD/config.toml:/config/config.toml:ro" -v paper-digest-data:/data \
#     paper-digest run --config /config/config.toml
#
# In the config, point the store and the outputs at the volume:
#   [store] path = "/data/digest.db"    [output] dir = "/data/out"

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY digest ./digest
COPY templates ./templates
RUN pip install --no-cache-dir --prefix=/install '.[postgres]'

FROM python:3.11-slim
COPY --from=build /install /usr/local
RUN useradd --create-home --uid 10001 --user-group digest \
    && mkdir -p /data /config \
    && chown digest:digest /data
USER digest
WORKDIR /data
VOLUME ["/data"]
ENV DIGEST_CONFIG=/config/config.toml \
    PYTHONUNBUFFERED=1
EXPOSE 8080
HEALTHCHECK --interval=5m --timeout=10s --start-period=30s --retries=2 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=8).status == 200 else 1)"]
ENTRYPOINT ["digest"]
CMD ["schedule", "--serve", "--host", "0.0.0.0", "--config", "/config/config.toml"]
