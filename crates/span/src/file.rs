//! The contents of a SPAN risk-parameter file as domain values: what the parser produces and
//! what regeneration and the margin calculation read.

use pricing::OptionRight;

/// Number of scenarios in a SPAN risk array.
pub const SCENARIO_COUNT: usize = 16;

/// One parsed SPAN file (one point in time of one clearing organisation).
#[derive(Debug, Clone, PartialEq)]
pub struct SpanFile {
    /// `created`: when the file was produced (`YYYYMMDDhhmm`, as written).
    pub created: String,
    /// `pointInTime/date`: the business date (`YYYYMMDD`).
    pub business_date: String,
    /// `clearingOrg/ec`: the clearing organisation's code.
    pub clearing_org: String,
    /// The 16 scan points, in file order (their position is the risk-array index).
    pub scan_points: Vec<ScanPoint>,
    /// The points whose deltas, weighted, form the composite delta.
    pub delta_points: Vec<DeltaPoint>,
    /// `curConv`: (from, to, factor) currency conversions.
    pub currency_conversions: Vec<(String, String, f64)>,
    /// Exchanges and their products.
    pub exchanges: Vec<Exchange>,
    /// Combined commodities (`ccDef`), the unit in which SPAN nets risk.
    pub combined: Vec<CombinedCommodity>,
    /// Inter-commodity spreads (`interSpreads/dSpread`), in priority order.
    pub inter_spreads: Vec<DeltaSpread>,
}

/// A scan point: a price move in multiples of the price scan range, a vol move in multiples of
/// the vol scan range, and the fraction of the move's P&L that counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScanPoint {
    /// Price move as a multiple of the price scan range (`priceScanDef/mult`).
    pub price_mult: f64,
    /// Vol move as a multiple of the vol scan range (`volScanDef/mult`).
    pub vol_mult: f64,
    /// Covered fraction (1 for ordinary points, e.g. 0.32 or 0.35 for extremes).
    pub weight: f64,
    /// Index (0-based) of the point with the same price move and the opposite vol move.
    pub paired: usize,
}

/// A point of the composite-delta average.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeltaPoint {
    /// Price move as a multiple of the price scan range.
    pub price_mult: f64,
    /// Vol move as a multiple of the vol scan range.
    pub vol_mult: f64,
    /// Weight in the average.
    pub weight: f64,
}

/// One exchange's products.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    /// `exch`, e.g. `BIST`.
    pub code: String,
    /// Physical (cash) products, `phyPf`.
    pub physicals: Vec<Product>,
    /// Futures products, `futPf`.
    pub futures: Vec<Product>,
    /// Options on physicals or futures, `oopPf`.
    pub options: Vec<OptionProduct>,
}

/// Kind of a product family, as SPAN's `pfType` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProductKind {
    /// `PHY`.
    Physical,
    /// `FUT`.
    Future,
    /// `OOP`: options on a physical.
    OptionOnPhysical,
}

/// A reference to a contract in another product (`undC`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractRef {
    /// Exchange code.
    pub exchange: String,
    /// Product family id (`pfId`).
    pub product_id: u64,
    /// Contract id (`cId`).
    pub contract_id: u64,
}

/// A physical or futures product and its contracts.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    /// `pfId`, unique within the exchange.
    pub id: u64,
    /// `pfCode`, e.g. `AKBNKE`.
    pub code: String,
    /// Currency of prices and risk arrays.
    pub currency: String,
    /// Whether the product settles in cash (`setlMeth` `CASH`); a cash-settled physical is a
    /// reference price (an index), which SPAN files give no delta.
    pub cash_settled: bool,
    /// The contracts (one per expiry for futures).
    pub contracts: Vec<Contract>,
}

/// A physical or futures contract.
#[derive(Debug, Clone, PartialEq)]
pub struct Contract {
    /// `cId`.
    pub id: u64,
    /// `pe`: the period code (`201606S0`).
    pub period: String,
    /// Settlement price per unit.
    pub price: f64,
    /// Settlement value of one contract (`val`), rounded to the currency's decimals, when given.
    pub value: Option<f64>,
    /// Contract value factor: money per unit of price.
    pub value_factor: f64,
    /// Delta scaling factor (`sc`).
    pub delta_scale: f64,
    /// Years to expiry (`t`), for futures.
    pub years: Option<f64>,
    /// Price scan range in money per contract (`scanRate/priceScan`).
    pub price_scan: f64,
    /// The file's risk array.
    pub risk: RiskArray,
}

/// A risk array: the loss of one long contract at each scan point (gains negative), already
/// weighted, and the composite delta.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RiskArray {
    /// Losses per scan point, in the product's currency.
    pub losses: [f64; SCENARIO_COUNT],
    /// Composite delta, in underlying units per contract.
    pub composite_delta: f64,
}

