//! The two distributions the coverage tests need, in closed form.

/// Degrees of freedom of a chi-square distribution that has a closed form here.
///
/// Kupiec's and Christoffersen's statistics have one degree of freedom, the conditional-coverage
/// statistic two; both cumulative distributions are elementary functions (erfc and exp), so no
/// incomplete-gamma series with its own iteration limit and tolerance is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DegreesOfFreedom {
    /// χ²(1): the square of one standard normal.
    One,
    /// χ²(2): an exponential with mean 2.
    Two,
}

/// `P(X ≤ x)` for `X ~ χ²(dof)`; 0 for `x ≤ 0`.
///
/// χ²(1): `erf(√(x/2))`; χ²(2): `1 − e^(−x/2)`.
#[must_use]
pub fn chi_square_cdf(x: f64, dof: DegreesOfFreedom) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    match dof {
        DegreesOfFreedom::One => libm::erf((x / 2.0).sqrt()),
        DegreesOfFreedom::Two => -(-x / 2.0).exp_m1(),
    }
}

/// `P(X > x)` for `X ~ χ²(dof)`, the p-value of a statistic `x`; 1 for `x ≤ 0`.
///
/// Computed directly (`erfc(√(x/2))`, `e^(−x/2)`) rather than as `1 − cdf`, so that small
/// p-values keep their digits instead of cancelling to 0.
#[must_use]
pub fn chi_square_survival(x: f64, dof: DegreesOfFreedom) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    match dof {
        DegreesOfFreedom::One => libm::erfc((x / 2.0).sqrt()),
        DegreesOfFreedom::Two => (-x / 2.0).exp(),
    }
}

/// The binomial probabilities `P(X = j)` for `j = 0, 1, …, trials`, `X ~ B(trials, probability)`,
/// `probability` strictly between 0 and 1.
///
/// Each term is `exp(ln C(n, j) + j ln p + (n − j) ln(1 − p))` with the binomial coefficient
/// from log-gamma: independent terms, so no error accumulates along the sequence, and no
/// underflow of `(1 − p)^n` when `n · p` is in the thousands.
pub(crate) fn binomial_probabilities(trials: usize, probability: f64) -> impl Iterator<Item = f64> {
    assert!(
        probability > 0.0 && probability < 1.0,
        "Invariant: a binomial probability is strictly between 0 and 1"
    );
    let n = trials as f64;
    let (ln_p, ln_q) = (probability.ln(), (-probability).ln_1p());
    let ln_n_factorial = libm::lgamma(n + 1.0);
    (0..=trials).map(move |j| {
        let j = j as f64;
        let ln_choose = ln_n_factorial - libm::lgamma(j + 1.0) - libm::lgamma(n - j + 1.0);
        (ln_choose + j * ln_p + (n - j) * ln_q).exp()
    })
}

/// `P(X ≤ successes)` for `X ~ B(trials, probability)`, `probability` strictly between 0 and 1;
/// at most 1.
#[must_use]
pub fn binomial_cdf(successes: usize, trials: usize, probability: f64) -> f64 {
    let terms = binomial_probabilities(trials, probability).take(successes.saturating_add(1));
    terms.sum::<f64>().min(1.0)
}
