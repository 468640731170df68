-- Daily statement reconciliation (对账) against the banks' end-of-day statements.

-- A credit the bank's statement showed but no notice announced: ingested by reconciliation.
ALTER TABLE credit_notices ADD COLUMN late_notified boolean NOT NULL DEFAULT false;
-- Value-time reads per collection account (balances at a cut-off, the statement window).
CREATE INDEX credit_notices_by_account_value_time ON credit_notices (bank, account_number, value_time);
CREATE INDEX payment_orders_by_account_settled ON payment_orders (bank, account_number, settled_at) WHERE status = 'confirmed';

-- Parts of a statement as received (a statement of many lines arrives in several records).
CREATE TABLE statement_parts (
    statement_id    text NOT NULL,
    part            integer NOT NULL CHECK (part >= 1),
    parts           integer NOT NULL CHECK (parts >= 1),
    content_hash    bytea NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset    bigint NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (statement_id, part)
);

-- The statement as a whole, from its header (equal in every part).
CREATE TABLE statements (
    statement_id    text PRIMARY KEY,
    bank            text NOT NULL,
    account_number  text NOT NULL,
    centre_id       text NOT NULL,
    statement_date  date NOT NULL,
    period_start    timestamptz NOT NULL,
    cut_off         timestamptz NOT NULL CHECK (cut_off > period_start),
    opening_fen     bigint NOT NULL,
    closing_fen     bigint NOT NULL,
    parts           integer NOT NULL,
    line_count      integer NOT NULL,
    header_hash     bytea NOT NULL,
    FOREIGN KEY (bank, account_number) REFERENCES bank_accounts (bank, account_number)
);

CREATE TABLE statement_lines (
    statement_id         text NOT NULL REFERENCES statements (statement_id),
    line_no              integer NOT NULL,
    bank_serial          text NOT NULL,
    direction            text NOT NULL CHECK (direction IN ('credit', 'debit')),
    amount_fen           bigint NOT NULL CHECK (amount_fen > 0),
    counterparty_name    text NOT NULL,
    counterparty_account text NOT NULL,
    sub_account_number   text,
    value_time           timestamptz NOT NULL,
    PRIMARY KEY (statement_id, line_no)
);

-- One report per statement (per collection account and day).
CREATE TABLE reconciliation_reports (
    statement_id       text PRIMARY KEY REFERENCES statements (statement_id),
    bank               text NOT NULL,
    account_number     text NOT NULL,
    centre_id          text NOT NULL,
    statement_date     date NOT NULL,
    status             text NOT NULL CHECK (status IN ('balanced', 'discrepancies')),
    line_count         integer NOT NULL,
    credits_fen        bigint NOT NULL,
    debits_fen         bigint NOT NULL,
    bank_opening_fen   bigint NOT NULL,
    bank_closing_fen   bigint NOT NULL,
    ledger_opening_fen bigint NOT NULL,
    ledger_closing_fen bigint NOT NULL,
    late_notified      integer NOT NULL,
    discrepancies      integer NOT NULL,
    first_part_at      timestamptz NOT NULL,
    reconciled_at      timestamptz NOT NULL,
    reconcile_ms       bigint NOT NULL
);
CREATE INDEX reconciliation_reports_by_centre ON reconciliation_reports (centre_id, statement_date);

CREATE TABLE reconciliation_discrepancies (
    statement_id text NOT NULL REFERENCES reconciliation_reports (statement_id),
    number       integer NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('late_notified', 'missing_from_statement', 'amount_mismatch',
                                               'unknown_debit', 'opening_balance_mismatch', 'closing_balance_mismatch',
                                               'statement_inconsistent')),
    bank_serial  text,
    amount_fen   bigint,
    detail       text NOT NULL,
    PRIMARY KEY (statement_id, number)
);
