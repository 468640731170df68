-- Suspense resolution: an operator binds a suspended credit to the sub-account it was meant for,
-- or orders it back to the paying account. Every decision is a row of its own and none is
-- deleted; a failed return stays (status return_failed) and the item is open again.
CREATE TABLE suspense_resolutions (
    resolution_id      uuid PRIMARY KEY,
    bank               text NOT NULL,
    bank_serial        text NOT NULL,
    centre_id          text NOT NULL,
    action             text NOT NULL CHECK (action IN ('bind', 'return')),
    status             text NOT NULL CHECK (status IN ('bound', 'return_ordered', 'returned', 'return_failed')),
    sub_account_number text,
    section_id         text,
    bidder_uscc        text,
    order_id           uuid,
    entry_sequence     bigint NOT NULL,
    decided_by         text NOT NULL,
    reason             text NOT NULL,
    decided_at         timestamptz NOT NULL,
    FOREIGN KEY (bank, bank_serial) REFERENCES credit_notices (bank, bank_serial),
    FOREIGN KEY (centre_id, entry_sequence) REFERENCES journal_entries (centre_id, sequence),
    CHECK ((action = 'bind') = (sub_account_number IS NOT NULL AND section_id IS NOT NULL AND bidder_uscc IS NOT NULL)),
    CHECK ((action = 'return') = (order_id IS NOT NULL))
);
-- At most one decision in force per item.
CREATE UNIQUE INDEX suspense_resolutions_in_force ON suspense_resolutions (bank, bank_serial) WHERE status <> 'return_failed';
CREATE INDEX suspense_resolutions_by_centre ON suspense_resolutions (centre_id, decided_at);
CREATE INDEX suspense_resolutions_by_deposit ON suspense_resolutions (centre_id, section_id, bidder_uscc) WHERE status = 'bound';

-- A payment order now returns either a deposit (refund) or a suspense item.
ALTER TABLE payment_orders
    ALTER COLUMN refund_id DROP NOT NULL,
    ADD COLUMN purpose text NOT NULL DEFAULT 'deposit_refund' CHECK (purpose IN ('deposit_refund', 'suspense_return')),
    ADD CHECK ((purpose = 'deposit_refund') = (refund_id IS NOT NULL));
