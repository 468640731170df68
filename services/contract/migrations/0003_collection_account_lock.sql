-- The collection account (回款账户) can change after drafting by a supplementary agreement
-- (合同账户变更补充协议), and a lender financing the contract locks it to its own account until the
-- loan is closed. Expand only: old binaries ignore the new column and table.
ALTER TABLE contracts ADD COLUMN account_locked_by text CHECK (account_locked_by IS NULL OR length(account_locked_by) BETWEEN 1 AND 100);

CREATE TABLE account_changes (
    centre_id text NOT NULL,
    contract_id text NOT NULL,
    sequence integer NOT NULL CHECK (sequence > 0),
    action text NOT NULL CHECK (action IN ('change', 'lock', 'unlock')),
    bank_name text NOT NULL,
    account_no text NOT NULL,
    account_name text NOT NULL,
    previous_account_no text NOT NULL,
    lock_ref text,
    reason text NOT NULL,
    changed_at timestamptz NOT NULL,
    changed_by text NOT NULL,
    PRIMARY KEY (centre_id, contract_id, sequence),
    FOREIGN KEY (centre_id, contract_id) REFERENCES contracts (centre_id, contract_id)
);
