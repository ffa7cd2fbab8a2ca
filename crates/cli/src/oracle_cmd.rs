//! `ballast attest`, `ballast verify` and `ballast oracle node|aggregate`: the risk oracle from
//! the command line.
//!
//! `attest` runs an epoch with keys held locally (one operator, or a test of the whole chain);
//! `oracle node` serves one federation member's key over HTTP on loopback and `oracle aggregate`
//! collects a quorum from several; `verify` checks a report and an account's proof offline, with
//! the same rules as the Solidity verifier.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use clap::{Args, Subcommand};
use federation::{Aggregator, AggregatorConfig, EpochInput, EpochRequest, Node, NodeConfig};
use formats::portfolio::BookDocument;
use oracle::json::write_signed_report;
use oracle::json::{
    read_account_proof, read_signed_report, read_venue_proof, write_account_proof, write_leaves,
    write_venue_proof,
};
use oracle::{
    Address, Bounds, Domain, EpochTree, RejectionCode, Signer, SignerSet, Verifier, verify_account,
};
use serde::Deserialize;

use crate::input::read_text;
use crate::profile::{load_market, load_profile};
use epoch::{EpochSource, account_id, compute, usd_text};

/// The federation a report belongs to: chain, verifier contract, signers and threshold, and
/// the bounds its contract was deployed with (largest epoch jump, longest validity window).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FederationFile {
    chain_id: u64,
    verifying_contract: Address,
    signers: Vec<Address>,
    threshold: u8,
    config_version: u64,
    epoch_jump_max: u64,
    validity_secs_max: u64,
}

fn load_verifier(path: &Path) -> Result<Verifier> {
    let text = read_text(Some(path))?;
    let file: FederationFile =
        serde_json::from_str(&text).with_context(|| format!("in {}", path.display()))?;
    let mut signers = file.signers;
    signers.sort_unstable();
    let signer_set = SignerSet::new(signers, file.threshold, file.config_version)
        .with_context(|| format!("in {}", path.display()))?;
    let bounds = Bounds::new(file.epoch_jump_max, file.validity_secs_max)
        .with_context(|| format!("in {}", path.display()))?;
    let domain = Domain { chain_id: file.chain_id, verifying_contract: file.verifying_contract };
    Ok(Verifier { domain, signer_set, bounds })
}

/// The secret the aggregator and the nodes share: the file's text, trimmed.
fn load_secret(path: &Path) -> Result<Vec<u8>> {
    let text = read_text(Some(path))?;
    let secret = text.trim().as_bytes().to_vec();
    let least = federation::node::AGGREGATOR_SECRET_BYTES_MIN;
    if secret.len() < least {
        bail!("{}: an aggregator secret has at least {least} bytes", path.display());
    }
    Ok(secret)
}

/// Secret keys, one 0x-hex key per line; blank lines and `#` comments are ignored.
fn load_keys(path: &Path) -> Result<Vec<Signer>> {
    let text = read_text(Some(path))?;
    let keys: Vec<Signer> = text
        .lines()
        .map(str::trim)
        .enumerate()
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(i, line)| {
            Signer::from_hex(line).with_context(|| format!("{} line {}", path.display(), i + 1))
        })
        .collect::<Result<_>>()?;
    if keys.is_empty() {
        bail!("{}: no keys", path.display());
    }
    Ok(keys)
}

/// What every epoch-computing command reads.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Market snapshot (Ballast JSON); the bundled sample market when absent.
    #[arg(long)]
    market: Option<PathBuf>,
    /// Book of accounts (Ballast JSON: `{"accounts": [{"id", "positions", "balances"}]}`).
    #[arg(long)]
    book: PathBuf,
    /// Methodology: a bundled name or a TOML file.
    #[arg(long, default_value = "ballast-pm")]
    methodology: String,
    /// File of the federation's salting secret: each leaf then commits to its account's salted
    /// id, so the published leaves reveal no one's distance to liquidation (every node of the
    /// federation needs the same secret).
    #[arg(long)]
    salt_secret: Option<PathBuf>,
}

