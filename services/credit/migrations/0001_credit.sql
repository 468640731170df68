-- The credit service's own tables. Debarment status is never stored: it is derived from
-- debarred_from (inclusive) and debarred_until (exclusive) at the instant asked.

-- Facts proposed by other services and staff; a proposal is never a ban.
CREATE TABLE proposals (
    centre_id text NOT NULL,
    proposal_id text NOT NULL,
    subject_uscc text NOT NULL,
    behaviour text NOT NULL,
    source text NOT NULL,
    evidence_refs text[] NOT NULL,
    summary text NOT NULL,
    regime text CHECK (regime IN ('procurement', 'engineering')),
    proposed_by text NOT NULL,
    proposed_at timestamptz NOT NULL,
    content_hash bytea NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'confirmed', 'dismissed')),
    decided_by text,
    decided_at timestamptz,
    decision_reason text,
    record_id text,
    PRIMARY KEY (centre_id, proposal_id)
);
CREATE INDEX proposals_pending ON proposals (centre_id, proposed_at) WHERE status = 'pending';

-- Records confirmed by a supervisor, with their trail (never deleted).
CREATE TABLE records (
    record_id text PRIMARY KEY,
    centre_id text NOT NULL,
    subject_uscc text NOT NULL,
    behaviour text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('violation', 'blacklist')),
    legal_basis text NOT NULL,
    authority text NOT NULL,
    decided_on date NOT NULL,
    evidence_refs text[] NOT NULL,
    fine_fen bigint NOT NULL CHECK (fine_fen >= 0),
    debarred_from timestamptz,
    debarred_until timestamptz,
    province_wide boolean NOT NULL,
    regime text CHECK (regime IN ('procurement', 'engineering')),
    listed_at timestamptz NOT NULL,
    proposal_id text NOT NULL,
    confirmed_by text NOT NULL,
    repair text NOT NULL DEFAULT 'none' CHECK (repair IN ('none', 'applied', 'approved', 'refused')),
    repair_reason text,
    repair_applied_at timestamptz,
    repair_decided_by text,
    repaired_at timestamptz,
    CHECK ((kind = 'blacklist') = (debarred_from IS NOT NULL)),
    CHECK (debarred_until IS NULL OR debarred_until > debarred_from),
    UNIQUE (centre_id, proposal_id)
);
CREATE INDEX records_subject ON records (subject_uscc);
