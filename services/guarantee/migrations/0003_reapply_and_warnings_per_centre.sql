-- A bidder may apply again for a section once its guarantee has left force (surrendered on a
-- withdrawal, released, expired): only a pending application blocks another; a guarantee in
-- force is checked in the application's transaction (services/guarantee/src/api.rs, Apply).
DROP INDEX applications_one_live;
CREATE UNIQUE INDEX applications_one_pending ON applications (centre_id, section_id, bidder_tag, kind)
    WHERE status = 'pending';

-- Fraud warnings are deduplicated per centre too: the same subject in two centres warns twice.
DROP INDEX fraud_warnings_once_an_hour;
CREATE UNIQUE INDEX fraud_warnings_once_an_hour ON fraud_warnings (centre_id, rule, subject, date_trunc('hour', created_at AT TIME ZONE 'UTC'));
