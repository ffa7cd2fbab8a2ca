//! The history tables: margin samples, the alert log and the market list, with their pruning
//! (the rules are in [`crate::history`]). Inserts go in chunks of [`ROWS_PER_STATEMENT_MAX`] rows,
//! one transaction each, so a sample of 100,000 accounts never holds the single SQLite writer
//! for long while an acknowledged write waits.

use sqlx::Row;

use super::{RECEIPTS_KEPT_SECS, Store};
use crate::error::Error;
use crate::history::Retention;

/// Rows per multi-row `INSERT` (and per transaction): 8 bound values each stays far below
/// SQLite's and PostgreSQL's limits on bound parameters.
const ROWS_PER_STATEMENT_MAX: usize = 500;

/// One stored sample of an account's margin, as the health list showed it at `at`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Account id.
    pub account: String,
    /// Unix seconds of the sample.
    pub at: i64,
    /// The market the figures are on (0 when there was none).
    pub market_seq: i64,
    /// Status name.
    pub status: String,
    /// Health as JSON (`null` when it has no finite value).
    pub health: String,
    /// The figures per currency, JSON.
    pub figures: String,
    /// Where kept figures come from, JSON (`null` when they are current).
    pub stale: String,
    /// Why the account cannot be valued (empty when it can).
    pub error: String,
}

/// One logged change of an account's status.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    /// Position in the log (assigned when stored).
    pub seq: i64,
    /// Unix seconds of the publication that changed it.
    pub at: i64,
    /// Account id.
    pub account: String,
    /// Status before.
    pub from: String,
    /// Status after.
    pub to: String,
    /// Health after, JSON (`null` when it has no finite value).
    pub health: String,
    /// The market of that publication (0 when there was none).
    pub market_seq: i64,
}

/// One stored market push.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketRow {
    /// Sequence number.
    pub seq: i64,
    /// Unix seconds of its acknowledgement.
    pub received_at: i64,
    /// Valuation time, RFC 3339.
    pub valuation: String,
    /// Index price per underlying, JSON.
    pub indices: String,
}

/// A window of rows: `at` (or `received_at`) in `[from, to)`, past the cursor `after`, at most
/// `limit` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Earliest Unix second, inclusive.
    pub from: i64,
    /// Latest Unix second, exclusive.
    pub to: i64,
    /// The cursor: rows strictly past it in the listing's order.
    pub after: Option<i64>,
    /// Rows at most.
    pub limit: i64,
}

/// Rows deleted by one pruning, per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Market pushes.
    pub markets: u64,
    /// Margin samples.
    pub samples: u64,
    /// Alerts.
    pub alerts: u64,
    /// Idempotency receipts.
    pub receipts: u64,
}

fn fail(table: &'static str) -> impl Fn(sqlx::Error) -> Error {
    move |e| Error::storage(table, e)
}

/// `($1, …, $k), ($k+1, …)` for `rows` rows of `width` values.
fn placeholders(rows: usize, width: usize) -> String {
    let row = |r: usize| {
        let values: Vec<String> = (1..=width).map(|c| format!("${}", r * width + c)).collect();
        format!("({})", values.join(", "))
    };
    (0..rows).map(row).collect::<Vec<_>>().join(", ")
}

impl Store {
    /// Stores margin samples (an account's sample at an `at` it already has is kept as it was).
    ///
    /// # Errors
    /// `Storage` when a statement fails; the chunks committed before it stay.
    pub async fn insert_samples(&self, samples: &[Sample]) -> Result<(), Error> {
        for chunk in samples.chunks(ROWS_PER_STATEMENT_MAX) {
            let q = format!(
                "INSERT INTO margin_history \
                 (account, at, market_seq, status, health, stale, figures, error) VALUES {} \
                 ON CONFLICT (account, at) DO NOTHING",
                placeholders(chunk.len(), 8)
            );
            let mut query = sqlx::query(&q);
            for s in chunk {
                query = query.bind(&s.account).bind(s.at).bind(s.market_seq).bind(&s.status);
                query = query.bind(&s.health).bind(&s.stale).bind(&s.figures).bind(&s.error);
            }
            query.execute(&self.pool).await.map_err(fail("margin_history"))?;
        }
        Ok(())
    }

