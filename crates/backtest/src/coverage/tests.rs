use super::*;
use Zone::{Green, Red, Yellow};

/// The published statistics are quoted to six significant digits.
const TOL_PUBLISHED: f64 = 1e-6;

fn level(basis_points: u32) -> Confidence {
    Confidence::from_basis_points(basis_points).unwrap()
}

/// A series of `count` observations with a requirement of 1 and a loss of 2 on the 0-based
/// `exceeded` indices (a loss of 0 elsewhere).
fn series(count: usize, exceeded: &[usize]) -> Vec<Observation> {
    let mut out = vec![Observation { requirement: 1.0, loss: 0.0 }; count];
    for &index in exceeded {
        out[index].loss = 2.0;
    }
    out
}

#[track_caller]
fn close(actual: f64, expect: f64, tol: f64) {
    assert!((actual - expect).abs() <= tol, "{actual} vs {expect}");
}

/// χ² critical values (research/systemic.md E.1): 3.841459 and 6.634897 with one degree of
/// freedom, 5.991465 and 9.210340 with two, at 95 % and 99 %.
#[test]
fn chi_square_critical_values() {
    use DegreesOfFreedom::{One, Two};
    for (x, dof, p) in [(3.841_459, One, 0.95), (6.634_897, One, 0.99)]
        .into_iter()
        .chain([(5.991_465, Two, 0.95), (9.210_340, Two, 0.99)])
    {
        close(chi_square_cdf(x, dof), p, TOL_PUBLISHED);
        close(chi_square_survival(x, dof), 1.0 - p, TOL_PUBLISHED);
        // The quantile, found by bisection on the CDF, is the published value to 1e-3.
        let (mut low, mut high) = (0.0_f64, 50.0_f64);
        for _ in 0..100 {
            let mid = 0.5 * (low + high);
            if chi_square_cdf(mid, dof) < p { low = mid } else { high = mid }
        }
        close(low, x, 1e-3);
    }
    assert_eq!(chi_square_cdf(0.0, One), 0.0);
    assert_eq!(chi_square_survival(-1.0, Two), 1.0);
}

/// Kupiec's non-rejection regions at 5 % (research/systemic.md E.1): the counts whose LR_POF is
/// below 3.841 form exactly the published interval. Zero exceedances at T = 250, p = 1 % reject
/// (LR = 5.025): a model that never breaches in a year is too conservative.
#[test]
fn kupiec_non_rejection_regions() {
    for (observations, basis_points, first, last) in [
        (250, 9_900, 1, 6),
        (500, 9_900, 2, 9),
        (1_000, 9_900, 5, 16),
        (250, 9_750, 3, 11),
        (500, 9_750, 7, 19),
        (250, 9_950, 0, 4),
        (1_000, 9_950, 2, 9),
    ] {
        let accepted: Vec<usize> = (0..=observations)
            .filter(|&x| !kupiec(observations, x, level(basis_points)).unwrap().rejects(0.05))
            .collect();
        assert_eq!(accepted, (first..=last).collect::<Vec<_>>(), "T {observations}");
    }
    close(kupiec(250, 4, level(9_900)).unwrap().statistic, 0.769_138, TOL_PUBLISHED);
    close(kupiec(250, 0, level(9_900)).unwrap().statistic, 5.025_168, TOL_PUBLISHED);
}

/// MathWorks `varbacktest` `pof` example (research/tradfi-margin.md §6.7): 57 failures in 1,043
/// observations at 95 % give LRatioPOF 0.46147 and PValuePOF 0.49694.
#[test]
fn kupiec_matches_mathworks() {
    let lr = kupiec(1_043, 57, level(9_500)).unwrap();
    close(lr.statistic, 0.461_47, 1e-5);
    close(lr.p_value, 0.496_94, 1e-5);
}

