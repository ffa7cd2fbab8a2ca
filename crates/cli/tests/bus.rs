//! The book sharded over two `ballast bus worker` processes on a real `nats-server`: one worker
//! is killed with SIGKILL while it computes its shards, the other takes its leases over, and
//! `ballast bus epoch` writes the same report and leaves, byte for byte, as `ballast attest` on
//! the same book in one process.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail loudly")]

#[path = "../../bus/tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use formats::portfolio::{AccountDocument, BookDocument, PortfolioDocument};

const BALLAST: &str = env!("CARGO_BIN_EXE_ballast");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ballast-bus-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(args: &[&str]) -> Output {
    let output = Command::new(BALLAST).args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "ballast {args:?}: {text}");
    output
}

/// A worker process, its log lines arriving on a channel.
struct WorkerProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl WorkerProcess {
    fn start(url: &str, id: &str) -> WorkerProcess {
        let mut child = Command::new(BALLAST)
            .args(["bus", "worker", "--nats", url, "--shards", "8", "--lease-ms", "1000"])
            .args(["--tick-ms", "50", "--id", id])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        WorkerProcess { child, lines, seen: Vec::new() }
    }

    /// Waits up to 60 s for a log line starting with `prefix`.
    fn wait_for(&mut self, prefix: &str) {
        let deadline = Instant::now() + Duration::from_mins(1);
        while !self.seen.iter().any(|l| l.starts_with(prefix)) {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = (self.lines.recv_timeout(left))
                .unwrap_or_else(|_| panic!("no {prefix:?} line; saw {:?}", self.seen));
            self.seen.push(line);
        }
    }

    fn drain(&mut self) -> &[String] {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        &self.seen
    }

    /// The shards it holds by its log: taken and not given back since.
    fn held(&mut self) -> std::collections::BTreeSet<String> {
        let mut held = std::collections::BTreeSet::new();
        for line in self.drain() {
            if let Some(shard) = line.strip_prefix("acquired shard ") {
                held.insert(shard.to_owned());
            } else if let Some(shard) = line.strip_prefix("released shard ") {
                held.remove(shard);
            }
        }
        held
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_book(path: &Path, seed: u64, accounts: usize) {
    let book = BookDocument {
        accounts: (common::book(seed, accounts).into_iter())
            .map(|(id, p)| AccountDocument { id, portfolio: PortfolioDocument::from_portfolio(&p) })
            .collect(),
    };
    std::fs::write(path, serde_json::to_string(&book).unwrap()).unwrap();
}

fn key_file(dir: &Path) -> PathBuf {
    let file = dir.join("keys");
    let texts: Vec<String> = [1, 2]
        .iter()
        .map(|i| {
            std::fs::read_to_string(repo().join(format!("examples/oracle/node-{i}.key"))).unwrap()
        })
        .collect();
    std::fs::write(&file, texts.concat()).unwrap();
    file
}

/// A worker killed mid-epoch (after it logs that it is computing, before it commits) loses its
/// leases; the other worker replays those shards from the stream and the epoch completes with
/// the single-process report and leaves.
#[test]
fn a_worker_killed_mid_epoch_is_replaced_and_the_root_is_unchanged() {
    let server = common::NatsServer::start();
    let url = server.url();
    let dir = scratch("kill");
    let book = dir.join("book.json");
    write_book(&book, 21, 4_000);
    let keys = key_file(&dir);
    let federation = repo().join("examples/oracle/federation.json");
    let (book, keys, federation) =
        (book.to_str().unwrap(), keys.to_str().unwrap(), federation.to_str().unwrap());
    let single = dir.join("single");
    let common_args = ["--epoch", "3", "--federation", federation, "--keys", keys, "--no-proofs"];
    run(&[&["attest", "--book", book, "--out", single.to_str().unwrap()], &common_args[..]]
        .concat());
    let loaded = run(&[
        "bus",
        "load",
        "--nats",
        &url,
        "--shards",
        "8",
        "--lease-ms",
        "1000",
        "--book",
        book,
    ]);
    assert!(
        String::from_utf8_lossy(&loaded.stdout).starts_with("stored 4000 writes over 8 shards")
    );
    let mut doomed = WorkerProcess::start(&url, "doomed");
    doomed.wait_for("acquired shard");
    let mut survivor = WorkerProcess::start(&url, "survivor");
    survivor.wait_for("acquired shard");
    std::thread::sleep(Duration::from_millis(1_500));
    let lost = doomed.held();
    assert!(
        !lost.is_empty(),
        "the doomed worker holds shards when the epoch starts: {:?}",
        doomed.seen
    );
    let sharded = dir.join("sharded");
    let epoch = Command::new(BALLAST)
        .args(["bus", "epoch", "--nats", &url, "--shards", "8", "--lease-ms", "1000"])
        .args(["--out", sharded.to_str().unwrap()])
        .args(common_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    doomed.wait_for("computing request");
    Command::new("kill").args(["-9", &doomed.child.id().to_string()]).status().unwrap();
    let _ = doomed.child.wait();
    let output = epoch.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    assert!(
        !doomed.drain().iter().any(|l| l.starts_with("computed")),
        "killed before it committed"
    );
    let taken = survivor.held();
    assert!(lost.is_subset(&taken), "the survivor took {lost:?} over: {taken:?}");
    for file in ["report.json", "leaves.json"] {
        let a = std::fs::read(single.join(file)).unwrap();
        let b = std::fs::read(sharded.join(file)).unwrap();
        assert!(a == b, "{file} differs between attest and the bus");
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("epoch 3 root 0x"), "{stdout}");
}
