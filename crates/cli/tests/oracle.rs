//! The oracle from the command line, end to end: `ballast attest` with local keys, `ballast
//! verify` offline, and a federation of three `ballast oracle node` processes (one fed other
//! market data) behind `ballast oracle aggregate`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail loudly")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const BALLAST: &str = env!("CARGO_BIN_EXE_ballast");
/// 2026-11-20T08:00:00Z, the valuation time of `examples/market.json`.
const AS_OF_SECS: u64 = 1_795_161_600;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn example(name: &str) -> PathBuf {
    repo().join("examples").join(name)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ballast-oracle-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn ballast(args: &[impl AsRef<std::ffi::OsStr>], threads: Option<&str>) -> Output {
    let mut command = Command::new(BALLAST);
    command.args(args);
    if let Some(threads) = threads {
        command.env("RAYON_NUM_THREADS", threads);
    }
    command.output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `dir/keys`: the example keys `keys`, one per line.
fn key_file(dir: &Path, keys: &[u32]) -> PathBuf {
    let file = dir.join("keys");
    let texts: Vec<String> = keys
        .iter()
        .map(|i| std::fs::read_to_string(example(&format!("oracle/node-{i}.key"))).unwrap())
        .collect();
    std::fs::write(&file, texts.concat()).unwrap();
    file
}

/// `ballast attest` of epoch 7 over the example book, signed with the example keys `keys`.
fn attest(out: &Path, keys: &[u32], threads: Option<&str>) -> Output {
    attest_with(
        out,
        &key_file(out, keys),
        &example("oracle/federation.json"),
        threads,
        &example("oracle/book.json"),
    )
}

/// `ballast attest` of epoch 7 over `book` with a given key file and federation.
fn attest_with(
    out: &Path,
    key_file: &Path,
    federation: &Path,
    threads: Option<&str>,
    book: &Path,
) -> Output {
    let market = example("market.json");
    let args = [
        "attest",
        "--market",
        market.to_str().unwrap(),
        "--book",
        book.to_str().unwrap(),
        "--epoch",
        "7",
        "--federation",
        federation.to_str().unwrap(),
        "--keys",
        key_file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    ballast(&args, threads)
}

fn verify(report: &Path, proof: Option<&Path>, extra: &[&str]) -> Output {
    let federation = example("oracle/federation.json");
    let mut args = vec![
        "verify",
        "--federation",
        federation.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ];
    if let Some(proof) = proof {
        args.extend(["--proof", proof.to_str().unwrap()]);
    }
    args.extend(extra);
    ballast(&args, None)
}

#[test]
fn attest_is_identical_across_thread_counts_and_verifies_offline() {
    let one = scratch("one-thread");
    let two = scratch("two-threads");
    for (dir, threads) in [(&one, "1"), (&two, "2")] {
        // Two of the three example keys: the threshold.
        let output = attest(dir, &[1, 2], Some(threads));
        assert!(output.status.success(), "{}", text(&output));
    }
    for file in ["report.json", "leaves.json", "proofs/alice.json", "proofs/dave.json"] {
        let a = std::fs::read(one.join(file)).unwrap();
        let b = std::fs::read(two.join(file)).unwrap();
        assert_eq!(a, b, "{file} differs between 1 and 2 threads");
    }
    let report = one.join("report.json");
    let alice = one.join("proofs/alice.json");
    let now = (AS_OF_SECS + 60).to_string();
    let ok = verify(&report, Some(&alice), &["--account", "alice", "--now", &now]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("proven"), "{}", text(&ok));

    // The proof of another account is not alice's.
    let wrong = verify(&report, Some(&one.join("proofs/bob.json")), &["--account", "alice"]);
    assert!(!wrong.status.success());

    // A tampered leaf: alice's maintenance margin lowered by one unit.
    let proof = std::fs::read_to_string(&alice).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&proof).unwrap();
    let mm = json["leaf"]["maintenance_margin"].as_str().unwrap().to_owned();
    let lowered = (mm.parse::<u128>().unwrap() - 1).to_string();
    json["leaf"]["maintenance_margin"] = serde_json::Value::String(lowered);
    let tampered = one.join("tampered.json");
    std::fs::write(&tampered, serde_json::to_string(&json).unwrap()).unwrap();
    let rejected = verify(&report, Some(&tampered), &["--now", &now]);
    assert!(!rejected.status.success());
    assert!(text(&rejected).contains("leaf_hash"), "{}", text(&rejected));
    // A tampered sibling: the leaf is intact but the path no longer leads to the root.
    let mut json: serde_json::Value = serde_json::from_str(&proof).unwrap();
    let sibling = json["proof"][0].as_str().unwrap().to_owned();
    let flipped = if sibling.ends_with('0') { "1" } else { "0" };
    json["proof"][0] = serde_json::Value::String(format!("{}{flipped}", &sibling[..65]));
    std::fs::write(&tampered, serde_json::to_string(&json).unwrap()).unwrap();
    let rejected = verify(&report, Some(&tampered), &["--now", &now]);
    assert!(!rejected.status.success());
    assert!(text(&rejected).contains("PROOF_INVALID"), "{}", text(&rejected));

    // Expired, not yet valid, and an epoch that is not newer than the last accepted one.
    let late = (AS_OF_SECS + 3_601).to_string();
    let expired = verify(&report, None, &["--now", &late]);
    assert!(text(&expired).contains("EXPIRED"), "{}", text(&expired));
    let early = (AS_OF_SECS - 1).to_string();
    assert!(text(&verify(&report, None, &["--now", &early])).contains("NOT_YET_VALID"));
    let stale = verify(&report, None, &["--now", &now, "--last-epoch", "7"]);
    assert!(text(&stale).contains("STALE_EPOCH"), "{}", text(&stale));
}

/// A federation file that does not match the deployment a report was signed for refuses it
/// with the contract's code: the same deployment with a bound of 4 epochs refuses epoch 7
/// after none (`EPOCH_JUMP`); another configuration version names another signer set.
#[test]
fn a_federation_file_of_other_bounds_or_version_refuses_the_report() {
    let one = scratch("federation-files");
    let output = attest(&one, &[1, 2], None);
    assert!(output.status.success(), "{}", text(&output));
    let report = one.join("report.json");
    let now = (AS_OF_SECS + 60).to_string();
    let federation = example("oracle/federation.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&federation).unwrap()).unwrap();
    let with = |key: &str, value: u64, name: &str| {
        let mut changed = json.clone();
        changed[key] = serde_json::json!(value);
        let path = one.join(name);
        std::fs::write(&path, changed.to_string()).unwrap();
        let args = ["verify", "--federation", path.to_str().unwrap(), "--report"];
        let rest = [report.to_str().unwrap(), "--now", &now];
        let said = ballast(&[&args[..], &rest[..]].concat(), None);
        assert!(!said.status.success());
        text(&said)
    };
    let jump = with("epoch_jump_max", 4, "bounded-federation.json");
    assert!(jump.contains("EPOCH_JUMP (code 14)"), "{jump}");
    let refused = with("config_version", 2, "rotated-federation.json");
    assert!(refused.contains("SIGNER_SET_MISMATCH (code 1)"), "{refused}");
}

/// Salted leaves (margin-call privacy): with `--salt-secret` each leaf commits to its account's
/// salted id. The published leaves hold neither alice's plain id nor anything a reader without
/// the salts can compute; alice's proof verifies with her salt (from `salts/alice.json`), and
/// without it the proof is not alice's.
#[test]
fn salted_leaves_hide_whose_margin_they_hold() {
    let dir = scratch("salted");
    let keys = key_file(&dir, &[1, 2]);
    let secret = dir.join("salt.secret");
    std::fs::write(&secret, "the federation's salting secret\n").unwrap();
    let (market, book, federation) =
        (example("market.json"), example("oracle/book.json"), example("oracle/federation.json"));
    let out = dir.join("out");
    let args = [
        "attest",
        "--market",
        market.to_str().unwrap(),
        "--book",
        book.to_str().unwrap(),
        "--salt-secret",
        secret.to_str().unwrap(),
        "--epoch",
        "7",
        "--federation",
        federation.to_str().unwrap(),
        "--keys",
        keys.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let run = ballast(&args, None);
    assert!(run.status.success(), "{}", text(&run));
    let leaves = std::fs::read_to_string(out.join("leaves.json")).unwrap();
    let plain = oracle::keccak256(b"alice").to_string();
    assert!(!leaves.contains(&plain[2..]), "the plain id of alice is published");
    let salt: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("salts/alice.json")).unwrap())
            .unwrap();
    let salt = salt["salt"].as_str().unwrap().to_owned();
    let (report, proof) = (out.join("report.json"), out.join("proofs/alice.json"));
    let now = (AS_OF_SECS + 60).to_string();
    let salted = ["--account", "alice", "--salt", salt.as_str(), "--now", now.as_str()];
    let ok = verify(&report, Some(&proof), &salted);
    assert!(ok.status.success(), "{}", text(&ok));
    let unsalted = verify(&report, Some(&proof), &["--account", "alice", "--now", &now]);
    assert!(!unsalted.status.success());
    assert!(text(&unsalted).contains("not \"alice\""), "{}", text(&unsalted));
}

#[test]
fn too_few_keys_are_refused() {
    let output = attest(&scratch("few"), &[1], None);
    assert!(!output.status.success());
    assert!(text(&output).contains("at least 2 keys"), "{}", text(&output));
}

/// A node process, killed when dropped.
struct NodeProcess {
    child: Child,
    url: String,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts node `index` of the example federation on `market`, its clock at the market's
/// valuation time plus ten seconds, its state in `dir`.
fn start_node(index: u32, market: &Path, dir: &Path) -> NodeProcess {
    let key = example(&format!("oracle/node-{index}.key"));
    let now = (AS_OF_SECS + 10).to_string();
    let mut child = Command::new(BALLAST)
        .args(["oracle", "node", "--listen", "127.0.0.1:0", "--now", &now, "--market"])
        .arg(market)
        .arg("--state")
        .arg(dir.join(format!("node-{index}.state")))
        .arg("--aggregator-secret")
        .arg(example("oracle/aggregator.secret"))
        .arg("--book")
        .arg(example("oracle/book.json"))
        .arg("--federation")
        .arg(example("oracle/federation.json"))
        .arg("--key")
        .arg(key)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.split_whitespace().last().unwrap_or_default().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "node said {line:?}");
    NodeProcess { child, url }
}

/// `ballast oracle aggregate` of epoch `epoch` over `nodes` of the example federation, as of the
/// example market's valuation time, ten seconds later, into `out`.
fn aggregate_args(epoch: u64, out: &Path, nodes: &[NodeProcess]) -> Vec<String> {
    let path = |p: PathBuf| p.to_str().unwrap().to_owned();
    let mut args: Vec<String> = [
        "oracle",
        "aggregate",
        "--federation",
        &path(example("oracle/federation.json")),
        "--aggregator-secret",
        &path(example("oracle/aggregator.secret")),
        "--epoch",
        &epoch.to_string(),
        "--as-of",
        &AS_OF_SECS.to_string(),
        "--now",
        &(AS_OF_SECS + 10).to_string(),
        "--out",
        &path(out.to_path_buf()),
    ]
    .map(str::to_owned)
    .to_vec();
    for node in nodes {
        args.extend(["--node".to_owned(), node.url.clone()]);
    }
    args
}

#[test]
fn federation_publishes_with_a_quorum_despite_a_node_on_other_data() {
    let dir = scratch("federation");
    let honest = example("market.json");
    let mut market: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&honest).unwrap()).unwrap();
    let index = market["underlyings"]["BTC"]["index"].as_f64().unwrap();
    market["underlyings"]["BTC"]["index"] = serde_json::json!(index * 1.001);
    let other = dir.join("other-market.json");
    std::fs::write(&other, serde_json::to_string(&market).unwrap()).unwrap();

    let nodes =
        [start_node(1, &honest, &dir), start_node(2, &honest, &dir), start_node(3, &other, &dir)];
    let out = dir.join("published");
    let now = (AS_OF_SECS + 10).to_string();
    let mut args = aggregate_args(3, &out, &nodes);
    let published = ballast(&args, None);
    let said = text(&published);
    assert!(published.status.success(), "{said}");
    assert!(said.contains("with 2 signatures"), "{said}");
    assert!(said.contains("Dissented"), "{said}");
    let ok = verify(&out.join("report.json"), None, &["--now", &now]);
    assert!(ok.status.success(), "{}", text(&ok));

    // Replays: the same epoch to an aggregator that already published it, and the same epoch
    // with another window to the nodes, which never sign two reports for one epoch.
    args.extend(["--last-epoch", "3"].map(str::to_owned));
    let replay = ballast(&args, None);
    assert!(!replay.status.success());
    assert!(text(&replay).contains("STALE_EPOCH"), "{}", text(&replay));
    args.truncate(args.len() - 2);
    args.extend(["--valid-for", "60"].map(str::to_owned));
    let rewindowed = ballast(&args, None);
    assert!(!rewindowed.status.success(), "{}", text(&rewindowed));
}

