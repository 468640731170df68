-- Proposals the credit service did not take are retried with exponential backoff (30 s doubling,
-- at most an hour apart) rather than every sweep.
ALTER TABLE credit_proposals ADD COLUMN next_attempt_at timestamptz;
