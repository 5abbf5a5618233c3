# Vouch in a container: built from this source tree, run as an unprivileged user,
# data in the volume /var/lib/vouch. CI does not build this file (no container
# engine runs there); see docs/deployment.md.
#
#   docker build --build-arg VOUCH_GIT_COMMIT="$(git rev-parse --short=12 HEAD)" -t vouch .
#   export VOUCH_ADMIN_TOKEN="$(docker run --rm vouch keygen --admin-token)"   # store it
#   docker run -d --name vouch -p 127.0.0.1:8080:8080 -v vouch-data:/var/lib/vouch \
#     -e VOUCH_ADMIN_TOKEN -e VOUCH_PUBLIC_URL=https://vouch.example.com vouch

FROM rust:1.95-bookworm AS build
WORKDIR /src
# .git is not sent to the build (see .dockerignore): pass the commit that
# `vouch --version` prints, or it says "unknown".
ARG VOUCH_GIT_COMMIT=
ENV VOUCH_GIT_COMMIT=${VOUCH_GIT_COMMIT}
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p vouch \
    && install -m 0755 target/release/vouch /usr/local/bin/vouch

FROM debian:bookworm-slim
# ca-certificates: webhook deliveries over https check the system's roots.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# A fixed uid/gid (10001), so that a bind-mounted data directory can be given
# to it: `chown 10001:10001 DIR && chmod 700 DIR`.
RUN groupadd --system --gid 10001 vouch \
    && useradd --system --uid 10001 --gid vouch --home-dir /var/lib/vouch \
       --shell /usr/sbin/nologin vouch \
    && install -d -o vouch -g vouch -m 0700 /var/lib/vouch
COPY --from=build /usr/local/bin/vouch /usr/bin/vouch
USER vouch:vouch
WORKDIR /var/lib/vouch
# Inside the container Vouch listens on every interface; publish the port on the
# host's loopback and put a TLS-terminating proxy in front (docs/deployment.md).
ENV VOUCH_ADDR=0.0.0.0:8080 \
    VOUCH_DATA_DIR=/var/lib/vouch
VOLUME /var/lib/vouch
EXPOSE 8080
# `vouch healthcheck` asks /readyz at VOUCH_ADDR (on loopback for 0.0.0.0).
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/bin/vouch", "healthcheck", "--timeout", "4s"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/vouch"]
CMD ["serve"]
