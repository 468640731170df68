-- The loans service's own tables (schema `loans`). Money in fen (bigint), rates in basis points
-- per year. States as stored numeric codes (Apache Fineract's) beside their text.

CREATE TABLE lenders (
    lender_id text PRIMARY KEY CHECK (lender_id ~ '^[A-Za-z0-9_-]{1,32}$'),
    province_id text NOT NULL CHECK (province_id ~ '^[1-9][0-9]0000$'),
    name text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('bank', 'other')),
    bank_name text NOT NULL,
    account_no text NOT NULL,
    account_name text NOT NULL,
    status text NOT NULL CHECK (status IN ('active', 'suspended', 'exited')),
    status_reason text NOT NULL DEFAULT '',
    onboarded_at timestamptz NOT NULL,
    changed_at timestamptz NOT NULL,
    changed_by text NOT NULL
);

CREATE TABLE products (
    lender_id text NOT NULL REFERENCES lenders,
    product_id text NOT NULL CHECK (product_id ~ '^[A-Za-z0-9_-]{1,32}$'),
    name text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('contract_financing', 'performance', 'engineering_award', 'revolving', 'quality_retention', 'credit_flow')),
    rate_min_bp integer NOT NULL CHECK (rate_min_bp BETWEEN 1 AND 2400),
    rate_max_bp integer NOT NULL CHECK (rate_max_bp BETWEEN rate_min_bp AND 2400),
    max_ratio_bp integer NOT NULL CHECK (max_ratio_bp BETWEEN 1 AND 10000),
    term_days integer NOT NULL CHECK (term_days BETWEEN 1 AND 1095),
    grace_days integer NOT NULL CHECK (grace_days BETWEEN 0 AND 180),
    sme_only boolean NOT NULL,
    centres text[] NOT NULL,
    regimes text[] NOT NULL,
    contact text NOT NULL,
    published_at timestamptz NOT NULL,
    PRIMARY KEY (lender_id, product_id)
);

-- A supplier's consent that a lender (or every lender of the province, '*') sees its awards.
CREATE TABLE consents (
    centre_id text NOT NULL,
    supplier_uscc text NOT NULL,
    lender_id text NOT NULL,
    granted_at timestamptz NOT NULL,
    revoked_at timestamptz,
    PRIMARY KEY (centre_id, supplier_uscc, lender_id)
);

-- What the contract service told of its contracts (contract.events): the lenders'
-- opportunities. Applications read the contract service itself.
CREATE TABLE contracts (
    centre_id text NOT NULL,
    contract_id text NOT NULL,
    section_id text NOT NULL,
    supplier_uscc text NOT NULL,
    purchaser_uscc text NOT NULL,
    amount_fen bigint NOT NULL CHECK (amount_fen >= 0),
    status text NOT NULL CHECK (status IN ('pending', 'active', 'terminated')),
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (centre_id, contract_id)
);
CREATE INDEX contracts_supplier ON contracts (centre_id, supplier_uscc);

-- Payments purchasers recorded under contracts (payment.recorded): repayments when the account
-- was locked to a loan, and the supplier's payment history for credit-flow lines.
CREATE TABLE payments (
    centre_id text NOT NULL,
    payment_id text NOT NULL,
    contract_id text NOT NULL,
    supplier_uscc text NOT NULL,
    purchaser_uscc text NOT NULL,
    amount_fen bigint NOT NULL CHECK (amount_fen > 0),
    paid_on date NOT NULL,
    locked_by text,
    seen_at timestamptz NOT NULL,
    PRIMARY KEY (centre_id, payment_id)
);
CREATE INDEX payments_supplier ON payments (supplier_uscc, paid_on);

