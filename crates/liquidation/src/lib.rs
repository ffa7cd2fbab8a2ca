//! Liquidation: what happens after a margin breach.
//!
//! - [`profile`]: a venue's liquidation rules as data (TOML, validated, hashed), with the
//!   bundled profiles of Ballast, Deribit, Derive, dYdX v4, Hyperliquid and Aave v3.
//! - [`peers`]: the peers' published formulas (dYdX's fillable price, Derive's auction, Aave's
//!   close factor, Bybit's bankruptcy price), each tested on the venue's own numbers.
//! - [`depth`]: the depth model a market sale fills against, on the friction add-on's
//!   parameters.
//! - [`plan`]: an account's liquidation plan on the full engine: the smallest risk-reducing
//!   step, Derive's pro-rata slice and Deribit's largest contributor, within a profile's caps.
//! - [`path`]: price paths from a backtest replay, historical or generated.
//! - [`sim`]: a seeded exchange run through a price path (margin, breaches, auctions and
//!   market sales, fees, the fund, ADL, socialised loss), every step checked by the
//!   independent [`audit`].
//! - [`coverage`]: the friction add-on checked against the liquidations' realised costs, and
//!   the MM weight that reaches a target coverage.
//! - [`cash`]: the fixed-point money of the layer (lots × ticks, explicit rounding, exact
//!   splits).
//!
//! **Invariants:** nothing here reads the clock, the environment or an unseeded random source;
//! every loop is bounded by a limit in [`limits`]; money moved between accounts is fixed point
//! and conserved exactly.

pub mod audit;
pub mod cash;
pub mod coverage;
pub mod depth;
mod error;
mod execute;
pub mod limits;
pub mod path;
pub mod peers;
pub mod plan;
pub mod profile;
pub mod sim;

pub use error::{Error, ErrorKind};
pub use plan::{Plan, PlannedTrade, Standing, compare, plan};
pub use profile::{Adl, Execution, Profile, Selection};
