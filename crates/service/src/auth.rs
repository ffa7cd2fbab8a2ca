//! Who may read and change what: API keys, roles, and the one table that says which role each
//! route needs.
//!
//! A key is `bk_<id>_<secret>`: the id (16 hex digits) finds its record, and only the SHA3-256
//! of the secret (64 hex digits, 32 bytes from the operating system's generator) is stored, so a
//! copy of the database holds no usable key. A key has one role, an optional expiry and, for the
//! `account` role, the accounts it may see; revoking it takes effect on the next request.
//!
//! Roles, from least to most: `viewer` (aggregates: how many accounts, how many in breach, never
//! whose), `account` (its own accounts: stored state, margin, risk array, what-if, pre-trade,
//! the health rows and live feed of those accounts only), `operator` (everything a risk desk
//! reads, and markets, accounts, positions, balances, trades, settlements), `risk-admin`
//! (methodologies and forced market pushes, and what an operator reads), `admin` (all of it,
//! and the keys). [`required`] maps every route to a [`Permission`]; a route it does not know
//! needs `admin`, so a new endpoint cannot ship open by omission.

use std::collections::BTreeSet;
use std::fmt;

use axum::http::Method;
use sha3::{Digest, Sha3_256};

use crate::error::{Error, ErrorKind};

/// Hex digits of a key id.
pub const KEY_ID_HEX_DIGITS: usize = 16;
/// Bytes of a key's secret (twice as many hex digits).
pub const KEY_SECRET_BYTES: usize = 32;
/// Accounts one `account` key may see.
pub const KEY_ACCOUNTS_MAX: usize = 256;
/// Keys stored at most.
pub const KEYS_MAX: usize = 10_000;

/// A key's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Aggregates only.
    Viewer,
    /// Its own accounts.
    Account,
    /// The book and the market.
    Operator,
    /// Methodologies and forced pushes.
    RiskAdmin,
    /// Everything, keys included.
    Admin,
}

impl Role {
    /// Every role, least first.
    pub const ALL: [Role; 5] =
        [Role::Viewer, Role::Account, Role::Operator, Role::RiskAdmin, Role::Admin];

    /// The wire name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Account => "account",
            Role::Operator => "operator",
            Role::RiskAdmin => "risk-admin",
            Role::Admin => "admin",
        }
    }

    /// The role named `name`.
    ///
    /// # Errors
    /// `Invalid` naming `field` for an unknown name.
    pub fn parse(field: &str, name: &str) -> Result<Role, Error> {
        Role::ALL.into_iter().find(|r| r.name() == name).ok_or_else(|| {
            let names: Vec<&str> = Role::ALL.iter().map(|r| r.name()).collect();
            Error::invalid(field, format!("one of {}", names.join(", ")))
        })
    }

    /// Whether the role reads every account (the risk roles).
    #[must_use]
    pub fn reads_every_account(self) -> bool {
        matches!(self, Role::Operator | Role::RiskAdmin | Role::Admin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A stored key, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The key's id (the public part of the key).
    pub id: String,
    /// SHA3-256 of the secret, hex.
    pub secret_hash: String,
    /// Its role.
    pub role: Role,
    /// For the `account` role, the accounts it may see.
    pub accounts: BTreeSet<String>,
    /// Unix seconds after which it is refused; `None`: no expiry.
    pub expires_at_secs: Option<u64>,
    /// Whether it was revoked.
    pub revoked: bool,
    /// A label for people (who holds it).
    pub label: String,
}

/// Who is asking: the key's id and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's id.
    pub key: String,
    /// Its role.
    pub role: Role,
    /// For the `account` role, the accounts it may see.
    pub accounts: BTreeSet<String>,
}

impl Principal {
    /// Whether this principal may read account `id`.
    #[must_use]
    pub fn reads_account(&self, id: &str) -> bool {
        self.role.reads_every_account() || self.accounts.contains(id)
    }
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Nothing: the dashboard's files, the API document, the liveness probe.
    Public,
    /// Any key: what it sees is filtered by its role (the health list, the live feed).
    Signed,
    /// One account, named in the path: a risk role or an `account` key for that account.
    Account,
    /// The book and the market: `operator` or `admin`.
    Book,
    /// Methodologies: `risk-admin` or `admin`.
    Methodology,
    /// Keys: `admin`.
    Keys,
}

