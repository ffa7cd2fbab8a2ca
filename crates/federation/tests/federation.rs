//! Real nodes on loopback HTTP servers (port 0), a real aggregator, no mocks: honest nodes
//! publish; a Byzantine node, a node with stale market data, a replaying server and dead nodes
//! cannot make or block a quorum; stale and replayed epochs are refused.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail loudly")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{Address, keccak256};
use basics::{Currency, Money};
use federation::fetch::{fetch_account_proof, fetch_leaves};
use federation::{
    Aggregator, AggregatorConfig, ComputeFn, EpochInput, EpochRequest, ErrorKind, Node, NodeAnswer,
    NodeConfig, NodeHandle, NodeStatus, spawn_node,
};
use oracle::json::write_signed_report;
use oracle::{
    AccountResult, Domain, EpochHeader, EpochTree, RejectionCode, Signer, SignerSet, Verifier,
    verify_account,
};

/// Hardhat/Anvil development keys 0-4.
const KEYS: [&str; 5] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
];
const ACCOUNTS: u64 = 300;
const LOOPBACK: &str = "127.0.0.1:0";

fn usdc(raw: i128) -> Money {
    Money::from_raw(raw, Currency::USDC)
}

/// The synthetic "margin engine": results are a pure function of the market snapshot's epoch.
fn market(market_epoch: u64) -> EpochInput {
    let results = (0..ACCOUNTS)
        .map(|i| {
            let account = keccak256([b"account".as_slice(), &i.to_be_bytes()].concat());
            let price = keccak256([account.as_slice(), &market_epoch.to_be_bytes()].concat());
            let im = i128::from(u32::from_be_bytes(price.0[..4].try_into().unwrap()));
            AccountResult {
                account,
                initial_margin: usdc(im * 1_000_000_000),
                maintenance_margin: usdc(im * 500_000_000),
                mark_to_market: usdc(i128::from(i32::from_be_bytes(
                    price.0[4..8].try_into().unwrap(),
                ))),
                worst_scenario: (i % 97) as u16,
                portfolio_hash: keccak256(account),
            }
        })
        .collect();
    EpochInput {
        market_data_hash: keccak256([b"market".as_slice(), &market_epoch.to_be_bytes()].concat()),
        methodology_hash: keccak256(b"methodology v1"),
        currency: Currency::USDC,
        results,
    }
}

#[derive(Clone, Copy)]
enum Behaviour {
    Honest,
    /// Right market data, wrong results: one account's requirement lowered.
    Byzantine,
    /// Market data one epoch behind.
    Stale,
    /// Returns a negative requirement, which the oracle refuses.
    Broken,
}

fn compute(behaviour: Behaviour) -> ComputeFn {
    Arc::new(move |request: &EpochRequest| {
        Ok(match behaviour {
            Behaviour::Honest => market(request.epoch),
            Behaviour::Byzantine => {
                let mut input = market(request.epoch);
                input.results[7].initial_margin = usdc(0);
                input
            }
            Behaviour::Stale => market(request.epoch - 1),
            Behaviour::Broken => {
                let mut input = market(request.epoch);
                input.results[0].maintenance_margin = usdc(-1);
                input
            }
        })
    })
}

fn verifier(key_count: usize, threshold: u8) -> Verifier {
    let mut addresses: Vec<Address> =
        KEYS[..key_count].iter().map(|k| Signer::from_hex(k).unwrap().address()).collect();
    addresses.sort();
    let signer_set = SignerSet::new(addresses, threshold, 1).unwrap();
    Verifier {
        domain: Domain { chain_id: 31_337, verifying_contract: Address::repeat_byte(0xbb) },
        signer_set,
    }
}

async fn start(verifier: &Verifier, behaviours: &[Behaviour]) -> Vec<NodeHandle> {
    let mut handles = Vec::new();
    for (key, behaviour) in KEYS.iter().zip(behaviours) {
        let signer = Signer::from_hex(key).unwrap();
        let config =
            NodeConfig { signer, verifier: verifier.clone(), compute: compute(*behaviour) };
        let node = Node::new(config).unwrap();
        handles.push(spawn_node(node, LOOPBACK.parse().unwrap()).await.unwrap());
    }
    handles
}

fn aggregator(verifier: &Verifier, urls: Vec<String>) -> Aggregator {
    let config = AggregatorConfig {
        nodes: urls,
        verifier: verifier.clone(),
        answer_timeout: Duration::from_secs(20),
    };
    Aggregator::new(config, 0).unwrap()
}

fn request(epoch: u64) -> EpochRequest {
    let as_of_secs = 1_700_000_000 + epoch * 60;
    EpochRequest { epoch, as_of_secs, valid_until_secs: as_of_secs + 300 }
}

/// The report honest nodes must agree on, computed here without any node or HTTP.
fn expected_tree(verifier: &Verifier, epoch: u64) -> EpochTree {
    let input = market(epoch);
    let r = request(epoch);
    let header = EpochHeader {
        epoch,
        as_of_secs: r.as_of_secs,
        valid_until_secs: r.valid_until_secs,
        market_data_hash: input.market_data_hash,
        methodology_hash: input.methodology_hash,
        currency: input.currency,
    };
    let tree = EpochTree::build(&header, &input.results).unwrap();
    assert_eq!(tree.report(&verifier.signer_set).signer_set_digest, verifier.signer_set.digest());
    tree
}

