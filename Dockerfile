# Image of the `duespark` binary. The compose file runs it as `migrate`, `api` and `worker`.

FROM rust:1-bookworm AS builder
WORKDIR /src
# Only what the build needs; the local var/ directory (test venv, dev cluster) stays out.
COPY Cargo.toml Cargo.lock ./
COPY .cargo/ .cargo/
COPY src/ src/
COPY queue/ queue/
COPY jobs/ jobs/
COPY worker/ worker/
COPY api/ api/
COPY dashboard/ dashboard/
COPY migrations/ migrations/
COPY templates/ templates/
RUN cargo build --release --locked --bin duespark

FROM debian:bookworm-slim
# postgresql-client provides pg_dump and pg_restore for the backup jobs (version 15 on bookworm,
# which can dump servers up to version 15). curl serves the compose health checks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl postgresql-client \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /app duespark
WORKDIR /app
COPY --from=builder /src/target/release/duespark /usr/local/bin/duespark
COPY templates/ /app/templates/
COPY migrations/ /app/migrations/
USER duespark
ENV DUESPARK_ENV=production \
    LOG_FORMAT=json \
    DUESPARK_BIND=0.0.0.0:8080 \
    WORKER_METRICS_BIND=0.0.0.0:9464
EXPOSE 8080 9464
ENTRYPOINT ["duespark"]
