# HelloJohn engine: `hj serve` on the embedded store by default, PostgreSQL/Redis by environment.
#
#   docker build -t hellojohn/hellojohn:dev .
#   docker run -p 8080:8080 -v hj-data:/data hellojohn/hellojohn:dev
#
# Two stages: the release build (the lock file as committed, `--locked`), then a small Debian
# runtime with the binary, a non-root user and the data volume. Worker and shard counts follow
# the container's CPU quota: their default is the available parallelism, which the standard
# library reads from the cgroup limit.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY passhash passhash
COPY protocol protocol
COPY store store
COPY storage storage
COPY auth auth
COPY engine engine
COPY bench bench
COPY hj hj
COPY testkit testkit
COPY migrations migrations
# The commit `hj --version` names (the build has no .git): docker build --build-arg
# BUILD_COMMIT=$(git rev-parse --short=12 HEAD) .
ARG BUILD_COMMIT=unknown
RUN cargo build --release --locked -p hj \
    && install -D -m 0755 target/release/hj /out/hj

FROM debian:bookworm-slim
# CA certificates for PostgreSQL/Redis over TLS and for webhook deliveries over HTTPS.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin hellojohn \
    && install -d -m 0700 -o hellojohn -g hellojohn /data
COPY --from=build /out/hj /usr/local/bin/hj
USER 10001:10001
ENV HELLOJOHN_LISTEN=0.0.0.0:8080 \
    HELLOJOHN_DATA_DIR=/data \
    HELLOJOHN_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8080
# `/ping` answers 200 while the process serves (liveness); `/health` is readiness and turns 503
# while draining. No curl in the image: bash's /dev/tcp speaks the one request.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /ping HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/hj"]
CMD ["serve"]