/// The poisoned-epoch attack of issue 14 against real node processes, by plain HTTP: without
/// the aggregator's tag every node answers 401; with it (a captured aggregator), epoch 2^64 − 1
/// valid until 2^64 − 1 is refused with `EPOCH_JUMP` by every node. No node signed, so the
/// honest epoch 1 is published next, and a node restarted on its state file refuses epoch 1
/// again with another window.
#[test]
fn nodes_refuse_a_poisoned_epoch_and_honest_epochs_go_on() {
    let dir = scratch("poisoned");
    let market = example("market.json");
    let nodes = [start_node(1, &market, &dir), start_node(2, &market, &dir)];
    let secret = std::fs::read_to_string(example("oracle/aggregator.secret")).unwrap();
    let poisoned = federation::EpochRequest {
        epoch: u64::MAX,
        as_of_secs: AS_OF_SECS,
        valid_until_secs: u64::MAX,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::new();
    let post = |url: &str, request: &federation::EpochRequest, tagged: bool| {
        let body = serde_json::to_vec(request).unwrap();
        let mut call = client.post(format!("{url}/v1/epochs")).body(body.clone());
        if tagged {
            let tag = federation::wire::tag(secret.trim().as_bytes(), &body);
            call = call.header(federation::wire::AUTH_HEADER, tag);
        }
        runtime.block_on(async move {
            let answer = call.send().await.unwrap();
            (answer.status().as_u16(), answer.text().await.unwrap())
        })
    };
    for node in &nodes {
        assert_eq!(post(&node.url, &poisoned, false).0, 401);
        let (status, body) = post(&node.url, &poisoned, true);
        assert_eq!(status, 409, "{body}");
        let refusal: federation::NodeRefusal = serde_json::from_str(&body).unwrap();
        assert_eq!(refusal.code, Some(oracle::RejectionCode::EpochJump), "{body}");
    }
    let args = aggregate_args(1, &dir.join("published"), &nodes);
    let published = ballast(&args, None);
    assert!(published.status.success(), "{}", text(&published));
    drop(nodes);
    let restarted = start_node(1, &market, &dir);
    let other_window = federation::EpochRequest {
        epoch: 1,
        as_of_secs: AS_OF_SECS,
        valid_until_secs: AS_OF_SECS + 60,
    };
    let (status, body) = post(&restarted.url, &other_window, true);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("\"code\":2"), "STALE_EPOCH after a restart: {body}");
}

