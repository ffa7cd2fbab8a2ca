//! The API's JSON shapes (requests and responses), with their OpenAPI schemas.

use std::collections::BTreeMap;

use margin::CurrencyFigures;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::compute::Status;

/// A position: instrument and signed size (contracts for options, USD for inverse futures).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PositionInput {
    /// Deribit instrument name, e.g. `BTC-25DEC26-100000-C`.
    pub instrument: String,
    /// Signed size; negative is short.
    pub size: f64,
    /// The price its P&L counts from, in the instrument's price unit (USD per coin for
    /// futures, the settlement currency for options): a future's average entry price or the
    /// mark of its last settlement, an option's average premium (shown only). A future written
    /// without one is entered at the current market's mark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<f64>,
    /// A perpetual's funding index up to which its funding is paid (the venue's cumulative
    /// funding per unit of size, in its settlement currency); a perpetual written without one is
    /// paid up to the current market's `funding_index`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funding: Option<f64>,
}

/// A trade: instrument, signed size and, optionally, its price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TradeInput {
    /// Deribit instrument name.
    pub instrument: String,
    /// Signed size; negative sells.
    pub size: f64,
    /// Price per unit in the instrument's price unit; the engine's mark when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
}

/// A trade as filled, and the cash it moved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FillView {
    /// Instrument.
    pub instrument: String,
    /// Signed size.
    pub size: f64,
    /// Price per unit it filled at.
    pub price: f64,
    /// Cash moved: premium paid (negative) or received, P&L realised; exact decimal text.
    pub cash: String,
    /// Currency of the cash (the instrument's settlement currency).
    pub currency: String,
}

/// An amount as a decimal string (exact) or a JSON number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum AmountInput {
    /// Exact decimal text, e.g. `"12.5"`.
    Text(String),
    /// A JSON number (its exact binary value, rounded down to 1e-18).
    Number(f64),
}

impl AmountInput {
    /// The amount as decimal text for [`basics::Money::parse`].
    #[must_use]
    pub fn text(&self) -> String {
        match self {
            AmountInput::Text(t) => t.clone(),
            AmountInput::Number(n) => format!("{n:.18}"),
        }
    }
}

/// `POST /api/accounts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    /// Account id: 1 to 64 characters among `A-Z a-z 0-9 . _ -`.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub id: String,
    /// Methodology: hash, `name@version` or a unique name (default `ballast-pm`).
    #[serde(default)]
    pub methodology: Option<String>,
    /// Initial positions.
    #[serde(default)]
    pub positions: Vec<PositionInput>,
    /// Initial balances by currency code; never negative.
    #[serde(default)]
    pub balances: BTreeMap<String, AmountInput>,
}

/// `PUT /api/accounts/{id}/positions/{instrument}`: sets the holding as a venue reports it
/// (no cash moves; trades with their economics go through `POST .../trades`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPosition {
    /// New signed size; 0 closes the position.
    pub size: f64,
    /// The price its P&L counts from; when absent, the stored entry is kept, and a new future is
    /// entered at the current market's mark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<f64>,
    /// A perpetual's funding index up to which its funding is paid; when absent, the stored one
    /// is kept, and a new perpetual is paid up to the current market's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funding: Option<f64>,
}

/// `PUT /api/accounts/{id}/balances/{currency}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetBalance {
    /// New amount; never negative; 0 removes the balance.
    pub amount: AmountInput,
}

/// `POST /api/accounts/{id}/what-if`, `.../pre-trade` and `.../trades`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WhatIfRequest {
    /// Trades on the current positions, in order, each at its price or at the mark.
    pub trades: Vec<TradeInput>,
    /// Whether a trade without a price crosses half the spread from the mark (a buy above it,
    /// a sale below), the methodology's liquidation-friction half-spread: the quoted bid/ask
    /// where the market has them, else its default. False (the default): at the mark.
    #[serde(default)]
    pub cross_spread: bool,
}

