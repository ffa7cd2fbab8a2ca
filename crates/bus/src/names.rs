//! The names of streams, subjects and keys: the protocol's vocabulary, in one place.

/// The stream of account writes.
pub const BOOK_STREAM: &str = "BALLAST_BOOK";
/// The stream of market snapshots.
pub const MARKET_STREAM: &str = "BALLAST_MARKET";
/// The subject of market snapshots.
pub const MARKET_SUBJECT: &str = "ballast.market";
/// The stream of epoch requests.
pub const EPOCH_STREAM: &str = "BALLAST_EPOCHS";
/// The subject of epoch requests.
pub const EPOCH_SUBJECT: &str = "ballast.epoch.request";
/// The stream of shard results.
pub const RESULT_STREAM: &str = "BALLAST_RESULTS";
/// The KV bucket of settings fixed at set-up.
pub const CONFIG_BUCKET: &str = "ballast_config";
/// The key of the shard count in [`CONFIG_BUCKET`].
pub const SHARDS_KEY: &str = "shards";
/// The KV bucket of leases and heartbeats.
pub const LEASE_BUCKET: &str = "ballast_leases";

/// The subject an account's writes go to.
#[must_use]
pub fn book_subject(shard: u32) -> String {
    format!("ballast.book.{shard}")
}

/// The subject of chunk `chunk` of shard `shard`'s results for the request stored at
/// sequence `request` of the epoch stream (one namespace per request, so a repeated epoch
/// number cannot meet an earlier request's results).
pub(crate) fn chunk_subject(request: u64, shard: u32, chunk: u32) -> String {
    format!("ballast.results.{request}.{shard}.{chunk}")
}

/// The subject of shard `shard`'s commit for request `request`.
pub(crate) fn done_subject(request: u64, shard: u32) -> String {
    format!("ballast.results.{request}.{shard}.done")
}

/// The lease key of shard `shard`.
pub(crate) fn lease_key(shard: u32) -> String {
    format!("shard.{shard}")
}

/// What every heartbeat key starts with.
pub(crate) const HEARTBEAT_PREFIX: &str = "worker.";

/// The heartbeat key of worker `id`.
pub(crate) fn heartbeat_key(id: &str) -> String {
    format!("{HEARTBEAT_PREFIX}{id}")
}

/// The shard of account `id` among `shards`: the first eight bytes of keccak-256 of the id, big
/// endian, modulo the count. Writers and workers must agree on it, so it is fixed here.
///
/// # Panics
/// On zero shards (the bus's set-up refuses them).
#[must_use]
pub fn shard_of(id: &str, shards: u32) -> u32 {
    assert!(shards > 0, "Invariant: a bus has at least one shard");
    let digest = oracle::keccak256(id.as_bytes());
    let head = u64::from_be_bytes(crate::invariant(digest.0[..8].try_into(), "8 of 32 bytes"));
    (head % u64::from(shards)) as u32
}

/// Whether a worker id can be part of a key and of a subject: ASCII letters, digits, `-`, `_`.
pub(crate) fn valid_worker_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