impl Permission {
    /// Whether `role` holds this permission (for [`Permission::Account`], before the account
    /// itself is checked).
    #[must_use]
    pub fn granted_to(self, role: Role) -> bool {
        match self {
            Permission::Public | Permission::Signed => true,
            Permission::Account => role != Role::Viewer,
            Permission::Book => matches!(role, Role::Operator | Role::Admin),
            Permission::Methodology => matches!(role, Role::RiskAdmin | Role::Admin),
            Permission::Keys => role == Role::Admin,
        }
    }
}

/// The permission a route needs, by method and route pattern (axum's matched path). Routes not
/// listed need [`Permission::Keys`] (admin), so an endpoint added without an entry is closed.
#[must_use]
pub fn required(method: &Method, route: &str) -> Permission {
    let read = *method == Method::GET;
    match route {
        "/" | "/dashboard.js" | "/dashboard.css" | "/openapi.json" | "/healthz" => {
            Permission::Public
        }
        "/api/accounts"
        | "/ws"
        | "/api/markets/latest"
        | "/metrics"
        | "/api/methodologies"
        | "/api/methodologies/{reference}"
        | "/api/backtests"
        | "/api/alerts"
        | "/api/markets/history"
            if read =>
        {
            Permission::Signed
        }
        "/api/accounts/{id}"
        | "/api/accounts/{id}/margin"
        | "/api/accounts/{id}/risk-array"
        | "/api/accounts/{id}/liquidation"
        | "/api/accounts/{id}/history"
            if read =>
        {
            Permission::Account
        }
        "/api/accounts/{id}/what-if" | "/api/accounts/{id}/pre-trade"
            if *method == Method::POST =>
        {
            Permission::Account
        }
        "/api/accounts"
        | "/api/accounts/{id}/trades"
        | "/api/settlements"
        | "/api/markets"
        | "/api/markets/deribit"
        | "/api/netting"
            if *method == Method::POST =>
        {
            Permission::Book
        }
        "/api/accounts/{id}/positions/{instrument}"
        | "/api/accounts/{id}/balances/{currency}"
        | "/api/netting/book"
            if *method == Method::PUT =>
        {
            Permission::Book
        }
        "/api/accounts/{id}" if *method == Method::DELETE => Permission::Book,
        // Every account of the stored cross-venue book: the operator's view.
        "/api/netting" if read => Permission::Book,
        "/api/methodologies" | "/api/backtests" if *method == Method::POST => {
            Permission::Methodology
        }
        "/api/accounts/{id}/methodology" if *method == Method::PUT => Permission::Methodology,
        _ => Permission::Keys,
    }
}

/// A new key's text, `bk_<id>_<secret>`, from operating-system randomness.
///
/// # Errors
/// `Storage` when the operating system gives no randomness.
pub fn new_key_text() -> Result<(String, String), Error> {
    let mut bytes = [0_u8; KEY_ID_HEX_DIGITS / 2 + KEY_SECRET_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| Error::storage("key", e))?;
    let id = hex(&bytes[..KEY_ID_HEX_DIGITS / 2]);
    let secret = hex(&bytes[KEY_ID_HEX_DIGITS / 2..]);
    Ok((id.clone(), format!("bk_{id}_{secret}")))
}

/// The id and secret hash of a key's text.
///
/// # Errors
/// `Unauthorized` for text that is not `bk_<16 hex>_<64 hex>`.
pub fn split_key(text: &str) -> Result<(String, String), Error> {
    let refused =
        || Error::new("Authorization", ErrorKind::Unauthorized("not a Ballast key".into()));
    let rest = text.strip_prefix("bk_").ok_or_else(refused)?;
    let (id, secret) = rest.split_once('_').ok_or_else(refused)?;
    let hexadecimal = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !hexadecimal(id, KEY_ID_HEX_DIGITS) || !hexadecimal(secret, 2 * KEY_SECRET_BYTES) {
        return Err(refused());
    }
    Ok((id.to_owned(), secret_hash(secret)))
}