fn load_source(args: &SourceArgs) -> Result<EpochSource> {
    let market = load_market(args.market.as_ref())?;
    let profile = load_profile(&args.methodology)?;
    let methodology_hash = oracle::B256::from(profile.hash());
    let formats::methodology::Profile::Portfolio(methodology) = profile else {
        bail!("{} is a per-position methodology; an epoch needs a portfolio one", profile.name());
    };
    let text = read_text(Some(&args.book))?;
    let accounts = BookDocument::from_json(&text)
        .and_then(|d| d.to_accounts())
        .with_context(|| format!("in {}", args.book.display()))?;
    let salt_secret = match &args.salt_secret {
        Some(path) => Some(load_secret(path)?),
        None => None,
    };
    Ok(EpochSource { market, methodology: *methodology, methodology_hash, accounts, salt_secret })
}

/// Arguments of `ballast attest`.
#[derive(Debug, Args)]
pub struct AttestArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    out: AttestOut,
    /// Cross-venue book (the `ballast net --book` format): its accounts, netted on the same
    /// market at its valuation time, add one venue leaf per leg to the epoch's tree (credited
    /// requirement, equity, liens, status, controller, vector hash, the venue's chain), and a
    /// proof per leaf in venue-proofs/<account>/<venue>.json.
    #[arg(long)]
    venues: Option<PathBuf>,
    /// With --venues: a venue whose feed is older than this, in seconds, is stale.
    #[arg(long, default_value_t = 600, requires = "venues")]
    stale_after_secs: u64,
    /// With --venues: the grace period after a venue fails, in seconds.
    #[arg(long, default_value_t = 3_600, requires = "venues")]
    grace_secs: u64,
}

/// What every attesting command writes, and with which keys.
#[derive(Debug, Args)]
pub struct AttestOut {
    /// Epoch number (at least 1, above the last accepted one).
    #[arg(long)]
    epoch: u64,
    /// Seconds after the valuation time during which the report may be accepted.
    #[arg(long, default_value_t = 3_600)]
    valid_for: u64,
    /// Federation file (JSON: chain_id, verifying_contract, signers, threshold, config_version).
    #[arg(long)]
    federation: PathBuf,
    /// File of signing keys (0x-hex, one per line); at least the threshold.
    #[arg(long)]
    keys: PathBuf,
    /// Output folder: report.json, leaves.json and proofs/<account>.json.
    #[arg(long)]
    out: PathBuf,
    /// Skip the per-account proof files (large books).
    #[arg(long)]
    no_proofs: bool,
}

impl AttestOut {
    /// The epoch number.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
}

/// Runs `ballast attest`.
pub fn run_attest(args: &AttestArgs) -> Result<()> {
    let source = load_source(&args.source)?;
    let computed = compute(&source)?;
    let venues = venue_results(args, &source)?;
    let text = write_attested(&args.out, &computed, &venues, &source.methodology.name)?;
    print!("{text}");
    Ok(())
}

/// Builds the tree of `computed` (and `venues`), signs it with the local keys and writes the
/// report, the leaves and the proofs; returns the summary to print.
pub fn write_attested(
    args: &AttestOut,
    computed: &epoch::ComputedEpoch,
    venues: &[NamedVenue],
    methodology: &str,
) -> Result<String> {
    let verifier = load_verifier(&args.federation)?;
    let signers = load_keys(&args.keys)?;
    let header = computed.header(args.epoch, args.valid_for);
    let figures: Vec<oracle::VenueResult> = venues.iter().map(|v| v.0).collect();
    let tree = EpochTree::build_with_venues(&header, &computed.results, &figures)?;
    let signed = oracle::attest(&tree, &verifier, &signers)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    write(&args.out.join("report.json"), &write_signed_report(&signed))?;
    write(&args.out.join("leaves.json"), &write_leaves(&tree))?;
    if !args.no_proofs {
        let proofs = args.out.join("proofs");
        std::fs::create_dir_all(&proofs)
            .with_context(|| format!("cannot create {}", proofs.display()))?;
        for key in &computed.keys {
            let file = proofs.join(format!("{}.json", proof_file_stem(&key.id)));
            write(&file, &write_account_proof(&tree, &key.account)?)?;
        }
        write_venue_proofs(&args.out, &tree, venues)?;
    }
    if computed.keys.iter().any(|k| k.salt.is_some()) {
        write_salts(&args.out, &computed.keys)?;
    }
    let mut out = String::new();
    let _ = writeln!(out, "epoch {} root {}", args.epoch, tree.root());
    let _ = writeln!(
        out,
        "accounts {}  venue leaves {}  signatures {}",
        tree.leaves().len(),
        tree.venue_leaves().len(),
        signed.signatures.len()
    );
    let _ = writeln!(out, "market {}", computed.market_data_hash);
    let _ = writeln!(out, "methodology {methodology} {}", computed.methodology_hash);
    let _ = writeln!(out, "written to {}", args.out.display());
    Ok(out)
}

