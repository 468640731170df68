-- Deadlines parties are reminded of the working day before (a contract to sign, a contract to
-- publish, an invoice objection window closing), from contract.events; done when the fact
-- happens first.
CREATE TABLE deadlines (
    key        text PRIMARY KEY,
    centre_id  text NOT NULL,
    recipient  text NOT NULL,
    template   text NOT NULL,
    vars       jsonb NOT NULL,
    due_at     timestamptz NOT NULL,
    remind_at  timestamptz NOT NULL,
    state      text NOT NULL CHECK (state IN ('waiting', 'reminded', 'done')),
    updated_at timestamptz NOT NULL
);
CREATE INDEX deadlines_waiting ON deadlines (remind_at) WHERE state = 'waiting';
