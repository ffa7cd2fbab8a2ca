-- Version 4: the audit log, append-only and hash-chained (see src/audit.rs), and the time of
-- each idempotency receipt, so that receipts expire after a window.
CREATE TABLE IF NOT EXISTS audit_log (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    digest TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL
);
ALTER TABLE idempotency ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;
