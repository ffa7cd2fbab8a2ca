//! Persistence: SQLite (embedded, the default) or PostgreSQL, through one `sqlx` Any pool.
//!
//! The database is the source of truth; the in-memory model is rebuilt from it at startup. A
//! write is acknowledged only after its transaction has committed, and the transaction carries
//! the idempotency receipt with the data, so a replayed key finds exactly the answer that was
//! sent, and a write that was never acknowledged leaves neither. SQLite runs in WAL mode with
//! `synchronous=FULL`: a commit is on disk before `COMMIT` returns, so a `kill -9` (or power
//! loss) after the acknowledgement cannot lose it. PostgreSQL's defaults (`fsync`,
//! `synchronous_commit=on`) give the same guarantee.

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor, Row};

use crate::error::Error;

mod history;
pub use history::{AlertRow, MarketRow, Pruned, Sample, Window};

/// Schema migrations, embedded in the binary, applied in order once each.
const MIGRATIONS: [(i64, &str); 8] = [
    (1, include_str!("../migrations/0001_init.sql")),
    (2, include_str!("../migrations/0002_entry_prices.sql")),
    (3, include_str!("../migrations/0003_api_keys.sql")),
    (4, include_str!("../migrations/0004_audit_log.sql")),
    (5, include_str!("../migrations/0005_backtests.sql")),
    (6, include_str!("../migrations/0006_history.sql")),
    (7, include_str!("../migrations/0007_funding.sql")),
    (8, include_str!("../migrations/0008_venue_book.sql")),
];

/// How long an idempotency receipt is kept, seconds: a replay within a day finds its first
/// answer; older receipts are pruned, so their table does not grow without bound.
pub const RECEIPTS_KEPT_SECS: i64 = 24 * 3_600;

/// Backtest runs kept in the database; an older run is pruned unless it is the latest of a
/// methodology (which the service still shows).
pub const BACKTEST_RUNS_KEPT_COUNT: i64 = 32;

/// Connections to PostgreSQL (SQLite uses one: it has a single writer anyway).
const POSTGRES_CONNECTIONS_MAX: u32 = 4;

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// One change to stored state, part of a write's transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Registers a methodology (a no-op when its hash is already stored).
    Methodology {
        /// Canonical hash, hex.
        hash: String,
        /// Name.
        name: String,
        /// Version.
        version: String,
        /// The TOML text as received.
        toml: String,
    },
    /// Creates an account.
    Account {
        /// Account id.
        id: String,
        /// Hash of its methodology.
        methodology: String,
    },
    /// Sets a position's size; 0 removes it.
    Position {
        /// Account id.
        account: String,
        /// Instrument name.
        instrument: String,
        /// Signed size.
        size: f64,
        /// The price its P&L counts from.
        entry: Option<f64>,
        /// A perpetual's funding index up to which its funding is paid.
        funding: Option<f64>,
    },
    /// Sets a balance (exact decimal text); `None` removes it.
    Balance {
        /// Account id.
        account: String,
        /// Currency code.
        currency: String,
        /// Amount.
        amount: Option<String>,
    },
    /// Stores an API key (its secret's hash only).
    Key {
        /// Key id.
        id: String,
        /// SHA3-256 of the secret, hex.
        secret_hash: String,
        /// Role name.
        role: String,
        /// Accounts an `account` key may see, comma separated.
        accounts: String,
        /// Unix seconds of expiry; 0 for never.
        expires_at: i64,
        /// Who holds it.
        label: String,
    },
    /// Revokes an API key.
    RevokeKey {
        /// Key id.
        id: String,
    },
    /// Appends an entry to the audit log.
    Audit(crate::audit::Entry),
    /// Deletes an account with its positions and balances.
    DeleteAccount {
        /// Account id.
        id: String,
    },
    /// Moves an account to another methodology.
    AccountMethodology {
        /// Account id.
        id: String,
        /// Hash of the methodology.
        methodology: String,
    },
    /// Stores one methodology's summary of a backtest run.
    Backtest {
        /// Run number (increasing).
        run: i64,
        /// Hash of the methodology.
        methodology: String,
        /// `name@version`.
        name: String,
        /// The summary, JSON.
        summary: String,
    },
    /// Stores a market snapshot as the newest.
    Market {
        /// Sequence number (increasing).
        seq: i64,
        /// Valuation time, RFC 3339.
        valuation: String,
        /// The document, canonical JSON.
        document: String,
        /// Unix seconds of its acknowledgement (what retention thins by).
        received_at: i64,
        /// Index price per underlying, JSON (what the market history lists).
        indices: String,
    },
    /// Replaces the stored cross-venue book.
    VenueBook {
        /// The book's document, canonical JSON.
        document: String,
    },
}

