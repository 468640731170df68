-- The contract service's own tables (the platform's outbox, consumer offsets and dead letters
-- come from services/platform/migrations). Money is bigint fen; states are text codes.

-- A centre's clocks; a centre without a row has the legal defaults (domain::rules).
CREATE TABLE centre_rules (
    centre_id text PRIMARY KEY,
    sign_days integer NOT NULL CHECK (sign_days BETWEEN 1 AND 60),
    sign_in_working_days boolean NOT NULL,
    publish_working_days integer NOT NULL CHECK (publish_working_days BETWEEN 1 AND 30),
    file_working_days integer NOT NULL CHECK (file_working_days BETWEEN 1 AND 30),
    acceptance_working_days integer NOT NULL CHECK (acceptance_working_days BETWEEN 1 AND 60),
    objection_working_days integer NOT NULL CHECK (objection_working_days BETWEEN 1 AND 30),
    invoice_payment_working_days integer NOT NULL CHECK (invoice_payment_working_days BETWEEN 0 AND 60),
    updated_at timestamptz NOT NULL,
    updated_by text NOT NULL
);

-- Keys purchasers and suppliers sign contracts with.
CREATE TABLE party_keys (
    centre_id text NOT NULL,
    party_uscc text NOT NULL,
    key_ref text NOT NULL,
    scheme text NOT NULL CHECK (scheme IN ('sm2-sm3', 'ed25519')),
    public_key text NOT NULL,
    registered_at timestamptz NOT NULL,
    registered_by text NOT NULL,
    PRIMARY KEY (centre_id, party_uscc, key_ref)
);

-- One-year LPR announcements added after the shipped history (ledger/data/lpr-1y.txt).
CREATE TABLE lpr_rates (
    effective_from date PRIMARY KEY,
    rate numeric(8, 6) NOT NULL CHECK (rate > 0 AND rate < 1),
    added_at timestamptz NOT NULL,
    added_by text NOT NULL
);

-- Awards seen on trading.events: the signing clock runs from them.
CREATE TABLE awards (
    centre_id text NOT NULL,
    section_id text NOT NULL,
    winner_uscc text NOT NULL,
    awarded_at timestamptz NOT NULL,
    event_id text NOT NULL,
    -- Set when the tender ended without a contract here (terminated, failed) or the e-trading
    -- system reported the contract signed: the signing clock stops.
    closed_reason text,
    PRIMARY KEY (centre_id, section_id)
);

-- Tender events applied, by source, centre and event id (a replay is a no-op).
CREATE TABLE trading_events (
    source text NOT NULL,
    centre_id text NOT NULL,
    event_id text NOT NULL,
    event_type text NOT NULL,
    content_hash bytea NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, centre_id, event_id)
);

CREATE TABLE contracts (
    centre_id text NOT NULL,
    contract_id text NOT NULL,
    section_id text NOT NULL,
    regime text NOT NULL CHECK (regime IN ('procurement', 'engineering')),
    purchaser_uscc text NOT NULL,
    purchaser_name text NOT NULL,
    supplier_uscc text NOT NULL,
    supplier_name text NOT NULL,
    supplier_scale text NOT NULL CHECK (supplier_scale IN ('micro', 'small', 'medium', 'large')),
    amount_fen bigint NOT NULL CHECK (amount_fen > 0),
    awarded_at timestamptz NOT NULL,
    sign_by date NOT NULL,
    payment_days integer NOT NULL CHECK (payment_days BETWEEN 1 AND 365),
    bank_name text NOT NULL,
    account_no text NOT NULL,
    account_name text NOT NULL,
    performance_form text NOT NULL CHECK (performance_form IN ('none', 'cash', 'guarantee')),
    performance_fen bigint NOT NULL CHECK (performance_fen >= 0),
    quality_form text NOT NULL CHECK (quality_form IN ('none', 'cash', 'guarantee')),
    quality_fen bigint NOT NULL CHECK (quality_fen >= 0),
    rate_kind text NOT NULL CHECK (rate_kind IN ('statutory', 'fixed', 'lpr_plus')),
    rate_annual numeric(8, 6) CHECK (rate_annual >= 0 AND rate_annual < 1),
    -- The rate that applies once signed (a fixed rate below the LPR at signing: statutory).
    rate_kind_in_force text CHECK (rate_kind_in_force IN ('statutory', 'fixed', 'lpr_plus')),
    status text NOT NULL CHECK (status IN ('pending', 'active', 'terminated')),
    canonical_text text NOT NULL,
    -- SHA-256 of the draft request's canonical text: a repeated draft with the same content
    -- returns the contract, other content under the same id is refused.
    draft_hash bytea NOT NULL,
    drafted_at timestamptz NOT NULL,
    drafted_by text NOT NULL,
    purchaser_key_ref text,
    purchaser_signature text,
    purchaser_signed_at timestamptz,
    supplier_key_ref text,
    supplier_signature text,
    supplier_signed_at timestamptz,
    signed_at timestamptz,
    publish_by date,
    file_by date,
    published_at timestamptz,
    publication_ref text,
    filed_at timestamptz,
    filing_ref text,
    terminated_at timestamptz,
    termination_reason text,
    paid_on_termination_fen bigint CHECK (paid_on_termination_fen >= 0),
    PRIMARY KEY (centre_id, contract_id),
    CHECK ((status = 'pending') = (signed_at IS NULL) OR status = 'terminated')
);
CREATE INDEX contracts_section ON contracts (centre_id, section_id);

