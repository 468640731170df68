-- A bid guarantee stops standing in for the deposit when it leaves force (surrendered,
-- released, expired or paid out): the event that ended it is kept, the row is not deleted.
ALTER TABLE guarantee_covers
    ADD COLUMN ended_at     timestamptz,
    ADD COLUMN ended_reason text;