/// The stored answer to an idempotent write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The idempotency key.
    pub key: String,
    /// Fingerprint of the request (method, path, body) that first used the key.
    pub request: String,
    /// HTTP status of the answer.
    pub status: u16,
    /// Body of the answer.
    pub response: String,
    /// Unix seconds of the write (receipts older than [`RECEIPTS_KEPT_SECS`] are pruned).
    pub created_at: i64,
}

/// A stored position: (account, instrument, size, entry price, funding index).
pub type StoredPosition = (String, String, f64, Option<f64>, Option<f64>);

/// Everything stored, as read at startup.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded {
    /// (hash, name, version, toml).
    pub methodologies: Vec<(String, String, String, String)>,
    /// (id, methodology hash).
    pub accounts: Vec<(String, String)>,
    /// (account, instrument, size, entry price, funding index).
    pub positions: Vec<StoredPosition>,
    /// (account, currency, amount).
    pub balances: Vec<(String, String, String)>,
    /// The newest market: (seq, document).
    pub market: Option<(i64, String)>,
    /// API keys: (id, secret hash, role, accounts, expires at, revoked, label).
    pub keys: Vec<(String, String, String, String, i64, i64, String)>,
    /// The audit log's last entry: (seq, hash).
    pub audit_head: Option<(i64, String)>,
    /// The latest backtest summary of each methodology: (run, methodology hash, summary).
    pub backtests: Vec<(i64, String, String)>,
    /// The last backtest run's number.
    pub backtest_run: Option<i64>,
    /// The stored cross-venue book's document.
    pub venue_book: Option<String>,
}

