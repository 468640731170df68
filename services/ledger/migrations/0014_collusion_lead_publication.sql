-- A collusion lead names the bidders of its section: it is published on ledger.events only once
-- the section's bids are opened (the `bids.opened` fact), by the refund runner's loop. Leads
-- raised before this migration were published when raised: they are marked so.
ALTER TABLE collusion_leads ADD COLUMN published_at timestamptz;
UPDATE collusion_leads SET published_at = raised_at;
CREATE INDEX collusion_leads_unpublished ON collusion_leads (centre_id, section_id) WHERE published_at IS NULL;
