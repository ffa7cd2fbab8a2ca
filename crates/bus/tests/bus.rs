//! The bus against a real `nats-server` with JetStream: sharded epochs give the single-process
//! root over 1, 2 and 4 workers, a stopped worker's shards are taken over, a killed server loses
//! no acknowledged write, duplicates change nothing, and bad messages are rejected with a reason
//! without stopping a worker.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail loudly")]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bus::{Bus, BusConfig, EpochOrder, Worker, WorkerConfig, WorkerEvent, Writer};
use common::{NatsServer, book};
use epoch::{ComputedEpoch, EpochSource};
use oracle::{B256, EpochTree};
use product::Portfolio;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

const LEASE: Duration = Duration::from_millis(900);

fn config(shards: u32) -> BusConfig {
    BusConfig { shards, lease: LEASE }
}

fn root(computed: &ComputedEpoch) -> B256 {
    EpochTree::build(&computed.header(1, 3_600), &computed.results).unwrap().root()
}

/// The single-process epoch of `accounts` on the sample market under Ballast PM.
fn single(accounts: &BTreeMap<String, Portfolio>) -> ComputedEpoch {
    let profile = formats::bundled::bundled("ballast-pm").unwrap();
    epoch::compute(&EpochSource {
        market: testkit::sample_market(),
        methodology: testkit::ballast_pm(),
        methodology_hash: B256::from(profile.hash()),
        accounts: accounts.clone(),
        salt_secret: None,
    })
    .unwrap()
}

fn order(epoch: u64) -> EpochOrder {
    EpochOrder {
        epoch,
        market: testkit::sample_market(),
        profile: formats::bundled::bundled("ballast-pm").unwrap(),
        report_after: Duration::from_secs(5),
        timeout: Duration::from_mins(1),
    }
}

async fn write_all(bus: &Bus, accounts: &BTreeMap<String, Portfolio>, tag: &str) -> Vec<u64> {
    let keys: Vec<String> = accounts.keys().map(|id| format!("{tag}/{id}")).collect();
    let writes: Vec<_> = (keys.iter().zip(accounts))
        .map(|(key, (id, p))| (key.as_str(), id.as_str(), Some(p)))
        .collect();
    Writer::new(bus).send(&writes).await.unwrap()
}

fn spawn_worker(bus: &Bus, id: &str) -> (JoinHandle<()>, UnboundedReceiver<WorkerEvent>) {
    let config = WorkerConfig { id: id.to_owned(), lease: LEASE, tick: Duration::from_millis(50) };
    let (worker, events) = Worker::new(bus, config).unwrap();
    let handle = tokio::spawn(async move {
        let _ = worker.run().await;
    });
    (handle, events)
}

/// Sharded epochs over 1, 2 and 4 workers give the single-process results and root, byte for
/// byte, and the shards are spread over the workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_epochs_give_the_single_process_root() {
    let accounts = book(11, 300);
    let expected = single(&accounts);
    for workers in [1, 2, 4] {
        let server = NatsServer::start();
        let bus = Bus::connect(&server.url(), config(8)).await.unwrap();
        write_all(&bus, &accounts, "load").await;
        let handles: Vec<_> = (0..workers).map(|w| spawn_worker(&bus, &format!("w{w}"))).collect();
        // Leases settle within a few ticks; the epoch waits for whoever holds each shard.
        tokio::time::sleep(LEASE * 2).await;
        let computed = bus::run_epoch(&bus, &order(1), |_| {}).await.unwrap();
        assert_eq!(computed.results, expected.results, "{workers} workers");
        assert_eq!(computed.keys, expected.keys);
        assert_eq!(root(&computed), root(&expected));
        let holders = bus.lease_holders().await.unwrap();
        let distinct: std::collections::BTreeSet<_> = holders.iter().flatten().collect();
        assert_eq!(distinct.len(), workers, "{workers} workers share the shards: {holders:?}");
        for (handle, _) in handles {
            handle.abort();
        }
    }
}

/// A worker that stops holding its leases (its task aborted, so nothing renews them) loses
/// its shards to the other after the lease time, and the next epoch has the same root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_workers_shards_are_taken_over() {
    let accounts = book(12, 200);
    let expected = single(&accounts);
    let server = NatsServer::start();
    let bus = Bus::connect(&server.url(), config(4)).await.unwrap();
    write_all(&bus, &accounts, "load").await;
    let (first, _) = spawn_worker(&bus, "first");
    let (second, mut events) = spawn_worker(&bus, "second");
    tokio::time::sleep(LEASE * 2).await;
    let before = bus.lease_holders().await.unwrap();
    assert!(before.iter().any(|h| h.as_deref() == Some("first")), "{before:?}");
    let mut held = std::collections::BTreeSet::new();
    let mut follow = |events: &mut UnboundedReceiver<WorkerEvent>| {
        let mut taken = Vec::new();
        while let Ok(event) = events.try_recv() {
            match event {
                WorkerEvent::Acquired { shard } => {
                    held.insert(shard);
                    taken.push(shard);
                }
                WorkerEvent::Released { shard } => _ = held.remove(&shard),
                _ => {}
            }
        }
        (taken, held.clone())
    };
    let (_, second_before) = follow(&mut events);
    first.abort();
    let computed = bus::run_epoch(&bus, &order(1), |_| {}).await.unwrap();
    assert_eq!(root(&computed), root(&expected));
    let after = bus.lease_holders().await.unwrap();
    assert!(after.iter().all(|h| h.as_deref() == Some("second")), "{after:?}");
    let (taken, second_after) = follow(&mut events);
    assert_eq!(second_after, (0..4).collect(), "the second worker ends with every shard");
    assert!(!taken.is_empty() && taken.iter().all(|s| !second_before.contains(s)), "{taken:?}");
    second.abort();
}

