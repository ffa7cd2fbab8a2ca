//! The running service: the store, the model, the published margin state, and the write path.
//!
//! **Invariants.** Writes are serialised by one mutex, full recomputes by another (so a market
//! push is acknowledged while the previous recompute runs). A write is validated against the model,
//! committed to the database together with its idempotency receipt, and only then applied to the
//! model and published; the 2xx is sent after all of it. A replayed key returns the stored
//! receipt without touching anything; a key reused for a different request is refused.
//!
//! A change of one existing account is published at once, on the published state, without
//! waiting for a recompute in flight (which takes tens of milliseconds at 100,000 accounts): the
//! recompute logs every account published while it runs ([`Pending`]) and re-margins those
//! accounts on its own result before it replaces the published state, under the same lock, so
//! neither publication loses the other's change.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use sha3::{Digest, Sha3_256};
use tokio::sync::{Mutex, broadcast, watch};

use crate::audit::Note;
use crate::compute::{self, Alert, LiveState};
use crate::error::{Error, ErrorKind};
use crate::model::{MarketEntry, MethodologyEntry, Model};
use crate::store::{AlertRow, Op, Receipt, Store};

/// Events sent to every WebSocket subscriber (each keeps only what it asked for).
#[derive(Clone)]
pub enum Event {
    /// All accounts were recomputed on a new market.
    Recomputed {
        /// The new state.
        published: Arc<LiveState>,
        /// Time spent recomputing.
        seconds: f64,
        /// Time from the market's acknowledgement to the publication.
        lag_seconds: f64,
        /// Status changes.
        alerts: Arc<Vec<Alert>>,
    },
    /// One account changed through the API.
    AccountChanged {
        /// The new state.
        published: Arc<LiveState>,
        /// The account.
        account: String,
        /// Status changes.
        alerts: Arc<Vec<Alert>>,
    },
}

/// Queued events per subscriber before a slow one starts missing some.
const EVENTS_QUEUED_MAX: usize = 256;

/// The answer to a write: status and JSON body, as stored in the receipt.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// JSON body.
    pub body: String,
}

/// A validated write, ready to commit.
pub struct Plan {
    /// Operations of the transaction.
    pub ops: Vec<Op>,
    /// The answer to send once committed.
    pub answer: Answer,
    /// A new methodology entry to add to the model.
    pub methodology: Option<Arc<MethodologyEntry>>,
    /// A new market to make current.
    pub market: Option<MarketEntry>,
    /// What to republish once applied.
    pub scope: Scope,
}

/// What a write changes in the published state.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// Nothing.
    Nothing,
    /// The accounts of one methodology (and which account).
    Account {
        /// Methodology hash.
        methodology: String,
        /// Account id.
        account: String,
    },
    /// A methodology was added.
    Methodologies,
    /// A market was pushed (its sequence number).
    Market(i64),
}

/// The accounts published while a recompute runs: (methodology hash, account id) in order;
/// `None` while none runs. Its mutex is the one under which the published state is replaced.
type Pending = Option<Vec<(String, String)>>;

/// The service.
pub struct Service {
    store: Store,
    writer: Mutex<()>,
    publisher: Mutex<()>,
    pending: std::sync::Mutex<Pending>,
    model: RwLock<Model>,
    published: RwLock<Arc<LiveState>>,
    generation: AtomicU64,
    events: broadcast::Sender<Event>,
    markets: watch::Sender<Option<(i64, Instant)>>,
    /// One backtest at a time: a run takes seconds of every core.
    backtests: tokio::sync::Semaphore,
    /// Status changes published and not yet in the alert log (the housekeeping task stores
    /// them, in order, within a second).
    unlogged: std::sync::Mutex<Vec<AlertRow>>,
    /// The per-position baseline shown beside portfolio margin.
    pub standard: margin::standard::StandardMargin,
}

