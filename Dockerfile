# syntax=docker/dockerfile:1
# sdi-migration: docker build -t sdi-migration:0.1.0 .
# (deploy/ runs it as uid 65532 with a read-only root filesystem.) Built without the
# `demo` feature: the simulated cluster stays out of the production image.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The cache mounts keep the registry and target/ between builds; the binary is
# copied out of the cached target/ so the next stage can take it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release -p sdi-migration --no-default-features --locked \
    && cp target/release/sdi-migration /sdi-migration

# glibc and libgcc, no shell, no package manager; user `nonroot` is 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /sdi-migration /usr/local/bin/sdi-migration
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/sdi-migration"]
CMD ["run"]