    /// Appends `alerts` to the log in order, numbering them after the last one stored.
    ///
    /// # Errors
    /// `Storage` when the transaction fails; nothing of it is then stored.
    pub async fn insert_alerts(&self, alerts: &[AlertRow]) -> Result<(), Error> {
        if alerts.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(fail("alerts"))?;
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS last FROM alerts")
            .fetch_one(&mut *tx)
            .await
            .map_err(fail("alerts"))?;
        let mut seq: i64 = row.try_get("last").map_err(fail("alerts"))?;
        for chunk in alerts.chunks(ROWS_PER_STATEMENT_MAX) {
            let q = format!(
                "INSERT INTO alerts (seq, at, account, from_status, to_status, health, \
                 market_seq) VALUES {}",
                placeholders(chunk.len(), 7)
            );
            let mut query = sqlx::query(&q);
            for a in chunk {
                seq += 1;
                query = query.bind(seq).bind(a.at).bind(&a.account).bind(&a.from).bind(&a.to);
                query = query.bind(&a.health).bind(a.market_seq);
            }
            query.execute(&mut *tx).await.map_err(fail("alerts"))?;
        }
        tx.commit().await.map_err(fail("alerts"))
    }

    /// Deletes what `retention` no longer keeps at Unix second `now`: market pushes older than
    /// its raw window except the first of each step, everything older than its horizon (the
    /// current market always stays), and receipts past their window.
    ///
    /// # Errors
    /// `Storage` when the transaction fails; nothing is then deleted.
    pub async fn prune(&self, now: i64, retention: &Retention) -> Result<Pruned, Error> {
        let mut tx = self.pool.begin().await.map_err(fail("database"))?;
        let horizon = now - retention.kept_secs;
        let markets = sqlx::query(
            "DELETE FROM markets WHERE seq < (SELECT MAX(seq) FROM markets) AND \
             (received_at < $1 OR (received_at < $2 AND seq NOT IN \
             (SELECT MIN(seq) FROM markets GROUP BY received_at / $3)))",
        )
        .bind(horizon)
        .bind(now - retention.raw_secs)
        .bind(retention.step_secs)
        .execute(&mut *tx)
        .await
        .map_err(fail("markets"))?;
        let samples = sqlx::query("DELETE FROM margin_history WHERE at < $1")
            .bind(horizon)
            .execute(&mut *tx)
            .await
            .map_err(fail("margin_history"))?;
        let alerts = sqlx::query("DELETE FROM alerts WHERE at < $1")
            .bind(horizon)
            .execute(&mut *tx)
            .await
            .map_err(fail("alerts"))?;
        let receipts = sqlx::query("DELETE FROM idempotency WHERE created_at < $1")
            .bind(now - RECEIPTS_KEPT_SECS)
            .execute(&mut *tx)
            .await
            .map_err(fail("idempotency"))?;
        tx.commit().await.map_err(fail("database"))?;
        Ok(Pruned {
            markets: markets.rows_affected(),
            samples: samples.rows_affected(),
            alerts: alerts.rows_affected(),
            receipts: receipts.rows_affected(),
        })
    }

    /// Account `account`'s samples in `window`, oldest first (the cursor is a sample's `at`).
    ///
    /// # Errors
    /// `Storage` when the query fails.
    pub async fn samples(&self, account: &str, window: Window) -> Result<Vec<Sample>, Error> {
        let q = "SELECT account, at, market_seq, status, health, stale, figures, error \
                 FROM margin_history WHERE account = $1 AND at >= $2 AND at < $3 AND at > $4 \
                 ORDER BY at LIMIT $5";
        let rows = sqlx::query(q)
            .bind(account)
            .bind(window.from)
            .bind(window.to)
            .bind(window.after.unwrap_or(i64::MIN))
            .bind(window.limit)
            .fetch_all(&self.pool)
            .await
            .map_err(fail("margin_history"))?;
        rows.iter().map(sample).collect::<Result<_, _>>().map_err(fail("margin_history"))
    }

