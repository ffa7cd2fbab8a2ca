//! Multi-venue portfolio margin: one account's risk netted across the venues it trades on.
//!
//! Each venue (a protocol on a chain, or an exchange) keeps its own instruments, methodology,
//! collateral rules and liquidation profile ([`Venue`]). Every venue expresses each account's
//! P&L on one published, hashed scenario set ([`StandardSet`]) as a quantised vector
//! ([`RiskVector`]) it can commit in its epoch, so that a third party nets an account's legs
//! without seeing their positions. [`Netter`] gives each account its netted requirement, never
//! above the sum of the standalone ones, and allocates it back to the venues in fixed point
//! (module `net` says how, and when netting is withdrawn).
//!
//! Pure and deterministic: valuation time, feeds' freshness and the policy are inputs; accounts
//! are netted independently, so the result is the same for any thread count.

pub mod allocate;
mod book;
mod error;
pub mod limits;
mod net;
pub mod seeded;
mod standard;
mod venue;

pub use book::{AccountInput, CrossAccount, CrossBook, Leg, Lien};
pub use error::{Error, ErrorKind};
pub use net::{Bound, Fallback, LegFigures, NettedAccount, Netter, Policy, Requirement, Status};
pub use standard::{QUANTUM_DEFAULT_USD, RiskVector, StandardSet};
pub use venue::{Feed, Listing, Venue, VenueId, VenueKind};
