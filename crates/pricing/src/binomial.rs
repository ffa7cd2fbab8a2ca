//! A Leisen-Reimer binomial tree for European and American exercise.
//!
//! Every Deribit option is European, so the tree exists for completeness: American options on
//! other venues, and an independent check of the closed forms (the European tree converges to
//! Black-Scholes at second order in the step count). Leisen and Reimer choose the up and down
//! probabilities by the Peizer-Pratt inversion of the normal distribution, which centres the tree
//! on the strike and removes the odd/even oscillation of Cox-Ross-Rubinstein.

use basics::limits::BINOMIAL_STEPS_MAX;
use product::{Exercise, Settlement};

use crate::{Error, ErrorKind, EuropeanInputs, Model};

/// Value and tree Greeks of an option priced on a binomial tree.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TreeValue {
    /// Present value.
    pub price: f64,
    /// ∂V/∂u from the two nodes after the first step.
    pub delta: f64,
    /// ∂²V/∂u² from the three nodes after the second step.
    pub gamma: f64,
    /// The number of steps used (the request rounded up to an odd number).
    pub steps: usize,
}

/// A tree value with the Greeks the tree itself does not give: vega, rho and theta, each by
/// differences of trees with the same steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TreeGreeks {
    /// The tree's value, delta and gamma.
    pub tree: TreeValue,
    /// ∂V/∂σ, central difference with a bump of 1e-4.
    pub vega: f64,
    /// ∂V/∂r, central difference with a bump of 1e-5.
    pub rho: f64,
    /// ∂V/∂t (calendar time passing), forward difference over the smaller of 1/1000 of the
    /// option's life and one day.
    pub theta: f64,
}

/// [`leisen_reimer`] with vega, rho and theta by bumping the inputs and repricing on trees of the
/// same step count (the tree has no closed-form sensitivities to them).
///
/// # Errors
/// As [`leisen_reimer`] on the base or any bumped input.
pub fn leisen_reimer_greeks(
    inputs: &EuropeanInputs,
    exercise: Exercise,
    steps: usize,
) -> Result<TreeGreeks, Error> {
    const VOL_BUMP: f64 = 1e-4;
    const RATE_BUMP: f64 = 1e-5;
    let tree = leisen_reimer(inputs, exercise, steps)?;
    let s = *inputs.spec();
    let price = |spec: crate::EuropeanSpec| -> Result<f64, Error> {
        Ok(leisen_reimer(&EuropeanInputs::new(spec)?, exercise, steps)?.price)
    };
    let vega = (price(crate::EuropeanSpec { vol: s.vol + VOL_BUMP, ..s })?
        - price(crate::EuropeanSpec { vol: s.vol - VOL_BUMP, ..s })?)
        / (2.0 * VOL_BUMP);
    let rho = (price(crate::EuropeanSpec { rate: s.rate + RATE_BUMP, ..s })?
        - price(crate::EuropeanSpec { rate: s.rate - RATE_BUMP, ..s })?)
        / (2.0 * RATE_BUMP);
    let dt = (s.years * 1e-3).min(1.0 / basics::DAYS_PER_YEAR);
    let theta = (price(crate::EuropeanSpec { years: s.years - dt, ..s })? - tree.price) / dt;
    Ok(TreeGreeks { tree, vega, rho, theta })
}

/// Peizer-Pratt method 2: a binomial probability whose distribution matches N(z) for `n` steps.
fn peizer_pratt(z: f64, n: f64) -> f64 {
    let scaled = z / (n + 1.0 / 3.0 + 0.1 / (n + 1.0));
    let root = (0.25 - 0.25 * (-(scaled * scaled) * (n + 1.0 / 6.0)).exp()).sqrt();
    0.5 + z.signum() * root
}