/// A venue leaf's figures with the ids it was made from: (account id, venue id).
pub type NamedVenue = (oracle::VenueResult, (String, String));

/// The venue leaves of `--venues`: its book netted on the epoch's market at its valuation time;
/// none without the flag. Every account of the book must net (a refused one is named).
fn venue_results(args: &AttestArgs, source: &EpochSource) -> Result<Vec<NamedVenue>> {
    let Some(path) = &args.venues else { return Ok(Vec::new()) };
    let now = crate::net_cmd::valuation_secs(&source.market)?;
    let policy = netting::Policy::new(args.stale_after_secs, args.grace_secs)?;
    let netted = crate::net_cmd::net_file(path, &source.market, now, policy)?;
    let accounts = (netted.results.into_iter().zip(netted.book.accounts()))
        .map(|(result, account)| {
            result
                .with_context(|| format!("{}: cross-venue account {}", path.display(), account.id))
        })
        .collect::<Result<Vec<_>>>()?;
    let results = epoch::venue_results(&netted.book, &accounts, source.salt_secret.as_deref())?;
    // `venue_results` keeps the accounts' order and each account's venue order.
    let names = (accounts.iter())
        .flat_map(|a| a.legs.iter().map(|leg| (a.id.clone(), leg.venue.to_string())));
    Ok(results.into_iter().zip(names).collect())
}

/// One file per venue leaf, `venue-proofs/<account>/<venue>.json`: the leaf and its proof,
/// what a keeper hands to the venue's contract.
fn write_venue_proofs(out: &Path, tree: &EpochTree, venues: &[NamedVenue]) -> Result<()> {
    for (venue, (account_id, venue_id)) in venues {
        let folder = out.join("venue-proofs").join(proof_file_stem(account_id));
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
        let file = folder.join(format!("{}.json", proof_file_stem(venue_id)));
        write(&file, &write_venue_proof(tree, &venue.account, &venue.venue)?)?;
    }
    Ok(())
}

/// One file per account, `salts/<id>.json`, `{"id", "salt", "account"}`: what each holder is
/// given to find and check its own leaf.
fn write_salts(out: &Path, keys: &[epoch::AccountKey]) -> Result<()> {
    let salts = out.join("salts");
    std::fs::create_dir_all(&salts)
        .with_context(|| format!("cannot create {}", salts.display()))?;
    for key in keys {
        let Some(salt) = key.salt else { continue };
        let text = serde_json::json!({
            "id": key.id,
            "salt": salt.to_string(),
            "account": key.account.to_string(),
        });
        write(&salts.join(format!("{}.json", proof_file_stem(&key.id))), &text.to_string())?;
    }
    Ok(())
}

/// A file-name-safe stem for an account id: the id itself when it is plain, else its hash.
fn proof_file_stem(id: &str) -> String {
    let plain = !id.is_empty()
        && id.len() <= 64
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !id.starts_with('-');
    if plain { id.to_owned() } else { account_id(id).to_string() }
}

