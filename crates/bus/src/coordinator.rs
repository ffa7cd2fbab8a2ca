//! The coordinator: publishes the market and an epoch request at a cut of the book, gathers
//! every shard's part from the results stream, and assembles the epoch.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use epoch::ComputedEpoch;
use formats::market::MarketDocument;
use formats::methodology::Profile;
use market::MarketSnapshot;
use oracle::B256;
use rayon::prelude::*;

use crate::names::{
    BOOK_STREAM, EPOCH_SUBJECT, MARKET_SUBJECT, RESULT_STREAM, chunk_subject, done_subject,
};
use crate::setup::{Stream, last_message};
use crate::wire::{EpochRequest, ShardDone, chunk_head, decode_chunk_into, wire};
use crate::{Bus, Error};

/// What to attest.
#[derive(Debug, Clone)]
pub struct EpochOrder {
    /// The epoch number.
    pub epoch: u64,
    /// The market snapshot.
    pub market: Arc<MarketSnapshot>,
    /// The methodology (a portfolio one).
    pub profile: Profile,
    /// How long to wait before saying which shards are still missing.
    pub report_after: Duration,
    /// How long to wait for every shard before giving up.
    pub timeout: Duration,
}

/// What the coordinator reports while it waits.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Progress {
    /// The request is on the bus.
    Requested {
        /// Its sequence in the epoch stream.
        request: u64,
        /// The book's cut.
        book_seq: u64,
    },
    /// Every shard's part has arrived, `waited_ms` after the request; assembly follows.
    Gathered {
        /// Milliseconds since the request.
        waited_ms: u64,
    },
    /// Shards still missing after `waited_ms`, each with its lease holder.
    Waiting {
        /// Milliseconds since the request.
        waited_ms: u64,
        /// (shard, worker holding its lease).
        missing: Vec<(u32, Option<String>)>,
    },
}

/// How often the coordinator looks for results that have arrived.
const POLL: Duration = Duration::from_millis(20);

/// One shard's part as it arrives: chunks by index, and the commit.
#[derive(Default)]
struct Arriving {
    /// Bodies by chunk index, decoded (in parallel) once every shard is in.
    chunks: BTreeMap<u32, bytes::Bytes>,
    done: Option<ShardDone>,
}

impl Arriving {
    fn complete(&self) -> bool {
        self.done.as_ref().is_some_and(|d| {
            d.error.is_some() || (0..d.chunks).all(|c| self.chunks.contains_key(&c))
        })
    }
}

/// Runs one epoch on the bus: the book at the stream's last sequence now, on `order`'s market,
/// computed by the workers that own its shards.
///
/// # Errors
/// `Nats` for a failed publish or read; `Shard` for a shard its worker could not compute (the
/// lowest such shard); `Slow` when shards are missing at the timeout; `Wire` for a result that
/// does not decode or does not match the request; `Epoch` when the parts do not assemble.
pub async fn run_epoch(
    bus: &Bus,
    order: &EpochOrder,
    mut progress: impl FnMut(Progress),
) -> Result<ComputedEpoch, Error> {
    let (request_seq, request) = publish_request(bus, order).await?;
    progress(Progress::Requested { request: request_seq, book_seq: request.book_seq });
    let results = bus.stream(RESULT_STREAM).await?;
    let mut shards: BTreeMap<u32, Arriving> =
        (0..bus.shards).map(|s| (s, Arriving::default())).collect();
    let started = tokio::time::Instant::now();
    let mut next_report = started + order.report_after;
    loop {
        for (shard, arriving) in &mut shards {
            if !arriving.complete() {
                fetch(&results, arriving, request_seq, *shard).await?;
            }
        }
        if shards.values().all(Arriving::complete) {
            break;
        }
        let now = tokio::time::Instant::now();
        if now >= started + order.timeout || now >= next_report {
            let waited_ms = started.elapsed().as_millis() as u64;
            let missing = missing(bus, &shards).await?;
            if now >= started + order.timeout {
                return Err(Error::Slow { epoch: order.epoch, waited_ms, missing });
            }
            progress(Progress::Waiting { waited_ms, missing });
            next_report += order.report_after;
        }
        tokio::time::sleep(POLL).await;
    }
    progress(Progress::Gathered { waited_ms: started.elapsed().as_millis() as u64 });
    assemble(order, request_seq, &request, shards)
}

