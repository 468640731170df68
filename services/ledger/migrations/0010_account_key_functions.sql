-- The text form of account keys (`accounts.account`, `postings.account`) for queries that build a
-- key from other columns. The definition is the Rust type `jinfu_ledger::AccountKey` (its
-- Display); these functions mirror it once, so no query spells the format itself, and the e2e
-- test `account_keys_built_in_sql_are_the_keys_the_core_prints` pins the two equal. Plain SQL
-- functions, IMMUTABLE: the planner inlines them, so index lookups on `account` are unchanged.
CREATE FUNCTION bank_account_key(bank text, account_number text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 'bank:' || bank || ':' || account_number $$;
CREATE FUNCTION deposit_account_key(section_id text, bidder_uscc text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 'deposit:' || section_id || ':' || bidder_uscc $$;
CREATE FUNCTION suspense_account_key(bank text, account_number text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 'suspense:' || bank || ':' || account_number $$;
-- Every deposit account of a section starts with this.
CREATE FUNCTION deposit_account_prefix(section_id text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 'deposit:' || section_id || ':' $$;