/// research/tradfi-margin.md §6.7: exceptions on days 50, 51, 120, 180, 181 and 182 of 250 at
/// 99 % give n00 = 240, n01 = n10 = n11 = 3, LR_POF = 3.555355, LR_ind = 15.915297 and
/// LR_cc = 19.470651 (p ≈ 0.0594 and 5.9e-5): clustered exceedances fail independence though
/// their number passes Kupiec.
#[test]
fn clustered_exceedances_fail_independence() {
    let days = [50, 51, 120, 180, 181, 182].map(|day: usize| day - 1);
    let result = coverage(&series(250, &days), Confidence::VAR_BASEL).unwrap();
    assert_eq!(result.transitions, Transitions { n00: 240, n01: 3, n10: 3, n11: 3 });
    close(result.proportion_of_failures.statistic, 3.555_355, TOL_PUBLISHED);
    close(result.independence.statistic, 15.915_297, TOL_PUBLISHED);
    close(result.conditional_coverage.statistic, 19.470_651, TOL_PUBLISHED);
    close(result.proportion_of_failures.p_value, 0.0594, 1e-4);
    close(result.conditional_coverage.p_value, 5.9e-5, 1e-6);
    assert!(!result.proportion_of_failures.rejects(0.05));
    assert!(result.independence.rejects(0.01) && result.conditional_coverage.rejects(0.01));
    assert_eq!((result.exceedances, result.rate, result.zone), (6, 0.024, Zone::Yellow));
}

/// The same number spread evenly (every 50th day) passes independence: no exceedance follows
/// another, and the fitted transition probabilities are close to the unconditional one.
#[test]
fn spread_exceedances_pass_independence() {
    let result = coverage(&series(250, &[25, 75, 125, 175, 225]), Confidence::VAR_BASEL).unwrap();
    assert_eq!(result.transitions, Transitions { n00: 239, n01: 5, n10: 5, n11: 0 });
    assert!(!result.independence.rejects(0.05), "{:?}", result.independence);
    assert!(!result.conditional_coverage.rejects(0.05));
}

/// No exceedance, only exceedances, and a single observation give finite statistics by the
/// limits `0 · ln 0 = 0`: LR_POF = −2T ln(1 − p) and −2T ln p, and no independence evidence.
#[test]
fn edge_cases_are_finite() {
    let none = coverage(&series(250, &[]), Confidence::VAR_BASEL).unwrap();
    close(none.proportion_of_failures.statistic, -500.0 * 0.99_f64.ln(), 1e-12);
    assert_eq!(none.independence, LikelihoodRatio { statistic: 0.0, p_value: 1.0 });
    assert_eq!(none.magnitudes, Magnitudes { worst_first: vec![], mean: None, max: None });
    assert_eq!(none.zone, Zone::Green);
    let all: Vec<usize> = (0..250).collect();
    let all = coverage(&series(250, &all), Confidence::VAR_BASEL).unwrap();
    close(all.proportion_of_failures.statistic, -500.0 * 0.01_f64.ln(), 1e-9);
    assert_eq!(all.transitions, Transitions { n00: 0, n01: 0, n10: 0, n11: 249 });
    assert_eq!(all.independence.statistic, 0.0);
    assert_eq!((all.rate, all.zone), (1.0, Zone::Red));
    let one = coverage(&series(1, &[0]), Confidence::VAR_BASEL).unwrap();
    assert_eq!((one.transitions, one.independence.p_value), (Transitions::default(), 1.0));
    for result in [none, all, one] {
        let statistics =
            [result.proportion_of_failures, result.independence, result.conditional_coverage];
        assert!(statistics.iter().all(|lr| lr.statistic.is_finite() && lr.p_value.is_finite()));
    }
}

