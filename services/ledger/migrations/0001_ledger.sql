-- The deposit ledger's schema. The search path puts these tables in schema `ledger`.

CREATE TABLE centres (
    centre_id        text PRIMARY KEY,
    name             text NOT NULL,
    parent_centre_id text REFERENCES centres (centre_id),
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE bank_accounts (
    bank                text NOT NULL,
    account_number      text NOT NULL,
    centre_id           text NOT NULL REFERENCES centres (centre_id),
    signing_key_ref     text NOT NULL,
    demand_deposit_rate numeric(12, 8) NOT NULL CHECK (demand_deposit_rate >= 0),
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bank, account_number)
);

CREATE TABLE sections (
    centre_id              text NOT NULL REFERENCES centres (centre_id),
    section_id             text NOT NULL,
    name                   text NOT NULL,
    regime                 text NOT NULL CHECK (regime IN ('engineering', 'procurement')),
    required_deposit_fen   bigint NOT NULL CHECK (required_deposit_fen > 0),
    deposit_deadline       timestamptz NOT NULL,
    bid_opening_time       timestamptz NOT NULL,
    bank                   text NOT NULL,
    account_number         text NOT NULL,
    basic_account_required boolean NOT NULL,
    open                   boolean NOT NULL DEFAULT true,
    closed_reason          text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (centre_id, section_id),
    FOREIGN KEY (bank, account_number) REFERENCES bank_accounts (bank, account_number)
);

CREATE SEQUENCE sub_account_sequence;

CREATE TABLE sub_accounts (
    sub_account_number text PRIMARY KEY,
    centre_id          text NOT NULL,
    section_id         text NOT NULL,
    bidder_uscc        text NOT NULL,
    bidder_name        text NOT NULL,
    basic_account      text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (centre_id, section_id, bidder_uscc),
    FOREIGN KEY (centre_id, section_id) REFERENCES sections (centre_id, section_id)
);

-- Current balances, on each account's normal side. Derivable from postings; kept so reads are
-- cheap, and checked against the postings by `ledger verify`.
CREATE TABLE accounts (
    centre_id   text NOT NULL REFERENCES centres (centre_id),
    account     text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('asset', 'liability', 'income', 'expense')),
    balance_fen bigint NOT NULL,
    PRIMARY KEY (centre_id, account),
    -- Invariant 3: deposits, suspense and the bank asset never go negative.
    CHECK (balance_fen >= 0 OR account LIKE 'interest-%')
);

-- The head of each centre's hash chain. Locking this row serialises appends per centre.
CREATE TABLE chain_heads (
    centre_id     text PRIMARY KEY REFERENCES centres (centre_id),
    last_sequence bigint NOT NULL,
    last_hash     bytea NOT NULL
);

CREATE TABLE journal_entries (
    centre_id  text NOT NULL,
    sequence   bigint NOT NULL,
    entry_id   uuid NOT NULL UNIQUE,
    kind       text NOT NULL,
    -- What caused the entry, e.g. `notice:ICBC/2026112200001`.
    reference  text NOT NULL,
    previous_hash bytea NOT NULL,
    hash       bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (centre_id, sequence)
);

CREATE TABLE postings (
    centre_id  text NOT NULL,
    sequence   bigint NOT NULL,
    line       smallint NOT NULL,
    account    text NOT NULL,
    side       text NOT NULL CHECK (side IN ('debit', 'credit')),
    amount_fen bigint NOT NULL CHECK (amount_fen > 0),
    PRIMARY KEY (centre_id, sequence, line),
    FOREIGN KEY (centre_id, sequence) REFERENCES journal_entries (centre_id, sequence)
);
CREATE INDEX postings_by_account ON postings (centre_id, account, sequence);

-- Invariant 2: postings and entries are append-only.
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger table % is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER journal_entries_append_only BEFORE UPDATE OR DELETE ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- Every applied credit notice, keyed by (bank, bank serial): invariant 4.
CREATE TABLE credit_notices (
    bank            text NOT NULL,
    bank_serial     text NOT NULL,
    content_hash    bytea NOT NULL,
    event_id        text NOT NULL,
    centre_id       text NOT NULL,
    account_number  text NOT NULL,
    sub_account_number text NOT NULL,
    amount_fen      bigint NOT NULL CHECK (amount_fen > 0),
    payer_name      text NOT NULL,
    payer_account   text NOT NULL,
    value_time      timestamptz NOT NULL,
    section_id      text,
    bidder_uscc     text,
    outcome         text NOT NULL,
    entry_sequence  bigint NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset    bigint NOT NULL,
    produced_at     timestamptz,
    posted_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bank, bank_serial),
    FOREIGN KEY (centre_id, entry_sequence) REFERENCES journal_entries (centre_id, sequence)
);
CREATE INDEX credit_notices_by_sub_account ON credit_notices (sub_account_number);
CREATE INDEX credit_notices_by_outcome ON credit_notices (centre_id, outcome);

-- A notice that reused a (bank, serial) with different content: no money moved.
CREATE TABLE notice_conflicts (
    id            bigserial PRIMARY KEY,
    bank          text NOT NULL,
    bank_serial   text NOT NULL,
    centre_id     text NOT NULL,
    stored_hash   bytea NOT NULL,
    incoming_hash bytea NOT NULL,
    payload       bytea NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset  bigint NOT NULL,
    detected_at   timestamptz NOT NULL DEFAULT now()
);

-- Which payer accounts funded which bidders in a section, for collusion leads.
CREATE TABLE payer_links (
    centre_id     text NOT NULL,
    section_id    text NOT NULL,
    payer_account text NOT NULL,
    bidder_uscc   text NOT NULL,
    first_seen    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (centre_id, section_id, payer_account, bidder_uscc)
);

CREATE TABLE collusion_leads (
    centre_id     text NOT NULL,
    section_id    text NOT NULL,
    payer_account text NOT NULL,
    raised_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (centre_id, section_id, payer_account)
);

-- dead_letters, consumer_offsets and outbox are the platform's tables:
-- services/platform/migrations/0000_platform_tables.sql, applied before this file.
