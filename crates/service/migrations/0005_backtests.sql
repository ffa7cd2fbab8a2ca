-- Version 5: backtest summaries (src/backtests.rs), one row per run and methodology, the
-- summary as JSON. The latest run of each methodology is what the service shows, and older
-- runs are pruned past a count (never a methodology's latest).
CREATE TABLE IF NOT EXISTS backtests (
    run BIGINT NOT NULL,
    methodology TEXT NOT NULL,
    name TEXT NOT NULL,
    summary TEXT NOT NULL,
    PRIMARY KEY (run, methodology)
);
