-- Version 7: a perpetual's funding index up to which its funding is paid (the venue's
-- cumulative funding per unit of size, in its settlement currency). NULL accrues nothing, as
-- for the positions stored before it.
ALTER TABLE positions ADD COLUMN funding DOUBLE PRECISION;
