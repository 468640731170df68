-- Where parties are told, what they want to hear, and every message the service decided to send.

CREATE TABLE contacts (
    party          text PRIMARY KEY CHECK (length(party) BETWEEN 1 AND 64),
    email          text CHECK (email IS NULL OR length(email) BETWEEN 3 AND 254),
    phone          text CHECK (phone IS NULL OR phone ~ '^1[0-9]{10}$'),
    webhook_url    text CHECK (webhook_url IS NULL OR length(webhook_url) <= 2048),
    webhook_secret text,
    updated_at     timestamptz NOT NULL,
    updated_by     text NOT NULL,
    CHECK ((webhook_url IS NULL) = (webhook_secret IS NULL))
);

-- Only the pairs a party set explicitly; every other (category, channel) pair is on.
CREATE TABLE preferences (
    party    text NOT NULL,
    category text NOT NULL CHECK (category IN ('deposit', 'refund', 'guarantee', 'contract', 'payment', 'credit', 'alert', 'tender')),
    channel  text NOT NULL CHECK (channel IN ('email', 'sms', 'webhook', 'inbox')),
    enabled  boolean NOT NULL,
    PRIMARY KEY (party, category, channel)
);

CREATE TABLE interest_tags (
    party text NOT NULL,
    tag   text NOT NULL CHECK (length(tag) BETWEEN 1 AND 64),
    PRIMARY KEY (party, tag)
);
CREATE INDEX interest_tags_by_tag ON interest_tags (tag);

-- One row per (event, recipient, channel): recorded in the transaction that consumes the event,
-- before anything is sent; the row's id is the channel's idempotency key.
CREATE TABLE deliveries (
    id              uuid PRIMARY KEY,
    event_id        text NOT NULL,
    recipient       text NOT NULL,
    channel         text NOT NULL CHECK (channel IN ('email', 'sms', 'webhook', 'inbox')),
    centre_id       text NOT NULL,
    category        text NOT NULL,
    template        text NOT NULL,
    legal           boolean NOT NULL,
    destination     text NOT NULL,
    subject         text NOT NULL,
    body            text NOT NULL,
    -- SMS: the template code and parameters sent to the gateway.
    sms_template    text,
    sms_params      jsonb,
    state           text NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'dead', 'cancelled')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL,
    provider_id     text,
    last_error      text,
    traceparent     text,
    -- A reminder's fact: when it happens first, the reminder is cancelled.
    cancel_key      text,
    created_at      timestamptz NOT NULL,
    sent_at         timestamptz,
    read_at         timestamptz,
    UNIQUE (event_id, recipient, channel)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state IN ('pending', 'sending');
CREATE INDEX deliveries_inbox ON deliveries (recipient, created_at DESC, id) WHERE channel = 'inbox';
CREATE INDEX deliveries_by_centre ON deliveries (centre_id, created_at DESC, id);
CREATE INDEX deliveries_cancel ON deliveries (cancel_key) WHERE cancel_key IS NOT NULL AND state = 'pending';

-- Deposit deadlines from trading.events, for reminders.
CREATE TABLE sections (
    centre_id        text NOT NULL,
    section_id       text NOT NULL,
    deposit_deadline timestamptz NOT NULL,
    PRIMARY KEY (centre_id, section_id)
);

-- Deposits that arrived short: reminded 24 hours before the deadline unless satisfied first.
CREATE TABLE short_deposits (
    centre_id    text NOT NULL,
    section_id   text NOT NULL,
    bidder_uscc  text NOT NULL,
    held_fen     bigint NOT NULL CHECK (held_fen >= 0),
    required_fen bigint NOT NULL CHECK (required_fen >= 0),
    satisfied    boolean NOT NULL,
    reminded     boolean NOT NULL DEFAULT false,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (centre_id, section_id, bidder_uscc)
);
CREATE INDEX short_deposits_open ON short_deposits (centre_id, section_id) WHERE NOT satisfied AND NOT reminded;