impl Service {
    /// A service over `store`, with the model loaded from it and margin computed once.
    ///
    /// # Errors
    /// `Storage` when the stored state cannot be read back.
    pub async fn load(store: Store) -> Result<Arc<Service>, Error> {
        let model = Model::from_loaded(store.load().await?)?;
        let (events, _) = broadcast::channel(EVENTS_QUEUED_MAX);
        let (markets, _) = watch::channel(None);
        // The per-position baseline the margin reports compare with.
        let standard = match formats::bundled::bundled("deribit-standard") {
            Ok(formats::methodology::Profile::PerPosition(s)) => s,
            Ok(formats::methodology::Profile::Portfolio(_)) => {
                panic!("Invariant: the bundled deribit-standard is a per-position baseline")
            }
            Err(e) => return Err(Error::storage("deribit-standard", e)),
        };
        let service = Arc::new(Service {
            store,
            writer: Mutex::new(()),
            publisher: Mutex::new(()),
            pending: std::sync::Mutex::new(None),
            model: RwLock::new(model),
            published: RwLock::new(Arc::new(LiveState::default())),
            generation: AtomicU64::new(0),
            events,
            markets,
            backtests: tokio::sync::Semaphore::new(1),
            unlogged: std::sync::Mutex::new(Vec::new()),
            standard,
        });
        let worker = Arc::clone(&service);
        tokio::task::spawn_blocking(move || worker.republish(&Scope::Methodologies))
            .await
            .map_err(|e| Error::storage("recompute", e))?;
        Ok(service)
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The model, read-locked (briefly: writers wait).
    pub fn model(&self) -> RwLockReadGuard<'_, Model> {
        self.model.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current published state.
    #[must_use]
    pub fn published(&self) -> Arc<LiveState> {
        Arc::clone(&self.published.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// A receiver of live events.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// A receiver of market pushes, for the recompute task.
    #[must_use]
    pub fn market_pushes(&self) -> watch::Receiver<Option<(i64, Instant)>> {
        self.markets.subscribe()
    }

    /// Runs a write: replays a committed key, or validates with `plan`, commits, applies and
    /// publishes. `key` is `(Idempotency-Key, request fingerprint)`.
    ///
    /// # Errors
    /// `Conflict` for a key reused with another request; the plan's error; `Storage`.
    pub async fn write(
        self: &Arc<Self>,
        key: Option<(String, String)>,
        plan: impl FnOnce(&Model) -> Result<Plan, Error>,
    ) -> Result<Answer, Error> {
        self.write_noted(key, None, plan).await
    }

    /// [`Service::write`], recording the change in the audit log (in the same transaction) when
    /// `note` is given.
    ///
    /// # Errors
    /// As [`Service::write`].
    pub async fn write_noted(
        self: &Arc<Self>,
        key: Option<(String, String)>,
        note: Option<Note>,
        plan: impl FnOnce(&Model) -> Result<Plan, Error>,
    ) -> Result<Answer, Error> {
        let _serial = self.writer.lock().await;
        if let Some((key, request)) = &key
            && let Some(receipt) = self.store.replay(key).await?
        {
            if &receipt.request != request {
                let why = "reused for a different request";
                return Err(Error::new("Idempotency-Key", ErrorKind::Conflict(why.into())));
            }
            let status = StatusCode::from_u16(receipt.status).unwrap_or(StatusCode::OK);
            return Ok(Answer { status, body: receipt.response });
        }
        let now = i64::try_from(unix_secs()).unwrap_or(i64::MAX);
        let started = Instant::now();
        let mut plan = plan(&self.model())?;
        let planned = Instant::now();
        if let Some(note) = note {
            let model = self.model();
            let (seq, hash) = match &model.audit_head {
                Some((seq, hash)) => (*seq, hash.as_str()),
                None => (0, crate::audit::GENESIS),
            };
            plan.ops.push(Op::Audit(crate::audit::Entry::next(seq, hash, now, note)));
        }
        let receipt = key.map(|(key, request)| Receipt {
            key,
            request,
            status: plan.answer.status.as_u16(),
            response: plan.answer.body.clone(),
            created_at: now,
        });
        self.store.commit(&plan.ops, receipt.as_ref()).await?;
        let committed = Instant::now();
        self.model.write().unwrap_or_else(PoisonError::into_inner).apply(
            &plan.ops,
            plan.methodology.as_ref(),
            plan.market.clone(),
        );
        self.publish_write(&plan.scope).await?;
        crate::metrics::wrote(&plan.scope, [started, planned, committed, Instant::now()]);
        Ok(plan.answer)
    }

    /// Publishes what a committed write changed: a market push wakes the recompute task; a
    /// change of one account is re-margined alone at once, or its group rebuilt after any
    /// recompute in flight; anything else is recomputed after it.
    async fn publish_write(self: &Arc<Self>, scope: &Scope) -> Result<(), Error> {
        let republish = |scope: Scope| {
            let worker = Arc::clone(self);
            async move {
                let _publishing = worker.publisher.lock().await;
                let inner = Arc::clone(&worker);
                tokio::task::spawn_blocking(move || inner.republish(&scope))
                    .await
                    .map_err(|e| Error::storage("recompute", e))
            }
        };
        match scope {
            Scope::Market(seq) => {
                self.markets.send_replace(Some((*seq, Instant::now())));
            }
            Scope::Account { methodology, account } => {
                let worker = Arc::clone(self);
                let (hash, changed) = (methodology.clone(), account.clone());
                let alone =
                    tokio::task::spawn_blocking(move || worker.publish_alone(&hash, &changed))
                        .await
                        .map_err(|e| Error::storage("recompute", e))?;
                let (published, alerts) = match alone {
                    Some(done) => done,
                    // A new account or a newly held instrument rebuilds the group.
                    None => republish(scope.clone()).await?,
                };
                self.log_alerts(&published, &alerts);
                let (account, alerts) = (account.clone(), Arc::new(alerts));
                let _ = self.events.send(Event::AccountChanged { published, account, alerts });
            }
            Scope::Methodologies => {
                republish(Scope::Methodologies).await?;
            }
            Scope::Nothing => {}
        }
        Ok(())
    }

    /// Recomputes every group (after a market push, with `Scope::Market`, or a change of the
    /// accounts or methodologies; only the account's group for `Scope::Account`) and publishes
    /// it; returns the new state and the status changes. Callers hold the publisher mutex (or
    /// run before the service is shared); the model is read from a snapshot, so writes (market
    /// pushes included) are acknowledged while a recompute runs, and the accounts published
    /// meanwhile are re-margined on the result before it is published.
    pub fn republish(&self, scope: &Scope) -> (Arc<LiveState>, Vec<Alert>) {
        // Logging starts before the snapshot: every change the snapshot lacks is logged.
        *self.pending.lock().unwrap_or_else(PoisonError::into_inner) = Some(Vec::new());
        let model = self.model().clone();
        let previous = self.published();
        let mut next = match scope {
            Scope::Account { methodology, account } => {
                compute::publish_account(&model, &previous, methodology, account, 0)
            }
            Scope::Market(_) => compute::publish_all(&model, &previous, false, 0),
            Scope::Methodologies | Scope::Nothing => {
                compute::publish_all(&model, &previous, true, 0)
            }
        };
        drop(model);
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let changed = pending.take().unwrap_or_default();
        if !changed.is_empty() {
            let model = self.model().clone();
            let unique: std::collections::BTreeSet<(String, String)> =
                changed.into_iter().collect();
            next = compute::publish_accounts(&model, &next, &unique, 0);
        }
        let current = self.published();
        let alerts = compute::alerts(&current, &next);
        let next = self.publish(next);
        drop(pending);
        (next, alerts)
    }

    /// Publishes a change of account `id` of methodology `hash` re-margined alone on the
    /// published state, at once (logged for a recompute in flight); returns the new state and
    /// the account's status change, if any, or `None` when the group must be rebuilt.
    fn publish_alone(&self, hash: &str, id: &str) -> Option<(Arc<LiveState>, Vec<Alert>)> {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let model = self.model().clone();
        let previous = self.published();
        let next = compute::publish_alone(&model, &previous, hash, id, 0)?;
        drop(model);
        if let Some(log) = pending.as_mut() {
            log.push((hash.to_owned(), id.to_owned()));
        }
        let alerts = compute::account_alerts(&previous, &next, id);
        let next = self.publish(next);
        drop(pending);
        Some((next, alerts))
    }

    /// Numbers `next` (generations increase with every publication) and makes it the published
    /// state. Callers hold the pending lock.
    fn publish(&self, mut next: LiveState) -> Arc<LiveState> {
        next.generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        crate::metrics::published(&next);
        let next = Arc::new(next);
        *self.published.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&next);
        next
    }

    /// Queues `alerts` of publication `published` for the alert log.
    fn log_alerts(&self, published: &LiveState, alerts: &[Alert]) {
        if alerts.is_empty() {
            return;
        }
        let at = i64::try_from(unix_secs()).unwrap_or(i64::MAX);
        let rows = crate::history::alert_rows(alerts, at, published.market_seq);
        self.unlogged.lock().unwrap_or_else(PoisonError::into_inner).extend(rows);
    }

    /// The alerts queued for the log, oldest first; `put_back` returns them when they could
    /// not be stored, ahead of any queued since.
    pub fn take_alerts(&self) -> Vec<AlertRow> {
        std::mem::take(&mut *self.unlogged.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Returns alerts taken by [`Service::take_alerts`] that could not be stored.
    pub fn put_back_alerts(&self, mut rows: Vec<AlertRow>) {
        let mut queued = self.unlogged.lock().unwrap_or_else(PoisonError::into_inner);
        rows.append(&mut queued);
        *queued = rows;
    }

    /// The permit a backtest holds while it runs.
    pub fn backtest_slot(&self) -> &tokio::sync::Semaphore {
        &self.backtests
    }

    /// Recomputes every account on the newest market (the recompute task's step).
    ///
    /// # Errors
    /// `Storage` when the recompute task panicked.
    pub async fn recompute_market(self: &Arc<Self>, received: Instant) -> Result<(), Error> {
        let _publishing = self.publisher.lock().await;
        let started = Instant::now();
        let worker = Arc::clone(self);
        let seq = self.model().market.as_ref().map_or(0, |m| m.seq);
        let (published, alerts) =
            tokio::task::spawn_blocking(move || worker.republish(&Scope::Market(seq)))
                .await
                .map_err(|e| Error::storage("recompute", e))?;
        let seconds = started.elapsed().as_secs_f64();
        let lag_seconds = received.elapsed().as_secs_f64();
        crate::metrics::recomputed(seconds, lag_seconds);
        self.log_alerts(&published, &alerts);
        let alerts = Arc::new(alerts);
        let _ = self.events.send(Event::Recomputed { published, seconds, lag_seconds, alerts });
        Ok(())
    }
}

/// The system clock in Unix seconds (0 before 1970): the time of receipts, audit entries, key
/// expiries and their checks.
pub(crate) fn unix_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Fingerprint of a request: SHA3-256 of method, path and body, hex.
#[must_use]
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut hasher = Sha3_256::new();
    hasher.update(method.as_bytes());
    hasher.update(b" ");
    hasher.update(path.as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    crate::auth::hex(&hasher.finalize())
}