/// `given`, or the system clock's Unix seconds.
fn now_or(given: Option<u64>) -> Result<u64> {
    match given {
        Some(now) => Ok(now),
        None => Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| anyhow!("system clock before 1970: {e}"))?
            .as_secs()),
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Arguments of `ballast verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Federation file the report must be valid for (its signer set is what is trusted).
    #[arg(long)]
    federation: PathBuf,
    /// Signed report (report.json).
    #[arg(long)]
    report: PathBuf,
    /// One account's proof file to check against the report's root.
    #[arg(long)]
    proof: Option<PathBuf>,
    /// The account id the proof must be for.
    #[arg(long)]
    account: Option<String>,
    /// The account's salt (0x and 64 hex digits), for a federation that salts its leaves.
    #[arg(long, requires = "account")]
    salt: Option<oracle::B256>,
    /// Last epoch already accepted (the report must be newer).
    #[arg(long, default_value_t = 0)]
    last_epoch: u64,
    /// Check validity at this Unix time instead of now.
    #[arg(long)]
    now: Option<u64>,
    /// One venue leaf's proof file (venue-proofs/<account>/<venue>.json) to check against the
    /// report's root, as the venue's contract does: its chain, its venue, then the proof.
    #[arg(long, requires = "venue")]
    venue_proof: Option<PathBuf>,
    /// The venue id the venue proof must be for.
    #[arg(long)]
    venue: Option<String>,
    /// The chain of the venue's contract (the federation file's chain when absent; 0 for an
    /// exchange, which reads its leaves off chain).
    #[arg(long)]
    chain_id: Option<u64>,
}

/// Runs `ballast verify`: the report's signatures, epoch and window, then the account's proof.
pub fn run_verify(args: &VerifyArgs) -> Result<()> {
    let verifier = load_verifier(&args.federation)?;
    let signed = read_signed_report(&read_text(Some(&args.report))?)
        .with_context(|| format!("in {}", args.report.display()))?;
    if signed.domain != verifier.domain || signed.signer_set != verifier.signer_set {
        let code = RejectionCode::SignerSetMismatch;
        bail!(
            "report rejected: {} (code {}): it names another deployment or signer set than the \
             federation file",
            code.solidity_name(),
            code.code()
        );
    }
    let now = now_or(args.now)?;
    let report = &signed.report;
    let accepted =
        verifier.verify_report(report, &signed.signatures, args.last_epoch, now).map_err(
            |code| anyhow!("report rejected: {} (code {})", code.solidity_name(), code.code()),
        )?;
    println!(
        "report accepted: epoch {} root {} signed by {} of {} (threshold {})",
        report.epoch,
        report.root,
        accepted.signers.len(),
        verifier.signer_set.signers().len(),
        verifier.signer_set.threshold()
    );
    if let Some(path) = &args.venue_proof {
        verify_venue_file(args, path, report, verifier.domain.chain_id, now)?;
    }
    let Some(path) = &args.proof else { return Ok(()) };
    let file = read_account_proof(&read_text(Some(path))?)
        .with_context(|| format!("in {}", path.display()))?;
    let leaf = &file.proof.leaf;
    if let Some(expected) = expected_account(args)
        && expected != leaf.account()
    {
        let id = args.account.as_deref().unwrap_or_default();
        bail!("proof rejected: it is for account {}, not {id:?}", leaf.account());
    }
    if leaf.epoch() != report.epoch {
        bail!("proof rejected: it is for epoch {}, the report for {}", leaf.epoch(), report.epoch);
    }
    verify_account(Some(&report.root), leaf, &file.proof.proof).map_err(|code| {
        anyhow!("proof rejected: {} (code {})", code.solidity_name(), code.code())
    })?;
    let result = leaf.result(file.currency);
    println!(
        "account {} proven: IM {} MM {} MtM {} {} (worst scenario {}, portfolio {})",
        leaf.account(),
        usd_text(result.initial_margin),
        usd_text(result.maintenance_margin),
        usd_text(result.mark_to_market),
        file.currency,
        result.worst_scenario,
        result.portfolio_hash
    );
    Ok(())
}

/// The account id a proof must be for: `--account`, salted with `--salt` when given.
fn expected_account(args: &VerifyArgs) -> Option<oracle::B256> {
    let id = args.account.as_ref()?;
    Some(match &args.salt {
        Some(salt) => oracle::salted_account_id(salt, id),
        None => account_id(id),
    })
}

/// Checks a venue proof as `BallastVenue.creditOf` does, then prints what the venue credits.
fn verify_venue_file(
    args: &VerifyArgs,
    path: &Path,
    report: &oracle::Report,
    federation_chain: u64,
    now: u64,
) -> Result<()> {
    let file = read_venue_proof(&read_text(Some(path))?)
        .with_context(|| format!("in {}", path.display()))?;
    let leaf = &file.proof.leaf;
    if let Some(expected) = expected_account(args)
        && expected != leaf.result().account
    {
        bail!("venue proof rejected: it is for account {}", leaf.result().account);
    }
    if leaf.epoch() != report.epoch {
        bail!(
            "venue proof rejected: it is for epoch {}, the report for {}",
            leaf.epoch(),
            report.epoch
        );
    }
    let venue_id = args.venue.as_deref().unwrap_or_default();
    let chain = args.chain_id.unwrap_or(federation_chain);
    let venue = oracle::venue_key(venue_id);
    let credit =
        oracle::verify_venue(Some(&report.root), chain, &venue, leaf, &file.proof.proof, now)
            .map_err(|code| {
                anyhow!("venue proof rejected: {} (code {})", code.solidity_name(), code.code())
            })?;
    let status = match leaf.result().status {
        oracle::VenueStatus::Netted => "netted".to_owned(),
        oracle::VenueStatus::Standalone => "standalone".to_owned(),
        oracle::VenueStatus::Grace { until_secs } => format!("grace until {until_secs}"),
    };
    println!(
        "venue {venue_id} of account {} proven on chain {chain}: credited IM {} MM {}, \
         collateral {} {}, {status}{}{}",
        leaf.result().account,
        usd_text(credit.initial_margin),
        usd_text(credit.maintenance_margin),
        usd_text(credit.collateral),
        file.currency,
        if credit.controller { ", controller" } else { "" },
        if credit.liquidatable { ", liquidatable" } else { "" },
    );
    Ok(())
}

/// Arguments of `ballast oracle`.
#[derive(Debug, Args)]
pub struct OracleArgs {
    #[command(subcommand)]
    command: OracleCommand,
}

#[derive(Debug, Subcommand)]
enum OracleCommand {
    /// Run one federation node: its own key, its own HTTP endpoint.
    Node(NodeArgs),
    /// Ask every node to sign an epoch and publish the report once a quorum agrees.
    Aggregate(AggregateArgs),
}

/// Arguments of `ballast oracle node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Federation file.
    #[arg(long)]
    federation: PathBuf,
    /// File holding this node's one signing key.
    #[arg(long)]
    key: PathBuf,
    /// Address to listen on (loopback).
    #[arg(long, default_value = "127.0.0.1:8645")]
    listen: SocketAddr,
    /// File that keeps the last epoch signed across restarts (created on the first epoch).
    #[arg(long)]
    state: PathBuf,
    /// File holding the secret the aggregator tags its requests with.
    #[arg(long)]
    aggregator_secret: PathBuf,
    /// Largest distance, seconds, between a request's as-of time and the node's clock.
    #[arg(long, default_value_t = 3_600)]
    as_of_skew: u64,
    /// Read the node's clock as this Unix time instead of the system clock (a recorded market).
    #[arg(long)]
    now: Option<u64>,
}

