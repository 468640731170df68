-- A deadline that needs a calendar year nobody has loaded yet is stored as NULL (pending) rather
-- than refusing the act it follows: the clock sweeper dates it once the year is loaded.
ALTER TABLE contracts ALTER COLUMN sign_by DROP NOT NULL;
ALTER TABLE acceptances ALTER COLUMN organise_by DROP NOT NULL;
ALTER TABLE invoices ALTER COLUMN object_by DROP NOT NULL;
CREATE INDEX contracts_undated ON contracts (centre_id) WHERE sign_by IS NULL OR (signed_at IS NOT NULL AND publish_by IS NULL);
CREATE INDEX acceptances_undated ON acceptances (centre_id) WHERE organise_by IS NULL;
CREATE INDEX invoices_undated ON invoices (centre_id) WHERE object_by IS NULL;
