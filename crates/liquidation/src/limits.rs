//! The bounds of this crate's inputs and searches, named with their unit last.

/// Engine evaluations one liquidation plan may use: a book of a hundred positions planned
/// greedily over a few rounds fits with room.
pub const PLAN_EVALUATIONS_MAX: usize = 200_000;
/// Rounds one plan may take (dYdX's 10 % per block needs a few dozen for a whole book).
pub const PLAN_ROUNDS_MAX: usize = 1_000;
/// Bisection steps cutting the last sale to the least size that reaches the target: 2^-30 of
/// the position.
pub const PLAN_BISECTION_STEPS: usize = 30;
/// Halvings of one position's sale tried when selling all of it does not help (a quarter at
/// the least).
pub const PLAN_CHUNK_HALVINGS: usize = 2;
/// Accounts of one simulated exchange.
pub const SIM_ACCOUNTS_MAX: usize = 4_000_000;
/// Steps of one simulated price path.
pub const SIM_STEPS_MAX: usize = 100_000;
/// Simulated liquidators.
pub const LIQUIDATORS_MAX: usize = 1_000;
