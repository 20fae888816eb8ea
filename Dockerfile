# SPDX-License-Identifier: MIT
# genapi's container image: the broker, the gateway, genapi-ctl and the example services
# (worker/examples), built on Debian bookworm. docs/operations.md ("Containers") shows how to
# build and run it with compose.yaml.
#   podman build -t localhost/genapi:latest .      (or docker build)

# ---- build: the -dev packages tools/install-deps.sh installs (less the test and fuzz tools),
# CMake, an optimised build without tests.
FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config libzmq3-dev libczmq-dev libmsgpack-dev \
        libwebsockets-dev libjansson-dev libjwt-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
WORKDIR /src
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGA_BUILD_TESTS=OFF >/dev/null \
 && cmake --build build -j "$(nproc)" --target genapi-broker genapi-gateway genapi-ctl \
        user_service blog_service search_service admin_service report_service event_service \
        versioned_user_service data_service hooks_service

# ---- runtime: the shared libraries only, a non-root user.
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libzmq5 libczmq4 libwebsockets17 libjansson4 libjwt0 libssl3 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/genapi --shell /usr/sbin/nologin genapi \
 && install -d -o genapi -g genapi -m 700 /var/lib/genapi /var/lib/genapi/keys
COPY --from=build /src/build/bin/genapi-broker /src/build/bin/genapi-gateway /src/build/bin/genapi-ctl \
     /src/build/bin/user_service /src/build/bin/blog_service /src/build/bin/search_service \
     /src/build/bin/admin_service /src/build/bin/report_service /src/build/bin/event_service \
     /src/build/bin/versioned_user_service /src/build/bin/data_service /src/build/bin/hooks_service \
     /usr/local/bin/
COPY tools/containers/healthcheck.sh /usr/local/bin/genapi-healthcheck
COPY tools/containers/make-keys.sh /usr/local/bin/genapi-make-keys
# The development gateway config (anonymous connections, a development JWT secret): mount your
# own for anything else.
COPY config/gateway.dev.json /etc/genapi/gateway.dev.json
USER genapi
WORKDIR /var/lib/genapi
# Run with an init as PID 1 (compose.yaml has init: true; podman/docker run --init): it passes
# signals on and reaps. genapi's programs take SIGTERM themselves even as PID 1, but a process
# that left SIGTERM to its default action would not stop as PID 1.
CMD ["genapi-broker", "--help"]
