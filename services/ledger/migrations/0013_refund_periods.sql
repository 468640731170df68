-- Issue 14: refund periods per regime and trigger. 招标投标法实施条例 art. 57 refunds every
-- engineering bidder within 5 (calendar) days of the contract's signing; 政府采购法实施条例
-- art. 33 refunds procurement losers within 5 working days of the award and the winner within 5
-- working days of the signing. A row sets a centre's period for one (regime, trigger); without
-- one the centre's refund_period_days applies (default 5, the law). An engineering award
-- refunds nobody, so it has no period.
CREATE TABLE centre_refund_periods (
    centre_id   text NOT NULL REFERENCES centres (centre_id),
    regime      text NOT NULL CHECK (regime IN ('engineering', 'procurement')),
    trigger     text NOT NULL CHECK (trigger IN ('withdrawal', 'award', 'contract_signed', 'terminated', 'failed_tender')),
    period_days integer NOT NULL CHECK (period_days BETWEEN 1 AND 60),
    CHECK (NOT (regime = 'engineering' AND trigger = 'award')),
    PRIMARY KEY (centre_id, regime, trigger)
);
