//! Immutable market snapshots.
//!
//! A [`MarketSnapshot`] is everything a valuation needs, at one explicit valuation time: per
//! underlying an index price, a forward curve and a volatility surface; USD prices of the other
//! currencies (stable coins); discount rates; and optional per-instrument quotes (marks, bid/ask,
//! volume), which the margin layer uses for mark-to-market and liquidation-friction estimates.
//! It is assembled with a [`SnapshotBuilder`], validated once in [`SnapshotBuilder::build`] and
//! never mutated afterwards: scenario engines derive new values from it, they do not edit it.

use std::collections::BTreeMap;

use basics::limits::{EXPIRIES_MAX, INSTRUMENTS_MAX, RATE_ABS_MAX, UNDERLYINGS_MAX};
use basics::{Currency, UnixNanos, year_fraction};
use product::Instrument;

use crate::error::finite;
use crate::{
    Error, ErrorKind, FeedData, ForwardCurve, ForwardPoint, SviParams, SviSlice, VolSurface,
};

/// What the market shows for one listed instrument. Prices are in the instrument's own price
/// units (Deribit: coins for inverse options, USD for inverse futures, quote currency for linear
/// contracts); sizes in its amount units.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct InstrumentQuote {
    /// Exchange mark price.
    pub mark_price: Option<f64>,
    /// Best bid.
    pub best_bid: Option<f64>,
    /// Best ask.
    pub best_ask: Option<f64>,
    /// Mark implied volatility as a decimal (options).
    pub mark_iv: Option<f64>,
    /// Traded amount over the last 24 hours.
    pub volume_24h: Option<f64>,
    /// Open interest.
    pub open_interest: Option<f64>,
    /// A perpetual's cumulative funding index: funding per unit of size since the venue's
    /// origin, in its settlement currency, rising when longs pay shorts (dYdX and Hyperliquid
    /// publish one; for Deribit it is the sum of the funding paid per contract).
    pub funding_index: Option<f64>,
}

/// The validated market of one underlying.
#[derive(Debug, Clone, PartialEq)]
pub struct UnderlyingMarket {
    forwards: ForwardCurve,
    surface: VolSurface,
    perpetual_mark: f64,
    reference_vol: Option<f64>,
    settlements: BTreeMap<UnixNanos, f64>,
}

impl UnderlyingMarket {
    /// Index (spot) price in USD.
    #[must_use]
    pub fn index(&self) -> f64 {
        self.forwards.index()
    }

    /// The forward curve.
    #[must_use]
    pub fn forwards(&self) -> &ForwardCurve {
        &self.forwards
    }

    /// The volatility surface (possibly empty when no options are listed).
    #[must_use]
    pub fn surface(&self) -> &VolSurface {
        &self.surface
    }

    /// Mark price of the perpetual (defaults to the index).
    #[must_use]
    pub fn perpetual_mark(&self) -> f64 {
        self.perpetual_mark
    }

    /// The settlement price published for contracts of this underlying expiring at `expiry`
    /// (the venue's average of the index before expiry, say), when the market carries one.
    #[must_use]
    pub fn settlement_price(&self, expiry: UnixNanos) -> Option<f64> {
        self.settlements.get(&expiry).copied()
    }

    /// Every settlement price carried, by expiry.
    #[must_use]
    pub fn settlements(&self) -> &BTreeMap<UnixNanos, f64> {
        &self.settlements
    }

    /// The volatility that scales market impact when the underlying lists no options (no
    /// surface): a venue's or a data vendor's realised or reference volatility, when given.
    #[must_use]
    pub fn reference_vol(&self) -> Option<f64> {
        self.reference_vol
    }

    /// At-the-money volatility around `years` ahead (clamped to the surface's slices), or the
    /// reference volatility without a surface: the scale of market impact. `None` when the
    /// underlying has neither.
    #[must_use]
    pub fn impact_vol(&self, years: f64) -> Option<f64> {
        let Some(first) = self.surface.slices().first() else { return self.reference_vol };
        let t = years.clamp(first.years(), self.surface.horizon_years());
        self.surface.implied_vol(0.0, t)
    }

    /// Implied volatility at `strike` for an expiry `years` ahead, read from the surface at the
    /// forward log-moneyness; `None` beyond the surface's last slice.
    #[must_use]
    pub fn implied_vol(&self, strike: f64, years: f64) -> Option<f64> {
        let forward = self.forwards.forward(years);
        self.surface.implied_vol((strike / forward).ln(), years)
    }
}