/// Arguments of `ballast oracle aggregate`.
#[derive(Debug, Args)]
pub struct AggregateArgs {
    /// Federation file.
    #[arg(long)]
    federation: PathBuf,
    /// Base URL of a node; repeat for each.
    #[arg(long = "node", required = true)]
    nodes: Vec<String>,
    /// Epoch number.
    #[arg(long)]
    epoch: u64,
    /// Valuation time of the epoch, Unix seconds (every node's market must be at it).
    #[arg(long)]
    as_of: u64,
    /// Seconds the report stays valid.
    #[arg(long, default_value_t = 3_600)]
    valid_for: u64,
    /// Last epoch already published.
    #[arg(long, default_value_t = 0)]
    last_epoch: u64,
    /// Seconds to wait for each node.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Publish as of this Unix time instead of now (the report must be valid then).
    #[arg(long)]
    now: Option<u64>,
    /// Output folder: report.json and leaves.json (from an agreeing node).
    #[arg(long)]
    out: PathBuf,
    /// File holding the secret shared with the nodes.
    #[arg(long)]
    aggregator_secret: PathBuf,
}

/// Runs `ballast oracle`.
pub fn run_oracle(args: &OracleArgs) -> Result<()> {
    let runtime = crate::async_runtime()?;
    match &args.command {
        OracleCommand::Node(a) => runtime.block_on(run_node(a)),
        OracleCommand::Aggregate(a) => runtime.block_on(run_aggregate(a)),
    }
}

