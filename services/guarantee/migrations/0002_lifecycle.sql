-- The guarantee lifecycle after issue: release, surrender, expiry, claims; fraud warnings;
-- tender events consumed from trading.events exactly once.

-- Where a guarantee stands. Not sealed: a state names no bidder. `amount_fen` and `valid_to`
-- are plain for expiry and the centre's figures (a bid guarantee's amount is the section's
-- published requirement).
ALTER TABLE guarantees
    ADD COLUMN state      text NOT NULL DEFAULT 'issued'
        CHECK (state IN ('issued', 'claimed', 'paid', 'released', 'surrendered', 'expired')),
    ADD COLUMN amount_fen bigint,
    ADD COLUMN valid_to   date,
    ADD COLUMN state_reason text,
    ADD COLUMN state_changed_at timestamptz;

-- Where each application came from, for the "several firms from one IP" warning.
ALTER TABLE applications ADD COLUMN client_ip text;

CREATE TABLE claims (
    claim_id        uuid PRIMARY KEY,
    guarantee_no    text NOT NULL REFERENCES guarantees (guarantee_no),
    centre_id       text NOT NULL,
    reason          text NOT NULL CHECK (reason IN ('withdrew_after_deadline', 'refused_to_sign', 'failed_to_perform', 'quality_defect')),
    evidence_ref    text NOT NULL,
    amount_fen      bigint NOT NULL CHECK (amount_fen > 0),
    status          text NOT NULL CHECK (status IN ('pending', 'accepted', 'rejected', 'paid')),
    submitted_by    text NOT NULL,
    submitted_at    timestamptz NOT NULL DEFAULT now(),
    decision_reason text,
    decided_at      timestamptz,
    paid_fen        bigint,
    payment_serial  text,
    paid_at         timestamptz
);
-- At most one open claim per guarantee.
CREATE UNIQUE INDEX claims_one_open ON claims (guarantee_no) WHERE status IN ('pending', 'accepted');

CREATE TABLE fraud_warnings (
    id         bigserial PRIMARY KEY,
    centre_id  text NOT NULL,
    rule       text NOT NULL,
    subject    text NOT NULL,
    detail     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- One warning per rule and subject per hour.
CREATE UNIQUE INDEX fraud_warnings_once_an_hour ON fraud_warnings (rule, subject, date_trunc('hour', created_at AT TIME ZONE 'UTC'));

-- Premium rates over time, for the premium-swing warning.
ALTER TABLE products ADD COLUMN rate_changed_at timestamptz NOT NULL DEFAULT now();

-- Tender events applied, for idempotency by event id.
CREATE TABLE trading_events (
    event_id   text PRIMARY KEY,
    centre_id  text NOT NULL,
    section_id text NOT NULL,
    event_type text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- consumer_offsets and dead_letters (and outbox) are the platform's tables:
-- services/platform/migrations/0000_platform_tables.sql, applied before the service's own.
