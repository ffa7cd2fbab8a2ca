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
    AccountResult, Bounds, Domain, EpochHeader, EpochTree, RejectionCode, Signer, SignerSet,
    Verifier, verify_account,
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
/// The secret the test aggregators and nodes share.
const SECRET: &[u8] = b"federation test secret, 32 bytes";
/// The nodes' clock: a few minutes after epoch 1's as-of time (each epoch is a minute later).
const NOW_SECS: u64 = 1_700_000_000 + 300;
/// The nodes' bound on the distance between a request's as-of time and their clock.
const SKEW_SECS: u64 = 3_600;

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
        bounds: Bounds { epoch_jump_max: 16, validity_secs_max: 86_400 },
    }
}

fn node_config(key: &str, verifier: &Verifier, compute: ComputeFn) -> NodeConfig {
    NodeConfig {
        signer: Signer::from_hex(key).unwrap(),
        verifier: verifier.clone(),
        compute,
        as_of_skew_secs_max: SKEW_SECS,
        clock: Arc::new(|| NOW_SECS),
        state_path: None,
        aggregator_secret: SECRET.to_vec(),
    }
}

async fn start(verifier: &Verifier, behaviours: &[Behaviour]) -> Vec<NodeHandle> {
    let mut handles = Vec::new();
    for (key, behaviour) in KEYS.iter().zip(behaviours) {
        let node = Node::new(node_config(key, verifier, compute(*behaviour))).unwrap();
        handles.push(spawn_node(node, LOOPBACK.parse().unwrap()).await.unwrap());
    }
    handles
}

fn aggregator(verifier: &Verifier, urls: Vec<String>) -> Aggregator {
    aggregator_at(verifier, urls, 0)
}

/// Posts `request` to a node as the aggregator does, its body tagged with the shared secret.
async fn post_tagged(url: &str, request: EpochRequest) -> reqwest::Response {
    let body = serde_json::to_vec(&request).unwrap();
    let tag = federation::wire::tag(SECRET, &body);
    (reqwest::Client::new().post(format!("{url}/v1/epochs")))
        .header(federation::wire::AUTH_HEADER, tag)
        .body(body)
        .send()
        .await
        .unwrap()
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
    let post = |body: EpochRequest| post_tagged(&urls[0], body);
    let older = post(request(1)).await;
    assert_eq!(older.status(), reqwest::StatusCode::CONFLICT);
    let refusal: federation::NodeRefusal = older.json().await.unwrap();
    assert_eq!(refusal.code, Some(RejectionCode::StaleEpoch));
    let mut stretched = second;
    stretched.valid_until_secs += 60;
    assert_eq!(post(stretched).await.status(), reqwest::StatusCode::CONFLICT);
    // The same request again is answered with the same bytes: retries are safe.
    let first: NodeAnswer = post(second).await.json().await.unwrap();
    let again: NodeAnswer = post(second).await.json().await.unwrap();
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
    let recorded: NodeAnswer = post_tagged(&urls[2], first).await.json().await.unwrap();
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
        secret: SECRET.to_vec(),
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

/// The poisoned-epoch attack of issue 14, by plain HTTP against real nodes. Without the
/// aggregator's tag (or with a tag of another body) a request is refused, 401, before any work.
/// With it, epoch 2^64 − 1 valid until 2^64 − 1 is refused with `EPOCH_JUMP`, a window longer
/// than the deployment's bound with `VALIDITY_TOO_LONG`, an as-of time beyond the skew bound
/// ahead of the node's clock with `NOT_YET_VALID` and behind it with `EXPIRED`. The aggregator
/// refuses to send the poisoned request at all. No node signed anything, so honest epoch 1 is
/// published after all of it, and epoch 2 after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_refuse_to_sign_a_poisoned_epoch() {
    let verifier = verifier(3, 2);
    let handles = start(&verifier, &[Behaviour::Honest; 3]).await;
    let urls: Vec<String> = handles.iter().map(NodeHandle::url).collect();
    let poisoned = EpochRequest { epoch: u64::MAX, valid_until_secs: u64::MAX, ..request(1) };
    let client = reqwest::Client::new();
    let plain = client.post(format!("{}/v1/epochs", urls[0])).json(&poisoned).send().await;
    assert_eq!(plain.unwrap().status(), reqwest::StatusCode::UNAUTHORIZED);
    let body = serde_json::to_vec(&request(1)).unwrap();
    let other_tag = federation::wire::tag(SECRET, &serde_json::to_vec(&request(2)).unwrap());
    let forged = (client.post(format!("{}/v1/epochs", urls[0])))
        .header(federation::wire::AUTH_HEADER, other_tag)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), reqwest::StatusCode::UNAUTHORIZED);
    let bounds = verifier.bounds;
    let cases = [
        (poisoned, RejectionCode::EpochJump),
        (EpochRequest { epoch: 1 + bounds.epoch_jump_max, ..request(1) }, RejectionCode::EpochJump),
        (
            EpochRequest {
                valid_until_secs: request(1).as_of_secs + bounds.validity_secs_max + 1,
                ..request(1)
            },
            RejectionCode::ValidityTooLong,
        ),
        (
            EpochRequest {
                as_of_secs: NOW_SECS + SKEW_SECS + 1,
                valid_until_secs: NOW_SECS + SKEW_SECS + 60,
                ..request(1)
            },
            RejectionCode::NotYetValid,
        ),
        (
            EpochRequest {
                as_of_secs: NOW_SECS - SKEW_SECS - 1,
                valid_until_secs: NOW_SECS + 60,
                ..request(1)
            },
            RejectionCode::Expired,
        ),
    ];
    for url in &urls {
        for (request, code) in cases {
            let refused = post_tagged(url, request).await;
            assert_eq!(refused.status(), reqwest::StatusCode::CONFLICT, "{request:?}");
            let refusal: federation::NodeRefusal = refused.json().await.unwrap();
            assert_eq!(refusal.code, Some(code), "{request:?}: {}", refusal.message);
        }
    }
    let mut aggregator = aggregator(&verifier, urls.clone());
    let error = aggregator.publish(poisoned, NOW_SECS).await.unwrap_err();
    assert!(matches!(error.kind, ErrorKind::Rejected(RejectionCode::EpochJump)), "{error}");
    for epoch in [1, 2] {
        let honest = request(epoch);
        let published = aggregator.publish(honest, honest.as_of_secs).await.unwrap();
        assert_eq!(published.signed.report.epoch, epoch);
    }
    stop(handles).await;
}