/// SHA3-256 of a secret, hex: what is stored.
#[must_use]
pub fn secret_hash(secret: &str) -> String {
    hex(&Sha3_256::digest(secret.as_bytes()))
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(2 * bytes.len()), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// The principal of `key_text` among `keys` at `now_secs`.
///
/// # Errors
/// `Unauthorized` for a malformed, unknown, wrong, expired or revoked key (one reason for all
/// but the malformed: a caller learns nothing about which keys exist).
pub fn authenticate<'a>(
    keys: impl Fn(&str) -> Option<&'a KeyRecord>,
    key_text: &str,
    now_secs: u64,
) -> Result<Principal, Error> {
    let (id, hash) = split_key(key_text)?;
    let refused = || {
        let why = "unknown, revoked or expired key".to_owned();
        Error::new("Authorization", ErrorKind::Unauthorized(why))
    };
    let record = keys(&id).ok_or_else(refused)?;
    // Both are hex digests of equal length: comparing every byte takes the same time for any
    // mismatch.
    let same = record.secret_hash.len() == hash.len()
        && record.secret_hash.bytes().zip(hash.bytes()).fold(0, |d, (a, b)| d | (a ^ b)) == 0;
    let expired = record.expires_at_secs.is_some_and(|at| now_secs >= at);
    if !same || record.revoked || expired {
        return Err(refused());
    }
    Ok(Principal { key: record.id.clone(), role: record.role, accounts: record.accounts.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(text: &str, role: Role) -> KeyRecord {
        let (id, secret_hash) = split_key(text).unwrap();
        KeyRecord {
            id,
            secret_hash,
            role,
            accounts: BTreeSet::new(),
            expires_at_secs: Some(1_000),
            revoked: false,
            label: String::new(),
        }
    }

    /// A key authenticates until it expires or is revoked; a key with one digit changed, an
    /// unknown id or a malformed text never does.
    #[test]
    fn keys_authenticate_until_expired_or_revoked() {
        let (_, text) = new_key_text().unwrap();
        let mut stored = record(&text, Role::Operator);
        let check = |s: &KeyRecord, text: &str, now: u64| {
            authenticate(|id: &str| (id == s.id).then_some(s), text, now)
        };
        let now = check(&stored, &text, 999).unwrap();
        assert_eq!((now.role, now.key.as_str()), (Role::Operator, stored.id.as_str()));
        assert!(check(&stored, &text, 1_000).is_err(), "expired");
        let last = text.chars().last().unwrap();
        let flipped = format!("{}{}", &text[..text.len() - 1], if last == '0' { '1' } else { '0' });
        assert!(check(&stored, &flipped, 0).is_err(), "wrong secret");
        assert!(check(&stored, "bk_1234_abcd", 0).is_err(), "malformed");
        stored.revoked = true;
        assert!(check(&stored, &text, 0).is_err(), "revoked");
    }

    /// Every route of the router is in the table or closed to all but admin; reads of one
    /// account are open to an `account` key, writes of the book are not.
    #[test]
    fn the_route_table_grants_by_role() {
        let account = required(&Method::GET, "/api/accounts/{id}/margin");
        assert!(account.granted_to(Role::Account) && !account.granted_to(Role::Viewer));
        let write = required(&Method::PUT, "/api/accounts/{id}/positions/{instrument}");
        assert!(write.granted_to(Role::Operator) && !write.granted_to(Role::Account));
        assert!(!write.granted_to(Role::RiskAdmin));
        let methodology = required(&Method::POST, "/api/methodologies");
        assert!(methodology.granted_to(Role::RiskAdmin) && !methodology.granted_to(Role::Operator));
        assert_eq!(required(&Method::DELETE, "/api/accounts/{id}"), Permission::Book);
        assert_eq!(required(&Method::PATCH, "/api/accounts/{id}"), Permission::Keys);
        assert_eq!(required(&Method::GET, "/unknown"), Permission::Keys);
        assert_eq!(required(&Method::GET, "/healthz"), Permission::Public);
    }
}
