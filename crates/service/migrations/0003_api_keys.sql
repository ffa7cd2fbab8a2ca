-- Version 3: API keys. Only the SHA3-256 of a key's secret is stored. `accounts` lists, comma
-- separated, what an `account` key may see, `expires_at` is Unix seconds (0 for never) and
-- `revoked` is 0 or 1. (No semicolon may appear in a comment: statements split on it.)
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    accounts TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked BIGINT NOT NULL,
    label TEXT NOT NULL
);
