use super::*;
use crate::limits::HORIZON_DAYS_MAX;

/// Relative tolerance of identities that hold exactly in real arithmetic but round differently
/// in floating point (a sum of scaled terms against the scaled sum).
const TOL_ROUNDING: f64 = 1e-12;

fn level(basis_points: u32) -> Confidence {
    Confidence::from_basis_points(basis_points).unwrap()
}

fn both(basis_points: u32) -> Levels {
    Levels { var: level(basis_points), es: level(basis_points) }
}

const BASEL: Levels = Levels { var: Confidence::VAR_BASEL, es: Confidence::ES_FRTB };

/// Seeded losses for identities: SplitMix64 (Steele, Lea and Flood 2014), uniform in
/// [−1000, 1000), rounded to integers when `integral` so that sums are exact.
fn losses(cells: usize, seed: u64, integral: bool) -> Vec<f64> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    (0..cells)
        .map(|_| {
            let uniform = (next() >> 11) as f64 / (1_u64 << 53) as f64;
            let loss = 2_000.0 * uniform - 1_000.0;
            if integral { loss.floor() } else { loss }
        })
        .collect()
}

#[track_caller]
fn close(actual: f64, expect: f64) {
    let scale = expect.abs().max(1.0);
    assert!((actual - expect).abs() <= TOL_ROUNDING * scale, "{actual} vs {expect}");
}

/// Tail counts are ⌈n · (1 − α)⌉ in integers: 10 and 25 of 1,000 at 99 % and 97.5 %, 3 and 7 of
/// 250. In floating point `1000 · (1 − 0.99)` rounds above 10 and its ceiling would be 11.
#[test]
fn tail_counts_are_exact() {
    assert_eq!(Confidence::VAR_BASEL.tail_count(1_000), 10);
    assert_eq!(Confidence::ES_FRTB.tail_count(1_000), 25);
    assert_eq!(Confidence::VAR_BASEL.tail_count(250), 3);
    assert_eq!(Confidence::ES_FRTB.tail_count(250), 7);
    assert_eq!(Confidence::VAR_BASEL.tail_count(1), 1);
    assert_eq!(Confidence::VAR_BASEL.tail_probability(), 0.01);
}

/// Three accounts, eight scenarios, VaR and ES at 75 % (the two worst of eight), by hand:
///
/// ```text
/// scenario   0   1   2   3   4   5   6   7
/// A          1   5  −2   3   0   4   2  −1   VaR 4 (second worst), ES (5 + 4) / 2 = 4.5
/// B          2  −1   3   0   1   1  −3   2   VaR 2, ES 2.5
/// C          0   2   1   1   3  −1   4   0   VaR 3, ES 3.5
/// book       3   6   2   4   4   4   3   1   VaR 4, ES (6 + 4) / 2 = 5
/// ```
///
/// Scenarios 3, 4 and 5 tie at a book loss of 4; the lowest index, 3, joins scenario 1 in the
/// tail. Contributions: A (5 + 3) / 2 = 4, B (−1 + 0) / 2 = −0.5, C (2 + 1) / 2 = 1.5, which sum
/// to the book's 5.
#[test]
fn hand_computed_book() {
    let cells = [
        [1.0, 5.0, -2.0, 3.0, 0.0, 4.0, 2.0, -1.0],
        [2.0, -1.0, 3.0, 0.0, 1.0, 1.0, -3.0, 2.0],
        [0.0, 2.0, 1.0, 1.0, 3.0, -1.0, 4.0, 0.0],
    ];
    let flat = cells.concat();
    let matrix = LossMatrix::new(&flat, 3, 8).unwrap();
    let accounts = account_risks(&matrix, both(7_500));
    let expect = [(4.0, 4.5), (2.0, 2.5), (3.0, 3.5)].map(|(var, es)| TailRisk { var, es });
    assert_eq!(accounts, expect);
    let book = book_risk(&matrix, both(7_500));
    assert_eq!(book.losses, [3.0, 6.0, 2.0, 4.0, 4.0, 4.0, 3.0, 1.0]);
    assert_eq!(book.risk, TailRisk { var: 4.0, es: 5.0 });
    assert_eq!(book.tail, [1, 3]);
    assert_eq!(book.contributions, [4.0, -0.5, 1.5]);
}

