//! The in-memory model: what the database holds, parsed into validated domain values.
//!
//! The model changes only after the database has committed the change, so it is always a
//! function of the stored state. Validation happens before the commit, against a copy: a
//! refused write changes neither.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use basics::{Currency, Money, Rounding};
use formats::market::MarketDocument;
use formats::methodology::{Profile, hash_hex};
use formats::venues::VenueBookDocument;
use margin::Engine;
use market::MarketSnapshot;
use product::{Instrument, Portfolio, Position};

use crate::auth::{KeyRecord, Role};
use crate::backtests::BacktestView;
use crate::error::Error;
use crate::store::{Loaded, Op};

/// A stored methodology and its engine.
#[derive(Debug)]
pub struct MethodologyEntry {
    /// Canonical hash, hex: the identity an account refers to.
    pub hash: String,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// The TOML text as received.
    pub toml: String,
    /// The engine built on it.
    pub engine: Engine,
}

impl MethodologyEntry {
    /// Parses and validates a methodology file. Only portfolio methodologies can margin an
    /// account; per-position ones are baselines.
    ///
    /// # Errors
    /// The parser's or the engine's error, located in the document.
    pub fn parse(toml: &str) -> Result<MethodologyEntry, Error> {
        let profile = Profile::from_toml(toml)?;
        let hash = hash_hex(&profile.hash());
        let (name, version) = (profile.name().to_owned(), profile.version().to_owned());
        let Profile::Portfolio(methodology) = profile else {
            let why = "a per-position methodology cannot margin an account";
            return Err(Error::invalid("toml.kind", why));
        };
        let engine = Engine::new(*methodology)?;
        Ok(MethodologyEntry { hash, name, version, toml: toml.to_owned(), engine })
    }

    /// `name@version`.
    #[must_use]
    pub fn label(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

/// One account: its methodology, positions and balances.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccountRecord {
    /// Hash of its methodology.
    pub methodology: String,
    /// Positions by instrument (sizes never zero), with their entry prices.
    pub positions: BTreeMap<Instrument, Position>,
    /// Balances; never zero.
    pub balances: BTreeMap<Currency, Money>,
}

impl AccountRecord {
    /// The account as a validated portfolio.
    ///
    /// # Errors
    /// `Invalid` when the positions or balances break a portfolio limit.
    pub fn portfolio(&self) -> Result<Portfolio, Error> {
        let positions = self.positions.values().copied().collect();
        let balances: Vec<Money> = self.balances.values().copied().collect();
        Portfolio::new(positions, &balances)
            .map_err(|e| Error::invalid(e.field.clone(), e.kind.to_string()))
    }
}

/// The current market.
#[derive(Debug, Clone)]
pub struct MarketEntry {
    /// Sequence number, increasing with every push.
    pub seq: i64,
    /// The snapshot.
    pub snapshot: Arc<MarketSnapshot>,
    /// The document, canonical JSON.
    pub document: Arc<String>,
}

/// Everything stored, in memory.
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// Methodologies by hash.
    pub methodologies: BTreeMap<String, Arc<MethodologyEntry>>,
    /// Accounts by id, in a persistent ordered map: a recompute works on a snapshot of the model
    /// taken in O(1), and a write while a snapshot is alive copies only the path to the account
    /// it changes (O(log accounts)), not the map.
    pub accounts: rpds::RedBlackTreeMapSync<String, AccountRecord>,
    /// The newest market.
    pub market: Option<MarketEntry>,
    /// API keys by id (revoked ones kept: a revoked id is never reused).
    pub keys: BTreeMap<String, KeyRecord>,
    /// The audit log's last entry, (seq, hash): what the next entry links to; `None` while the
    /// log is empty.
    pub audit_head: Option<(i64, String)>,
    /// The latest backtest of each methodology, by methodology hash.
    pub backtests: BTreeMap<String, Arc<BacktestView>>,
    /// The last backtest run's number (0 before the first).
    pub backtest_run: i64,
    /// The stored cross-venue book, netted on each read of `GET /api/netting`.
    pub venue_book: Option<Arc<VenueBookDocument>>,
}

