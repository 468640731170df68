-- An outbox row that cannot be published (too large for the producer, refused by the broker for a
-- reason that will not pass) is parked with its reason instead of blocking the rows behind it
-- (jinfu_platform::outbox). Operators list parked rows with `<service> outbox-parked` and, once
-- the cause is fixed, send one again with `<service> outbox-unpark --id N`.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS parked_at timestamptz;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS park_reason text;
DROP INDEX IF EXISTS outbox_unpublished;
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL AND parked_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_parked ON outbox (id) WHERE parked_at IS NOT NULL AND published_at IS NULL;