/// `POST /api/methodologies`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MethodologyUpload {
    /// The methodology file (TOML, `docs/methodology.md`).
    pub toml: String,
}

/// A stored methodology.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MethodologyView {
    /// Canonical hash (keccak-256, hex): the identity accounts refer to.
    pub hash: String,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// The TOML text (only on `GET /api/methodologies/{reference}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub toml: Option<String>,
}

/// An account's stored state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AccountView {
    /// Account id.
    pub id: String,
    /// Methodology hash.
    pub methodology: String,
    /// `name@version` of the methodology.
    pub methodology_label: String,
    /// Positions, by instrument.
    pub positions: Vec<PositionInput>,
    /// Balances by currency, exact decimal text.
    pub balances: BTreeMap<String, String>,
}

/// An account's figures in one currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FiguresView {
    /// Currency of the figures (USD in cross margin).
    pub currency: String,
    /// Equity: balances plus position values.
    pub equity: f64,
    /// Initial margin.
    pub initial_margin: f64,
    /// Maintenance margin.
    pub maintenance_margin: f64,
    /// Worst-scenario loss after offsets.
    pub scan_loss: f64,
    /// Add-ons in IM.
    pub add_ons_im: f64,
    /// Add-ons in MM.
    pub add_ons_mm: f64,
    /// Underlying of the worst scenario.
    pub worst_underlying: Option<String>,
    /// Index of the worst scenario in that underlying's set; null when a competing contingency
    /// set the loss.
    pub worst_scenario: Option<usize>,
    /// Whether a competing contingency (Derive's forward contingency), not a scenario, set the
    /// loss.
    pub worst_is_contingency: bool,
}

impl FiguresView {
    /// The view of engine figures.
    #[must_use]
    pub fn of(f: &CurrencyFigures) -> FiguresView {
        FiguresView {
            currency: f.currency.to_string(),
            equity: f.equity,
            initial_margin: f.initial_margin,
            maintenance_margin: f.maintenance_margin,
            scan_loss: f.scan_loss,
            add_ons_im: f.add_ons_im,
            add_ons_mm: f.add_ons_mm,
            worst_underlying: f.worst.map(|w| w.underlying().to_string()),
            worst_scenario: f.worst.and_then(margin::Worst::scenario),
            worst_is_contingency: matches!(f.worst, Some(margin::Worst::Contingency { .. })),
        }
    }
}

/// An account's margin state, as in the health list and live updates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HealthRow {
    /// Account id.
    pub id: String,
    /// `healthy`, `im-breach`, `mm-breach` or `unpriced`.
    pub status: String,
    /// Smallest equity / MM over the account's currencies (null when unbounded or unpriced).
    pub health: Option<f64>,
    /// Figures per currency.
    pub figures: Vec<FiguresView>,
    /// Why the account could not be valued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Present when the account cannot be valued now but could before: `figures` are then its
    /// last good ones, from the market this names, and are not current.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale: Option<StaleView>,
}

/// Where an unpriced account's kept figures come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StaleView {
    /// The sequence number of the market they were computed on.
    pub market_seq: Option<i64>,
    /// Their status then: `healthy`, `im-breach` or `mm-breach`.
    pub status: String,
    /// Their health then (null when unbounded).
    pub health: Option<f64>,
}

/// Health ratio as JSON: finite or null.
#[must_use]
pub fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// The status name.
#[must_use]
pub fn status_name(status: Status) -> String {
    status.name().to_owned()
}

/// `GET /api/accounts`: accounts by health, weakest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HealthList {
    /// Sequence number of the market the figures are on.
    pub market_seq: Option<i64>,
    /// Number of accounts (those matching `q` when it is given).
    pub total: usize,
    /// Accounts in IM breach.
    pub im_breaches: usize,
    /// Accounts in MM breach.
    pub mm_breaches: usize,
    /// The requested page.
    pub accounts: Vec<HealthRow>,
}

