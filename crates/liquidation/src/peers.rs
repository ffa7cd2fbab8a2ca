//! The peers' published liquidation formulas, each checked against the venue's own test values
//! (`../shared/research/systemic.md`, "Test cases a simulator could be checked against"). The
//! engine uses them: the auction schedule is Derive's, the fillable-price limit dYdX's, the close
//! factor and the dust rule Aave's.

/// dYdX v4 (`protocol/x/clob/keeper/liquidations.go`).
pub mod dydx {
    /// The adjusted bankruptcy rating `clamp(BA · (1 − TNC / TMMR), 0, 1)`: 0 for an account
    /// exactly at MM, 1 at or below zero net collateral.
    #[must_use]
    pub fn bankruptcy_rating(tnc: f64, tmmr: f64, ba: f64) -> f64 {
        if tmmr <= 0.0 {
            return if tnc < 0.0 { 1.0 } else { 0.0 };
        }
        (ba * (1.0 - tnc / tmmr)).clamp(0.0, 1.0)
    }

    /// The fillable price of a liquidation order closing a position of signed size `ps`
    /// (notional `pnnv = ps · oracle`, maintenance requirement `pmmr`) in a subaccount with net
    /// collateral `tnc` and requirement `tmmr`: `(PNNV − ABR · SMMR · PMMR) / PS`. A long sells
    /// no lower, a short buys back no higher.
    #[must_use]
    pub fn fillable_price(
        pnnv: f64,
        ps: f64,
        pmmr: f64,
        tnc: f64,
        tmmr: f64,
        ba: f64,
        smmr: f64,
    ) -> f64 {
        let abr = bankruptcy_rating(tnc, tmmr, ba);
        (pnnv - abr * smmr * pmmr) / ps
    }

    /// The bankruptcy value (quote the subaccount must receive) of closing `delta` of a position
    /// whose notional and requirement move by `dnnv` and `dmmr`: `−DNNV − TNC · |DMMR| / TMMR`.
    #[must_use]
    pub fn bankruptcy_value(dnnv: f64, dmmr: f64, tnc: f64, tmmr: f64) -> f64 {
        -dnnv - tnc * dmmr.abs() / tmmr
    }

    /// The insurance fund's take of one fill: `quote − bankruptcy` when positive, of which the
    /// fee `min(|quote| · fee_rate, surplus)`; a negative surplus is what the fund pays.
    #[must_use]
    pub fn fund_delta(quote: f64, bankruptcy: f64, fee_rate: f64) -> f64 {
        let surplus = quote - bankruptcy;
        if surplus > 0.0 { (quote.abs() * fee_rate).min(surplus) } else { surplus }
    }
}

/// Derive (Lyra v2 `DutchAuction.sol`), with discounts written as `1 − price factor`.
pub mod derive {
    /// The auction's discount `secs` after it started: `start` rising linearly to `fast` over
    /// `fast_secs`, then to 1 over `slow_secs`.
    #[must_use]
    pub fn discount(secs: f64, start: f64, fast: f64, fast_secs: f64, slow_secs: f64) -> f64 {
        let t = secs.max(0.0);
        if t <= fast_secs {
            start + (fast - start) * t / fast_secs
        } else {
            (fast + (1.0 - fast) * (t - fast_secs) / slow_secs).min(1.0)
        }
    }

    /// Buffer margin `MM + (MM − MtM) · pct`, Derive's `MM` being the margin surplus (equity −
    /// requirement, negative when breached).
    #[must_use]
    pub fn buffer_margin(mm: f64, mtm: f64, pct: f64) -> f64 {
        mm + (mm - mtm) * pct
    }

    /// The largest fraction of the account one bid may buy at price factor `factor`:
    /// `BM / (BM − MtM · factor − reserved · (1 − factor))`, capped at 1.
    #[must_use]
    pub fn max_fraction(bm: f64, mtm: f64, factor: f64, reserved: f64) -> f64 {
        (bm / (bm - mtm * factor - reserved * (1.0 - factor))).clamp(0.0, 1.0)
    }