/// The database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects to `url` (`sqlite://PATH`, created if missing, or `postgres://...`) and applies
    /// the migrations.
    ///
    /// # Errors
    /// `Storage` naming `database` for an unsupported URL or a failed connection or migration.
    pub async fn open(url: &str) -> Result<Store, Error> {
        install_default_drivers();
        let (backend, url) = if let Some(rest) = url.strip_prefix("sqlite:") {
            let options = if rest.contains('?') { "&mode=rwc" } else { "?mode=rwc" };
            (Backend::Sqlite, format!("sqlite:{rest}{options}"))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_owned())
        } else {
            let why = "expected sqlite://PATH or postgres://...";
            return Err(Error::storage("database", why));
        };
        let connections = match backend {
            Backend::Sqlite => 1,
            Backend::Postgres => POSTGRES_CONNECTIONS_MAX,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(connections)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("PRAGMA journal_mode=WAL").await?;
                        conn.execute("PRAGMA synchronous=FULL").await?;
                        conn.execute("PRAGMA foreign_keys=ON").await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(|e| Error::storage("database", e))?;
        let store = Store { pool, backend };
        store.migrate().await?;
        Ok(store)
    }

    /// The backend in use.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// SQLite's `synchronous` setting (2 = FULL), to let tests check durability is configured.
    ///
    /// # Errors
    /// `Storage` when the query fails or the backend is not SQLite.
    pub async fn sqlite_synchronous(&self) -> Result<i64, Error> {
        let row = sqlx::query("PRAGMA synchronous")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| Error::storage("database", e))?;
        row.try_get::<i64, _>(0).map_err(|e| Error::storage("database", e))
    }

    async fn migrate(&self) -> Result<(), Error> {
        let fail = |e: sqlx::Error| Error::storage("migrations", e);
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)")
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        for (version, sql) in MIGRATIONS {
            let mut tx = self.pool.begin().await.map_err(fail)?;
            let done = sqlx::query("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await
                .map_err(fail)?;
            if done.is_some() {
                continue;
            }
            for statement in sql.split(';').filter(|s| s.lines().any(is_code)) {
                sqlx::query(statement).execute(&mut *tx).await.map_err(fail)?;
            }
            sqlx::query("INSERT INTO schema_migrations (version) VALUES ($1)")
                .bind(version)
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
            tx.commit().await.map_err(fail)?;
        }
        Ok(())
    }

    /// The stored answer for `key`, if a write with it was committed.
    ///
    /// # Errors
    /// `Storage` when the query fails.
    pub async fn replay(&self, key: &str) -> Result<Option<Receipt>, Error> {
        let q = "SELECT request, status, response, created_at FROM idempotency WHERE key = $1";
        let row = sqlx::query(q)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| Error::storage("Idempotency-Key", e))?;
        let Some(row) = row else { return Ok(None) };
        let get = |e: sqlx::Error| Error::storage("Idempotency-Key", e);
        let status: i64 = row.try_get("status").map_err(get)?;
        Ok(Some(Receipt {
            key: key.to_owned(),
            request: row.try_get("request").map_err(get)?,
            status: u16::try_from(status).unwrap_or(500),
            response: row.try_get("response").map_err(get)?,
            created_at: row.try_get("created_at").map_err(get)?,
        }))
    }

    /// Applies `ops` and stores `receipt` in one transaction, committed before returning.
    ///
    /// # Errors
    /// `Storage` when any statement or the commit fails; nothing is then stored.
    pub async fn commit(&self, ops: &[Op], receipt: Option<&Receipt>) -> Result<(), Error> {
        let fail = |e: sqlx::Error| Error::storage("database", e);
        let mut tx = self.pool.begin().await.map_err(fail)?;
        for op in ops {
            apply(&mut tx, op).await.map_err(fail)?;
        }
        if let Some(r) = receipt {
            sqlx::query(
                "INSERT INTO idempotency (key, request, status, response, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&r.key)
            .bind(&r.request)
            .bind(i64::from(r.status))
            .bind(&r.response)
            .bind(r.created_at)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
            sqlx::query("DELETE FROM idempotency WHERE created_at < $1")
                .bind(r.created_at - RECEIPTS_KEPT_SECS)
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
        }
        tx.commit().await.map_err(fail)
    }

    /// Backtest summaries stored (every run and methodology kept), to check the retention.
    ///
    /// # Errors
    /// `Storage` when the query fails.
    pub async fn backtest_rows(&self) -> Result<i64, Error> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM backtests")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| Error::storage("backtests", e))?;
        row.try_get("n").map_err(|e| Error::storage("backtests", e))
    }

    /// The whole audit log, oldest first, for `ballast audit verify`.
    ///
    /// # Errors
    /// `Storage` when the query fails.
    pub async fn audit_log(&self) -> Result<Vec<crate::audit::Entry>, Error> {
        let fail = |e: sqlx::Error| Error::storage("audit_log", e);
        let q = "SELECT seq, at, actor, action, subject, digest, prev, hash FROM audit_log \
                 ORDER BY seq";
        let mut entries = Vec::new();
        for row in sqlx::query(q).fetch_all(&self.pool).await.map_err(fail)? {
            let note = crate::audit::Note {
                actor: row.try_get("actor").map_err(fail)?,
                action: row.try_get("action").map_err(fail)?,
                subject: row.try_get("subject").map_err(fail)?,
                digest: row.try_get("digest").map_err(fail)?,
            };
            entries.push(crate::audit::Entry {
                seq: row.try_get("seq").map_err(fail)?,
                at: row.try_get("at").map_err(fail)?,
                note,
                prev: row.try_get("prev").map_err(fail)?,
                hash: row.try_get("hash").map_err(fail)?,
            });
        }
        Ok(entries)
    }

    /// Reads everything stored.
    ///
    /// # Errors
    /// `Storage` when a query fails.
    pub async fn load(&self) -> Result<Loaded, Error> {
        let fail = |e: sqlx::Error| Error::storage("database", e);
        let mut loaded = Loaded::default();
        let q = "SELECT hash, name, version, toml FROM methodologies ORDER BY hash";
        for row in sqlx::query(q).fetch_all(&self.pool).await.map_err(fail)? {
            loaded.methodologies.push((
                row.try_get("hash").map_err(fail)?,
                row.try_get("name").map_err(fail)?,
                row.try_get("version").map_err(fail)?,
                row.try_get("toml").map_err(fail)?,
            ));
        }
        let q = "SELECT id, methodology FROM accounts ORDER BY id";
        for row in sqlx::query(q).fetch_all(&self.pool).await.map_err(fail)? {
            loaded.accounts.push((
                row.try_get("id").map_err(fail)?,
                row.try_get("methodology").map_err(fail)?,
            ));
        }
        let q = "SELECT account, instrument, size, entry, funding FROM positions \
                 ORDER BY account, instrument";
        for row in sqlx::query(q).fetch_all(&self.pool).await.map_err(fail)? {
            loaded.positions.push((
                row.try_get("account").map_err(fail)?,
                row.try_get("instrument").map_err(fail)?,
                row.try_get("size").map_err(fail)?,
                row.try_get("entry").map_err(fail)?,
                row.try_get("funding").map_err(fail)?,
            ));
        }
        let q = "SELECT account, currency, amount FROM balances ORDER BY account, currency";
        for row in sqlx::query(q).fetch_all(&self.pool).await.map_err(fail)? {
            loaded.balances.push((
                row.try_get("account").map_err(fail)?,
                row.try_get("currency").map_err(fail)?,
                row.try_get("amount").map_err(fail)?,
            ));
        }
        let q = "SELECT id, secret_hash, role, accounts, expires_at, revoked, label \
                 FROM api_keys ORDER BY id";
        for row in sqlx::query(q).fetch_all(&self.pool).await.map_err(fail)? {
            loaded.keys.push((
                row.try_get("id").map_err(fail)?,
                row.try_get("secret_hash").map_err(fail)?,
                row.try_get("role").map_err(fail)?,
                row.try_get("accounts").map_err(fail)?,
                row.try_get("expires_at").map_err(fail)?,
                row.try_get("revoked").map_err(fail)?,
                row.try_get("label").map_err(fail)?,
            ));
        }
        let q = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1";
        if let Some(row) = sqlx::query(q).fetch_optional(&self.pool).await.map_err(fail)? {
            loaded.audit_head =
                Some((row.try_get("seq").map_err(fail)?, row.try_get("hash").map_err(fail)?));
        }
        self.load_backtests(&mut loaded).await?;
        let q = "SELECT seq, document FROM markets ORDER BY seq DESC LIMIT 1";
        if let Some(row) = sqlx::query(q).fetch_optional(&self.pool).await.map_err(fail)? {
            loaded.market =
                Some((row.try_get("seq").map_err(fail)?, row.try_get("document").map_err(fail)?));
        }
        let q = "SELECT document FROM venue_book WHERE id = 1";
        if let Some(row) = sqlx::query(q).fetch_optional(&self.pool).await.map_err(fail)? {
            loaded.venue_book = Some(row.try_get("document").map_err(fail)?);
        }
        Ok(loaded)
    }

    /// The latest backtest summary of each methodology, and the last run's number.
    async fn load_backtests(&self, loaded: &mut Loaded) -> Result<(), Error> {
        let fail = |e: sqlx::Error| Error::storage("backtests", e);
        let q = "SELECT run, methodology, summary FROM backtests b WHERE run = \
                 (SELECT MAX(run) FROM backtests l WHERE l.methodology = b.methodology) \
                 ORDER BY methodology";
        for row in sqlx::query(q).fetch_all(&self.pool).await.map_err(fail)? {
            let run: i64 = row.try_get("run").map_err(fail)?;
            loaded.backtest_run = loaded.backtest_run.max(Some(run));
            let (methodology, summary) =
                (row.try_get("methodology").map_err(fail)?, row.try_get("summary").map_err(fail)?);
            loaded.backtests.push((run, methodology, summary));
        }
        Ok(())
    }
}