CREATE TABLE milestones (
    centre_id text NOT NULL,
    contract_id text NOT NULL,
    sequence integer NOT NULL CHECK (sequence BETWEEN 1 AND 20),
    kind text NOT NULL CHECK (kind IN ('prepayment', 'delivery', 'acceptance', 'settlement')),
    percent_bp integer NOT NULL CHECK (percent_bp BETWEEN 1 AND 10000),
    period_days integer NOT NULL CHECK (period_days BETWEEN 0 AND 365),
    working_days boolean NOT NULL,
    amount_fen bigint NOT NULL CHECK (amount_fen >= 0),
    PRIMARY KEY (centre_id, contract_id, sequence),
    FOREIGN KEY (centre_id, contract_id) REFERENCES contracts
);

CREATE TABLE amendments (
    centre_id text NOT NULL,
    contract_id text NOT NULL,
    sequence integer NOT NULL,
    old_amount_fen bigint NOT NULL,
    new_amount_fen bigint NOT NULL CHECK (new_amount_fen > 0),
    reason text NOT NULL,
    amended_at timestamptz NOT NULL,
    amended_by text NOT NULL,
    PRIMARY KEY (centre_id, contract_id, sequence),
    FOREIGN KEY (centre_id, contract_id) REFERENCES contracts
);

CREATE TABLE acceptances (
    centre_id text NOT NULL,
    contract_id text NOT NULL,
    milestone integer NOT NULL,
    requested_at timestamptz NOT NULL,
    organise_by date NOT NULL,
    recorded_at timestamptz,
    passed boolean,
    note text,
    settlement_amount_fen bigint CHECK (settlement_amount_fen > 0),
    PRIMARY KEY (centre_id, contract_id, milestone),
    FOREIGN KEY (centre_id, contract_id, milestone) REFERENCES milestones
);

CREATE TABLE invoices (
    centre_id text NOT NULL,
    invoice_no text NOT NULL,
    contract_id text NOT NULL,
    milestone integer NOT NULL,
    invoice_type text NOT NULL CHECK (invoice_type IN ('special_vat', 'ordinary')),
    issue_date date NOT NULL,
    amount_without_tax_fen bigint NOT NULL CHECK (amount_without_tax_fen >= 0),
    tax_fen bigint NOT NULL CHECK (tax_fen >= 0),
    amount_with_tax_fen bigint NOT NULL CHECK (amount_with_tax_fen > 0 AND amount_with_tax_fen = amount_without_tax_fen + tax_fen),
    buyer_uscc text NOT NULL,
    seller_uscc text NOT NULL,
    received_at timestamptz NOT NULL,
    object_by date NOT NULL,
    status text NOT NULL CHECK (status IN ('received', 'under_query', 'conditionally_accepted', 'accepted', 'paid')),
    disputed_fen bigint NOT NULL DEFAULT 0 CHECK (disputed_fen >= 0 AND disputed_fen <= amount_with_tax_fen),
    objection_reason text,
    objected_at timestamptz,
    accepted_at timestamptz,
    deemed boolean NOT NULL DEFAULT false,
    paid_fen bigint NOT NULL DEFAULT 0 CHECK (paid_fen >= 0 AND paid_fen <= amount_with_tax_fen - disputed_fen),
    submit_hash bytea NOT NULL,
    PRIMARY KEY (centre_id, invoice_no),
    FOREIGN KEY (centre_id, contract_id, milestone) REFERENCES milestones
);
CREATE INDEX invoices_contract ON invoices (centre_id, contract_id);
CREATE INDEX invoices_open ON invoices (status) WHERE status <> 'paid';

CREATE TABLE payments (
    centre_id text NOT NULL,
    payment_id text NOT NULL,
    contract_id text NOT NULL,
    paid_on date NOT NULL,
    amount_fen bigint NOT NULL CHECK (amount_fen > 0),
    request_hash bytea NOT NULL,
    recorded_at timestamptz NOT NULL,
    recorded_by text NOT NULL,
    PRIMARY KEY (centre_id, payment_id),
    FOREIGN KEY (centre_id, contract_id) REFERENCES contracts
);

CREATE TABLE allocations (
    centre_id text NOT NULL,
    payment_id text NOT NULL,
    invoice_no text NOT NULL,
    amount_fen bigint NOT NULL CHECK (amount_fen > 0),
    paid_on date NOT NULL,
    PRIMARY KEY (centre_id, payment_id, invoice_no),
    FOREIGN KEY (centre_id, payment_id) REFERENCES payments,
    FOREIGN KEY (centre_id, invoice_no) REFERENCES invoices
);
CREATE INDEX allocations_invoice ON allocations (centre_id, invoice_no);

-- Clock events published once: a breach, a reminder, a deemed receipt, an overdue warning.
CREATE TABLE clock_notices (
    centre_id text NOT NULL,
    subject text NOT NULL,
    clock text NOT NULL,
    noticed_at timestamptz NOT NULL,
    PRIMARY KEY (centre_id, subject, clock)
);
