# One image per service binary, from one build: `docker build --target ledger -t …/jinfu/ledger .`
# (targets: ledger, operator, guarantee, contract, credit, notification, loans, bank-sim). The chart expects each binary at
# /usr/local/bin/<name>, run as the non-root user 10001 with a read-only root filesystem.
# Not built in CI here (no container registry is reachable from the build machines).
FROM rust:1.95-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends cmake && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cargo build --release --locked --bin ledger --bin operator --bin guarantee --bin contract --bin credit --bin notification --bin loans --bin bank-sim \
 && mkdir /out && cp target/release/ledger target/release/operator target/release/guarantee target/release/contract target/release/credit target/release/notification target/release/loans target/release/bank-sim /out/

FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin jinfu
USER 10001

FROM runtime AS ledger
COPY --from=build /out/ledger /usr/local/bin/ledger
ENTRYPOINT ["/usr/local/bin/ledger"]

FROM runtime AS operator
COPY --from=build /out/operator /usr/local/bin/operator
ENTRYPOINT ["/usr/local/bin/operator"]

FROM runtime AS guarantee
COPY --from=build /out/guarantee /usr/local/bin/guarantee
ENTRYPOINT ["/usr/local/bin/guarantee"]

FROM runtime AS contract
COPY --from=build /out/contract /usr/local/bin/contract
ENTRYPOINT ["/usr/local/bin/contract"]

FROM runtime AS credit
COPY --from=build /out/credit /usr/local/bin/credit
ENTRYPOINT ["/usr/local/bin/credit"]

FROM runtime AS notification
COPY --from=build /out/notification /usr/local/bin/notification
ENTRYPOINT ["/usr/local/bin/notification"]

FROM runtime AS loans
COPY --from=build /out/loans /usr/local/bin/loans
ENTRYPOINT ["/usr/local/bin/loans"]

FROM runtime AS bank-sim
COPY --from=build /out/bank-sim /usr/local/bin/bank-sim
ENTRYPOINT ["/usr/local/bin/bank-sim"]
