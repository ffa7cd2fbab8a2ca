//! A worker: owns shards through leases, rebuilds each from the book stream, and computes its
//! shards' part of every epoch requested.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use epoch::{ComputedEpoch, EpochInputs};
use formats::market::MarketDocument;
use formats::methodology::Profile;
use futures_util::StreamExt;
use market::MarketSnapshot;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::book::ShardBook;
use crate::names::{
    BOOK_STREAM, EPOCH_STREAM, EPOCH_SUBJECT, HEARTBEAT_PREFIX, MARKET_STREAM, RESULT_STREAM,
    book_subject, chunk_subject, done_subject, heartbeat_key, lease_key, shard_of, valid_worker_id,
};
use crate::setup::{Stream, last_message};
use crate::wire::{
    ChunkHead, DONE_FORMAT, EpochRequest, ShardDone, Write, encode_chunk, row_bytes,
};
use crate::{Bus, Error};

/// Bytes of results per chunk: well below the server's default 1 MiB payload limit.
const CHUNK_BYTES_MAX: usize = 512 * 1024;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The worker's name, unique among live workers: ASCII letters, digits, `-` and `_`.
    pub id: String,
    /// The bus's lease time: leases are renewed three times within it.
    pub lease: Duration,
    /// How often the worker looks for shards to take and requests to serve.
    pub tick: Duration,
}

/// What a worker did, for its log.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum WorkerEvent {
    /// It took a shard's lease.
    Acquired {
        /// The shard.
        shard: u32,
    },
    /// It gave up (or lost) a shard's lease.
    Released {
        /// The shard.
        shard: u32,
    },
    /// A message it could not use, skipped with the reason.
    Rejected {
        /// The subject.
        subject: String,
        /// Its stream sequence.
        sequence: u64,
        /// Why.
        reason: String,
    },
    /// It starts computing its shards' part of a request.
    Computing {
        /// The request's sequence.
        request: u64,
        /// The epoch.
        epoch: u64,
        /// The shards.
        shards: Vec<u32>,
    },
    /// It published its shards' results for a request.
    Computed {
        /// The request's sequence.
        request: u64,
        /// The epoch.
        epoch: u64,
        /// The shards computed.
        shards: Vec<u32>,
        /// Accounts in them.
        accounts: usize,
        /// Milliseconds computing the parts.
        compute_ms: u64,
        /// Milliseconds publishing them, to the last commit stored.
        publish_ms: u64,
    },
    /// A shard's follower received every write stored when it started (a rebuild's end).
    CaughtUp {
        /// The shard.
        shard: u32,
        /// Writes received.
        writes: u64,
        /// Milliseconds since the follower started.
        millis: u64,
    },
}

/// One owned shard: its book, fed by a task following the shard's subject.
struct Owned {
    book: Arc<Mutex<ShardBook>>,
    _follower: Task,
}

/// A spawned task that ends with its owner: a worker dropped mid-run (its future cancelled)
/// stops following its shards and renewing its leases, as a killed process would.
struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A running worker.
pub struct Worker {
    bus: Bus,
    config: WorkerConfig,
    /// Lease revisions of the shards held, shared with the renewing task (which drops a shard
    /// whose renewal fails).
    leases: Arc<Mutex<BTreeMap<u32, u64>>>,
    owned: BTreeMap<u32, Owned>,
    /// (request sequence, shard) pairs already committed.
    done: BTreeSet<(u64, u32)>,
    market: Option<(u64, Arc<MarketSnapshot>)>,
    rejected_request: Option<u64>,
    events: mpsc::UnboundedSender<WorkerEvent>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("id", &self.config.id).finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker on `bus`, reporting what it does on the returned channel.
    ///
    /// # Errors
    /// `Shards` for a worker id that cannot name a key.
    pub fn new(
        bus: &Bus,
        config: WorkerConfig,
    ) -> Result<(Worker, mpsc::UnboundedReceiver<WorkerEvent>), Error> {
        if !valid_worker_id(&config.id) {
            let why = format!("worker id {:?}: 1 to 64 of A-Z a-z 0-9 - _", config.id);
            return Err(Error::Shards(why));
        }
        let (events, receiver) = mpsc::unbounded_channel();
        let worker = Worker {
            bus: bus.clone(),
            config,
            leases: Arc::default(),
            owned: BTreeMap::new(),
            done: BTreeSet::new(),
            market: None,
            rejected_request: None,
            events,
        };
        Ok((worker, receiver))
    }