async fn stop(handles: Vec<NodeHandle>) {
    for handle in handles {
        handle.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_quorum_publishes_despite_byzantine_and_stale_nodes() {
    use Behaviour::{Byzantine, Honest, Stale};
    let verifier = verifier(5, 3);
    let handles = start(&verifier, &[Honest, Byzantine, Honest, Stale, Honest]).await;
    let urls: Vec<String> = handles.iter().map(NodeHandle::url).collect();
    let mut aggregator = aggregator(&verifier, urls.clone());
    let r = request(1);
    let published = aggregator.publish(r, r.as_of_secs).await.unwrap();
    let expected = expected_tree(&verifier, 1);
    assert_eq!(published.signed.report, expected.report(&verifier.signer_set));
    let mut honest: Vec<Address> =
        [0, 2, 4].iter().map(|&i| Signer::from_hex(KEYS[i]).unwrap().address()).collect();
    honest.sort();
    assert_eq!(published.signers, honest);
    let statuses: Vec<&NodeStatus> = published.outcomes.iter().map(|o| &o.status).collect();
    assert!(
        matches!(
            statuses[..],
            [
                NodeStatus::Agreed,
                NodeStatus::Dissented { .. },
                NodeStatus::Agreed,
                NodeStatus::Dissented { .. },
                NodeStatus::Agreed
            ]
        ),
        "{statuses:?}"
    );
    let accepted = verifier.verify_report(
        &published.signed.report,
        &published.signed.signatures,
        0,
        r.as_of_secs,
    );
    assert_eq!(accepted.unwrap().signers, honest);
    // Consumers fetch the leaves and a proof from any honest node and check them offline.
    let client = reqwest::Client::new();
    let leaves = fetch_leaves(&client, &urls[2], 1).await.unwrap();
    assert_eq!(leaves.tree.root(), published.signed.report.root);
    let account = expected.leaves()[42].account();
    let proof = fetch_account_proof(&client, &urls[4], 1, &account).await.unwrap();
    let root = published.signed.report.root;
    assert_eq!(verify_account(Some(&root), &proof.proof.leaf, &proof.proof.proof), Ok(()));
    let byzantine = fetch_leaves(&client, &urls[1], 1).await.unwrap();
    assert_ne!(byzantine.tree.root(), root, "the Byzantine node's own tree differs");
    stop(handles).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_faulty_nodes_of_four_leave_no_quorum() {
    use Behaviour::{Byzantine, Honest, Stale};
    let verifier = verifier(4, 3);
    let handles = start(&verifier, &[Honest, Stale, Honest, Byzantine]).await;
    let mut aggregator = aggregator(&verifier, handles.iter().map(NodeHandle::url).collect());
    let r = request(5);
    let error = aggregator.publish(r, r.as_of_secs).await.unwrap_err();
    let ErrorKind::NoQuorum { threshold, groups, .. } = &error.kind else { panic!("{error}") };
    assert_eq!(*threshold, 3);
    let counts: Vec<usize> = groups.iter().map(|(_, count)| *count).collect();
    assert_eq!(counts, [2, 1, 1], "honest pair, then the two faulty nodes alone");
    let honest_digest =
        expected_tree(&verifier, 5).report(&verifier.signer_set).signing_hash(&verifier.domain);
    assert_eq!(groups[0].0, honest_digest);
    let ErrorKind::NoQuorum { outcomes, .. } = &error.kind else { unreachable!() };
    let signed: Vec<bool> =
        outcomes.iter().map(|o| matches!(o.status, NodeStatus::Signed { .. })).collect();
    assert_eq!(signed, [true; 4], "every node signed something, none is called agreed");
    assert_eq!(aggregator.last_published_epoch(), 0, "nothing was published");
    stop(handles).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_and_replayed_epochs_are_refused() {
    let verifier = verifier(3, 2);
    let handles = start(&verifier, &[Behaviour::Honest; 3]).await;
    let urls: Vec<String> = handles.iter().map(NodeHandle::url).collect();
    let mut aggregator = aggregator(&verifier, urls.clone());
    let second = request(2);
    aggregator.publish(second, second.as_of_secs).await.unwrap();
    for epoch in [2, 1] {
        let error = aggregator.publish(request(epoch), second.as_of_secs).await.unwrap_err();
        assert!(matches!(error.kind, ErrorKind::Rejected(RejectionCode::StaleEpoch)), "{error}");
    }
    // The nodes refuse on their own too: an older epoch, or the same epoch with another window.
    let client = reqwest::Client::new();
    let post =
        |body: EpochRequest| client.post(format!("{}/v1/epochs", urls[0])).json(&body).send();
    let older = post(request(1)).await.unwrap();
    assert_eq!(older.status(), reqwest::StatusCode::CONFLICT);
    let refusal: federation::NodeRefusal = older.json().await.unwrap();
    assert_eq!(refusal.code, Some(RejectionCode::StaleEpoch));
    let mut stretched = second;
    stretched.valid_until_secs += 60;
    assert_eq!(post(stretched).await.unwrap().status(), reqwest::StatusCode::CONFLICT);
    // The same request again is answered with the same bytes: retries are safe.
    let first: NodeAnswer = post(second).await.unwrap().json().await.unwrap();
    let again: NodeAnswer = post(second).await.unwrap().json().await.unwrap();
    assert_eq!(first, again);
    stop(handles).await;
}

/// A server that answers every request with one genuine answer recorded earlier.
async fn replaying_server(answer: NodeAnswer) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new().route(
        "/v1/epochs",
        axum::routing::post(move || {
            let answer = answer.clone();
            async move { axum::Json(answer) }
        }),
    );
    let listener = tokio::net::TcpListener::bind(LOOPBACK).await.unwrap();
    let address = listener.local_addr().unwrap();
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (address, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaying_node_cannot_complete_a_quorum() {
    let verifier = verifier(3, 3);
    let handles = start(&verifier, &[Behaviour::Honest; 3]).await;
    let urls: Vec<String> = handles.iter().map(NodeHandle::url).collect();
    let mut aggregator = aggregator(&verifier, urls.clone());
    let first = request(1);
    aggregator.publish(first, first.as_of_secs).await.unwrap();
    let client = reqwest::Client::new();
    let recorded: NodeAnswer = client
        .post(format!("{}/v1/epochs", urls[2]))
        .json(&first)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (address, task) = replaying_server(recorded).await;
    let mut nodes = urls[..2].to_vec();
    nodes.push(format!("http://{address}"));
    let mut replayed = aggregator_at(&verifier, nodes, 1);
    let second = request(2);
    let error = replayed.publish(second, second.as_of_secs).await.unwrap_err();
    let ErrorKind::NoQuorum { outcomes, .. } = &error.kind else { panic!("{error}") };
    let NodeStatus::Invalid { code, .. } = &outcomes[2].status else { panic!("{outcomes:?}") };
    assert_eq!(*code, Some(RejectionCode::StaleEpoch), "an epoch-1 answer to an epoch-2 request");
    task.abort();
    stop(handles).await;
}

fn aggregator_at(verifier: &Verifier, urls: Vec<String>, last_published: u64) -> Aggregator {
    let config = AggregatorConfig {
        nodes: urls,
        verifier: verifier.clone(),
        answer_timeout: Duration::from_secs(20),
    };
    Aggregator::new(config, last_published).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_and_broken_nodes_are_reported_without_blocking_a_quorum() {
    use Behaviour::{Broken, Honest};
    let verifier = verifier(5, 3);
    let mut handles = start(&verifier, &[Honest, Honest, Broken, Honest, Honest]).await;
    let mut urls: Vec<String> = handles.iter().map(NodeHandle::url).collect();
    // Node 4 is shut down; a fifth URL points at a port nobody listens on any more.
    handles.pop().unwrap().shutdown().await.unwrap();
    let closed = tokio::net::TcpListener::bind(LOOPBACK).await.unwrap().local_addr().unwrap();
    urls.push(format!("http://{closed}"));
    let mut aggregator = aggregator(&verifier, urls);
    let r = request(3);
    let published = aggregator.publish(r, r.as_of_secs).await.unwrap();
    assert_eq!(published.signers.len(), 3);
    let statuses: Vec<&NodeStatus> = published.outcomes.iter().map(|o| &o.status).collect();
    assert!(
        matches!(statuses[2], NodeStatus::Refused(refusal) if refusal.code.is_none()),
        "{statuses:?}"
    );
    assert!(matches!(statuses[4], NodeStatus::Unreachable(_)), "{statuses:?}");
    assert!(matches!(statuses[5], NodeStatus::Unreachable(_)), "{statuses:?}");
    stop(handles).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_federations_publish_identical_bytes() {
    let verifier = verifier(3, 2);
    let mut texts = Vec::new();
    for _ in 0..2 {
        let handles = start(&verifier, &[Behaviour::Honest; 3]).await;
        let mut aggregator =
            aggregator(&verifier, handles.iter().rev().map(NodeHandle::url).collect());
        let r = request(4);
        let published = aggregator.publish(r, r.as_of_secs).await.unwrap();
        texts.push(write_signed_report(&published.signed));
        stop(handles).await;
    }
    assert_eq!(texts[0], texts[1]);
    // An expired report is refused with the contract's code even when a quorum signed it.
    let handles = start(&verifier, &[Behaviour::Honest; 3]).await;
    let mut aggregator = aggregator(&verifier, handles.iter().map(NodeHandle::url).collect());
    let r = request(4);
    let late = aggregator.publish(r, r.valid_until_secs + 1).await.unwrap_err();
    assert!(matches!(late.kind, ErrorKind::Rejected(RejectionCode::Expired)), "{late}");
    stop(handles).await;
}
