# syntax=docker/dockerfile:1
# The event-exporter image: docker build -t event-exporter .
#
# Build stage: the workspace's release binary, with the locked dependencies (stripped: the
# release profile keeps line tables for benchmarks and profiles, the image does not need them).
FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p event-exporter-bin \
  && install -s -D -m 0755 target/release/event-exporter /out/event-exporter

# Runtime: distroless "cc" (glibc, libgcc, CA certificates; no shell, no package manager).
# The binary links glibc dynamically (TLS is rustls with ring: no OpenSSL), so it needs cc
# rather than static; it is built on bookworm, like cc-debian12, so the glibc versions match.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/event-exporter /event-exporter
# nonroot: UID/GID 65532, as the chart's securityContext expects.
USER 65532:65532
EXPOSE 2112
ENTRYPOINT ["/event-exporter"]
CMD ["--config=/data/config.yaml"]