    /// Runs until the connection fails: renews its leases, takes its share of the shards, and
    /// serves the latest epoch request for each shard it owns.
    ///
    /// # Errors
    /// `Nats` when the server goes away for longer than the client's reconnection attempts.
    pub async fn run(mut self) -> Result<(), Error> {
        let renewer = renew(self.bus.clone(), self.config.clone(), self.leases.clone());
        let _renewer = Task(tokio::spawn(renewer));
        loop {
            self.balance().await?;
            self.serve().await?;
            tokio::time::sleep(self.config.tick).await;
        }
    }

    fn event(&self, event: WorkerEvent) {
        // The receiver may have been dropped by a caller not interested in the log.
        let _ = self.events.send(event);
    }

    /// Takes free shards up to a fair share of the live workers, and gives back shards above it.
    async fn balance(&mut self) -> Result<(), Error> {
        let held: BTreeSet<u32> =
            self.leases.lock().unwrap_or_else(PoisonError::into_inner).keys().copied().collect();
        let lost: Vec<u32> = self.owned.keys().filter(|s| !held.contains(s)).copied().collect();
        for shard in lost {
            self.drop_shard(shard);
        }
        let live = self.live_workers().await?.max(1);
        let fair = self.bus.shards.div_ceil(live) as usize;
        for shard in 0..self.bus.shards {
            if self.owned.len() >= fair {
                break;
            }
            if self.owned.contains_key(&shard) {
                continue;
            }
            let value = bytes::Bytes::from(self.config.id.clone());
            if let Ok(revision) = self.bus.leases.create(lease_key(shard), value).await {
                self.leases.lock().unwrap_or_else(PoisonError::into_inner).insert(shard, revision);
                self.take_shard(shard).await?;
            }
        }
        while self.owned.len() > fair {
            let Some(&shard) = self.owned.keys().next_back() else {
                panic!("Invariant: a worker above its fair share owns a shard")
            };
            let revision =
                self.leases.lock().unwrap_or_else(PoisonError::into_inner).remove(&shard);
            if let Some(revision) = revision {
                // A failed delete leaves the lease to expire: either way the shard is free.
                let _ =
                    self.bus.leases.delete_expect_revision(lease_key(shard), Some(revision)).await;
            }
            self.drop_shard(shard);
        }
        Ok(())
    }

