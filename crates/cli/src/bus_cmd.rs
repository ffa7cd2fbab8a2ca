//! `ballast bus load|worker|epoch`: the book sharded over worker processes on NATS JetStream.
//!
//! `load` writes a book's accounts to the bus (each acknowledged once stored), `worker` owns a
//! share of the shards and serves epoch requests for them, and `epoch` asks the workers for an
//! epoch at the book's current cut and writes the same report, leaves and proofs as `attest`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use bus::{Bus, BusConfig, EpochOrder, Progress, Worker, WorkerConfig, WorkerEvent, Writer};
use clap::{Args, Subcommand};
use formats::portfolio::BookDocument;

use crate::input::read_text;
use crate::oracle_cmd::{AttestOut, write_attested};
use crate::profile::{load_market, load_profile};

/// Arguments of `ballast bus`.
#[derive(Debug, Args)]
pub struct BusArgs {
    #[command(subcommand)]
    command: BusCommand,
}

#[derive(Debug, Subcommand)]
enum BusCommand {
    /// Write every account of a book to the bus.
    Load(LoadArgs),
    /// Own a share of the shards and serve epoch requests for them (until killed).
    Worker(WorkerArgs),
    /// Run an epoch on the workers' results: report, leaves and proofs, as `ballast attest`.
    Epoch(EpochArgs),
}

/// Where the bus is and how it is set up.
#[derive(Debug, Args)]
struct Connection {
    /// The NATS server (with JetStream).
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats: String,
    /// Shards of the book; fixed when the bus is first used, every party must agree.
    #[arg(long, default_value_t = 16)]
    shards: u32,
    /// Lease time in milliseconds: a worker silent for this long loses its shards.
    #[arg(long, default_value_t = 3_000)]
    lease_ms: u64,
}

impl Connection {
    async fn connect(&self) -> Result<Bus> {
        let config = BusConfig { shards: self.shards, lease: Duration::from_millis(self.lease_ms) };
        Bus::connect(&self.nats, config).await.with_context(|| format!("bus at {}", self.nats))
    }
}

#[derive(Debug, Args)]
struct LoadArgs {
    #[command(flatten)]
    bus: Connection,
    /// Book of accounts (Ballast JSON: `{"accounts": [{"id", "positions", "balances"}]}`).
    #[arg(long)]
    book: PathBuf,
    /// Prefix of the writes' idempotency keys (`<prefix>/<account>`): loading the same book
    /// again with the same prefix within two minutes stores nothing new.
    #[arg(long, default_value = "load")]
    key_prefix: String,
}

#[derive(Debug, Args)]
struct WorkerArgs {
    #[command(flatten)]
    bus: Connection,
    /// This worker's name, unique among live workers (A-Z a-z 0-9 - _).
    #[arg(long)]
    id: String,
    /// How often, in milliseconds, it looks for shards to take and requests to serve.
    #[arg(long, default_value_t = 100)]
    tick_ms: u64,
}

#[derive(Debug, Args)]
struct EpochArgs {
    #[command(flatten)]
    bus: Connection,
    /// Market snapshot (Ballast JSON); the bundled sample market when absent.
    #[arg(long)]
    market: Option<PathBuf>,
    /// Methodology: a bundled name or a TOML file.
    #[arg(long, default_value = "ballast-pm")]
    methodology: String,
    #[command(flatten)]
    out: AttestOut,
    /// Seconds to wait for every shard before failing (naming the missing ones).
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
}

/// Runs `ballast bus`.
pub fn run(args: &BusArgs) -> Result<()> {
    let runtime = crate::async_runtime()?;
    match &args.command {
        BusCommand::Load(a) => runtime.block_on(load(a)),
        BusCommand::Worker(a) => runtime.block_on(work(a)),
        BusCommand::Epoch(a) => runtime.block_on(epoch(a)),
    }
}