/// Whether a line of a migration holds SQL rather than only a comment or blanks.
fn is_code(line: &str) -> bool {
    let line = line.trim();
    !line.is_empty() && !line.starts_with("--")
}

/// A query with its arguments bound.
type Bound<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

async fn apply(tx: &mut sqlx::Transaction<'_, sqlx::Any>, op: &Op) -> Result<(), sqlx::Error> {
    let query = match op {
        Op::DeleteAccount { .. } | Op::AccountMethodology { .. } => {
            return account_op(tx, op).await;
        }
        Op::Backtest { .. } => return backtest_op(tx, op).await,
        Op::Methodology { hash, name, version, toml } => sqlx::query(
            "INSERT INTO methodologies (hash, name, version, toml) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (hash) DO NOTHING",
        )
        .bind(hash)
        .bind(name)
        .bind(version)
        .bind(toml),
        Op::Account { id, methodology } => {
            sqlx::query("INSERT INTO accounts (id, methodology) VALUES ($1, $2)")
                .bind(id)
                .bind(methodology)
        }
        Op::Position { account, instrument, size, .. } if *size == 0.0 => {
            sqlx::query("DELETE FROM positions WHERE account = $1 AND instrument = $2")
                .bind(account)
                .bind(instrument)
        }
        Op::Position { account, instrument, size, entry, funding } => {
            let mut query =
                sqlx::query(position_upsert(entry.is_some(), funding.is_some())).bind(account);
            query = query.bind(instrument).bind(*size);
            for value in [entry, funding].into_iter().flatten() {
                query = query.bind(*value);
            }
            query
        }
        Op::Balance { account, currency, amount: None } => {
            sqlx::query("DELETE FROM balances WHERE account = $1 AND currency = $2")
                .bind(account)
                .bind(currency)
        }
        Op::Balance { account, currency, amount: Some(amount) } => sqlx::query(
            "INSERT INTO balances (account, currency, amount) VALUES ($1, $2, $3) \
             ON CONFLICT (account, currency) DO UPDATE SET amount = excluded.amount",
        )
        .bind(account)
        .bind(currency)
        .bind(amount),
        Op::Key { .. } | Op::RevokeKey { .. } | Op::Audit(_) => key_query(op),
        // Older pushes are thinned by `Store::prune`, on the housekeeping task's schedule.
        Op::Market { seq, valuation, document, received_at, indices } => sqlx::query(
            "INSERT INTO markets (seq, valuation, document, received_at, indices) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(*seq)
        .bind(valuation)
        .bind(document)
        .bind(*received_at)
        .bind(indices),
        Op::VenueBook { document } => sqlx::query(
            "INSERT INTO venue_book (id, document) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET document = excluded.document",
        )
        .bind(document),
    };
    query.execute(&mut **tx).await.map(|_| ())
}

/// The upsert of a position with an entry price and a funding index where given. A NULL is
/// written in the SQL, not bound: the Any driver sends a bound `None::<f64>` to PostgreSQL in a
/// binary format it refuses.
fn position_upsert(entry: bool, funding: bool) -> &'static str {
    match (entry, funding) {
        (false, false) => {
            "INSERT INTO positions (account, instrument, size, entry, funding) \
             VALUES ($1, $2, $3, NULL, NULL) ON CONFLICT (account, instrument) DO UPDATE \
             SET size = excluded.size, entry = NULL, funding = NULL"
        }
        (true, false) => {
            "INSERT INTO positions (account, instrument, size, entry, funding) \
             VALUES ($1, $2, $3, $4, NULL) ON CONFLICT (account, instrument) DO UPDATE \
             SET size = excluded.size, entry = excluded.entry, funding = NULL"
        }
        (false, true) => {
            "INSERT INTO positions (account, instrument, size, entry, funding) \
             VALUES ($1, $2, $3, NULL, $4) ON CONFLICT (account, instrument) DO UPDATE \
             SET size = excluded.size, entry = NULL, funding = excluded.funding"
        }
        (true, true) => {
            "INSERT INTO positions (account, instrument, size, entry, funding) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account, instrument) DO UPDATE \
             SET size = excluded.size, entry = excluded.entry, funding = excluded.funding"
        }
    }
}