impl Model {
    /// Rebuilds the model from the database's contents.
    ///
    /// # Errors
    /// `Storage` when a stored value no longer parses (a corrupted or foreign database).
    pub fn from_loaded(loaded: Loaded) -> Result<Model, Error> {
        let corrupt = |what: &str, e: Error| Error::storage(what.to_owned(), e);
        let mut model = Model::default();
        for (hash, _, _, toml) in loaded.methodologies {
            let entry = MethodologyEntry::parse(&toml).map_err(|e| corrupt("methodologies", e))?;
            if entry.hash != hash {
                return Err(Error::storage("methodologies", format!("hash mismatch for {hash}")));
            }
            model.methodologies.insert(hash, Arc::new(entry));
        }
        let accounts = &mut model.accounts;
        for (id, methodology) in loaded.accounts {
            let record = AccountRecord { methodology, ..AccountRecord::default() };
            accounts.insert_mut(id, record);
        }
        for (account, instrument, size, entry, funding) in loaded.positions {
            let instrument = Instrument::parse(&instrument)
                .map_err(|e| Error::storage("positions", e.to_string()))?;
            if let Some(record) = accounts.get_mut(&account) {
                let position = Position { instrument, size, entry, funding };
                record.positions.insert(instrument, position);
            }
        }
        model.audit_head = loaded.audit_head;
        for (id, secret_hash, role, accounts, expires_at, revoked, label) in loaded.keys {
            let role = Role::parse("role", &role).map_err(|e| corrupt("api_keys", e))?;
            let record = key_record(id, secret_hash, role, &accounts, expires_at, label);
            model.keys.insert(record.id.clone(), KeyRecord { revoked: revoked != 0, ..record });
        }
        for (account, currency, amount) in loaded.balances {
            let money = parse_money(&currency, &amount).map_err(|e| corrupt("balances", e))?;
            if let Some(record) = accounts.get_mut(&account) {
                record.balances.insert(money.currency(), money);
            }
        }
        for (_, methodology, summary) in loaded.backtests {
            let view: BacktestView = serde_json::from_str(&summary)
                .map_err(|e| Error::storage("backtests", e.to_string()))?;
            model.backtests.insert(methodology, Arc::new(view));
        }
        model.backtest_run = loaded.backtest_run.unwrap_or(0);
        if let Some((seq, document)) = loaded.market {
            let snapshot = MarketDocument::from_json(&document)
                .and_then(|d| d.to_snapshot())
                .map_err(|e| Error::storage("markets", e))?;
            let (snapshot, document) = (Arc::new(snapshot), Arc::new(document));
            model.market = Some(MarketEntry { seq, snapshot, document });
        }
        if let Some(document) = loaded.venue_book {
            let book = VenueBookDocument::from_json(&document)
                .map_err(|e| Error::storage("venue_book", e))?;
            model.venue_book = Some(Arc::new(book));
        }
        Ok(model)
    }

    /// The methodology named by `reference`: a hash, `name@version`, or a name when exactly
    /// one stored methodology has it.
    ///
    /// # Errors
    /// `Invalid` naming `field` when none or several match.
    pub fn find_methodology(
        &self,
        field: &str,
        reference: &str,
    ) -> Result<Arc<MethodologyEntry>, Error> {
        if let Some(entry) = self.methodologies.get(reference) {
            return Ok(Arc::clone(entry));
        }
        let matches: Vec<_> = self
            .methodologies
            .values()
            .filter(|m| m.name == reference || m.label() == reference)
            .collect();
        match matches.as_slice() {
            [one] => Ok(Arc::clone(one)),
            [] => Err(Error::invalid(field, format!("no stored methodology {reference:?}"))),
            _ => Err(Error::invalid(field, format!("{reference:?} is ambiguous: use the hash"))),
        }
    }

    /// Applies committed operations; `methodology` and `market` carry the parsed values of
    /// the `Methodology` and `Market` operations. Every operation was validated against this
    /// model before it was committed, so one that does not apply is a broken invariant, never
    /// an operation to skip quietly.
    pub fn apply(
        &mut self,
        ops: &[Op],
        methodology: Option<&Arc<MethodologyEntry>>,
        market: Option<MarketEntry>,
    ) {
        if let Some(m) = market {
            self.market = Some(m);
        }
        for op in ops {
            match op {
                Op::Methodology { hash, .. } => {
                    if let Some(entry) = &methodology {
                        self.methodologies.entry(hash.clone()).or_insert_with(|| Arc::clone(entry));
                    }
                }
                Op::Account { id, methodology } => {
                    let record =
                        AccountRecord { methodology: methodology.clone(), ..Default::default() };
                    self.accounts.insert_mut(id.clone(), record);
                }
                Op::Position { account, instrument, size, entry, funding } => {
                    let (Some(record), Ok(instrument)) =
                        (self.accounts.get_mut(account), Instrument::parse(instrument))
                    else {
                        panic!(
                            "Invariant: a committed position names a stored account and a valid \
                             instrument ({account}, {instrument})"
                        )
                    };
                    if *size == 0.0 {
                        record.positions.remove(&instrument);
                    } else {
                        let (size, entry, funding) = (*size, *entry, *funding);
                        let position = Position { instrument, size, entry, funding };
                        record.positions.insert(instrument, position);
                    }
                }
                Op::Balance { account, currency, amount } => {
                    let Some(record) = self.accounts.get_mut(account) else {
                        panic!("Invariant: a committed balance names a stored account ({account})")
                    };
                    let money = amount.as_ref().map(|a| parse_money(currency, a));
                    match (currency.parse::<Currency>(), money) {
                        (Ok(c), None) => _ = record.balances.remove(&c),
                        (Ok(c), Some(Ok(m))) => _ = record.balances.insert(c, m),
                        _ => panic!(
                            "Invariant: a committed balance is a valid amount of a valid currency \
                             ({account}: {currency} {amount:?})"
                        ),
                    }
                }
                Op::Market { .. } => {}
                Op::VenueBook { .. }
                | Op::Key { .. }
                | Op::RevokeKey { .. }
                | Op::DeleteAccount { .. }
                | Op::AccountMethodology { .. } => self.apply_other(op),
                Op::Audit(entry) => self.audit_head = Some((entry.seq, entry.hash.clone())),
                Op::Backtest { run, methodology, summary, .. } => {
                    let Ok(view) = serde_json::from_str::<BacktestView>(summary) else {
                        panic!("Invariant: a committed backtest summary is its view's JSON")
                    };
                    self.backtests.insert(methodology.clone(), Arc::new(view));
                    self.backtest_run = self.backtest_run.max(*run);
                }
            }
        }
    }

