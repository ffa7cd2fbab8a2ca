//! Account writes onto the book stream, each acknowledged only once JetStream has stored it.

use async_nats::jetstream::context::PublishAckFuture;
use product::Portfolio;

use crate::names::{book_subject, shard_of};
use crate::setup::ACKS_IN_FLIGHT_MAX;
use crate::wire::{ID_BYTES_MAX, encode_write, valid_id, wire};
use crate::{Bus, Error};

/// Writes accounts to the bus.
#[derive(Debug, Clone)]
pub struct Writer {
    bus: Bus,
}

/// A write to send: its idempotency key (a retry with the same key is stored once), the
/// account and its new portfolio (`None` removes it).
pub type Keyed<'a> = (&'a str, &'a str, Option<&'a Portfolio>);

impl Writer {
    /// A writer on `bus`.
    #[must_use]
    pub fn new(bus: &Bus) -> Writer {
        Writer { bus: bus.clone() }
    }

    /// Sends `writes` in order, keeping at most [`ACKS_IN_FLIGHT_MAX`] acknowledgements in
    /// flight, and returns each write's stream sequence once every one is stored. A write whose
    /// key JetStream has seen within its duplicate window is not stored again; its sequence is
    /// the first copy's.
    ///
    /// # Errors
    /// `Nats` for the first write the server did not acknowledge: the writes before it are
    /// stored; it and those after it may or may not be (send them again with the same keys).
    pub async fn send(&self, writes: &[Keyed<'_>]) -> Result<Vec<u64>, Error> {
        let mut sequences = Vec::with_capacity(writes.len());
        let mut in_flight: std::collections::VecDeque<PublishAckFuture> =
            std::collections::VecDeque::with_capacity(ACKS_IN_FLIGHT_MAX);
        if let Some((_, id, _)) = writes.iter().find(|w| !valid_id(w.1)) {
            let reason = format!("{id:?}: must be 1 to {ID_BYTES_MAX} bytes");
            return Err(wire("ballast.book", "id", reason));
        }
        for (key, id, portfolio) in writes {
            if in_flight.len() == ACKS_IN_FLIGHT_MAX {
                let Some(ack) = in_flight.pop_front() else {
                    panic!("Invariant: a full window is not empty")
                };
                sequences.push(stored(ack).await?);
            }
            let subject = book_subject(shard_of(id, self.bus.shards));
            let body = encode_write(id, *portfolio);
            in_flight.push_back(self.bus.publish_with_id(subject, key, body, "a write").await?);
        }
        for ack in in_flight {
            sequences.push(stored(ack).await?);
        }
        Ok(sequences)
    }
}

async fn stored(ack: PublishAckFuture) -> Result<u64, Error> {
    let ack = ack.await.map_err(|e| Error::nats("acknowledge a write", e))?;
    Ok(ack.sequence)
}
