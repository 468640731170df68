-- Bid guarantees (电子保函) standing in for deposits, learnt from guarantee.events
-- (services/ledger/src/guarantees.rs). A guarantee covering the requirement satisfies the
-- bidder's deposit; cash paid as well is refundable.
CREATE TABLE guarantee_covers (
    centre_id    text NOT NULL,
    section_id   text NOT NULL,
    bidder_uscc  text NOT NULL,
    guarantee_no text NOT NULL,
    amount_fen   bigint NOT NULL CHECK (amount_fen > 0),
    valid_to     date NOT NULL,
    event_id     text NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (centre_id, section_id, bidder_uscc, guarantee_no)
);
