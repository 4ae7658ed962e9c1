# Charter's production image: the worker, the CLI (migrations, Temporal setup, schedules),
# the codec server and the Slack app, from one wheel. Runtime dependencies only, installed
# from requirements.lock with every hash checked: the embedded servers (`charter[embedded]`),
# matplotlib (`charter[plots]`) and test tools stay out. The Python is the one the tests run
# (tests/production/test_versions.py holds them equal).
#
#   docker build -t charter .
#   docker run --rm charter charter --version

FROM python:3.11.7-slim-bookworm AS build
WORKDIR /src
RUN python -m venv /opt/charter
COPY requirements.lock ./
RUN /opt/charter/bin/pip install --no-cache-dir --disable-pip-version-check --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY charter charter
COPY activities activities
COPY workflows workflows
COPY charter_cli charter_cli
COPY worker.py starter.py ./
RUN /opt/charter/bin/pip install --no-cache-dir --disable-pip-version-check --no-deps .

FROM python:3.11.7-slim-bookworm
RUN useradd --system --uid 10001 --create-home --home-dir /home/charter charter \
    && mkdir -p /home/charter/state/member-keys \
    && chown -R charter:charter /home/charter/state \
    && chmod 700 /home/charter/state/member-keys
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
# The worker's readiness (503 while draining); the other services override it (see
# docker-compose.yml).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s \
    CMD ["python", "-m", "charter.runtime.probe", "http://127.0.0.1:8080/readyz"]
CMD ["python", "-m", "worker"]