/// How the file says options are valued (`priceModel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceModel {
    /// `M`: Black-Scholes-Merton on a spot with a dividend (or foreign) yield.
    Merton,
    /// `B`: Black-76 on a futures price.
    Black,
}

/// An options product.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionProduct {
    /// `pfId`.
    pub id: u64,
    /// `pfCode`.
    pub code: String,
    /// Currency of premiums and risk arrays.
    pub currency: String,
    /// Pricing model.
    pub model: PriceModel,
    /// Whether exercise is European (`EURO`); American products are parsed but not regenerated.
    pub european: bool,
    /// The series, one per expiry.
    pub series: Vec<OptionSeries>,
}

/// One expiry of an options product.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionSeries {
    /// `pe`.
    pub period: String,
    /// Years to expiry (`t`).
    pub years: f64,
    /// Contract value factor.
    pub value_factor: f64,
    /// Strike value factor.
    pub strike_factor: f64,
    /// Delta scaling factor.
    pub delta_scale: f64,
    /// Interest rate (`intrRate/val`), continuously compounded decimal.
    pub rate: f64,
    /// Dividend or foreign yield (`divRate/val`).
    pub dividend: f64,
    /// Price scan range in money per contract.
    pub price_scan: f64,
    /// Vol scan range as a fraction of each option's vol (`volScanPct`), when given.
    pub vol_scan_fraction: Option<f64>,
    /// Vol scan range in vol units (`volScan`), when given.
    pub vol_scan_absolute: Option<f64>,
    /// The underlying contract.
    pub underlying: ContractRef,
    /// The options.
    pub options: Vec<OptionContract>,
}

/// One option.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionContract {
    /// `cId`.
    pub id: u64,
    /// Call or put.
    pub right: OptionRight,
    /// Strike per unit.
    pub strike: f64,
    /// Settlement price (premium) per unit.
    pub price: f64,
    /// Implied volatility (`v`), decimal.
    pub vol: f64,
    /// The file's risk array.
    pub risk: RiskArray,
}

/// A combined commodity (`ccDef`).
#[derive(Debug, Clone, PartialEq)]
pub struct CombinedCommodity {
    /// `cc`.
    pub code: String,
    /// Currency of its requirement.
    pub currency: String,
    /// Products linked into it: (exchange, product id, kind).
    pub links: Vec<(String, u64, ProductKind)>,
    /// Intra-commodity tiers (`intraTiers/tier`).
    pub intra_tiers: Vec<Tier>,
    /// Short option minimum charge per short option contract, by tier (`somTiers`).
    pub short_option_minimum: Vec<(Tier, f64)>,
    /// Intra-commodity delta spreads (`dSpread`), in priority order.
    pub intra_spreads: Vec<DeltaSpread>,
    /// How short options are counted for the minimum (`somMeth`, `GROSS`: calls plus puts).
    pub short_option_method: String,
    /// Whether the file sets spot-month charges (`spotRate`) for this commodity.
    pub has_spot_rates: bool,
}

/// A tier: a range of contract periods, or every period when unbounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    /// `tn`.
    pub number: u32,
    /// First period (`sPe`), inclusive, compared on its leading `YYYYMM`.
    pub start: Option<String>,
    /// Last period (`ePe`), inclusive.
    pub end: Option<String>,
}

impl Tier {
    /// Whether a contract of `period` falls in this tier.
    #[must_use]
    pub fn contains(&self, period: &str) -> bool {
        let month = |p: &str| p.get(..6).unwrap_or(p).to_string();
        let m = month(period);
        self.start.as_deref().is_none_or(|s| month(s) <= m)
            && self.end.as_deref().is_none_or(|e| m <= month(e))
    }
}

/// How a delta spread's rate applies (`chargeMeth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeMethod {
    /// `F`: a flat amount of money per spread.
    Flat,
    /// `W`: a fraction of the legs' weighted futures price risk (inter-commodity credit).
    Weighted,
}

/// A delta spread (`dSpread`).
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaSpread {
    /// `spread`: its priority number.
    pub number: u32,
    /// How the rate applies.
    pub method: ChargeMethod,
    /// Charge per spread (flat) or credit rate (weighted).
    pub rate: f64,
    /// The legs.
    pub legs: Vec<SpreadLeg>,
}

/// Side of a spread leg: legs on side A and legs on side B must hold deltas of opposite signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegSide {
    /// `A`.
    A,
    /// `B`.
    B,
}

/// One leg of a delta spread (`tLeg`).
#[derive(Debug, Clone, PartialEq)]
pub struct SpreadLeg {
    /// Combined commodity code.
    pub commodity: String,
    /// Tier number.
    pub tier: u32,
    /// Side.
    pub side: LegSide,
    /// Delta per spread on this leg.
    pub ratio: f64,
}