    async fn live_workers(&self) -> Result<u32, Error> {
        let mut keys = self.bus.leases.keys().await.map_err(|e| Error::nats("list workers", e))?;
        let mut live = 0;
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| Error::nats("list workers", e))?;
            live += u32::from(key.starts_with(HEARTBEAT_PREFIX));
        }
        Ok(live)
    }

    async fn take_shard(&mut self, shard: u32) -> Result<(), Error> {
        let stream = self.bus.stream(BOOK_STREAM).await?;
        let book = Arc::new(Mutex::new(ShardBook::default()));
        let follower = follow(stream, shard, self.bus.shards, book.clone(), self.events.clone());
        let follower = Task(tokio::spawn(follower));
        self.owned.insert(shard, Owned { book, _follower: follower });
        self.event(WorkerEvent::Acquired { shard });
        Ok(())
    }

    fn drop_shard(&mut self, shard: u32) {
        if self.owned.remove(&shard).is_some() {
            self.event(WorkerEvent::Released { shard });
        }
    }

    /// Computes and publishes the owned shards the latest request still lacks.
    async fn serve(&mut self) -> Result<(), Error> {
        let Some((seq, request)) = self.latest_request().await? else { return Ok(()) };
        if request.shards != self.bus.shards {
            self.reject_request(
                seq,
                format!("made for {} shards, not {}", request.shards, self.bus.shards),
            );
            return Ok(());
        }
        let results = self.bus.stream(RESULT_STREAM).await?;
        let mut pending = Vec::new();
        for &shard in self.owned.keys() {
            if self.done.contains(&(seq, shard)) {
                continue;
            }
            if last_message(&results, &done_subject(seq, shard)).await?.is_some() {
                self.done.insert((seq, shard));
                continue;
            }
            if !self.caught_up(shard, request.book_seq).await? {
                return Ok(());
            }
            pending.push(shard);
        }
        if pending.is_empty() {
            return Ok(());
        }
        let market = match self.market(request.market_seq).await {
            Ok(market) => market,
            Err(reason) => return self.fail_all(seq, &request, &pending, &reason).await,
        };
        let started = Instant::now();
        let shards = pending.clone();
        self.event(WorkerEvent::Computing { request: seq, epoch: request.epoch, shards });
        let (parts, accounts) = self.compute(&request, market, &pending).await;
        let compute_ms = started.elapsed().as_millis() as u64;
        for (shard, part) in pending.iter().zip(parts) {
            publish_part(&self.bus, seq, &request, *shard, part).await?;
            self.done.insert((seq, *shard));
        }
        for shard in &pending {
            if let Some(owned) = self.owned.get(shard) {
                owned.book.lock().unwrap_or_else(PoisonError::into_inner).compact(request.book_seq);
            }
        }
        let publish_ms = started.elapsed().as_millis() as u64 - compute_ms;
        self.event(WorkerEvent::Computed {
            request: seq,
            epoch: request.epoch,
            shards: pending,
            accounts,
            compute_ms,
            publish_ms,
        });
        Ok(())
    }

    async fn latest_request(&mut self) -> Result<Option<(u64, EpochRequest)>, Error> {
        let epochs = self.bus.stream(EPOCH_STREAM).await?;
        let Some(message) = last_message(&epochs, EPOCH_SUBJECT).await? else { return Ok(None) };
        match EpochRequest::decode(EPOCH_SUBJECT, &message.payload) {
            Ok(request) => Ok(Some((message.sequence, request))),
            Err(e) => {
                self.reject_request(message.sequence, e.to_string());
                Ok(None)
            }
        }
    }

    fn reject_request(&mut self, sequence: u64, reason: String) {
        if self.rejected_request != Some(sequence) {
            self.rejected_request = Some(sequence);
            let subject = EPOCH_SUBJECT.to_owned();
            self.event(WorkerEvent::Rejected { subject, sequence, reason });
        }
    }

    /// Whether shard `shard`'s book holds every write at or below `cut`: it has received the
    /// subject's last message, or one past the cut (the follower delivers in stream order).
    async fn caught_up(&self, shard: u32, cut: u64) -> Result<bool, Error> {
        let received =
            self.owned[&shard].book.lock().unwrap_or_else(PoisonError::into_inner).received();
        if received > cut {
            return Ok(true);
        }
        let book = self.bus.stream(BOOK_STREAM).await?;
        let last = last_message(&book, &book_subject(shard)).await?;
        Ok(last.is_none_or(|message| received >= message.sequence))
    }

    /// The market of sequence `seq`, parsed once.
    async fn market(&mut self, seq: u64) -> Result<Arc<MarketSnapshot>, String> {
        if let Some((at, market)) = &self.market
            && *at == seq
        {
            return Ok(market.clone());
        }
        let markets = self.bus.stream(MARKET_STREAM).await.map_err(|e| e.to_string())?;
        let message =
            markets.get_raw_message(seq).await.map_err(|e| format!("market {seq}: {e}"))?;
        let text =
            std::str::from_utf8(&message.payload).map_err(|e| format!("market {seq}: {e}"))?;
        let document = MarketDocument::from_json(text).map_err(|e| format!("market {seq}: {e}"))?;
        let snapshot = Arc::new(document.to_snapshot().map_err(|e| format!("market {seq}: {e}"))?);
        self.market = Some((seq, snapshot.clone()));
        Ok(snapshot)
    }

    /// Each pending shard's part at the request's cut, on one pricing, off the async threads.
    async fn compute(
        &self,
        request: &EpochRequest,
        market: Arc<MarketSnapshot>,
        pending: &[u32],
    ) -> (Vec<Result<ComputedEpoch, String>>, usize) {
        let books: Vec<Arc<Mutex<ShardBook>>> =
            pending.iter().map(|s| self.owned[s].book.clone()).collect();
        let request = request.clone();
        let task = tokio::task::spawn_blocking(move || compute_shards(&request, market, &books));
        crate::invariant(task.await, "the computation does not panic")
    }

    async fn fail_all(
        &mut self,
        seq: u64,
        request: &EpochRequest,
        shards: &[u32],
        reason: &str,
    ) -> Result<(), Error> {
        for &shard in shards {
            publish_part(&self.bus, seq, request, shard, Err(reason.to_owned())).await?;
            self.done.insert((seq, shard));
        }
        Ok(())
    }
}

