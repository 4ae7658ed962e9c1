# Charter's production image: the worker, the CLI (migrations, Temporal setup, schedules),
# the codec server and the Slack app, from one wheel. Runtime dependencies only: the embedded
# servers (`charter[embedded]`), matplotlib (`charter[plots]`) and test tools stay out.
#
#   docker build -t charter .
#   docker run --rm charter charter --version

FROM python:3.12-slim AS build
WORKDIR /src
RUN python -m venv /opt/charter
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY charter charter
COPY activities activities
COPY workflows workflows
COPY charter_cli charter_cli
COPY worker.py starter.py ./
RUN /opt/charter/bin/pip install --no-cache-dir --disable-pip-version-check .

FROM python:3.12-slim
RUN useradd --system --uid 10001 --create-home --home-dir /home/charter charter
COPY --from=build /opt/charter /opt/charter
ENV PATH=/opt/charter/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CHARTER_STATE_DIR=/home/charter/state \
    CHARTER_HEALTH_PORT=8080 \
    CHARTER_METRICS_ADDRESS=0.0.0.0:9464 \
    CHARTER_LOG_FORMAT=json
USER charter
WORKDIR /home/charter
EXPOSE 8080 9464
# The worker's liveness probe; the other services override the command (see docker-compose.yml).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"
CMD ["python", "-m", "worker"]
