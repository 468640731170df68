-- Issue 14: the calendar is data loaded at run time (DESIGN.md §7). The compiled-in years
-- (ledger/data/cn-holidays.txt, 2024–2026) are the seed; an administrator loads each later year
-- from the State Council's notice (国务院办公厅关于XXXX年部分节假日安排的通知, gov.cn) over gRPC
-- (LoadCalendarYear) or `ledger calendar load`. A loaded year takes precedence over the seed.

-- The year in force: one row per loaded year, with the notice it came from and who loaded it.
CREATE TABLE calendar_years (
    year             integer PRIMARY KEY CHECK (year BETWEEN 2000 AND 2100),
    holidays         date[] NOT NULL,
    make_up_workdays date[] NOT NULL,
    source           text NOT NULL CHECK (length(source) > 0),
    loaded_by        text NOT NULL,
    loaded_at        timestamptz NOT NULL,
    -- The calendar_loads row that put this version in force.
    load_id          bigint NOT NULL
);

-- Every load, accepted or not changing anything, never updated or deleted: who loaded which
-- data for which year, when, from which notice, and what it did (`loaded` a new year,
-- `replaced` a year no scheduled refund depended on, `unchanged` the same data again). Its
-- highest load_id is the calendar's version: replicas poll it and rebuild when it moves.
CREATE TABLE calendar_loads (
    load_id          bigserial PRIMARY KEY,
    year             integer NOT NULL,
    holidays         date[] NOT NULL,
    make_up_workdays date[] NOT NULL,
    source           text NOT NULL,
    loaded_by        text NOT NULL,
    loaded_at        timestamptz NOT NULL,
    outcome          text NOT NULL CHECK (outcome IN ('loaded', 'replaced', 'unchanged')),
    -- Refunds waiting for the calendar that this load scheduled.
    refunds_scheduled integer NOT NULL DEFAULT 0
);

-- A refund whose due date needs a year not loaded yet waits as `pending_calendar`, with no due
-- date and no order time, until the year is loaded; it is never dead-lettered.
ALTER TABLE refunds ALTER COLUMN due_on DROP NOT NULL;
ALTER TABLE refunds ALTER COLUMN order_after DROP NOT NULL;
ALTER TABLE refunds DROP CONSTRAINT refunds_status_check;
ALTER TABLE refunds ADD CONSTRAINT refunds_status_check
    CHECK (status IN ('pending_calendar', 'scheduled', 'ordered', 'settled', 'failed', 'forfeited', 'nothing_held'));
ALTER TABLE refunds ADD CONSTRAINT refunds_dates_unless_pending
    CHECK ((status = 'pending_calendar') = (due_on IS NULL) AND (due_on IS NULL) = (order_after IS NULL));
CREATE INDEX refunds_pending_calendar ON refunds (triggered_at) WHERE status = 'pending_calendar';
