-- Reconciliation looks statement lines up by serial (ledger items missing from the statement).
CREATE INDEX statement_lines_by_serial ON statement_lines (statement_id, bank_serial);