/// The parts of `books` at the request's cut, and the accounts in them; a refusal is the
/// reason of each part (the whole request fails on the same reason in every shard).
fn compute_shards(
    request: &EpochRequest,
    market: Arc<MarketSnapshot>,
    books: &[Arc<Mutex<ShardBook>>],
) -> (Vec<Result<ComputedEpoch, String>>, usize) {
    let fail = |reason: String| (books.iter().map(|_| Err(reason.clone())).collect(), 0);
    let profile = match Profile::from_toml(&request.methodology) {
        Ok(profile) => profile,
        Err(e) => return fail(format!("methodology: {e}")),
    };
    let hash = oracle::B256::from(profile.hash());
    if hash != request.methodology_hash {
        return fail(format!(
            "methodology hash {hash} is not the request's {}",
            request.methodology_hash
        ));
    }
    let Profile::Portfolio(methodology) = profile else {
        return fail("a per-position methodology cannot be attested".to_owned());
    };
    let inputs = EpochInputs { market, methodology: *methodology, methodology_hash: hash };
    let guards: Vec<_> =
        books.iter().map(|b| b.lock().unwrap_or_else(PoisonError::into_inner)).collect();
    let mut parts = Vec::with_capacity(guards.len());
    for guard in &guards {
        match guard.at(request.book_seq) {
            Some(part) => parts.push(part),
            None => {
                return fail(format!(
                    "cut {} is below the book's floor {}",
                    request.book_seq,
                    guard.floor()
                ));
            }
        }
    }
    let accounts = parts.iter().map(Vec::len).sum();
    match epoch::compute_parts(&inputs, &parts) {
        Ok(computed) => (computed.into_iter().map(Ok).collect(), accounts),
        Err(e) => fail(e.to_string()),
    }
}

/// Publishes one shard's part: its chunks, then its commit, each under its subject as message
/// id, so a repeat by another worker is dropped by the server.
async fn publish_part(
    bus: &Bus,
    request_seq: u64,
    request: &EpochRequest,
    shard: u32,
    part: Result<ComputedEpoch, String>,
) -> Result<(), Error> {
    let (chunks, accounts, hashes, error) = match part {
        Ok(part) => {
            let chunks = publish_chunks(bus, request_seq, shard, &part).await?;
            let hashes = (part.market_data_hash, part.methodology_hash, part.as_of_secs);
            (chunks, part.results.len() as u64, hashes, None)
        }
        Err(reason) => (0, 0, (oracle::B256::ZERO, request.methodology_hash, 0), Some(reason)),
    };
    let done = ShardDone {
        format: DONE_FORMAT.to_owned(),
        epoch: request.epoch,
        shard,
        chunks,
        accounts,
        market_data_hash: hashes.0,
        methodology_hash: hashes.1,
        as_of_secs: hashes.2,
        book_seq: request.book_seq,
        error,
    };
    let body = crate::invariant(serde_json::to_vec(&done), "a commit serialises");
    let subject = done_subject(request_seq, shard);
    let ack = bus.publish_with_id(subject.clone(), &subject, body, "a result").await?;
    ack.await.map_err(|e| Error::nats("commit a shard", e))?;
    Ok(())
}

