-- Version 6: history and retention (src/history.rs). Each market's arrival time (Unix seconds,
-- 0 for those stored before it, which the next pruning removes unless it is the current one)
-- and its index prices as JSON, so old pushes are thinned by time and listed without parsing
-- their documents.
ALTER TABLE markets ADD COLUMN received_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE markets ADD COLUMN indices TEXT NOT NULL DEFAULT '{}';
-- One sample of an account's margin as the health list shows it: status, health as JSON (null
-- when it has no finite value), the figures per currency as JSON, where kept figures come from
-- as JSON (null when they are current) and why it cannot be valued (empty when it can).
CREATE TABLE IF NOT EXISTS margin_history (
    account TEXT NOT NULL,
    at BIGINT NOT NULL,
    market_seq BIGINT NOT NULL,
    status TEXT NOT NULL,
    health TEXT NOT NULL,
    stale TEXT NOT NULL,
    figures TEXT NOT NULL,
    error TEXT NOT NULL,
    PRIMARY KEY (account, at)
);
CREATE INDEX IF NOT EXISTS margin_history_at ON margin_history (at);
-- The alert log: every change of an account's status, in the order the service published it.
CREATE TABLE IF NOT EXISTS alerts (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    account TEXT NOT NULL,
    from_status TEXT NOT NULL,
    to_status TEXT NOT NULL,
    health TEXT NOT NULL,
    market_seq BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_account ON alerts (account, seq);
CREATE INDEX IF NOT EXISTS alerts_at ON alerts (at);