/// When the nodes refuse, the aggregator's error names each node's refusal and code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_epoch_reports_every_nodes_code() {
    let verifier = verifier(3, 2);
    let handles = start(&verifier, &[Behaviour::Honest; 3]).await;
    let urls: Vec<String> = handles.iter().map(NodeHandle::url).collect();
    let future = EpochRequest {
        as_of_secs: NOW_SECS + 2 * SKEW_SECS,
        valid_until_secs: NOW_SECS + 2 * SKEW_SECS + 60,
        ..request(1)
    };
    let mut aggregator = aggregator(&verifier, urls);
    let error = aggregator.publish(future, future.as_of_secs).await.unwrap_err();
    let ErrorKind::NoQuorum { outcomes, .. } = &error.kind else { panic!("{error}") };
    for outcome in outcomes {
        let NodeStatus::Refused(refusal) = &outcome.status else { panic!("{outcome:?}") };
        assert_eq!(refusal.code, Some(RejectionCode::NotYetValid));
    }
    assert!(error.to_string().contains("NOT_YET_VALID (3)"), "{error}");
    stop(handles).await;
}

/// A node persists the last request it signed before its signature leaves it. Restarted on
/// its state file, it answers the same request with the same signature, refuses the same epoch
/// with another window, and with other results (its inputs changed while it was down), and an
/// older epoch; then it signs the next one. A state file it cannot read stops it at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_never_signs_one_epoch_twice() {
    let verifier = verifier(3, 2);
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("federation-restart");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("node.state");
    let node = |behaviour: Behaviour| {
        let config = NodeConfig {
            state_path: Some(state.clone()),
            ..node_config(KEYS[0], &verifier, compute(behaviour))
        };
        Node::new(config).unwrap()
    };
    let first = node(Behaviour::Honest).sign_epoch(request(3)).await.unwrap();
    let restarted = node(Behaviour::Honest);
    assert_eq!(restarted.identity().last_signed_epoch, 3);
    assert_eq!(restarted.sign_epoch(request(3)).await.unwrap(), first);
    let stretched =
        EpochRequest { valid_until_secs: request(3).valid_until_secs + 60, ..request(3) };
    let refused =
        |e: federation::Error| matches!(e.kind, ErrorKind::Rejected(RejectionCode::StaleEpoch));
    assert!(refused(node(Behaviour::Honest).sign_epoch(stretched).await.unwrap_err()));
    assert!(refused(node(Behaviour::Byzantine).sign_epoch(request(3)).await.unwrap_err()));
    assert!(refused(node(Behaviour::Honest).sign_epoch(request(2)).await.unwrap_err()));
    let next = node(Behaviour::Honest).sign_epoch(request(4)).await.unwrap();
    assert_eq!(next.report.epoch, 4);
    std::fs::write(&state, "not json").unwrap();
    let config = NodeConfig {
        state_path: Some(state),
        ..node_config(KEYS[0], &verifier, compute(Behaviour::Honest))
    };
    let Err(error) = Node::new(config) else { panic!("a corrupt state file is refused") };
    assert!(matches!(error.kind, ErrorKind::Config(_)), "{error}");
}