/// Euler's theorem: the contributions sum to the book's ES, exactly for integer losses and a
/// tail of 8 (320 scenarios at 97.5 %, so every division is by a power of two), within rounding
/// otherwise; and no account contributes more than its own ES.
#[test]
fn contributions_sum_to_the_book_es() {
    let (accounts, scenarios) = (5_000, 320);
    let flat = losses(accounts * scenarios, 7, true);
    let matrix = LossMatrix::new(&flat, accounts, scenarios).unwrap();
    let book = book_risk(&matrix, BASEL);
    assert_eq!(book.tail.len(), 8);
    assert_eq!(book.contributions.iter().sum::<f64>(), book.risk.es);
    let own = account_risks(&matrix, BASEL);
    assert!(book.contributions.iter().zip(&own).all(|(c, risk)| *c <= risk.es));
    let flat = losses(accounts * 250, 8, false);
    let book = book_risk(&LossMatrix::new(&flat, accounts, 250).unwrap(), BASEL);
    close(book.contributions.iter().sum(), book.risk.es);
}

/// ES is at least VaR at the same level, for every account and for the book.
#[test]
fn es_is_at_least_var() {
    let flat = losses(300 * 250, 11, false);
    let matrix = LossMatrix::new(&flat, 300, 250).unwrap();
    for basis_points in [9_000, 9_750, 9_900, 9_990] {
        let levels = both(basis_points);
        assert!(account_risks(&matrix, levels).iter().all(|risk| risk.es >= risk.var));
        let book = book_risk(&matrix, levels).risk;
        assert!(book.es >= book.var, "{basis_points}: {book:?}");
    }
}

/// Positive homogeneity: losses scaled by 4 (exact in binary) scale every figure by exactly 4;
/// by 3, within rounding (and the accounts' VaR, one cell each, exactly).
#[test]
fn figures_are_positively_homogeneous() {
    let flat = losses(3_000 * 250, 13, false);
    let matrix = LossMatrix::new(&flat, 3_000, 250).unwrap();
    let (accounts, book) = (account_risks(&matrix, BASEL), book_risk(&matrix, BASEL));
    for c in [4.0, 3.0] {
        let scaled: Vec<f64> = flat.iter().map(|loss| c * loss).collect();
        let scaled = LossMatrix::new(&scaled, 3_000, 250).unwrap();
        for (risk, base) in account_risks(&scaled, BASEL).iter().zip(&accounts) {
            assert_eq!(risk.var, c * base.var);
            close(risk.es, c * base.es);
        }
        let scaled_book = book_risk(&scaled, BASEL);
        close(scaled_book.risk.var, c * book.risk.var);
        close(scaled_book.risk.es, c * book.risk.es);
        if c == 4.0 {
            assert_eq!(scaled_book.risk.es, c * book.risk.es);
            assert_eq!(scaled_book.tail, book.tail);
        }
    }
}

/// A book of one account has that account's figures, bit for bit, by every route.
#[test]
fn a_single_account_book_is_the_account() {
    let flat = losses(1_000, 17, false);
    let matrix = LossMatrix::new(&flat, 1, 1_000).unwrap();
    let book = book_risk(&matrix, BASEL);
    assert_eq!(book.risk, account_risks(&matrix, BASEL)[0]);
    assert_eq!(book.risk, tail_risk(&flat, BASEL).unwrap());
    assert_eq!(book.contributions, [book.risk.es]);
}

/// The book's figures do not depend on the number of threads.
#[test]
fn figures_do_not_depend_on_the_thread_count() {
    let flat = losses(10_000 * 100, 19, false);
    let matrix = LossMatrix::new(&flat, 10_000, 100).unwrap();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| (book_risk(&matrix, BASEL), account_risks(&matrix, BASEL)))
    };
    assert_eq!(run(1), run(4));
}