/// The server killed with SIGKILL between writes and started again on its store keeps every
/// acknowledged write: the epoch over both halves has the root of the whole book.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_no_acknowledged_write() {
    let accounts = book(13, 240);
    let expected = single(&accounts);
    let (low, high): (BTreeMap<_, _>, BTreeMap<_, _>) =
        accounts.into_iter().partition(|(id, _)| id.as_str() < "acct-00120");
    let mut server = NatsServer::start();
    let bus = Bus::connect(&server.url(), config(4)).await.unwrap();
    let first = write_all(&bus, &low, "a").await;
    assert_eq!(first.len(), 120);
    drop(bus);
    server.restart();
    let bus = Bus::connect(&server.url(), config(4)).await.unwrap();
    write_all(&bus, &high, "b").await;
    let (worker, _) = spawn_worker(&bus, "only");
    let computed = bus::run_epoch(&bus, &order(1), |_| {}).await.unwrap();
    assert_eq!(computed.results.len(), 240);
    assert_eq!(root(&computed), root(&expected));
    worker.abort();
}

/// A write sent twice with one key is stored once; the same write stored again under another
/// key, an account put then removed, and a removal of an unknown account change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_and_removals_change_nothing_else() {
    let accounts = book(14, 60);
    let expected = single(&accounts);
    let server = NatsServer::start();
    let bus = Bus::connect(&server.url(), config(2)).await.unwrap();
    let first = write_all(&bus, &accounts, "same").await;
    let again = write_all(&bus, &accounts, "same").await;
    assert_eq!(first, again, "a repeated key returns the first copy's sequence");
    write_all(&bus, &accounts, "other").await;
    let extra = book(99, 1).into_values().next().unwrap();
    let writer = Writer::new(&bus);
    writer
        .send(&[("x1", "ghost", Some(&extra)), ("x2", "ghost", None), ("x3", "never", None)])
        .await
        .unwrap();
    let (worker, _) = spawn_worker(&bus, "only");
    let computed = bus::run_epoch(&bus, &order(1), |_| {}).await.unwrap();
    assert_eq!(root(&computed), root(&expected));
    worker.abort();
}

/// Garbage, a write of another format, a write on the wrong shard's subject and a bad request
/// are each rejected with a reason naming the field; the worker goes on and the epoch has the
/// root of the good writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_are_rejected_with_a_reason() {
    let accounts = book(15, 40);
    let expected = single(&accounts);
    let server = NatsServer::start();
    let bus = Bus::connect(&server.url(), config(2)).await.unwrap();
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let wrong = bus::shard_of("acct-00000", 2) ^ 1;
    let body = bus::wire::Write { id: "acct-00000".to_owned(), portfolio: None }.encode();
    let raw: [(String, Vec<u8>); 3] = [
        (bus::book_subject(0), b"not json".to_vec()),
        (
            bus::book_subject(1),
            br#"{"format":"ballast.bus.write.v0","id":"a","delete":true}"#.to_vec(),
        ),
        (bus::book_subject(wrong), body),
    ];
    for (subject, body) in raw {
        js.publish(subject, body.into()).await.unwrap().await.unwrap();
    }
    write_all(&bus, &accounts, "load").await;
    let (worker, mut events) = spawn_worker(&bus, "only");
    js.publish("ballast.epoch.request", b"{}".to_vec().into()).await.unwrap().await.unwrap();
    tokio::time::sleep(LEASE).await;
    let computed = bus::run_epoch(&bus, &order(1), |_| {}).await.unwrap();
    assert_eq!(root(&computed), root(&expected));
    let mut reasons = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let WorkerEvent::Rejected { subject, reason, .. } = event {
            reasons.push(format!("{subject}: {reason}"));
        }
    }
    let all = reasons.join("\n");
    assert_eq!(reasons.len(), 4, "{all}");
    assert!(all.contains("ballast.book.0: message ballast.book.0: body:"), "{all}");
    assert!(all.contains("format: \"ballast.bus.write.v0\" is not ballast.bus.write.v1"), "{all}");
    assert!(all.contains("\"acct-00000\" belongs to shard"), "{all}");
    assert!(all.contains("ballast.epoch.request: message ballast.epoch.request: body:"), "{all}");
    worker.abort();
}

/// A bus set up with one shard count refuses another; a worker id that cannot name a key is
/// refused; an epoch nobody serves names its missing shards at the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_refusals() {
    let server = NatsServer::start();
    let bus = Bus::connect(&server.url(), config(3)).await.unwrap();
    let other = Bus::connect(&server.url(), config(5)).await.unwrap_err();
    assert_eq!(other.to_string(), "shards: the bus has 3 shards, not 5");
    let zero = Bus::connect(&server.url(), config(0)).await.unwrap_err();
    assert_eq!(zero.to_string(), "shards: 0 is not within 1..=4096");
    let bad_id = WorkerConfig { id: "a.b".to_owned(), lease: LEASE, tick: LEASE };
    assert!(Worker::new(&bus, bad_id).unwrap_err().to_string().contains("worker id \"a.b\""));
    let mut quick = order(1);
    quick.timeout = Duration::from_millis(400);
    quick.report_after = Duration::from_millis(150);
    let mut waits = 0;
    let slow = bus::run_epoch(&bus, &quick, |p| {
        waits += usize::from(matches!(p, bus::Progress::Waiting { .. }));
    })
    .await;
    let text = slow.unwrap_err().to_string();
    assert!(text.starts_with("epoch 1: no result after "), "{text}");
    assert!(
        text.ends_with("from shard 0 (no worker), shard 1 (no worker), shard 2 (no worker)"),
        "{text}"
    );
    assert!(waits >= 1, "the coordinator reported the missing shards before giving up");
}