#[test]
fn bad_keys_and_federation_files_are_named_with_the_reason() {
    let dir = scratch("bad-input");
    let keys = dir.join("keys");
    std::fs::write(&keys, "# a comment\n0xnot-hex\n").unwrap();
    let federation = example("oracle/federation.json");
    let out = dir.join("out");
    let book = example("oracle/book.json");
    let run = |federation: &Path| attest_with(&out, &keys, federation, None, &book);
    let said = text(&run(&federation));
    assert!(said.contains("keys line 2"), "{said}");
    let zero_threshold = dir.join("federation.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&federation).unwrap()).unwrap();
    json["threshold"] = serde_json::json!(0);
    std::fs::write(&zero_threshold, json.to_string()).unwrap();
    let said = text(&run(&zero_threshold));
    assert!(said.contains("federation.json") && said.contains("threshold"), "{said}");
    assert!(!out.exists(), "nothing is written for bad input");
}

#[test]
fn a_refused_account_is_named_by_its_id() {
    // Bob's cash turned into debt, which Ballast PM refuses: the epoch names bob, not an index.
    let dir = scratch("refused-account");
    let text_of = std::fs::read_to_string(example("oracle/book.json")).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text_of).unwrap();
    assert_eq!(json["accounts"][1]["id"], "bob");
    json["accounts"][1]["balances"]["USDC"] = serde_json::json!("-400000");
    let book = dir.join("book.json");
    std::fs::write(&book, json.to_string()).unwrap();
    let keys = dir.join("keys");
    std::fs::write(&keys, std::fs::read_to_string(example("oracle/node-1.key")).unwrap()).unwrap();
    let out = dir.join("out");
    let run = attest_with(&out, &keys, &example("oracle/federation.json"), None, &book);
    let said = text(&run);
    assert!(!run.status.success(), "{said}");
    assert!(said.contains("account \"bob\"") && said.contains("negative balance"), "{said}");
    assert!(!out.exists(), "nothing is written for a refused account");
}