#[test]
fn bad_matrices_are_named() {
    let mut flat = vec![0.0; 6];
    assert_eq!(LossMatrix::new(&flat, 2, 4).unwrap_err().field, "losses");
    assert_eq!(LossMatrix::new(&flat, 0, 6).unwrap_err().field, "losses");
    flat[5] = f64::INFINITY;
    let error = LossMatrix::new(&flat, 2, 3).unwrap_err();
    let at = Location::Cell { account: 1, scenario: 2 };
    assert_eq!(error, Error::new("losses", Some(at), ErrorKind::NotFinite));
    let too_long = vec![0.0; HISTORY_SCENARIOS_MAX + 1];
    assert_eq!(tail_risk(&too_long, BASEL).unwrap_err().field, "scenarios");
}

/// Filtered historical simulation by hand, λ = 0.5, returns 0.1 and 0.3: the recursion starts at
/// the mean square 0.05, forecasts 0.05 then 0.5 · 0.05 + 0.5 · 0.01 = 0.03, and today's
/// variance is 0.5 · 0.03 + 0.5 · 0.09 = 0.06; so the scenarios are 0.1 · √(0.06 / 0.05) and
/// 0.3 · √(0.06 / 0.03).
#[test]
fn filtered_scenarios_by_hand() {
    let scaled = filtered_scenarios(&[0.1, 0.3], 0.5).unwrap();
    close(scaled[0], 0.1 * 1.2_f64.sqrt());
    close(scaled[1], 0.3 * 2.0_f64.sqrt());
    assert_eq!(RISKMETRICS_LAMBDA, 0.94);
}

/// Returns of constant size keep their size (every forecast equals today's), scaling the
/// returns scales the scenarios, and zero returns stay zero.
#[test]
fn filtered_scenarios_identities() {
    let constant: Vec<f64> = (0..500).map(|i| if i % 3 == 0 { -0.02 } else { 0.02 }).collect();
    let scaled = filtered_scenarios(&constant, RISKMETRICS_LAMBDA).unwrap();
    scaled.iter().zip(&constant).for_each(|(s, r)| close(*s, *r));
    let returns: Vec<f64> = losses(500, 23, false).iter().map(|l| l / 20_000.0).collect();
    let base = filtered_scenarios(&returns, RISKMETRICS_LAMBDA).unwrap();
    let doubled: Vec<f64> = returns.iter().map(|r| 2.0 * r).collect();
    let doubled = filtered_scenarios(&doubled, RISKMETRICS_LAMBDA).unwrap();
    doubled.iter().zip(&base).for_each(|(d, b)| close(*d, 2.0 * b));
    assert_eq!(filtered_scenarios(&[0.0; 5], RISKMETRICS_LAMBDA).unwrap(), [0.0; 5]);
    assert_eq!(filtered_scenarios(&[0.1], 1.0).unwrap_err().field, "lambda");
    assert_eq!(filtered_scenarios(&[], 0.9).unwrap_err().field, "returns");
    let error = filtered_scenarios(&[0.1, f64::NAN], 0.9).unwrap_err();
    assert_eq!(error.at, Some(Location::Index(1)));
}

/// √10 scaling of a one-day figure, and overlapping sums that add consecutive days.
#[test]
fn ten_day_figures() {
    assert_eq!(square_root_of_time(1.0, 10).unwrap(), 10.0_f64.sqrt());
    assert_eq!(square_root_of_time(3.5, 4).unwrap(), 7.0);
    assert!(square_root_of_time(1.0, 0).is_err());
    assert!(square_root_of_time(1.0, HORIZON_DAYS_MAX + 1).is_err());
    let daily = [1.0, 2.0, 3.0, 4.0, 5.0];
    assert_eq!(overlapping_sums(&daily, 2).unwrap(), [3.0, 5.0, 7.0, 9.0]);
    assert_eq!(overlapping_sums(&daily, 1).unwrap(), daily);
    assert_eq!(overlapping_sums(&daily, 5).unwrap(), [15.0]);
    assert_eq!(overlapping_sums(&daily, 6).unwrap_err().field, "horizon_days");
}