/// `POST /api/accounts/{id}/what-if`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WhatIfView {
    /// Account id.
    pub account: String,
    /// The trades as filled, with the cash each moved.
    pub fills: Vec<FillView>,
    /// Market sequence number.
    pub market_seq: Option<i64>,
    /// Figures now.
    pub before: Vec<FiguresView>,
    /// Figures after the trades.
    pub after: Vec<FiguresView>,
}

/// One scenario of a risk array.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RiskCell {
    /// Relative move of the underlying.
    pub spot_move: f64,
    /// The underlying's index under the scenario.
    pub price: f64,
    /// Volatility move: `down`, `none` or `up`.
    pub vol: String,
    /// `regular`, `extreme`, `skew-*` or `auxiliary`.
    pub kind: String,
    /// Weight of the scenario's P&L.
    pub weight: f64,
    /// P&L of the account under the scenario.
    pub pnl: f64,
}

/// The scenarios and P&L of one risk unit (an underlying in a currency).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RiskUnit {
    /// Underlying.
    pub underlying: String,
    /// Currency of the P&L.
    pub currency: String,
    /// Index now.
    pub index: f64,
    /// Index of the worst scenario.
    pub worst: usize,
    /// Loss at the worst scenario (before offsets).
    pub loss: f64,
    /// Relative (fraction) or absolute (vol points) vol shock.
    pub vol_shock_kind: String,
    /// Up vol shock at the reference tenor.
    pub vol_shock_up: f64,
    /// Down vol shock at the reference tenor.
    pub vol_shock_down: f64,
    /// Reference tenor of the vol shocks, days.
    pub vol_shock_reference_days: f64,
    /// The scenarios in methodology order.
    pub scenarios: Vec<RiskCell>,
}

/// `GET /api/accounts/{id}/risk-array`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RiskArrayView {
    /// Account id.
    pub account: String,
    /// Market sequence number.
    pub market_seq: Option<i64>,
    /// Valuation time of the market, RFC 3339.
    pub valuation_time: String,
    /// Figures per currency.
    pub figures: Vec<FiguresView>,
    /// One entry per risk unit.
    pub units: Vec<RiskUnit>,
}

/// `GET /api/accounts/{id}/margin`: the full margin report with the standard-margin baseline
/// and liquidation distances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MarginView {
    /// Account id.
    pub account: String,
    /// Market sequence number.
    pub market_seq: Option<i64>,
    /// Status.
    pub status: String,
    /// Smallest equity / MM.
    pub health: Option<f64>,
    /// The report: currencies, positions, units, add-ons, baseline, liquidation, Greeks (the
    /// document `ballast margin --json` writes).
    pub report: formats::report::ReportDocument,
}

/// `POST /api/markets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MarketAccepted {
    /// Sequence number of the stored snapshot.
    pub seq: i64,
    /// Its valuation time.
    pub valuation_time: String,
    /// Quoted instruments.
    pub instruments: usize,
}

/// `POST /api/accounts/{id}/pre-trade`: whether a venue should accept the trades.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PreTradeView {
    /// Accepted when equity after covers IM after in every currency (rounded as attested), or
    /// when the trades leave no currency with less excess of equity over IM than before.
    pub accepted: bool,
    /// Why not, when refused.
    pub reason: Option<String>,
    /// The figures before and after, and the fills.
    pub what_if: WhatIfView,
}

/// `POST /api/accounts/{id}/trades`: the trades applied and stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TradesView {
    /// The trades as filled, with the cash each moved.
    pub fills: Vec<FillView>,
    /// The account after the trades.
    pub account: AccountView,
}

/// One cash movement of a settlement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SettlementFlowView {
    /// Account id.
    pub account: String,
    /// Instrument settled.
    pub instrument: String,
    /// `variation` (a future's P&L to the mark; the position stays, entered at the mark) or
    /// `expiry` (an expired contract at its settlement price; the position is closed).
    pub kind: String,
    /// Size settled.
    pub size: f64,
    /// Price settled at.
    pub price: f64,
    /// Cash credited (negative: debited), exact decimal text.
    pub amount: String,
    /// Currency of the cash.
    pub currency: String,
}

