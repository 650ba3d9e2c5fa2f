# syntax=docker/dockerfile:1
# Build stage: a release binary with the bundled SQLite.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin qrpark \
 && cp target/release/qrpark /usr/local/bin/qrpark

# Runtime stage: a small Debian with a non-root user and a volume for the SQLite data.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 qrpark \
 && useradd --system --uid 10001 --gid qrpark --home-dir /data --shell /usr/sbin/nologin qrpark \
 && mkdir -p /data \
 && chown qrpark:qrpark /data
COPY --from=build /usr/local/bin/qrpark /usr/local/bin/qrpark
USER qrpark
WORKDIR /data
VOLUME ["/data"]
ENV QRPARK_DATABASE_URL=sqlite:///data/qrpark.db \
    QRPARK_DATA_DIR=/data/keys \
    QRPARK_BIND=0.0.0.0:8080 \
    QRPARK_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["qrpark", "healthcheck"]
STOPSIGNAL SIGTERM
CMD ["qrpark", "serve"]