    /// The alerts in `window`, newest first (the cursor is an alert's `seq`: rows before it),
    /// of the accounts in `accounts` when given (none when it is empty).
    ///
    /// # Errors
    /// `Storage` when the query fails.
    pub async fn alerts(
        &self,
        accounts: Option<&[String]>,
        window: Window,
    ) -> Result<Vec<AlertRow>, Error> {
        let filter = match accounts {
            None => String::new(),
            Some([]) => return Ok(Vec::new()),
            Some(ids) => {
                let marks: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 5)).collect();
                format!(" AND account IN ({})", marks.join(", "))
            }
        };
        let q = format!(
            "SELECT seq, at, account, from_status, to_status, health, market_seq FROM alerts \
             WHERE at >= $1 AND at < $2 AND seq < $3{filter} ORDER BY seq DESC LIMIT $4"
        );
        let mut query = sqlx::query(&q)
            .bind(window.from)
            .bind(window.to)
            .bind(window.after.unwrap_or(i64::MAX))
            .bind(window.limit);
        for id in accounts.unwrap_or_default() {
            query = query.bind(id);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(fail("alerts"))?;
        rows.iter().map(alert).collect::<Result<_, _>>().map_err(fail("alerts"))
    }

    /// The market pushes received in `window`, oldest first (the cursor is a push's `seq`).
    ///
    /// # Errors
    /// `Storage` when the query fails.
    pub async fn markets(&self, window: Window) -> Result<Vec<MarketRow>, Error> {
        let q = "SELECT seq, received_at, valuation, indices FROM markets \
                 WHERE received_at >= $1 AND received_at < $2 AND seq > $3 ORDER BY seq LIMIT $4";
        let rows = sqlx::query(q)
            .bind(window.from)
            .bind(window.to)
            .bind(window.after.unwrap_or(i64::MIN))
            .bind(window.limit)
            .fetch_all(&self.pool)
            .await
            .map_err(fail("markets"))?;
        let market = |r: &sqlx::any::AnyRow| -> Result<MarketRow, sqlx::Error> {
            Ok(MarketRow {
                seq: r.try_get("seq")?,
                received_at: r.try_get("received_at")?,
                valuation: r.try_get("valuation")?,
                indices: r.try_get("indices")?,
            })
        };
        rows.iter().map(market).collect::<Result<_, _>>().map_err(fail("markets"))
    }

    /// Rows of each history table (markets, margin samples, alerts, receipts), to check that
    /// retention bounds the database.
    ///
    /// # Errors
    /// `Storage` when a query fails.
    pub async fn history_rows(&self) -> Result<Pruned, Error> {
        let mut counts = [0_u64; 4];
        let tables = ["markets", "margin_history", "alerts", "idempotency"];
        for (count, table) in counts.iter_mut().zip(tables) {
            let row = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
                .fetch_one(&self.pool)
                .await
                .map_err(fail(table))?;
            let n: i64 = row.try_get("n").map_err(fail(table))?;
            *count = n.unsigned_abs();
        }
        let [markets, samples, alerts, receipts] = counts;
        Ok(Pruned { markets, samples, alerts, receipts })
    }
}

fn sample(r: &sqlx::any::AnyRow) -> Result<Sample, sqlx::Error> {
    Ok(Sample {
        account: r.try_get("account")?,
        at: r.try_get("at")?,
        market_seq: r.try_get("market_seq")?,
        status: r.try_get("status")?,
        health: r.try_get("health")?,
        figures: r.try_get("figures")?,
        stale: r.try_get("stale")?,
        error: r.try_get("error")?,
    })
}

fn alert(r: &sqlx::any::AnyRow) -> Result<AlertRow, sqlx::Error> {
    Ok(AlertRow {
        seq: r.try_get("seq")?,
        at: r.try_get("at")?,
        account: r.try_get("account")?,
        from: r.try_get("from_status")?,
        to: r.try_get("to_status")?,
        health: r.try_get("health")?,
        market_seq: r.try_get("market_seq")?,
    })
}