/// A validated, immutable market snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketSnapshot {
    valuation: UnixNanos,
    underlyings: BTreeMap<Currency, UnderlyingMarket>,
    usd_prices: BTreeMap<Currency, f64>,
    rates: BTreeMap<Currency, f64>,
    quotes: BTreeMap<Instrument, InstrumentQuote>,
    feeds: FeedData,
}

impl MarketSnapshot {
    /// Starts a snapshot at `valuation`.
    #[must_use]
    pub fn builder(valuation: UnixNanos) -> SnapshotBuilder {
        SnapshotBuilder {
            valuation,
            underlyings: BTreeMap::new(),
            usd_prices: BTreeMap::new(),
            rates: BTreeMap::new(),
            quotes: BTreeMap::new(),
            feeds: FeedData::default(),
        }
    }

    /// The valuation time.
    #[must_use]
    pub fn valuation(&self) -> UnixNanos {
        self.valuation
    }

    /// ACT/365 years from the valuation time to `instant` (negative if earlier).
    #[must_use]
    pub fn years_to(&self, instant: UnixNanos) -> f64 {
        year_fraction(self.valuation, instant)
    }

    /// All underlyings, by currency.
    #[must_use]
    pub fn underlyings(&self) -> &BTreeMap<Currency, UnderlyingMarket> {
        &self.underlyings
    }

    /// The market of `underlying`.
    ///
    /// # Errors
    /// `Missing` when the snapshot has no data for it.
    pub fn underlying(&self, underlying: Currency) -> Result<&UnderlyingMarket, Error> {
        self.underlyings.get(&underlying).ok_or_else(|| {
            Error::new(
                underlying.to_string(),
                ErrorKind::Missing("market data for this underlying".into()),
            )
        })
    }

    /// Price of one unit of `currency` in USD: 1 for USD, the index for an underlying, the
    /// quoted price for other currencies (stable coins).
    ///
    /// # Errors
    /// `Missing` when the currency has no price.
    pub fn usd_price(&self, currency: Currency) -> Result<f64, Error> {
        if currency == Currency::USD {
            return Ok(1.0);
        }
        if let Some(market) = self.underlyings.get(&currency) {
            return Ok(market.index());
        }
        self.usd_prices.get(&currency).copied().ok_or_else(|| {
            Error::new(
                currency.to_string(),
                ErrorKind::Missing("a USD price for this currency".into()),
            )
        })
    }

    /// USD prices given explicitly (stable coins and other non-underlying currencies).
    #[must_use]
    pub fn usd_prices(&self) -> &BTreeMap<Currency, f64> {
        &self.usd_prices
    }

    /// Continuously compounded discount rate of `currency` (0 unless given).
    #[must_use]
    pub fn rate(&self, currency: Currency) -> f64 {
        self.rates.get(&currency).copied().unwrap_or(0.0)
    }

    /// Discount rates given explicitly.
    #[must_use]
    pub fn rates(&self) -> &BTreeMap<Currency, f64> {
        &self.rates
    }

    /// The market's quote for `instrument`, if any.
    #[must_use]
    pub fn quote(&self, instrument: &Instrument) -> Option<&InstrumentQuote> {
        self.quotes.get(instrument)
    }

    /// All instrument quotes.
    #[must_use]
    pub fn quotes(&self) -> &BTreeMap<Instrument, InstrumentQuote> {
        &self.quotes
    }

    /// What the venue's oracles publish beside the prices (empty for most markets).
    #[must_use]
    pub fn feeds(&self) -> &FeedData {
        &self.feeds
    }

    /// The same snapshot with `feeds` published beside its prices (replacing any it had).
    ///
    /// # Errors
    /// `OutOfRange` naming the invalid feed entry.
    pub fn with_feeds(&self, feeds: FeedData) -> Result<MarketSnapshot, Error> {
        feeds.validate()?;
        Ok(MarketSnapshot { feeds, ..self.clone() })
    }

