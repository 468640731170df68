-- Second refunds after a failed payment, and stale-deposit reporting.

-- A bidder's corrected account for a failed refund: submitted by the bidder, verified by an
-- operator, approved by a supervisor. Every step is kept; a rejected correction stays.
CREATE TABLE refund_corrections (
    correction_id uuid PRIMARY KEY,
    refund_id     uuid NOT NULL REFERENCES refunds (refund_id),
    payee_account text NOT NULL,
    payee_name    text NOT NULL,
    status        text NOT NULL CHECK (status IN ('submitted', 'verified', 'approved', 'rejected')),
    submitted_by  text NOT NULL,
    submitted_at  timestamptz NOT NULL DEFAULT now(),
    verified_by   text,
    verified_at   timestamptz,
    approved_by   text,
    approved_at   timestamptz,
    rejected_by   text,
    rejected_at   timestamptz,
    rejection_reason text
);
CREATE INDEX refund_corrections_by_refund ON refund_corrections (refund_id);

ALTER TABLE refunds ADD COLUMN stale_reported_at timestamptz;