/// Deleting an account (its positions and balances first) or moving it to a methodology.
async fn account_op(tx: &mut sqlx::Transaction<'_, sqlx::Any>, op: &Op) -> Result<(), sqlx::Error> {
    match op {
        Op::DeleteAccount { id } => {
            for table in ["positions", "balances"] {
                let q = format!("DELETE FROM {table} WHERE account = $1");
                sqlx::query(&q).bind(id).execute(&mut **tx).await?;
            }
            sqlx::query("DELETE FROM accounts WHERE id = $1").bind(id).execute(&mut **tx).await?;
        }
        Op::AccountMethodology { id, methodology } => {
            sqlx::query("UPDATE accounts SET methodology = $2 WHERE id = $1")
                .bind(id)
                .bind(methodology)
                .execute(&mut **tx)
                .await?;
        }
        _ => panic!("Invariant: account_op is given account operations only"),
    }
    Ok(())
}

/// Stores a backtest summary and prunes the runs past [`BACKTEST_RUNS_KEPT_COUNT`], except
/// the latest of each methodology.
async fn backtest_op(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    op: &Op,
) -> Result<(), sqlx::Error> {
    let Op::Backtest { run, methodology, name, summary } = op else {
        panic!("Invariant: backtest_op is given backtest operations only")
    };
    sqlx::query("INSERT INTO backtests (run, methodology, name, summary) VALUES ($1, $2, $3, $4)")
        .bind(*run)
        .bind(methodology)
        .bind(name)
        .bind(summary)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "DELETE FROM backtests WHERE run <= $1 AND run < \
         (SELECT MAX(l.run) FROM backtests l WHERE l.methodology = backtests.methodology)",
    )
    .bind(run - BACKTEST_RUNS_KEPT_COUNT)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The queries of the access and audit operations.