    /// The same snapshot after a relative move `spot_move` of `underlying`: its index, forwards
    /// and perpetual mark scale by `1 + spot_move`, and each smile keeps its shape in forward
    /// log-moneyness (sticky moneyness), so implied volatility moves with the spot. Other
    /// underlyings, quotes and rates are unchanged.
    ///
    /// # Errors
    /// `Missing` for an unknown underlying, `OutOfRange` unless `spot_move > -1`.
    pub fn with_spot_move(
        &self,
        underlying: Currency,
        spot_move: f64,
    ) -> Result<MarketSnapshot, Error> {
        if !(spot_move > -1.0 && spot_move.is_finite()) {
            return Err(Error::range(
                "spot_move",
                format!("must be finite and > -1, got {spot_move}"),
            ));
        }
        let market = self.underlying(underlying)?;
        let factor = 1.0 + spot_move;
        let points = market
            .forwards
            .points()
            .iter()
            .map(|p| ForwardPoint { forward: p.forward * factor, ..*p })
            .collect();
        let forwards = ForwardCurve::new(market.index() * factor, points)?;
        let slices =
            market.surface.slices().iter().map(|s| s.with_forward(s.forward() * factor)).collect();
        let shocked = UnderlyingMarket {
            forwards,
            surface: VolSurface::from_valid_slices(slices),
            perpetual_mark: market.perpetual_mark * factor,
            reference_vol: market.reference_vol,
            // Prices already fixed at past expiries do not move with the index.
            settlements: market.settlements.clone(),
        };
        let mut snapshot = self.clone();
        snapshot.underlyings.insert(underlying, shocked);
        snapshot.feeds = self.feeds.with_spot_move(underlying, factor);
        Ok(snapshot)
    }
}

/// Raw inputs for one underlying, before validation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UnderlyingInput {
    /// Index price in USD.
    pub index: f64,
    /// Observed forwards by expiry.
    pub forwards: Vec<(UnixNanos, f64)>,
    /// SVI smiles by expiry; each smile's log-moneyness is relative to the forward of its expiry
    /// (taken from `forwards` when observed there, otherwise from the interpolated curve).
    pub smiles: Vec<(UnixNanos, SviParams)>,
    /// Mark of the perpetual; the index when absent.
    pub perpetual_mark: Option<f64>,
    /// The impact volatility of an underlying without options (see
    /// [`UnderlyingMarket::reference_vol`]).
    pub reference_vol: Option<f64>,
    /// Settlement prices of expiries at or before the valuation time (see
    /// [`UnderlyingMarket::settlement_price`]).
    pub settlements: Vec<(UnixNanos, f64)>,
}

/// Collects snapshot inputs; [`SnapshotBuilder::build`] validates everything at once.
#[derive(Debug, Clone)]
pub struct SnapshotBuilder {
    valuation: UnixNanos,
    underlyings: BTreeMap<Currency, UnderlyingInput>,
    usd_prices: BTreeMap<Currency, f64>,
    rates: BTreeMap<Currency, f64>,
    quotes: BTreeMap<Instrument, InstrumentQuote>,
    feeds: FeedData,
}

impl SnapshotBuilder {
    /// Adds (or replaces) an underlying.
    #[must_use]
    pub fn underlying(mut self, currency: Currency, input: UnderlyingInput) -> SnapshotBuilder {
        self.underlyings.insert(currency, input);
        self
    }

    /// Sets the USD price of a non-underlying currency (a stable coin).
    #[must_use]
    pub fn usd_price(mut self, currency: Currency, price: f64) -> SnapshotBuilder {
        self.usd_prices.insert(currency, price);
        self
    }

    /// Sets the discount rate of a currency.
    #[must_use]
    pub fn rate(mut self, currency: Currency, rate: f64) -> SnapshotBuilder {
        self.rates.insert(currency, rate);
        self
    }

    /// Adds an instrument quote.
    #[must_use]
    pub fn quote(mut self, instrument: Instrument, quote: InstrumentQuote) -> SnapshotBuilder {
        self.quotes.insert(instrument, quote);
        self
    }

    /// Sets what the venue's oracles publish beside the prices.
    #[must_use]
    pub fn feeds(mut self, feeds: FeedData) -> SnapshotBuilder {
        self.feeds = feeds;
        self
    }

    /// Validates every input and freezes the snapshot.
    ///
    /// # Errors
    /// The first invalid input, located by underlying and field (e.g. `BTC.surface[...]`).
    pub fn build(self) -> Result<MarketSnapshot, Error> {
        if self.underlyings.len() > UNDERLYINGS_MAX {
            return Err(Error::new("underlyings", ErrorKind::TooMany { limit: UNDERLYINGS_MAX }));
        }
        if self.quotes.len() > INSTRUMENTS_MAX {
            return Err(Error::new("quotes", ErrorKind::TooMany { limit: INSTRUMENTS_MAX }));
        }
        let mut underlyings = BTreeMap::new();
        for (currency, input) in self.underlyings {
            let market = build_underlying(self.valuation, &input)
                .map_err(|e| e.within(currency.as_str()))?;
            underlyings.insert(currency, market);
        }
        for (currency, price) in &self.usd_prices {
            let field = format!("usd_prices.{currency}");
            if finite(&field, *price)? <= 0.0 {
                return Err(Error::range(field, format!("must be > 0, got {price}")));
            }
            if underlyings.contains_key(currency) || *currency == Currency::USD {
                return Err(Error::range(field, "underlyings and USD are priced by their index"));
            }
        }
        for (currency, rate) in &self.rates {
            let field = format!("rates.{currency}");
            if finite(&field, *rate)?.abs() > RATE_ABS_MAX {
                return Err(Error::range(
                    field,
                    format!("|rate| must be <= {RATE_ABS_MAX}, got {rate}"),
                ));
            }
        }
        for (instrument, quote) in &self.quotes {
            check_quote(instrument, quote)?;
            if !underlyings.contains_key(&instrument.underlying()) {
                let what =
                    format!("market data for {} (quoted {instrument})", instrument.underlying());
                return Err(Error::new(format!("quotes.{instrument}"), ErrorKind::Missing(what)));
            }
        }
        self.feeds.validate()?;
        Ok(MarketSnapshot {
            valuation: self.valuation,
            underlyings,
            usd_prices: self.usd_prices,
            rates: self.rates,
            quotes: self.quotes,
            feeds: self.feeds,
        })
    }
}

