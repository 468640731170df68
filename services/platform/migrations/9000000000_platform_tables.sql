-- The tables the platform itself writes, in every service's schema: the transactional outbox
-- (jinfu_platform::outbox), the consumers' stored offsets (jinfu_platform::consumer and the
-- ledger's batch ingestion) and refused records (dead letters). Each service's migrator runs
-- this first (jinfu_platform::db::connect_and_migrate); a service's own migrations never define
-- these tables.

-- Records refused at the boundary, kept for operators beside their copy on the DLQ topic.
CREATE TABLE IF NOT EXISTS dead_letters (
    id              bigserial PRIMARY KEY,
    topic           text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset    bigint NOT NULL,
    reason          text NOT NULL,
    payload         bytea NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (topic, kafka_partition, kafka_offset)
);

-- Consumed offsets, committed in the same transaction as the effects they produced.
CREATE TABLE IF NOT EXISTS consumer_offsets (
    consumer_group  text NOT NULL,
    topic           text NOT NULL,
    kafka_partition integer NOT NULL,
    next_offset     bigint NOT NULL,
    PRIMARY KEY (consumer_group, topic, kafka_partition)
);

-- Transactional outbox: rows written with the change they announce, published by the relay.
CREATE TABLE IF NOT EXISTS outbox (
    id           bigserial PRIMARY KEY,
    topic        text NOT NULL,
    message_key  text NOT NULL,
    payload      bytea NOT NULL,
    headers      jsonb NOT NULL DEFAULT '[]',
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
