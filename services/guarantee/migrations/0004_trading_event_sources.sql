-- Issue 13: a tender event's id is unique within its source and centre, not globally. Before,
-- an event of one centre whose id another centre had used first was a silent no-op here — a
-- `bids.opened` among them, which the figures wait for. The key is now (source, centre_id,
-- event_id), the source being `kafka:<topic>`; `content_hash` (SHA-256 of the event's canonical
-- content, domain::tender_events::content_text) tells a replay (same content, a no-op) from a
-- reused id (different content, dead-lettered with `event_id_reused`).
--
-- Rows recorded before this migration keep their ids under the source `legacy`, treated as any
-- source of the same centre, and have no hash: a replay of one stays a no-op. No row is lost.
ALTER TABLE trading_events ADD COLUMN source text NOT NULL DEFAULT 'legacy';
ALTER TABLE trading_events ALTER COLUMN source DROP DEFAULT;
ALTER TABLE trading_events ADD COLUMN content_hash bytea CHECK (content_hash IS NULL OR length(content_hash) = 32);
ALTER TABLE trading_events DROP CONSTRAINT trading_events_pkey;
ALTER TABLE trading_events ADD PRIMARY KEY (source, centre_id, event_id);
CREATE INDEX trading_events_by_centre_and_id ON trading_events (centre_id, event_id);