    /// A solvent auction's price for the whole account: `(MtM − reserved) · factor`.
    #[must_use]
    pub fn solvent_price(mtm: f64, reserved: f64, factor: f64) -> f64 {
        (mtm - reserved) * factor
    }

    /// An insolvent auction's price, linear from `min(MtM, 0)` to `mm` (negative: paid to the
    /// bidder) over `length_secs`.
    #[must_use]
    pub fn insolvent_price(mtm: f64, mm: f64, secs: f64, length_secs: f64) -> f64 {
        let start = mtm.min(0.0);
        start + (mm - start) * (secs / length_secs).clamp(0.0, 1.0)
    }
}

/// Aave v3.3 (`LiquidationLogic.sol`).
pub mod aave {
    /// `MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD`, USD: a reserve below it may be closed whole.
    pub const FULL_CLOSE_BELOW_USD: f64 = 2_000.0;
    /// `MIN_LEFTOVER_BASE`, USD.
    pub const LEFTOVER_MIN_USD: f64 = 1_000.0;
    /// Health factor at or below which the whole debt may be closed.
    pub const FULL_CLOSE_HEALTH: f64 = 0.95;

    /// The share of the debt one liquidation may repay.
    #[must_use]
    pub fn close_factor(health: f64, debt_usd: f64, collateral_usd: f64) -> f64 {
        if health <= FULL_CLOSE_HEALTH
            || debt_usd < FULL_CLOSE_BELOW_USD
            || collateral_usd < FULL_CLOSE_BELOW_USD
        {
            1.0
        } else {
            0.5
        }
    }

    /// `MustNotLeaveDust`: unless all debt or all collateral is cleared, both leftovers must be
    /// at least [`LEFTOVER_MIN_USD`].
    #[must_use]
    pub fn leaves_dust(debt_left_usd: f64, collateral_left_usd: f64) -> bool {
        debt_left_usd > 0.0
            && collateral_left_usd > 0.0
            && (debt_left_usd < LEFTOVER_MIN_USD || collateral_left_usd < LEFTOVER_MIN_USD)
    }
}

/// Bybit's bankruptcy price of an isolated position at leverage `leverage`: `entry · L / (L + 1)`
/// for a long, `entry · L / (L − 1)` for a short.
#[must_use]
pub fn bybit_bankruptcy_price(entry: f64, leverage: f64, long: bool) -> f64 {
    if long { entry * leverage / (leverage + 1.0) } else { entry * leverage / (leverage - 1.0) }
}