    /// Applies a committed key, account or venue book operation.
    fn apply_other(&mut self, op: &Op) {
        match op {
            Op::VenueBook { document } => {
                let Ok(book) = VenueBookDocument::from_json(document) else {
                    panic!("Invariant: a committed venue book is its document's JSON")
                };
                self.venue_book = Some(Arc::new(book));
            }
            Op::DeleteAccount { id } => {
                let removed = self.accounts.remove_mut(id);
                assert!(removed, "Invariant: a committed deletion names a stored account ({id})");
            }
            Op::AccountMethodology { id, methodology } => {
                let Some(record) = self.accounts.get_mut(id) else {
                    panic!("Invariant: a committed methodology change names a stored account");
                };
                record.methodology.clone_from(methodology);
            }
            Op::Key { id, secret_hash, role, accounts, expires_at, label } => {
                let Ok(role) = Role::parse("role", role) else {
                    panic!("Invariant: a committed key has a valid role ({role})");
                };
                let (hash, label) = (secret_hash.clone(), label.clone());
                let record = key_record(id.clone(), hash, role, accounts, *expires_at, label);
                self.keys.insert(id.clone(), record);
            }
            Op::RevokeKey { id } => {
                let Some(record) = self.keys.get_mut(id) else {
                    panic!("Invariant: a committed revocation names a stored key ({id})");
                };
                record.revoked = true;
            }
            _ => panic!("Invariant: apply_other is given key, account and book operations only"),
        }
    }

    /// Checks that `record` can be margined on the current market: every instrument has data,
    /// every balance is accepted as collateral. Without a market only the shapes are checked.
    ///
    /// # Errors
    /// `Invalid` naming the instrument or currency the engine refused.
    pub fn check_account(&self, record: &AccountRecord) -> Result<(), Error> {
        let Some(market) = &self.market else { return Ok(()) };
        let Some(entry) = self.methodologies.get(&record.methodology) else {
            return Err(Error::invalid("methodology", "not stored"));
        };
        let portfolio = record.portfolio()?;
        let priced = (entry.engine.price_for(&market.snapshot, &portfolio))
            .map_err(|e| Error::invalid(e.field, format!("cannot be valued: {}", e.kind)))?;
        priced.margin(&portfolio)?;
        Ok(())
    }

    /// Instruments held by accounts of methodology `hash`.
    #[must_use]
    pub fn held(&self, hash: &str) -> BTreeSet<Instrument> {
        self.accounts
            .values()
            .filter(|a| a.methodology == hash)
            .flat_map(|a| a.positions.keys().copied())
            .collect()
    }
}

/// Parses a stored or requested amount of `currency`, exactly, rounded down to 1e-18.
///
/// # Errors
/// `Invalid` for an unknown currency code or a bad decimal.
pub fn parse_money(currency: &str, amount: &str) -> Result<Money, Error> {
    let code: Currency =
        currency.parse().map_err(|e: basics::Error| Error::invalid("currency", e.to_string()))?;
    Money::parse(amount, code, Rounding::Down).map_err(|e| Error::invalid("amount", e.to_string()))
}

/// A key record from its stored columns (expiry 0: never; accounts comma separated).
fn key_record(
    id: String,
    secret_hash: String,
    role: Role,
    accounts: &str,
    expires_at: i64,
    label: String,
) -> KeyRecord {
    KeyRecord {
        id,
        secret_hash,
        role,
        accounts: accounts.split(',').filter(|a| !a.is_empty()).map(str::to_owned).collect(),
        expires_at_secs: u64::try_from(expires_at).ok().filter(|at| *at > 0),
        revoked: false,
        label,
    }
}
