-- Deposit lifecycle: tender events, refunds with interest, payment orders, forfeiture.

-- Per-centre refund rules: the period (days, counted by the section's regime) and a hold of
-- working days after the trigger during which an operator may still mark forfeiture.
ALTER TABLE centres
    ADD COLUMN refund_period_days integer NOT NULL DEFAULT 5 CHECK (refund_period_days BETWEEN 1 AND 60),
    ADD COLUMN refund_hold_working_days integer NOT NULL DEFAULT 1 CHECK (refund_hold_working_days BETWEEN 0 AND 10);

-- A centre's own days off or working days, on top of the national calendar.
CREATE TABLE calendar_overrides (
    centre_id text NOT NULL REFERENCES centres (centre_id),
    day       date NOT NULL,
    kind      text NOT NULL CHECK (kind IN ('holiday', 'workday')),
    PRIMARY KEY (centre_id, day)
);

-- Demand-deposit rates over time, per collection account. The rate registered with the account
-- applies from 2000-01-01 until a later row takes over.
CREATE TABLE bank_account_rates (
    bank           text NOT NULL,
    account_number text NOT NULL,
    effective_from date NOT NULL,
    annual_rate    numeric(12, 8) NOT NULL CHECK (annual_rate >= 0 AND annual_rate < 1),
    PRIMARY KEY (bank, account_number, effective_from),
    FOREIGN KEY (bank, account_number) REFERENCES bank_accounts (bank, account_number)
);
INSERT INTO bank_account_rates (bank, account_number, effective_from, annual_rate)
SELECT bank, account_number, DATE '2000-01-01', demand_deposit_rate FROM bank_accounts;

ALTER TABLE sections
    ADD COLUMN winner_uscc text,
    ADD COLUMN awarded_at timestamptz,
    ADD COLUMN contract_signed_at timestamptz,
    ADD COLUMN bids_opened_at timestamptz;

-- Every applied tender event, for idempotency by event id.
CREATE TABLE trading_events (
    event_id        text PRIMARY KEY,
    centre_id       text NOT NULL,
    section_id      text NOT NULL,
    type            text NOT NULL,
    occurred_at     timestamptz NOT NULL,
    payload         bytea NOT NULL,
    effect          text NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE forfeiture_marks (
    centre_id    text NOT NULL,
    section_id   text NOT NULL,
    bidder_uscc  text NOT NULL,
    reason       text NOT NULL,
    evidence_ref text NOT NULL,
    event_id     text NOT NULL,
    marked_at    timestamptz NOT NULL,
    PRIMARY KEY (centre_id, section_id, bidder_uscc)
);

-- One refund per bidder and section: what triggered it, when it is due, where it stands.
CREATE TABLE refunds (
    refund_id    uuid PRIMARY KEY,
    centre_id    text NOT NULL,
    section_id   text NOT NULL,
    bidder_uscc  text NOT NULL,
    trigger      text NOT NULL,
    trigger_event_id text NOT NULL,
    triggered_at timestamptz NOT NULL,
    due_on       date NOT NULL,
    order_after  timestamptz NOT NULL,
    status       text NOT NULL CHECK (status IN ('scheduled', 'ordered', 'settled', 'failed', 'forfeited', 'nothing_held')),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (centre_id, section_id, bidder_uscc),
    FOREIGN KEY (centre_id, section_id) REFERENCES sections (centre_id, section_id)
);
CREATE INDEX refunds_due ON refunds (order_after) WHERE status = 'scheduled';

-- Payment orders sent to the bank: one per refund and paying account (原路退回).
CREATE TABLE payment_orders (
    order_id       uuid PRIMARY KEY,
    refund_id      uuid NOT NULL REFERENCES refunds (refund_id),
    centre_id      text NOT NULL,
    bank           text NOT NULL,
    account_number text NOT NULL,
    payee_account  text NOT NULL,
    payee_name     text NOT NULL,
    principal_fen  bigint NOT NULL CHECK (principal_fen > 0),
    interest_fen   bigint NOT NULL CHECK (interest_fen >= 0),
    refund_date    date NOT NULL,
    status         text NOT NULL CHECK (status IN ('ordered', 'confirmed', 'failed')),
    order_sequence bigint NOT NULL,
    result_sequence bigint,
    result_serial  text,
    failure_reason text,
    ordered_at     timestamptz NOT NULL DEFAULT now(),
    settled_at     timestamptz
);
CREATE INDEX payment_orders_by_refund ON payment_orders (refund_id);

-- Every bank result received, including duplicates and late ones, for the audit trail.
CREATE TABLE payment_results (
    id          bigserial PRIMARY KEY,
    order_id    uuid NOT NULL,
    bank_serial text NOT NULL,
    status      text NOT NULL,
    effect      text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
