//! Client side of a node's read endpoints: an epoch's leaves and one account's proof, read back
//! and re-derived with the oracle's own readers.

use oracle::B256;
use oracle::json::{AccountProofFile, LeavesFile, read_account_proof, read_leaves};
use oracle::limits::JSON_BYTES_MAX;

use crate::aggregator::{NodeStatus, read_bounded};
use crate::wire::{account_path, leaves_path};
use crate::{Error, ErrorKind};

/// Fetches and checks epoch `epoch`'s leaves from the node at `base_url`. The tree is rebuilt
/// from the leaves; compare its root with a published report before trusting it.
///
/// # Errors
/// `Http` when the node cannot be reached or has no such epoch; `Oracle` when the file does not
/// re-derive.
pub async fn fetch_leaves(
    client: &reqwest::Client,
    base_url: &str,
    epoch: u64,
) -> Result<LeavesFile, Error> {
    let text = get_text(client, base_url, &leaves_path(epoch)).await?;
    Ok(read_leaves(&text)?)
}

/// Fetches one account's leaf and proof. Check it with `oracle::verify_account` against a root
/// you trust.
///
/// # Errors
/// As for [`fetch_leaves`].
pub async fn fetch_account_proof(
    client: &reqwest::Client,
    base_url: &str,
    epoch: u64,
    account: &B256,
) -> Result<AccountProofFile, Error> {
    let text = get_text(client, base_url, &account_path(epoch, account)).await?;
    Ok(read_account_proof(&text)?)
}

async fn get_text(client: &reqwest::Client, base_url: &str, path: &str) -> Result<String, Error> {
    let url = format!("{}{path}", base_url.trim_end_matches('/'));
    let http = |what: String| Error::new(ErrorKind::Http(what));
    let response = client.get(&url).send().await.map_err(|e| http(format!("{url}: {e}")))?;
    if !response.status().is_success() {
        return Err(http(format!("{url}: HTTP {}", response.status())));
    }
    let body = read_bounded(response, JSON_BYTES_MAX).await.map_err(|status| match status {
        NodeStatus::Invalid { reason, .. } | NodeStatus::Unreachable(reason) => {
            http(format!("{url}: {reason}"))
        }
        other => http(format!("{url}: {other:?}")),
    })?;
    String::from_utf8(body).map_err(|_| http(format!("{url}: body is not UTF-8")))
}
