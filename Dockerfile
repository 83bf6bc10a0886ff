# syntax=docker/dockerfile:1
# Build stage: the Swift toolchain with libpq and OpenSSL headers.
FROM swift:6.3-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq-dev libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Resolve dependencies first so source edits do not refetch them.
COPY Package.swift ./
COPY Plugins ./Plugins
RUN swift package resolve
COPY Sources ./Sources
COPY Tests ./Tests
COPY sql ./sql
RUN swift build -c release --product atrium --static-swift-stdlib \
 && install -D "$(swift build -c release --show-bin-path)/atrium" /out/atrium

# Runtime stage: the binary (migrations are compiled into it), libpq and OpenSSL.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 libssl3 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/atrium --create-home atrium
COPY --from=build /out/atrium /usr/local/bin/atrium
USER atrium
WORKDIR /var/lib/atrium
ENV ATRIUM_HOST=0.0.0.0 ATRIUM_PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["atrium"]
CMD ["serve"]