/// Prices `inputs` on a Leisen-Reimer tree with `steps` steps (rounded up to odd).
///
/// For Black-76 the forward is the tree's underlying with zero drift; for BSM the spot drifts at
/// `rate - dividend`. Early exercise compares with the intrinsic value at each node.
///
/// # Errors
/// `OutOfRange` for fewer than 3 or more than [`BINOMIAL_STEPS_MAX`] steps; `Unsupported` for
/// inverse settlement (no venue lists American coin-settled options) or when `vol · √years` is 0.
pub fn leisen_reimer(
    inputs: &EuropeanInputs,
    exercise: Exercise,
    steps: usize,
) -> Result<TreeValue, Error> {
    if !(3..=BINOMIAL_STEPS_MAX).contains(&steps) {
        let rule = format!("must be in [3, {BINOMIAL_STEPS_MAX}], got {steps}");
        return Err(Error::range("steps", rule));
    }
    let s = inputs.spec();
    if s.settlement == Settlement::Inverse {
        let why = "the binomial tree prices linear options only";
        return Err(Error::new("inverse", ErrorKind::Unsupported(why.into())));
    }
    let total_vol = s.vol * s.years.sqrt();
    if total_vol <= 0.0 {
        let why = "a tree needs vol * sqrt(years) > 0; use the closed form for intrinsic value";
        return Err(Error::new("vol", ErrorKind::Unsupported(why.into())));
    }
    let n = steps | 1;
    let carry_rate = match s.model {
        Model::Black76 => 0.0,
        Model::BlackScholesMerton => s.rate - s.dividend,
    };
    let dt = s.years / n as f64;
    let d1 = ((s.underlying / s.strike).ln() + carry_rate * s.years) / total_vol + 0.5 * total_vol;
    let d2 = d1 - total_vol;
    let p_asset = peizer_pratt(d1, n as f64);
    let p = peizer_pratt(d2, n as f64);
    let growth = (carry_rate * dt).exp();
    let up = growth * p_asset / p;
    let down = (growth - p * up) / (1.0 - p);
    let discount = (-s.rate * dt).exp();
    let omega = s.right.sign();
    let payoff = |price: f64| (omega * (price - s.strike)).max(0.0);
    let node_price = |step: usize, ups: usize| {
        s.underlying * up.powi(ups as i32) * down.powi((step - ups) as i32)
    };
    let mut values: Vec<f64> = (0..=n).map(|j| payoff(node_price(n, j))).collect();
    let mut level_two = [0.0; 3];
    let mut level_one = [0.0; 2];
    for step in (0..n).rev() {
        for j in 0..=step {
            let continuation = discount * (p * values[j + 1] + (1.0 - p) * values[j]);
            values[j] = match exercise {
                Exercise::European => continuation,
                Exercise::American => continuation.max(payoff(node_price(step, j))),
            };
        }
        if step == 2 {
            level_two.copy_from_slice(&values[..3]);
        } else if step == 1 {
            level_one.copy_from_slice(&values[..2]);
        }
    }
    let (s10, s11) = (node_price(1, 0), node_price(1, 1));
    let (s20, s21, s22) = (node_price(2, 0), node_price(2, 1), node_price(2, 2));
    let delta = (level_one[1] - level_one[0]) / (s11 - s10);
    let delta_up = (level_two[2] - level_two[1]) / (s22 - s21);
    let delta_down = (level_two[1] - level_two[0]) / (s21 - s20);
    let gamma = (delta_up - delta_down) / (0.5 * (s22 - s20));
    Ok(TreeValue { price: values[0], delta, gamma, steps: n })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::european::EuropeanSpec;
    use crate::{european, price};
    use product::OptionRight;

    fn bsm(right: OptionRight, k: f64, s: f64, q: f64, r: f64, t: f64, v: f64) -> EuropeanInputs {
        EuropeanInputs::new(EuropeanSpec {
            model: Model::BlackScholesMerton,
            underlying: s,
            strike: k,
            years: t,
            vol: v,
            rate: r,
            dividend: q,
            right,
            settlement: Settlement::Linear,
        })
        .unwrap()
    }

    #[test]
    fn european_tree_converges_to_closed_form() {
        for right in [OptionRight::Call, OptionRight::Put] {
            for (k, t, v) in [(100.0, 0.5, 0.3), (80.0, 1.0, 0.8), (130.0, 0.1, 0.5)] {
                let option = bsm(right, k, 100.0, 0.01, 0.05, t, v);
                let exact = european(&option);
                let coarse = leisen_reimer(&option, Exercise::European, 101).unwrap();
                let fine = leisen_reimer(&option, Exercise::European, 1001).unwrap();
                let (e_coarse, e_fine) =
                    ((coarse.price - exact.price).abs(), (fine.price - exact.price).abs());
                assert!(e_fine < 2e-5, "{right:?} K={k}: error {e_fine:e}");
                // Second-order convergence: ten times the steps, about a hundred times less error.
                assert!(e_fine < e_coarse / 30.0 || e_fine < 1e-9, "{e_coarse:e} -> {e_fine:e}");
                assert!(
                    (fine.delta - exact.delta).abs() < 2e-3,
                    "delta {} vs {}",
                    fine.delta,
                    exact.delta
                );
                assert!(
                    (fine.gamma - exact.gamma).abs() < 2e-3,
                    "gamma {} vs {}",
                    fine.gamma,
                    exact.gamma
                );
            }
        }
    }

    /// The bumped tree Greeks of a European exercise match the closed form's vega, rho and theta
    /// (the tree converges to it), and an American put's bumped vega stays positive.
    #[test]
    fn bumped_tree_greeks_match_the_closed_form() {
        for right in [OptionRight::Call, OptionRight::Put] {
            let option = bsm(right, 100.0, 100.0, 0.01, 0.05, 0.5, 0.3);
            let exact = european(&option);
            let g = leisen_reimer_greeks(&option, Exercise::European, 1001).unwrap();
            assert!(
                (g.vega - exact.vega).abs() < 1e-3 * exact.vega,
                "{} vs {}",
                g.vega,
                exact.vega
            );
            assert!(
                (g.rho - exact.rho).abs() < 2e-3 * exact.rho.abs(),
                "{} vs {}",
                g.rho,
                exact.rho
            );
            assert!(
                (g.theta - exact.theta).abs() < 2e-2 * exact.theta.abs(),
                "{} vs {}",
                g.theta,
                exact.theta
            );
            assert_eq!(g.tree, leisen_reimer(&option, Exercise::European, 1001).unwrap());
        }
        let put = bsm(OptionRight::Put, 110.0, 100.0, 0.0, 0.05, 1.0, 0.3);
        assert!(leisen_reimer_greeks(&put, Exercise::American, 501).unwrap().vega > 0.0);
    }

    /// American values from QuantLib 1.44's own Leisen-Reimer engine at 20,001 steps (its
    /// finite-difference engine agrees to 2e-4): (right, strike, spot, q, r, t, vol, value).
    #[test]
    fn american_reference_values() {
        use OptionRight::{Call, Put};
        let cases = [
            (Put, 40.0, 36.0, 0.0, 0.06, 1.0, 0.2, 4.486_651),
            (Call, 40.0, 42.0, 0.08, 0.04, 0.75, 0.35, 5.309_053),
            (Put, 100.0, 100.0, 0.0, 0.05, 0.5, 0.3, 7.394_044),
            (Put, 100.0, 90.0, 0.02, 0.08, 2.0, 0.45, 23.202_320),
            (Call, 100.0, 110.0, 0.10, 0.03, 1.0, 0.25, 12.893_877),
            (Put, 60.0, 55.0, 0.0, 0.10, 0.25, 0.6, 8.884_232),
        ];
        for (right, k, s, q, r, t, v, expected) in cases {
            let option = bsm(right, k, s, q, r, t, v);
            let tree = leisen_reimer(&option, Exercise::American, 2001).unwrap();
            assert!(
                (tree.price - expected).abs() < 1e-3,
                "{right:?} K={k}: {} vs {expected}",
                tree.price
            );
            // Early exercise is a right, never an obligation.
            assert!(tree.price >= price(&option) - 1e-9);
        }
    }

    #[test]
    fn american_call_without_dividend_is_european() {
        let option = bsm(OptionRight::Call, 100.0, 100.0, 0.0, 0.05, 1.0, 0.4);
        let american = leisen_reimer(&option, Exercise::American, 801).unwrap().price;
        let european = leisen_reimer(&option, Exercise::European, 801).unwrap().price;
        assert!((american - european).abs() < 1e-12);
    }

    #[test]
    fn rejects_unsupported_requests() {
        let option = bsm(OptionRight::Put, 100.0, 100.0, 0.0, 0.05, 1.0, 0.4);
        assert_eq!(leisen_reimer(&option, Exercise::American, 1).unwrap_err().field, "steps");
        let flat = option.with_vol(0.0).unwrap();
        assert_eq!(leisen_reimer(&flat, Exercise::American, 101).unwrap_err().field, "vol");
    }
}