fn key_query(op: &Op) -> Bound<'_> {
    match op {
        Op::Audit(entry) => sqlx::query(
            "INSERT INTO audit_log (seq, at, actor, action, subject, digest, prev, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(entry.seq)
        .bind(entry.at)
        .bind(&entry.note.actor)
        .bind(&entry.note.action)
        .bind(&entry.note.subject)
        .bind(&entry.note.digest)
        .bind(&entry.prev)
        .bind(&entry.hash),
        Op::Key { id, secret_hash, role, accounts, expires_at, label } => sqlx::query(
            "INSERT INTO api_keys (id, secret_hash, role, accounts, expires_at, revoked, label) \
             VALUES ($1, $2, $3, $4, $5, 0, $6)",
        )
        .bind(id)
        .bind(secret_hash)
        .bind(role)
        .bind(accounts)
        .bind(*expires_at)
        .bind(label),
        Op::RevokeKey { id } => {
            sqlx::query("UPDATE api_keys SET revoked = 1 WHERE id = $1").bind(id)
        }
        _ => panic!("Invariant: key_query is given key and audit operations only"),
    }
}

/// Creates (or re-creates, empty) the PostgreSQL database `name` on the server of `admin_url`
/// and returns its URL: for tests and first installs, which need a database of their own.
///
/// # Errors
/// `Invalid` for a name that is not a plain identifier; `Storage` when the server refuses.
pub async fn create_postgres_database(admin_url: &str, name: &str) -> Result<String, Error> {
    if name.is_empty()
        || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(Error::invalid("name", "lower-case letters, digits and _ only"));
    }
    install_default_drivers();
    let fail = |e: sqlx::Error| Error::storage("database", e);
    let pool = AnyPoolOptions::new().max_connections(1).connect(admin_url).await.map_err(fail)?;
    pool.execute(format!("DROP DATABASE IF EXISTS {name}").as_str()).await.map_err(fail)?;
    pool.execute(format!("CREATE DATABASE {name}").as_str()).await.map_err(fail)?;
    pool.close().await;
    let (base, query) = admin_url.split_once('?').map_or((admin_url, None), |(b, q)| (b, Some(q)));
    let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
    Ok(match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    })
}
