-- Version 2: the price a position's P&L counts from (a future's average entry or the mark of its
-- last settlement, an option's average premium), in the instrument's price unit. NULL for
-- positions stored before it: those count as settled at the current mark.
ALTER TABLE positions ADD COLUMN entry DOUBLE PRECISION;
