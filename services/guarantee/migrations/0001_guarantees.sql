-- The e-guarantee service's schema: issuers and products (province-wide), bidders' applications
-- and the guarantees issued on them. What names a bidder or its terms is sealed (AES-256-GCM,
-- `sealed` columns) until the section's bids are opened; rows are found by `bidder_tag`, an
-- HMAC of the bidder's code (services/guarantee/src/seal.rs).

CREATE TABLE provinces (
    centre_id         text PRIMARY KEY,
    onboarding_paused boolean NOT NULL DEFAULT false,
    changed_by        text,
    changed_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE issuers (
    centre_id   text NOT NULL,
    issuer_code text NOT NULL,
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('bank', 'insurer', 'guarantor')),
    state       text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'suspended', 'exited')),
    scheme      text NOT NULL CHECK (scheme IN ('sm2-sm3', 'ed25519')),
    public_key  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (centre_id, issuer_code)
);

-- Every state change, with who and why; never updated.
CREATE TABLE issuer_state_changes (
    id          bigserial PRIMARY KEY,
    centre_id   text NOT NULL,
    issuer_code text NOT NULL,
    state       text NOT NULL,
    reason      text NOT NULL,
    changed_by  text NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (centre_id, issuer_code) REFERENCES issuers (centre_id, issuer_code)
);

CREATE TABLE products (
    centre_id           text NOT NULL,
    issuer_code         text NOT NULL,
    product_id          text NOT NULL,
    name                text NOT NULL,
    kind                text NOT NULL CHECK (kind IN ('bid', 'performance', 'quality')),
    premium_rate        numeric(12, 8) NOT NULL CHECK (premium_rate >= 0 AND premium_rate <= 0.1),
    minimum_premium_fen bigint NOT NULL CHECK (minimum_premium_fen >= 0),
    minimum_amount_fen  bigint NOT NULL CHECK (minimum_amount_fen > 0),
    maximum_amount_fen  bigint NOT NULL CHECK (maximum_amount_fen >= minimum_amount_fen),
    centres             text[] NOT NULL DEFAULT '{}',
    regimes             text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (centre_id, issuer_code, product_id),
    FOREIGN KEY (centre_id, issuer_code) REFERENCES issuers (centre_id, issuer_code)
);

CREATE TABLE applications (
    application_id uuid PRIMARY KEY,
    -- The section's centre (a city) and its province.
    centre_id      text NOT NULL,
    province_id    text NOT NULL,
    section_id     text NOT NULL,
    bidder_tag     bytea NOT NULL,
    issuer_code    text NOT NULL,
    product_id     text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('bid', 'performance', 'quality')),
    status         text NOT NULL CHECK (status IN ('pending', 'cancelled', 'rejected', 'issued')),
    -- Sealed JSON: bidder, beneficiary, amount, premium, validity, the issuer's reason.
    sealed         bytea NOT NULL,
    applied_at     timestamptz NOT NULL DEFAULT now(),
    decided_at     timestamptz,
    FOREIGN KEY (province_id, issuer_code, product_id) REFERENCES products (centre_id, issuer_code, product_id)
);
-- One live application or guarantee per bidder, section and type.
CREATE UNIQUE INDEX applications_one_live ON applications (centre_id, section_id, bidder_tag, kind)
    WHERE status IN ('pending', 'issued');
CREATE INDEX applications_by_issuer ON applications (province_id, issuer_code, status, applied_at);

CREATE TABLE guarantees (
    guarantee_no   text PRIMARY KEY,
    application_id uuid NOT NULL UNIQUE REFERENCES applications (application_id),
    centre_id      text NOT NULL,
    section_id     text NOT NULL,
    issuer_code    text NOT NULL,
    kind           text NOT NULL,
    -- Sealed JSON: the signed terms (bidder, beneficiary, amount, validity, digest) and signature.
    sealed         bytea NOT NULL,
    issued_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX guarantees_by_section ON guarantees (centre_id, section_id);

