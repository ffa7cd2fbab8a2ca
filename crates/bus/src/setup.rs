//! The connection and the streams and buckets every party expects, created where missing.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::jetstream::{self, kv, stream};

use crate::Error;
use crate::names::{
    BOOK_STREAM, CONFIG_BUCKET, EPOCH_STREAM, EPOCH_SUBJECT, LEASE_BUCKET, MARKET_STREAM,
    MARKET_SUBJECT, RESULT_STREAM, SHARDS_KEY,
};

/// Publish acknowledgements a writer keeps in flight: below async-nats's own bound of 5,000
/// (which, once full, blocks a publisher that has not yet awaited its acks).
pub(crate) const ACKS_IN_FLIGHT_MAX: usize = 1_000;
/// How long JetStream remembers a message id to drop a repeated publish.
const DUPLICATE_WINDOW: Duration = Duration::from_mins(2);
/// How long results are kept: long enough to attest and audit an epoch, no more.
const RESULTS_KEPT: Duration = Duration::from_hours(24);
/// Shards a bus may have: each is a subject and a lease, and the request names the count.
pub const SHARDS_MAX: u32 = 4_096;

/// How a bus is set up: fixed by its first user; later users must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusConfig {
    /// Shards of the book.
    pub shards: u32,
    /// A lease or heartbeat not renewed for this long expires.
    pub lease: Duration,
}

/// A connection to a NATS server with JetStream, and the bus's streams and buckets on it.
#[derive(Clone)]
pub struct Bus {
    pub(crate) js: jetstream::Context,
    pub(crate) leases: kv::Store,
    pub(crate) shards: u32,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus").field("shards", &self.shards).finish_non_exhaustive()
    }
}

impl Bus {
    /// Connects to `url` and creates what is missing: the four streams, the two buckets and the
    /// shard count (stored once: a later `config` must give the same count).
    ///
    /// # Errors
    /// `Nats` when the server cannot be reached or refuses a stream; `Shards` for a count of 0,
    /// above [`SHARDS_MAX`], or other than the one the bus was set up with.
    pub async fn connect(url: &str, config: BusConfig) -> Result<Bus, Error> {
        if config.shards == 0 || config.shards > SHARDS_MAX {
            return Err(Error::Shards(format!("{} is not within 1..={SHARDS_MAX}", config.shards)));
        }
        let client = async_nats::connect(url).await.map_err(|e| Error::nats("connect", e))?;
        let js = jetstream::ContextBuilder::new()
            .max_ack_inflight(ACKS_IN_FLIGHT_MAX * 2)
            .timeout(Duration::from_secs(10))
            .build(client);
        create_streams(&js).await?;
        let settings = bucket(&js, CONFIG_BUCKET, Duration::ZERO).await?;
        let shards = agree_shards(&settings, config.shards).await?;
        let leases = bucket(&js, LEASE_BUCKET, config.lease).await?;
        Ok(Bus { js, leases, shards })
    }

    /// The bus's shard count.
    #[must_use]
    pub fn shards(&self) -> u32 {
        self.shards
    }

    /// A handle on stream `name` (no request to the server).
    pub(crate) async fn stream(&self, name: &str) -> Result<Stream, Error> {
        (self.js.get_stream_no_info(name).await)
            .map_err(|e| Error::nats(format!("stream {name}"), e))
    }

