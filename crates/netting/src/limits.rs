//! The crate's limits, named with their units last.

/// Most venues in one cross-venue book.
pub const VENUES_MAX: usize = 64;
/// Most liens one account may hold.
pub const LIENS_MAX: usize = 256;
/// Most accounts in one cross-venue book.
pub const ACCOUNTS_MAX: usize = 10_000_000;
/// Largest quantum of a committed vector cell, in USD: coarser cells would lose the P&L of
/// ordinary accounts.
pub const QUANTUM_MAX_USD: f64 = 1.0;
/// Longest staleness bound or grace period, in seconds (30 days).
pub const WINDOW_MAX_SECS: u64 = 30 * 86_400;
/// Accounts netted together by one thread, in accounts: their vectors are hashed four at a
/// time, and a chunk's encoded vectors (about 2 kB per account) stay in the core's cache.
pub const HASH_CHUNK_ACCOUNTS: usize = 64;
