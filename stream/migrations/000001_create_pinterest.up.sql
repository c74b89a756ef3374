-- The stream lane's schema, shared by Postgres and the embedded DuckDB
-- stand-in (so it keeps to SQL both accept).
--
-- pins: one row per unique_id, in the cleaned record's column order
-- (docs/contracts.md) plus dt, the UTC day of ingested_at. A newer record of a pin
-- (a later Kafka offset of its partition) replaces the row; a replayed one
-- changes nothing.
CREATE SCHEMA IF NOT EXISTS pinterest;

CREATE TABLE pinterest.pins (
    id_index          BIGINT      NOT NULL,
    title             TEXT,
    category          TEXT        NOT NULL,
    unique_id         TEXT        NOT NULL PRIMARY KEY,
    description       TEXT,
    poster_name       TEXT,
    follower_count    BIGINT,
    tag_list          TEXT,
    tags              TEXT[]      NOT NULL,
    is_image_or_video TEXT,
    image_src         TEXT,
    downloaded        INTEGER,
    save_location     TEXT,
    ingested_at       TIMESTAMPTZ NOT NULL,
    kafka_partition   INTEGER     NOT NULL,
    kafka_offset      BIGINT      NOT NULL,
    dt                DATE        NOT NULL
);

-- GET /stream/recent reads the newest rows.
CREATE INDEX pins_ingested_at_idx ON pinterest.pins (ingested_at);

-- The dashboard's real-time aggregates, kept in the transaction that
-- changes pins, so they always equal counts over pins:
-- pins_by_category.pins = count(*) of pins per category,
-- pins_by_minute.pins = count(*) of pins per minute of ingested_at (UTC).
-- A row can hold 0 after pins moved to another category or minute.
CREATE TABLE pinterest.pins_by_category (
    category TEXT   NOT NULL PRIMARY KEY,
    pins     BIGINT NOT NULL
);

CREATE TABLE pinterest.pins_by_minute (
    minute TIMESTAMPTZ NOT NULL PRIMARY KEY,
    pins   BIGINT      NOT NULL
);

-- Records of the topic that are not valid pins, with why; one row per
-- Kafka record, so a replay adds none.
CREATE TABLE pinterest.rejected (
    topic           TEXT        NOT NULL,
    kafka_partition INTEGER     NOT NULL,
    kafka_offset    BIGINT      NOT NULL,
    ingested_at     TIMESTAMPTZ NOT NULL,
    reason          TEXT        NOT NULL,
    raw             BYTEA       NOT NULL,
    PRIMARY KEY (topic, kafka_partition, kafka_offset)
);