    /// Publishes `body` on `subject` under message id `id` (JetStream stores one message per
    /// id within its duplicate window); `what` names it in an error. The future resolves once
    /// the message is stored.
    pub(crate) async fn publish_with_id(
        &self,
        subject: String,
        id: &str,
        body: Vec<u8>,
        what: &str,
    ) -> Result<PublishAckFuture, Error> {
        let mut headers = HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, id);
        (self.js.publish_with_headers(subject, headers, body.into()).await)
            .map_err(|e| Error::nats(format!("publish {what}"), e))
    }

    /// Publishes `body` on `subject` and waits until it is stored; returns its sequence. `what`
    /// names it in an error.
    pub(crate) async fn store(
        &self,
        subject: &'static str,
        body: Vec<u8>,
        what: &str,
    ) -> Result<u64, Error> {
        let ack = (self.js.publish(subject, body.into()).await)
            .map_err(|e| Error::nats(format!("publish {what}"), e))?;
        let stored = ack.await.map_err(|e| Error::nats(format!("store {what}"), e))?;
        Ok(stored.sequence)
    }

    /// The worker holding each shard's lease now (`None` where none does), in shard order.
    ///
    /// # Errors
    /// `Nats` when the bucket cannot be read.
    pub async fn lease_holders(&self) -> Result<Vec<Option<String>>, Error> {
        let mut holders = Vec::with_capacity(self.shards as usize);
        for shard in 0..self.shards {
            let value = (self.leases.get(crate::names::lease_key(shard)).await)
                .map_err(|e| Error::nats("read a lease", e))?;
            holders.push(value.map(|v| String::from_utf8_lossy(&v).into_owned()));
        }
        Ok(holders)
    }
}

/// A stream handle without its cached info.
pub(crate) type Stream = async_nats::jetstream::stream::Stream<()>;

/// The last message stored on `subject` in `stream`, if any.
pub(crate) async fn last_message(
    stream: &Stream,
    subject: &str,
) -> Result<Option<StreamMessage>, Error> {
    match stream.get_last_raw_message_by_subject(subject).await {
        Ok(message) => Ok(Some(message)),
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
        Err(e) => Err(Error::nats(format!("last message of {subject}"), e)),
    }
}

async fn create_streams(js: &jetstream::Context) -> Result<(), Error> {
    let streams = [
        (BOOK_STREAM, "ballast.book.*", stream::StorageType::File, Duration::ZERO),
        (MARKET_STREAM, MARKET_SUBJECT, stream::StorageType::File, Duration::ZERO),
        (EPOCH_STREAM, EPOCH_SUBJECT, stream::StorageType::File, Duration::ZERO),
        // Results can be recomputed from the book and the market, so memory storage is enough.
        (RESULT_STREAM, "ballast.results.>", stream::StorageType::Memory, RESULTS_KEPT),
    ];
    for (name, subject, storage, max_age) in streams {
        let config = stream::Config {
            name: name.to_owned(),
            subjects: vec![subject.to_owned()],
            storage,
            max_age,
            duplicate_window: DUPLICATE_WINDOW,
            allow_direct: true,
            ..stream::Config::default()
        };
        js.get_or_create_stream(config)
            .await
            .map_err(|e| Error::nats(format!("stream {name}"), e))?;
    }
    Ok(())
}

async fn bucket(
    js: &jetstream::Context,
    name: &str,
    max_age: Duration,
) -> Result<kv::Store, Error> {
    if let Ok(store) = js.get_key_value(name).await {
        return Ok(store);
    }
    let config = kv::Config {
        bucket: name.to_owned(),
        history: 1,
        max_age,
        storage: stream::StorageType::File,
        ..kv::Config::default()
    };
    match js.create_key_value(config).await {
        Ok(store) => Ok(store),
        // Another party created it in between.
        Err(_) => {
            js.get_key_value(name).await.map_err(|e| Error::nats(format!("bucket {name}"), e))
        }
    }
}

async fn agree_shards(settings: &kv::Store, wanted: u32) -> Result<u32, Error> {
    let text = bytes::Bytes::from(wanted.to_string());
    if settings.create(SHARDS_KEY, text).await.is_ok() {
        return Ok(wanted);
    }
    let stored = (settings.get(SHARDS_KEY).await)
        .map_err(|e| Error::nats("read the shard count", e))?
        .ok_or_else(|| Error::Shards("the shard count could not be stored".to_owned()))?;
    let stored: u32 = (std::str::from_utf8(&stored).ok().and_then(|t| t.parse().ok()))
        .ok_or_else(|| Error::Shards("the stored shard count is not a number".to_owned()))?;
    if stored != wanted {
        return Err(Error::Shards(format!("the bus has {stored} shards, not {wanted}")));
    }
    Ok(stored)
}