async fn publish_chunks(
    bus: &Bus,
    request_seq: u64,
    shard: u32,
    part: &ComputedEpoch,
) -> Result<u32, Error> {
    let mut acks = Vec::new();
    let mut chunk = 0u32;
    let mut start = 0;
    let rows: Vec<_> = part.keys.iter().zip(&part.results).collect();
    while start < rows.len() {
        let mut end = start;
        let mut size = 0;
        while end < rows.len()
            && (end == start || size + row_bytes(&rows[end].0.id) <= CHUNK_BYTES_MAX)
        {
            size += row_bytes(&rows[end].0.id);
            end += 1;
        }
        let head = ChunkHead { request: request_seq, shard, chunk };
        let subject = chunk_subject(request_seq, shard, chunk);
        let body = encode_chunk(head, &rows[start..end]);
        acks.push(bus.publish_with_id(subject.clone(), &subject, body, "a result").await?);
        chunk += 1;
        start = end;
    }
    for ack in acks {
        ack.await.map_err(|e| Error::nats("store a result chunk", e))?;
    }
    Ok(chunk)
}

/// Follows shard `shard`'s subject from the start into `book`, rejecting (and reporting)
/// messages that do not decode or belong to another shard; runs until aborted.
async fn follow(
    stream: Stream,
    shard: u32,
    shards: u32,
    book: Arc<Mutex<ShardBook>>,
    events: mpsc::UnboundedSender<WorkerEvent>,
) {
    let subject = book_subject(shard);
    let config = pull::OrderedConfig {
        filter_subject: subject.clone(),
        deliver_policy: DeliverPolicy::All,
        ..pull::OrderedConfig::default()
    };
    let reject = |sequence: u64, reason: String| {
        let _ = events.send(WorkerEvent::Rejected { subject: subject.clone(), sequence, reason });
    };
    let messages = match stream.create_consumer(config).await {
        Ok(consumer) => consumer.messages().await,
        Err(e) => return reject(0, format!("cannot follow the shard: {e}")),
    };
    let mut messages = match messages {
        Ok(messages) => messages,
        Err(e) => return reject(0, format!("cannot follow the shard: {e}")),
    };
    let started = Instant::now();
    let (mut writes, mut caught_up) = (0, false);
    while let Some(message) = messages.next().await {
        let Ok(message) = message else { continue };
        let Ok((sequence, pending)) = message.info().map(|i| (i.stream_sequence, i.pending)) else {
            continue;
        };
        writes += 1;
        if pending == 0 && !caught_up {
            caught_up = true;
            let millis = started.elapsed().as_millis() as u64;
            let _ = events.send(WorkerEvent::CaughtUp { shard, writes, millis });
        }
        let decoded = Write::decode(&subject, &message.payload).and_then(|write| {
            let home = shard_of(&write.id, shards);
            if home == shard {
                Ok(write)
            } else {
                Err(Error::Shards(format!("{:?} belongs to shard {home}", write.id)))
            }
        });
        let mut book = book.lock().unwrap_or_else(PoisonError::into_inner);
        match decoded {
            Ok(write) => {
                book.apply(sequence, write);
            }
            Err(e) => {
                book.note(sequence);
                drop(book);
                reject(sequence, e.to_string());
            }
        }
    }
}

/// Renews the heartbeat and every held lease three times per lease time; a lease that fails to
/// renew (it expired and another worker took it) is dropped from `leases`.
async fn renew(bus: Bus, config: WorkerConfig, leases: Arc<Mutex<BTreeMap<u32, u64>>>) {
    let mut interval = tokio::time::interval(config.lease / 3);
    loop {
        interval.tick().await;
        let value = bytes::Bytes::from(config.id.clone());
        let _ = bus.leases.put(heartbeat_key(&config.id), value.clone()).await;
        let held: Vec<(u32, u64)> = leases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(s, r)| (*s, *r))
            .collect();
        for (shard, revision) in held {
            let renewed = bus.leases.update(lease_key(shard), value.clone(), revision).await;
            let mut leases = leases.lock().unwrap_or_else(PoisonError::into_inner);
            match renewed {
                Ok(revision) => {
                    if let Some(slot) = leases.get_mut(&shard) {
                        *slot = revision;
                    }
                }
                Err(_) => {
                    leases.remove(&shard);
                }
            }
        }
    }
}