/// `ballast attest --venues`: the example cross-venue book's venue leaves join the epoch's tree
/// (the leaves file reads back to the report's root), each credited requirement is the one
/// `ballast net --json` allocates, and `ballast verify --venue-proof` accepts a leaf only for
/// its own venue on its own chain, as `BallastVenue.creditOf` does.
#[test]
fn venue_leaves_are_attested_and_verified_per_venue_and_chain() {
    let dir = scratch("venues");
    let keys = key_file(&dir, &[1, 2]);
    let (market, book, federation, venues) = (
        example("market.json"),
        example("oracle/book.json"),
        example("oracle/federation.json"),
        example("netting/cross-venue-book.json"),
    );
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    let run = |out: &Path, threads: &str| {
        let args = [
            "attest",
            "--market",
            &path(&market),
            "--book",
            &path(&book),
            "--venues",
            &path(&venues),
            "--epoch",
            "7",
            "--federation",
            &path(&federation),
            "--keys",
            &path(&keys),
            "--out",
            &path(out),
        ];
        let run = ballast(&args, Some(threads));
        assert!(run.status.success(), "{}", text(&run));
        run
    };
    let (out, again) = (dir.join("out"), dir.join("again"));
    assert!(text(&run(&out, "2")).contains("venue leaves 7"), "four accounts, seven legs");
    run(&again, "1");
    let lending = "venue-proofs/basis/lending.json";
    for file in ["report.json", "leaves.json", lending, "venue-proofs/basis/perps.json"] {
        let (a, b) = (std::fs::read(out.join(file)).unwrap(), std::fs::read(again.join(file)));
        assert_eq!(a, b.unwrap(), "{file} differs between 1 and 2 threads");
    }
    let leaves =
        oracle::json::read_leaves(&std::fs::read_to_string(out.join("leaves.json")).unwrap())
            .unwrap();
    assert_eq!(leaves.venue_leaves.len(), 7);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(leaves.tree.root().to_string(), report["report"]["root"].as_str().unwrap());

    credits_are_the_nettings(&leaves, &market, &venues);
    venue_proofs_verify_only_on_their_chain_and_venue(&out);
}