/// Euler v2's liquidation discount `1 − health`, capped at `cap`.
#[must_use]
pub fn euler_discount(health: f64, cap: f64) -> f64 {
    (1.0 - health).clamp(0.0, cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) {
        assert!((a - b).abs() <= tolerance, "{a} != {b}");
    }

    /// dYdX `TestGetFillablePrice`: 0.1 BTC at 50,000, IMF 20 % / MMF 10 % (PNNV 5,000, PMMR
    /// 500), USDC −4,501 (TNC 499, TMMR 500); the default config BA 1, SMMR 0.1.
    #[test]
    fn dydx_fillable_prices_match_the_venues_table() {
        let (pnnv, pmmr, tnc, tmmr) = (5_000.0, 500.0, 499.0, 500.0);
        close(dydx::fillable_price(pnnv, 0.1, pmmr, tnc, tmmr, 1.0, 0.1), 49_999.0, 1e-9);
        close(dydx::fillable_price(pnnv, 0.1, pmmr, tnc, tmmr, 2.0, 0.1), 49_998.0, 1e-9);
        close(dydx::fillable_price(pnnv, 0.1, pmmr, tnc, tmmr, 1.0, 0.2), 49_998.0, 1e-9);
        // The mirrored short: −0.1 BTC with USDC +5,499.
        close(
            dydx::fillable_price(-pnnv, -0.1, pmmr, 5_499.0 - 5_000.0, tmmr, 1.0, 0.1),
            50_001.0,
            1e-9,
        );
        // At MM the order may fill at the oracle; at zero equity the spread is SMMR × PMMR.
        close(dydx::fillable_price(pnnv, 0.1, pmmr, 500.0, tmmr, 1.0, 0.1), 50_000.0, 1e-9);
        close(dydx::fillable_price(pnnv, 0.1, pmmr, 0.0, tmmr, 1.0, 0.1), 49_500.0, 1e-9);
        // Closing all of it must bring back the 4,501 USDC owed: bankruptcy 45,010 per BTC.
        close(dydx::bankruptcy_value(-5_000.0, -500.0, tnc, tmmr), 4_501.0, 1e-9);
        // Filled at 49,999: surplus 499.9, fee 0.5 % of 4,999.9 = 25.0.
        close(dydx::fund_delta(4_999.9, 4_501.0, 0.005), 24.9995, 1e-9);
        close(dydx::fund_delta(4_400.0, 4_501.0, 0.005), -101.0, 1e-9);
    }

    /// Derive `DutchAuctionView.t.sol`, `SolventAuction.t.sol`, `InsolventAuction.t.sol`
    /// (start 1.0, cutoff 0.8, fast 600 s, slow 7,200 s, buffer 10 %).
    #[test]
    fn derive_auction_vectors() {
        let factor = |t: f64| 1.0 - derive::discount(t, 0.0, 0.2, 600.0, 7_200.0);
        close(factor(300.0), 0.90, 1e-12);
        close(factor(600.0), 0.80, 1e-12);
        close(factor(960.0), 0.76, 1e-12);
        close(factor(7_800.0), 0.0, 1e-12);
        close(factor(1e9), 0.0, 1e-12);
        let factor = |t: f64| 1.0 - derive::discount(t, 0.04, 0.2, 300.0, 7_200.0);
        close(factor(0.0), 0.96, 1e-12);
        close(factor(150.0), 0.88, 1e-12);
        close(factor(300.0), 0.80, 1e-12);
        close(factor(300.0 + 0.9 * 7_200.0), 0.08, 1e-12);
        let bm = derive::buffer_margin(-100.0, 300.0, 0.1);
        close(bm, -140.0, 1e-12);
        close(derive::max_fraction(bm, 300.0, 1.0, 0.0), 140.0 / 440.0, 1e-12);
        close(derive::solvent_price(300.0, 0.0, 1.0), 300.0, 1e-12);
        let half_fast = 1.0 - derive::discount(300.0, 0.0, 0.2, 600.0, 7_200.0);
        close(derive::solvent_price(300.0, 0.0, half_fast), 270.0, 1e-9);
        close(derive::insolvent_price(-100.0, -300.0, 0.0, 600.0), -100.0, 1e-12);
    }

    /// Aave v3.3 `LiquidationLogic.sol`.
    #[test]
    fn aave_close_factor_and_dust() {
        assert_eq!(aave::close_factor(0.96, 10_000.0, 10_000.0), 0.5);
        assert_eq!(aave::close_factor(0.95, 10_000.0, 10_000.0), 1.0);
        assert_eq!(aave::close_factor(0.99, 1_999.0, 10_000.0), 1.0);
        assert!(aave::leaves_dust(999.0, 5_000.0));
        assert!(aave::leaves_dust(5_000.0, 999.0));
        assert!(!aave::leaves_dust(0.0, 500.0));
        assert!(!aave::leaves_dust(1_000.0, 1_000.0));
    }

    /// help.bybit.com 900000031623 and the Euler docs' example.
    #[test]
    fn bybit_bankruptcy_and_euler_discount() {
        close(bybit_bankruptcy_price(7_890.08, 50.0, true), 7_735.37, 0.005);
        close(euler_discount(1_050.0 * 0.9 / 1_000.0, 0.15), 0.055, 1e-12);
        close(euler_discount(0.5, 0.15), 0.15, 1e-12);
    }
}
