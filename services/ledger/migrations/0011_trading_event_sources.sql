-- Issue 13: a tender event's id is unique within its source and centre, not globally. Before,
-- an operator of one centre who used an id first made another centre's event with that id a
-- silent no-op. The key is now (source, centre_id, event_id), where the source is
-- `kafka:<topic>` or `grpc:<party>@<caller's centre>`; `content_hash` (SHA-256 of the event's
-- canonical content, domain::tender_events::content_text) tells a replay (same content, a no-op)
-- from a reused id (different content, refused with `event_id_reused`).
--
-- Rows recorded before this migration keep their ids under the source `legacy`, which the
-- ledger treats as any source of the same centre, and have no hash: a replay of one of them
-- stays a no-op. No row is lost.
ALTER TABLE trading_events ADD COLUMN source text NOT NULL DEFAULT 'legacy';
ALTER TABLE trading_events ALTER COLUMN source DROP DEFAULT;
ALTER TABLE trading_events ADD COLUMN content_hash bytea CHECK (content_hash IS NULL OR length(content_hash) = 32);
ALTER TABLE trading_events DROP CONSTRAINT trading_events_pkey;
ALTER TABLE trading_events ADD PRIMARY KEY (source, centre_id, event_id);
-- Looking an id up across sources (the `legacy` rows) and by centre.
CREATE INDEX trading_events_by_centre_and_id ON trading_events (centre_id, event_id);
