-- Ballast service schema, version 1. Portable between SQLite and PostgreSQL: TEXT keys,
-- BIGINT counters, DOUBLE PRECISION sizes, balances as exact decimal text.
CREATE TABLE IF NOT EXISTS methodologies (
    hash TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    toml TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY,
    methodology TEXT NOT NULL REFERENCES methodologies (hash)
);
CREATE TABLE IF NOT EXISTS positions (
    account TEXT NOT NULL REFERENCES accounts (id),
    instrument TEXT NOT NULL,
    size DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account, instrument)
);
CREATE TABLE IF NOT EXISTS balances (
    account TEXT NOT NULL REFERENCES accounts (id),
    currency TEXT NOT NULL,
    amount TEXT NOT NULL,
    PRIMARY KEY (account, currency)
);
CREATE TABLE IF NOT EXISTS markets (
    seq BIGINT PRIMARY KEY,
    valuation TEXT NOT NULL,
    document TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    status BIGINT NOT NULL,
    response TEXT NOT NULL
);