fn build_underlying(
    valuation: UnixNanos,
    input: &UnderlyingInput,
) -> Result<UnderlyingMarket, Error> {
    let points = input
        .forwards
        .iter()
        .map(|&(expiry, forward)| ForwardPoint {
            expiry,
            years: year_fraction(valuation, expiry),
            forward,
        })
        .collect();
    let forwards = ForwardCurve::new(input.index, points)?;
    let mut slices = Vec::with_capacity(input.smiles.len());
    for (expiry, params) in &input.smiles {
        let years = year_fraction(valuation, *expiry);
        let forward = forwards.forward(years.max(0.0));
        let slice = SviSlice::new(*expiry, years, forward, *params)
            .map_err(|e| e.within(&format!("surface[{expiry:?}]")))?;
        slices.push(slice);
    }
    let surface = VolSurface::new(slices)?;
    let perpetual_mark = input.perpetual_mark.unwrap_or(input.index);
    if finite("perpetual_mark", perpetual_mark)? <= 0.0 {
        return Err(Error::range("perpetual_mark", format!("must be > 0, got {perpetual_mark}")));
    }
    if let Some(vol) = input.reference_vol
        && !(finite("reference_vol", vol)? > 0.0 && vol <= basics::limits::VOLATILITY_MAX)
    {
        let rule = format!("must be in (0, {}], got {vol}", basics::limits::VOLATILITY_MAX);
        return Err(Error::range("reference_vol", rule));
    }
    let settlements = settlements(valuation, &input.settlements)?;
    Ok(UnderlyingMarket {
        forwards,
        surface,
        perpetual_mark,
        reference_vol: input.reference_vol,
        settlements,
    })
}

/// Settlement prices: finite and positive, each for an expiry no later than the valuation time
/// (a price for a future expiry is a forecast, not a settlement), each expiry once.
fn settlements(
    valuation: UnixNanos,
    prices: &[(UnixNanos, f64)],
) -> Result<BTreeMap<UnixNanos, f64>, Error> {
    if prices.len() > EXPIRIES_MAX {
        return Err(Error::new("settlements", ErrorKind::TooMany { limit: EXPIRIES_MAX }));
    }
    let mut out = BTreeMap::new();
    for &(expiry, price) in prices {
        let field = format!("settlements[{expiry:?}]");
        if finite(&field, price)? <= 0.0 {
            return Err(Error::range(field, format!("must be > 0, got {price}")));
        }
        if expiry > valuation {
            return Err(Error::range(field, "the expiry is after the valuation time"));
        }
        if out.insert(expiry, price).is_some() {
            return Err(Error::range(field, "the expiry appears twice"));
        }
    }
    Ok(out)
}