async fn publish_request(bus: &Bus, order: &EpochOrder) -> Result<(u64, EpochRequest), Error> {
    let Profile::Portfolio(_) = &order.profile else {
        return Err(Error::Shards("a per-position methodology cannot be attested".to_owned()));
    };
    let text = MarketDocument::from_snapshot(&order.market).to_json_pretty();
    let market_seq = bus.store(MARKET_SUBJECT, text.into_bytes(), "the market").await?;
    let mut book = bus.js.get_stream(BOOK_STREAM).await.map_err(|e| Error::nats("book", e))?;
    let book_seq = book.info().await.map_err(|e| Error::nats("book", e))?.state.last_sequence;
    let methodology =
        order.profile.to_toml().map_err(|e| Error::Shards(format!("methodology: {e}")))?;
    let request = EpochRequest {
        epoch: order.epoch,
        shards: bus.shards,
        market_seq,
        book_seq,
        methodology,
        methodology_hash: B256::from(order.profile.hash()),
    };
    let request_seq = bus.store(EPOCH_SUBJECT, request.encode(), "the request").await?;
    Ok((request_seq, request))
}

/// Reads what has arrived of one shard's part: its commit, then each chunk it names. Each
/// message is read by its own subject (the last message stored on it), so nothing depends on a
/// consumer's flow control, and a chunk stored twice (by a worker and its successor) is one.
async fn fetch(
    results: &Stream,
    arriving: &mut Arriving,
    request_seq: u64,
    shard: u32,
) -> Result<(), Error> {
    if arriving.done.is_none() {
        let subject = done_subject(request_seq, shard);
        let Some(message) = last_message(results, &subject).await? else { return Ok(()) };
        let done = ShardDone::decode(&subject, &message.payload)?;
        if done.shard != shard {
            return Err(wire(&subject, "shard", "the commit names another shard"));
        }
        arriving.done = Some(done);
    }
    let chunks = arriving.done.as_ref().map_or(0, |d| if d.error.is_some() { 0 } else { d.chunks });
    for chunk in 0..chunks {
        if arriving.chunks.contains_key(&chunk) {
            continue;
        }
        let subject = chunk_subject(request_seq, shard, chunk);
        // A commit follows its chunks, so a missing chunk means the results were lost (a
        // server restarted on memory storage): the shard stays incomplete and is reported.
        let Some(message) = last_message(results, &subject).await? else { return Ok(()) };
        let (head, _) = chunk_head(&subject, &message.payload)?;
        if (head.request, head.shard, head.chunk) != (request_seq, shard, chunk) {
            return Err(wire(&subject, "chunk", "the chunk's header does not match its subject"));
        }
        arriving.chunks.insert(chunk, message.payload);
    }
    Ok(())
}

async fn missing(
    bus: &Bus,
    shards: &BTreeMap<u32, Arriving>,
) -> Result<Vec<(u32, Option<String>)>, Error> {
    let holders = bus.lease_holders().await?;
    Ok((0..bus.shards)
        .filter(|s| !shards.get(s).is_some_and(Arriving::complete))
        .map(|s| (s, holders[s as usize].clone()))
        .collect())
}

/// Checks each commit against the request, decodes the shards' chunks in parallel and joins
/// the parts; of several faults, the lowest shard's is reported.
fn assemble(
    order: &EpochOrder,
    request_seq: u64,
    request: &EpochRequest,
    shards: BTreeMap<u32, Arriving>,
) -> Result<ComputedEpoch, Error> {
    let market_data_hash = B256::from(formats::market::market_hash(&order.market));
    let as_of_secs = epoch::as_of_secs(&order.market)?;
    for (shard, arriving) in &shards {
        let Some(done) = &arriving.done else {
            panic!("Invariant: a complete shard has its commit")
        };
        let refuse = |reason: String| Error::Shard { epoch: order.epoch, shard: *shard, reason };
        if let Some(reason) = &done.error {
            return Err(refuse(reason.clone()));
        }
        if (done.market_data_hash, done.methodology_hash, done.as_of_secs, done.book_seq)
            != (market_data_hash, request.methodology_hash, as_of_secs, request.book_seq)
        {
            return Err(refuse("computed on another market, methodology or cut".to_owned()));
        }
    }
    let decode = |(shard, arriving): (u32, Arriving)| -> Result<ComputedEpoch, Error> {
        let (mut keys, mut results) = (Vec::new(), Vec::new());
        for (chunk, body) in &arriving.chunks {
            let subject = chunk_subject(request_seq, shard, *chunk);
            decode_chunk_into(&subject, body, &mut keys, &mut results)?;
        }
        let accounts = arriving.done.as_ref().map_or(0, |d| d.accounts);
        if keys.len() as u64 != accounts {
            let reason = format!("{} rows for {accounts} accounts", keys.len());
            return Err(Error::Shard { epoch: order.epoch, shard, reason });
        }
        let methodology_hash = request.methodology_hash;
        Ok(ComputedEpoch { market_data_hash, methodology_hash, as_of_secs, results, keys })
    };
    let parts: Vec<Result<ComputedEpoch, Error>> = shards.into_par_iter().map(decode).collect();
    Ok(epoch::assemble(parts.into_iter().collect::<Result<_, _>>()?)?)
}
