//! The depth model a sale to the market executes against: half the spread (quoted, else the
//! friction add-on's default) plus square-root impact `Y · σ_daily · √(|Δ| / V) · |Δ| · S` on the
//! coins of delta the sale moves, with the friction add-on's own `Y` and volume floor, the
//! market's 30-day at-the-money volatility and its quoted delta-one volume. So the cost the
//! add-on charges before a breach and the cost a liquidation realises after it come from the
//! same parameters, and [`crate::coverage`] can compare them.

use margin::PricedMarket;
use methodology::AddOnKind;
use product::Instrument;

use crate::error::Error;

/// The friction add-on's impact parameters for one underlying: `(Y, volume floor)`, zero impact
/// when the methodology has no friction add-on.
fn impact_parameters(priced: &PricedMarket, instrument: &Instrument) -> (f64, f64) {
    (priced.methodology().add_ons_for(instrument.underlying()).iter())
        .find_map(|a| match a.kind {
            AddOnKind::LiquidationFriction { impact_coefficient, volume_floor, .. } => {
                Some((impact_coefficient, volume_floor))
            }
            _ => None,
        })
        .unwrap_or((0.0, 1.0))
}

/// One trade's execution against the depth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Execution {
    /// Price per unit, in the instrument's price unit.
    pub price: f64,
    /// The engine's mark of the instrument.
    pub mark: f64,
    /// What the trade loses against the mark, USD: `|size| · |mark − price|` in USD.
    pub cost_usd: f64,
    /// USD notional of the trade.
    pub notional_usd: f64,
    /// USD per unit of the instrument's price (a delta-one contract's notional per unit over
    /// its mark, an option's USD value over its price; 0 where the mark is 0).
    pub usd_per_price: f64,
}

/// The execution of a trade of `size` (signed: negative sells) against the depth: the crossing
/// price, moved further by the impact per unit; a sale never below zero.
///
/// # Errors
/// As [`PricedMarket::crossing_price`], naming `field`.
pub fn execute(
    priced: &PricedMarket,
    instrument: &Instrument,
    size: f64,
    field: &str,
) -> Result<Execution, Error> {
    let crossing = priced.crossing_price(instrument, size).map_err(|e| Error::margin(field, e))?;
    let mark = priced.mark(instrument).map_err(|e| Error::margin(field, e))?;
    let row = (priced.arrays().position(instrument))
        .ok_or_else(|| Error::range(field, "an instrument of the priced universe"))?;
    let info = priced.arrays().info(row);
    let (y, floor) = impact_parameters(priced, instrument);
    let underlying = priced
        .market()
        .underlying(instrument.underlying())
        .map_err(|e| Error::range(field, format!("the market lacks the underlying: {e}")))?;
    let sigma_daily = underlying.impact_vol(30.0 / basics::DAYS_PER_YEAR).unwrap_or(0.0)
        / basics::DAYS_PER_YEAR.sqrt();
    let volume = (priced.liquidity().get(&instrument.underlying()))
        .map_or(0.0, |l| l.delta_volume_coins)
        .max(floor);
    let delta = (size * info.delta_coins).abs();
    let impact_usd = y * sigma_daily * (delta / volume).sqrt() * delta * info.index;
    let per_unit_usd = if info.strike.is_some() { info.value_usd } else { info.notional_usd };
    let usd_per_price = if mark > 0.0 { per_unit_usd / mark } else { 0.0 };
    let impact = if usd_per_price > 0.0 && size != 0.0 {
        impact_usd / usd_per_price / size.abs()
    } else {
        0.0
    };
    let price = if size < 0.0 { (crossing - impact).max(0.0) } else { crossing + impact };
    let price = Error::finite(field, price)?;
    Ok(Execution {
        price,
        mark,
        cost_usd: size.abs() * (mark - price).abs() * usd_per_price,
        notional_usd: size.abs() * info.notional_usd,
        usd_per_price,
    })
}