CREATE TABLE loans (
    centre_id text NOT NULL,
    loan_id text NOT NULL CHECK (loan_id ~ '^[A-Za-z0-9._-]{1,64}$'),
    lender_id text NOT NULL REFERENCES lenders,
    product_id text NOT NULL,
    supplier_uscc text NOT NULL,
    purchaser_uscc text NOT NULL,
    contract_id text NOT NULL,
    section_id text NOT NULL,
    basis text NOT NULL CHECK (basis IN ('award', 'contract')),
    contract_amount_fen bigint NOT NULL CHECK (contract_amount_fen > 0),
    requested_fen bigint NOT NULL CHECK (requested_fen > 0),
    status_code integer NOT NULL CHECK (status_code IN (100, 200, 300, 400, 500, 600, 601, 700)),
    status text NOT NULL CHECK (status IN ('submitted', 'approved', 'active', 'withdrawn', 'rejected', 'closed', 'written_off', 'overpaid')),
    request_hash bytea NOT NULL,
    rejection_code text,
    rejection_reason text,
    eligibility_receipt text NOT NULL,
    eligibility_signature text NOT NULL,
    eligibility_key_ref text NOT NULL,
    amount_fen bigint CHECK (amount_fen > 0),
    rate_bp integer CHECK (rate_bp BETWEEN 1 AND 2400),
    term_days integer NOT NULL,
    grace_days integer NOT NULL,
    terms_proposed_by text,
    approved_by text,
    submitted_at timestamptz NOT NULL,
    approved_at timestamptz,
    disbursed_on date,
    disbursed_at timestamptz,
    disbursement_reference text,
    maturity_on date,
    principal_outstanding_fen bigint NOT NULL DEFAULT 0 CHECK (principal_outstanding_fen >= 0),
    interest_paid_fen bigint NOT NULL DEFAULT 0 CHECK (interest_paid_fen >= 0),
    -- Interest accrued up to `accrued_to` (exclusive), each segment between balance changes
    -- rounded half up to the fen (docs/loans.md, "Interest").
    interest_accrued_fen bigint NOT NULL DEFAULT 0 CHECK (interest_accrued_fen >= 0),
    accrued_to date,
    delinquent_at timestamptz,
    defaulted_at timestamptz,
    confirmation text CHECK (confirmation IN ('requested', 'confirmed', 'disputed')),
    confirmation_due_on date,
    confirmation_overdue_at timestamptz,
    closed_at timestamptz,
    lock_ref text,
    -- Set once the contract service has lifted the lock after closing (the sweeper's task).
    unlocked_at timestamptz,
    PRIMARY KEY (centre_id, loan_id)
);
-- One open loan per contract.
CREATE UNIQUE INDEX loans_open_per_contract ON loans (centre_id, contract_id) WHERE status IN ('submitted', 'approved', 'active');
CREATE INDEX loans_lender ON loans (lender_id, centre_id);
CREATE INDEX loans_lock ON loans (lock_ref) WHERE lock_ref IS NOT NULL;

CREATE TABLE repayments (
    centre_id text NOT NULL,
    loan_id text NOT NULL,
    payment_id text NOT NULL,
    paid_on date NOT NULL,
    amount_fen bigint NOT NULL CHECK (amount_fen > 0),
    interest_fen bigint NOT NULL CHECK (interest_fen >= 0),
    principal_fen bigint NOT NULL CHECK (principal_fen >= 0),
    surplus_fen bigint NOT NULL CHECK (surplus_fen >= 0),
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (centre_id, loan_id, payment_id),
    FOREIGN KEY (centre_id, loan_id) REFERENCES loans,
    CHECK (interest_fen + principal_fen + surplus_fen = amount_fen)
);

-- Proposals to the credit service, delivered by the sweeper until the credit service has them
-- (its Propose is idempotent on proposal_id).
CREATE TABLE credit_proposals (
    centre_id text NOT NULL,
    proposal_id text NOT NULL,
    loan_id text NOT NULL,
    subject_uscc text NOT NULL,
    behaviour text NOT NULL CHECK (behaviour IN ('loan_default', 'false_materials')),
    evidence_refs text[] NOT NULL,
    summary text NOT NULL,
    created_at timestamptz NOT NULL,
    sent_at timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    PRIMARY KEY (centre_id, proposal_id)
);
CREATE INDEX credit_proposals_unsent ON credit_proposals (created_at) WHERE sent_at IS NULL;