async fn load(args: &LoadArgs) -> Result<()> {
    let text = read_text(Some(&args.book))?;
    let accounts = BookDocument::from_json(&text)
        .and_then(|d| d.to_accounts())
        .with_context(|| format!("in {}", args.book.display()))?;
    let bus = args.bus.connect().await?;
    let keys: Vec<String> = accounts.keys().map(|id| format!("{}/{id}", args.key_prefix)).collect();
    let writes: Vec<_> = (keys.iter().zip(&accounts))
        .map(|(key, (id, portfolio))| (key.as_str(), id.as_str(), Some(portfolio)))
        .collect();
    let started = Instant::now();
    let sequences = Writer::new(&bus).send(&writes).await?;
    let secs = started.elapsed().as_secs_f64();
    let last = sequences.iter().max().copied().unwrap_or(0);
    println!(
        "stored {} writes over {} shards (last sequence {last}) in {secs:.3} s: {:.0} writes/s",
        sequences.len(),
        bus.shards(),
        sequences.len() as f64 / secs.max(f64::MIN_POSITIVE)
    );
    Ok(())
}

async fn work(args: &WorkerArgs) -> Result<()> {
    let bus = args.bus.connect().await?;
    let config = WorkerConfig {
        id: args.id.clone(),
        lease: Duration::from_millis(args.bus.lease_ms),
        tick: Duration::from_millis(args.tick_ms),
    };
    let (worker, mut events) = Worker::new(&bus, config)?;
    let log = tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            eprintln!("{}", describe(&event));
        }
    });
    let outcome = worker.run().await;
    log.abort();
    outcome.context("worker stopped")
}

/// One line of a worker's log.
fn describe(event: &WorkerEvent) -> String {
    match event {
        WorkerEvent::Acquired { shard } => format!("acquired shard {shard}"),
        WorkerEvent::Released { shard } => format!("released shard {shard}"),
        WorkerEvent::Rejected { subject, sequence, reason } => {
            format!("rejected {subject} sequence {sequence}: {reason}")
        }
        WorkerEvent::Computing { request, epoch, shards } => {
            format!("computing request {request} (epoch {epoch}) shards {shards:?}")
        }
        WorkerEvent::Computed { request, epoch, shards, accounts, compute_ms, publish_ms } => {
            format!(
                "computed request {request} (epoch {epoch}) shards {shards:?}: {accounts} \
                 accounts in {compute_ms} ms, published in {publish_ms} ms"
            )
        }
        WorkerEvent::CaughtUp { shard, writes, millis } => {
            format!("caught up shard {shard}: {writes} writes in {millis} ms")
        }
        other => format!("{other:?}"),
    }
}

async fn epoch(args: &EpochArgs) -> Result<()> {
    let market = load_market(args.market.as_ref())?;
    let profile = load_profile(&args.methodology)?;
    let formats::methodology::Profile::Portfolio(methodology) = &profile else {
        bail!("{} is a per-position methodology; an epoch needs a portfolio one", profile.name());
    };
    let name = methodology.name.clone();
    let bus = args.bus.connect().await?;
    let order = EpochOrder {
        epoch: args.out.epoch(),
        market,
        profile,
        report_after: Duration::from_secs(5),
        timeout: Duration::from_secs(args.timeout_secs),
    };
    let started = Instant::now();
    let computed = bus::run_epoch(&bus, &order, |progress| match progress {
        Progress::Requested { request, book_seq } => {
            eprintln!("request {request} at book sequence {book_seq}");
        }
        Progress::Waiting { waited_ms, missing } => {
            eprintln!("after {waited_ms} ms still waiting for {missing:?}");
        }
        Progress::Gathered { waited_ms } => eprintln!("every shard in after {waited_ms} ms"),
        other => eprintln!("{other:?}"),
    })
    .await?;
    let assembled = started.elapsed().as_secs_f64();
    let accounts = computed.results.len();
    eprintln!("assembled {accounts} accounts {assembled:.3} s after the request");
    let text = write_attested(&args.out, &computed, &[], &name)?;
    let done = started.elapsed().as_secs_f64();
    eprintln!("tree, signatures and files in {:.3} s; {done:.3} s in all", done - assembled);
    print!("{text}");
    Ok(())
}