/// `ballast verify --venue-proof` on the proofs of account `basis`: its lending leg on chain 1,
/// its perpetuals leg at an exchange (chain 0); refused on another chain, as another venue's,
/// and for another account.
fn venue_proofs_verify_only_on_their_chain_and_venue(out: &Path) {
    let lending = "venue-proofs/basis/lending.json";
    let report = out.join("report.json");
    let now = (AS_OF_SECS + 60).to_string();
    let check = |file: &str, venue: &str, chain: &str| {
        let proof = out.join(file);
        let extra = [
            "--venue-proof",
            proof.to_str().unwrap(),
            "--venue",
            venue,
            "--chain-id",
            chain,
            "--account",
            "basis",
            "--now",
            now.as_str(),
        ];
        text(&verify(&report, None, &extra))
    };
    let ok = check(lending, "lending", "1");
    assert!(ok.contains("venue lending of account") && ok.contains("proven on chain 1"), "{ok}");
    let exchange = check("venue-proofs/basis/perps.json", "perps", "0");
    assert!(exchange.contains("controller"), "{exchange}");
    // Replayed on another chain, or read as another venue's: refused before the proof.
    assert!(check(lending, "lending", "31337").contains("WRONG_CHAIN"));
    assert!(check(lending, "perps", "1").contains("WRONG_VENUE"));
    let other = check("venue-proofs/covered-calls/lending.json", "lending", "1");
    assert!(other.contains("rejected") && other.contains("account"), "{other}");
}

/// Each venue leaf credits what `ballast net --json` allocates to that venue.
fn credits_are_the_nettings(leaves: &oracle::json::LeavesFile, market: &Path, venues: &Path) {
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    let net = ballast(&["net", "--market", &path(market), "--book", &path(venues), "--json"], None);
    assert!(net.status.success(), "{}", text(&net));
    let netted: serde_json::Value = serde_json::from_slice(&net.stdout).unwrap();
    for account in netted["accounts"].as_array().unwrap() {
        let id = account["id"].as_str().unwrap();
        for leg in account["legs"].as_array().unwrap() {
            let venue = leg["venue"].as_str().unwrap();
            let leaf = leaves
                .venue_leaves
                .iter()
                .find(|l| {
                    l.result().account == epoch::account_id(id)
                        && l.result().venue == oracle::venue_key(venue)
                })
                .unwrap();
            let credited = basics::Money::parse(
                leg["credited_im"].as_str().unwrap(),
                basics::Currency::USD,
                basics::Rounding::Down,
            )
            .unwrap();
            assert_eq!(leaf.result().initial_margin.raw(), credited.raw(), "{id} at {venue}");
        }
    }
}