/// The Basel traffic light for 250 observations at 99 %: green 0–4, yellow 5–9, red from 10,
/// from the binomial probabilities F(4) = 0.892188, F(5) = 0.958817, F(9) = 0.999750 and
/// F(10) = 0.999946 (research/tradfi-margin.md §4.2, the percentages of the Basel Committee's
/// 1996 backtesting framework); and the other sizes of research/systemic.md E.2.
#[test]
fn basel_zones() {
    for (x, cumulative) in [(4, 0.892_188), (5, 0.958_817), (9, 0.999_750), (10, 0.999_946)] {
        close(binomial_cdf(x, 250, 0.01), cumulative, TOL_PUBLISHED);
    }
    let bounds = ZoneBounds::new(250, Confidence::VAR_BASEL).unwrap();
    assert_eq!(bounds, ZoneBounds { yellow_from: 5, red_from: 10 });
    let zones: Vec<Zone> = [0, 4, 5, 9, 10, 250].map(|x| bounds.zone(x)).to_vec();
    assert_eq!(zones, [Green, Green, Yellow, Yellow, Red, Red]);
    for (observations, basis_points, green_max, yellow_max) in
        [(250, 9_750, 10, 16), (500, 9_900, 8, 14), (1_000, 9_900, 14, 23)]
    {
        let bounds = ZoneBounds::new(observations, level(basis_points)).unwrap();
        let expect = ZoneBounds { yellow_from: green_max + 1, red_from: yellow_max + 1 };
        assert_eq!(bounds, expect, "T {observations}");
    }
    // Binomial identities: the distribution sums to one, and B(n, 1/2) is symmetric.
    close(binomial_cdf(250, 250, 0.01), 1.0, 1e-12);
    close(binomial_cdf(4, 9, 0.5), 0.5, 1e-12);
    // A large sample, where (1 − p)^n underflows, still has its mean at the median.
    close(binomial_cdf(9_999, 1_000_000, 0.01), 0.5, 0.01);
}

/// Rolling 250-observation windows: each window's count is its own, and the zone moves from
/// green to red and back as a cluster of ten enters and leaves.
#[test]
fn window_zones_follow_the_cluster() {
    let cluster: Vec<usize> = (300..310).collect();
    let observations = series(600, &cluster);
    let zones = window_zones(&observations, Confidence::VAR_BASEL, 250).unwrap();
    assert_eq!(zones.len(), 351);
    for window in &zones {
        let inside = cluster.iter().filter(|&&i| (window.start..window.start + 250).contains(&i));
        assert_eq!(window.exceedances, inside.count(), "start {}", window.start);
    }
    // The window starting at s holds s − 50 of the cluster while it enters (51 ≤ s ≤ 60) and
    // 310 − s while it leaves (300 ≤ s ≤ 309).
    let starts = [0, 54, 55, 59, 60, 300, 301, 305, 306, 350];
    let at: Vec<Zone> = starts.iter().map(|&start| zones[start].zone).collect();
    assert_eq!(at, [Green, Green, Yellow, Yellow, Red, Red, Yellow, Yellow, Green, Green]);
    let error = window_zones(&observations, Confidence::VAR_BASEL, 601).unwrap_err();
    assert_eq!(error.field, "window");
}

/// Magnitudes are the excess losses, worst first, with their mean and maximum; a loss equal to
/// the requirement is covered.
#[test]
fn magnitudes_of_the_exceedances() {
    let observations = [(10.0, 12.0), (10.0, 10.0), (5.0, 9.0), (7.0, 1.0), (3.0, 4.0)]
        .map(|(requirement, loss)| Observation { requirement, loss });
    let result = coverage(&observations, Confidence::VAR_BASEL).unwrap();
    let expect =
        Magnitudes { worst_first: vec![4.0, 2.0, 1.0], mean: Some(7.0 / 3.0), max: Some(4.0) };
    assert_eq!(result.magnitudes, expect);
    assert_eq!(result.exceedances, 3);
}

#[test]
fn bad_inputs_are_named() {
    let mut observations = series(10, &[]);
    observations[7].loss = f64::NAN;
    let error = coverage(&observations, Confidence::VAR_BASEL).unwrap_err();
    assert_eq!(error, Error::new("loss", Some(Location::Index(7)), ErrorKind::NotFinite));
    assert_eq!(coverage(&[], Confidence::VAR_BASEL).unwrap_err().field, "observations");
    assert_eq!(kupiec(10, 11, Confidence::VAR_BASEL).unwrap_err().field, "exceedances");
    assert!(Confidence::from_basis_points(10_000).is_err());
    assert!(Confidence::from_basis_points(0).is_err());
}