async fn run_node(args: &NodeArgs) -> Result<()> {
    let verifier = load_verifier(&args.federation)?;
    let mut keys = load_keys(&args.key)?;
    if keys.len() != 1 {
        bail!("{}: a node holds exactly one key, found {}", args.key.display(), keys.len());
    }
    let signer = keys.remove(0);
    // Inputs are loaded once, so every request of this process sees the same data.
    let source = Arc::new(load_source(&args.source)?);
    let compute = Arc::new(move |request: &EpochRequest| -> Result<EpochInput, String> {
        let computed = compute(&source).map_err(|e| format!("{e:#}"))?;
        if computed.as_of_secs != request.as_of_secs {
            return Err(format!(
                "market data is valued at {} but epoch {} asks for {}",
                computed.as_of_secs, request.epoch, request.as_of_secs
            ));
        }
        Ok(EpochInput {
            market_data_hash: computed.market_data_hash,
            methodology_hash: computed.methodology_hash,
            currency: basics::Currency::USD,
            results: computed.results,
        })
    });
    let now = args.now;
    let clock: federation::node::Clock = Arc::new(move || {
        // The node refuses every request if the clock is unreadable: 0 is before any as-of.
        now_or(now).unwrap_or(0)
    });
    let config = NodeConfig {
        signer,
        verifier,
        compute,
        as_of_skew_secs_max: args.as_of_skew,
        clock,
        state_path: Some(args.state.clone()),
        aggregator_secret: load_secret(&args.aggregator_secret)?,
    };
    let node = Node::new(config)?;
    let address = node.address();
    let handle = federation::spawn_node(node, args.listen).await?;
    println!("node {address} listening on {}", handle.url());
    handle.wait().await?;
    Ok(())
}

async fn run_aggregate(args: &AggregateArgs) -> Result<()> {
    let verifier = load_verifier(&args.federation)?;
    let config = AggregatorConfig {
        nodes: args.nodes.clone(),
        verifier,
        answer_timeout: Duration::from_secs(args.timeout),
        secret: load_secret(&args.aggregator_secret)?,
    };
    let mut aggregator = Aggregator::new(config, args.last_epoch)?;
    let request = EpochRequest {
        epoch: args.epoch,
        as_of_secs: args.as_of,
        valid_until_secs: args.as_of.saturating_add(args.valid_for),
    };
    let now = now_or(args.now)?;
    let published = aggregator.publish(request, now).await?;
    for outcome in &published.outcomes {
        println!("{} {:?}", outcome.node, outcome.status);
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    write(&args.out.join("report.json"), &write_signed_report(&published.signed))?;
    let agreeing = published
        .outcomes
        .iter()
        .find(|o| o.status == federation::NodeStatus::Agreed)
        .ok_or_else(|| anyhow!("Invariant: a published report has agreeing nodes"))?;
    let url = format!(
        "{}{}",
        agreeing.node.trim_end_matches('/'),
        federation::wire::leaves_path(args.epoch)
    );
    let text = reqwest::get(&url).await?.error_for_status()?.text().await?;
    let leaves = oracle::json::read_leaves(&text).with_context(|| format!("from {url}"))?;
    if leaves.tree.root() != published.signed.report.root {
        bail!("node {} served leaves of another root", agreeing.node);
    }
    write(&args.out.join("leaves.json"), &text)?;
    println!(
        "published epoch {} root {} with {} signatures",
        args.epoch,
        published.signed.report.root,
        published.signers.len()
    );
    Ok(())
}