fn check_quote(instrument: &Instrument, quote: &InstrumentQuote) -> Result<(), Error> {
    let fields = [
        ("mark_price", quote.mark_price),
        ("best_bid", quote.best_bid),
        ("best_ask", quote.best_ask),
        ("mark_iv", quote.mark_iv),
        ("volume_24h", quote.volume_24h),
        ("open_interest", quote.open_interest),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            let field = format!("quotes.{instrument}.{name}");
            if finite(&field, value)? < 0.0 {
                return Err(Error::range(field, format!("must be >= 0, got {value}")));
            }
        }
    }
    if let Some(index) = quote.funding_index {
        let field = format!("quotes.{instrument}.funding_index");
        product::check_funding(instrument, index, &field).map_err(|e| match e.kind {
            product::ErrorKind::OutOfRange(rule) => Error::range(field.clone(), rule),
            kind => Error::range(field.clone(), kind.to_string()),
        })?;
    }
    if let (Some(bid), Some(ask)) = (quote.best_bid, quote.best_ask)
        && bid > ask
    {
        let field = format!("quotes.{instrument}.best_bid");
        return Err(Error::range(field, format!("bid {bid} is above ask {ask}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: i64) -> UnixNanos {
        UnixNanos(n * basics::NANOS_PER_DAY)
    }

    fn btc() -> UnderlyingInput {
        UnderlyingInput {
            index: 60_000.0,
            forwards: vec![(day(30), 60_300.0), (day(90), 61_000.0)],
            smiles: vec![
                (day(30), SviParams { a: 0.02, b: 0.1, rho: -0.2, m: 0.0, sigma: 0.15 }),
                (day(90), SviParams { a: 0.06, b: 0.12, rho: -0.2, m: 0.0, sigma: 0.2 }),
            ],
            perpetual_mark: None,
            reference_vol: None,
            settlements: Vec::new(),
        }
    }

    #[test]
    fn builds_and_reads_back() {
        let snapshot = MarketSnapshot::builder(day(0))
            .underlying(Currency::BTC, btc())
            .usd_price(Currency::USDC, 0.9998)
            .rate(Currency::USD, 0.05)
            .build()
            .unwrap();
        let market = snapshot.underlying(Currency::BTC).unwrap();
        assert_eq!(market.perpetual_mark(), 60_000.0);
        assert_eq!(snapshot.usd_price(Currency::BTC).unwrap(), 60_000.0);
        assert_eq!(snapshot.usd_price(Currency::USDC).unwrap(), 0.9998);
        assert_eq!(snapshot.rate(Currency::BTC), 0.0);
        // The slice's forward is the observed forward of its expiry.
        assert!((market.surface().slices()[0].forward() - 60_300.0).abs() < 1e-9);
        let atm = market.implied_vol(60_300.0, 30.0 / 365.0).unwrap();
        assert!((atm - ((0.02 + 0.1 * 0.15) * 365.0 / 30.0_f64).sqrt()).abs() < 1e-12);
        assert!(market.implied_vol(60_000.0, 1.0).is_none());
        assert!(snapshot.underlying(Currency::ETH).is_err());
    }

    #[test]
    fn errors_name_the_underlying_and_field() {
        let mut bad = btc();
        bad.smiles[1].1.b = -1.0;
        let err =
            MarketSnapshot::builder(day(0)).underlying(Currency::BTC, bad).build().unwrap_err();
        assert!(err.field.starts_with("BTC.surface["), "{err}");
        assert!(err.field.rsplit('.').next() == Some("b"), "{err}");

        let mut expired = btc();
        expired.forwards[0].0 = day(-1);
        let err =
            MarketSnapshot::builder(day(0)).underlying(Currency::BTC, expired).build().unwrap_err();
        assert!(err.field.starts_with("BTC.forwards"), "{err}");

        let perp = Instrument::parse("ETH-PERPETUAL").unwrap();
        let err = MarketSnapshot::builder(day(0))
            .underlying(Currency::BTC, btc())
            .quote(perp, InstrumentQuote::default())
            .build()
            .unwrap_err();
        assert!(matches!(err.kind, ErrorKind::Missing(_)), "{err}");
    }

    /// Settlement prices are facts of past expiries: kept through a spot move, refused for an
    /// expiry after the valuation time, for a price that is not finite and positive, and for an
    /// expiry given twice.
    #[test]
    fn settlement_prices_are_past_and_positive() {
        let with = |settlements: Vec<(UnixNanos, f64)>| {
            let input = UnderlyingInput { settlements, ..btc() };
            MarketSnapshot::builder(day(0)).underlying(Currency::BTC, input).build()
        };
        let snapshot = with(vec![(day(-7), 58_000.0), (day(0), 60_100.0)]).unwrap();
        let moved = snapshot.with_spot_move(Currency::BTC, -0.2).unwrap();
        let btc = moved.underlying(Currency::BTC).unwrap();
        assert_eq!(btc.settlement_price(day(-7)), Some(58_000.0));
        assert_eq!(btc.settlement_price(day(-6)), None);
        let field = |e: Error| e.field;
        assert_eq!(
            field(with(vec![(day(1), 60_000.0)]).unwrap_err()),
            "BTC.settlements[1970-01-02T00:00:00Z]"
        );
        for price in [0.0, -1.0, f64::NAN] {
            assert!(
                field(with(vec![(day(-1), price)]).unwrap_err()).starts_with("BTC.settlements[")
            );
        }
        let twice = with(vec![(day(-1), 1.0), (day(-1), 2.0)]).unwrap_err();
        assert!(twice.to_string().contains("twice"), "{twice}");
    }
}