/// `POST /api/settlements`: every account settled on the current market.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SettlementView {
    /// Sequence number of the market settled on.
    pub market_seq: i64,
    /// Accounts whose holdings or balances changed.
    pub accounts_settled: usize,
    /// Every cash movement, by account then position.
    pub flows: Vec<SettlementFlowView>,
    /// Accounts that could not be settled, with the reason (their state is unchanged).
    pub refused: BTreeMap<String, String>,
}

/// `POST /api/keys`: a new API key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// `viewer`, `account`, `operator`, `risk-admin` or `admin`.
    pub role: String,
    /// For the `account` role: the accounts it may see (at least one).
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Seconds from now after which the key is refused; no expiry when absent.
    #[serde(default)]
    pub expires_in_secs: Option<u64>,
    /// Who holds it, for people reading the key list.
    #[serde(default)]
    pub label: String,
}

/// A stored API key, without its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KeyView {
    /// Key id (the public part of the key).
    pub id: String,
    /// Its role.
    pub role: String,
    /// The accounts an `account` key may see.
    pub accounts: Vec<String>,
    /// Unix seconds of expiry.
    pub expires_at_secs: Option<u64>,
    /// Whether it was revoked.
    pub revoked: bool,
    /// Who holds it.
    pub label: String,
}

/// `POST /api/keys`: the key, shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreatedKey {
    /// The whole key, `bk_<id>_<secret>`: only its hash is stored, so it is never shown again.
    pub key: String,
    /// The stored record.
    pub record: KeyView,
}

/// `PUT /api/accounts/{id}/methodology`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetMethodology {
    /// A stored methodology: hash, `name@version` or a unique name.
    pub methodology: String,
}

/// Where an account stands against a liquidation target, USD.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StandingView {
    /// Equity after the liquidation's fees.
    pub equity_usd: f64,
    /// Maintenance margin.
    pub maintenance_usd: f64,
    /// Initial margin.
    pub initial_usd: f64,
    /// How far below the target (0 at or above it).
    pub shortfall_usd: f64,
    /// `healthy`, `im-breach`, `mm-breach` or `unpriced`.
    pub status: String,
}

/// One planned liquidation trade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlannedTradeView {
    /// Round (0-based).
    pub round: usize,
    /// Instrument name.
    pub instrument: String,
    /// Signed size traded.
    pub size: f64,
    /// Expected price per unit (the depth model's, or the mark for a backstop).
    pub price: f64,
    /// The engine's mark.
    pub mark: f64,
    /// Expected cost against the mark, USD.
    pub cost_usd: f64,
    /// USD notional traded.
    pub notional_usd: f64,
    /// dYdX's fillable price, for profiles with one.
    pub limit_price: Option<f64>,
    /// The shortfall once the trade's step is done, USD.
    pub shortfall_after_usd: f64,
}

/// `GET /api/accounts/{id}/liquidation`: the account's liquidation plan under a profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LiquidationView {
    /// Account id.
    pub account: String,
    /// Market sequence number.
    pub market_seq: Option<i64>,
    /// Profile name and version, `derive@1`.
    pub profile: String,
    /// The profile's keccak-256 hash, 0x-hex.
    pub profile_hash: String,
    /// The selection that made the plan.
    pub selection: String,
    /// Target: equity at least this multiple of MM.
    pub buffer_scale: f64,
    /// Whether the account is below MM (in liquidation).
    pub breached: bool,
    /// Whether the plan reaches the target.
    pub reached: bool,
    /// Whether the whole account goes to the backstop.
    pub backstop: bool,
    /// Rounds used.
    pub rounds: usize,
    /// Expected cost of the trades, USD.
    pub expected_cost_usd: f64,
    /// Fees charged, USD.
    pub fees_usd: f64,
    /// Before any trade.
    pub before: StandingView,
    /// After the plan.
    pub after: StandingView,
    /// The trades, in order.
    pub trades: Vec<PlannedTradeView>,
}
