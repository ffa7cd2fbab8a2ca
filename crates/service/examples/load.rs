//! Load generator for `ballast serve` (BENCHMARKS.md, "Service"): a book of synthetic accounts
//! in a fresh SQLite database, market pushes at a fixed rate and what-if clients on loopback.
//!
//! ```sh
//! cargo run --release -p service --example load -- --accounts 100000 --seconds 30
//! ```
//!
//! Options: `--accounts N` (100,000), `--positions N` (20 per account), `--instruments N`
//! (2,000), `--clients N` (what-if connections, 2), `--push-hz N` (10), `--seconds N` (30),
//! `--threads N` (rayon threads for the recompute; all cores when absent), `--rate N` (what-ifs
//! per second per connection, sent on a fixed schedule with latency measured from the scheduled
//! time; 0, the default, sends each request as soon as the previous answer arrives), `--writes N`
//! (account writes timed after the load while markets are still pushed, 40), `--creation-every N`
//! (every Nth write creates an account, which rebuilds the methodology's group; the others change
//! a position of an existing account, which re-margins that account alone; 2, the default, makes
//! half of each; 1 makes none), `--history-step-secs N` (how often the service samples every
//! account's margin, 60 as it does by default; a day takes the sampling out of a run but its
//! first step).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark fails loudly")]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use service::client::Client;
use service::store::{Op, Store};

struct Options {
    accounts: usize,
    positions: usize,
    instruments: usize,
    clients: usize,
    push_hz: f64,
    rate: f64,
    seconds: f64,
    threads: Option<usize>,
    writes: usize,
    creation_every: usize,
    history_step_secs: i64,
}

fn options() -> Options {
    let mut o = Options {
        accounts: 100_000,
        positions: 20,
        instruments: 2_000,
        clients: 2,
        push_hz: 10.0,
        rate: 0.0,
        seconds: 30.0,
        threads: None,
        writes: 40,
        creation_every: 2,
        history_step_secs: service::history::Retention::default().step_secs,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).expect("every option takes a value");
        match pair[0].as_str() {
            "--accounts" => o.accounts = value.parse().unwrap(),
            "--positions" => o.positions = value.parse().unwrap(),
            "--instruments" => o.instruments = value.parse().unwrap(),
            "--clients" => o.clients = value.parse().unwrap(),
            "--push-hz" => o.push_hz = value.parse().unwrap(),
            "--rate" => o.rate = value.parse().unwrap(),
            "--seconds" => o.seconds = value.parse().unwrap(),
            "--threads" => o.threads = Some(value.parse().unwrap()),
            "--writes" => o.writes = value.parse().unwrap(),
            "--creation-every" => o.creation_every = value.parse::<usize>().unwrap().max(1),
            "--history-step-secs" => o.history_step_secs = value.parse().unwrap(),
            other => panic!("unknown option {other}"),
        }
    }
    o
}

/// The admin key the load run provisions and authenticates every request with (a public
/// test value): what-ifs and writes pay for authentication as a client's would.
const KEY: &str =
    "bk_000000000000100a_4444444444444444444444444444444444444444444444444444444444444444";

/// A small deterministic generator (xorshift64*): the load is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn market_json(market: &market::MarketSnapshot) -> String {
    serde_json::to_string(&formats::market::MarketDocument::from_snapshot(market)).unwrap()
}

/// Writes the synthetic book into the database in one transaction.
async fn fill(database: &str, o: &Options, instruments: &[product::Instrument], hash: &str) {
    let futures: Vec<usize> =
        instruments.iter().enumerate().filter(|(_, i)| !i.is_option()).map(|(r, _)| r).collect();
    let book =
        bench::synthetic::book(20_261_201, o.accounts, o.positions, instruments.len(), &futures);
    let mut ops = Vec::with_capacity(book.entries().0 + 3 * o.accounts);
    for a in 0..book.len() {
        let id = format!("acct-{a:06}");
        ops.push(Op::Account { id: id.clone(), methodology: hash.to_owned() });
        let account = book.account(a);
        for &(row, size) in account.positions {
            let instrument = instruments[row].to_string();
            let (entry, funding) = (None, None);
            ops.push(Op::Position { account: id.clone(), instrument, size, entry, funding });
        }
        for &(currency, amount) in account.balances {
            let (account, currency) = (id.clone(), currency.to_string());
            ops.push(Op::Balance { account, currency, amount: Some(format!("{amount}")) });
        }
    }
    let store = Store::open(database).await.unwrap();
    store.commit(&ops, None).await.unwrap();
}

async fn what_ifs(
    address: SocketAddr,
    seed: u64,
    o: Arc<Options>,
    names: Arc<Vec<String>>,
    until: Instant,
) -> Vec<f64> {
    let mut client = Client::connect(address).await.unwrap().authorized(KEY);
    let mut rng = Rng(seed);
    let mut latencies = Vec::new();
    let start = Instant::now();
    let mut sent = 0_u32;
    while Instant::now() < until {
        let scheduled = if o.rate > 0.0 {
            let at = start + Duration::from_secs_f64(f64::from(sent) / o.rate);
            tokio::time::sleep_until(at.into()).await;
            at
        } else {
            Instant::now()
        };
        sent += 1;
        let account = rng.below(o.accounts);
        let instrument = &names[rng.below(names.len())];
        let size = if rng.below(2) == 0 { 1.0 } else { -1.0 };
        let body = format!(r#"{{"trades":[{{"instrument":"{instrument}","size":{size}}}]}}"#);
        let path = format!("/api/accounts/acct-{account:06}/what-if");
        let reply = client.request("POST", &path, &[], body.as_bytes()).await.unwrap();
        latencies.push(scheduled.elapsed().as_secs_f64());
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    latencies
}

async fn push_markets(
    address: SocketAddr,
    o: Arc<Options>,
    base: market::MarketSnapshot,
    until: Instant,
) -> usize {
    if o.push_hz <= 0.0 {
        return 0;
    }
    let mut client = Client::connect(address).await.unwrap().authorized(KEY);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / o.push_hz));
    let mut pushes = 0;
    while Instant::now() < until {
        ticker.tick().await;
        // Alternate small BTC moves so that every push is a new market.
        let moved =
            base.with_spot_move(basics::Currency::BTC, 0.001 * (pushes % 7) as f64).unwrap();
        let body = market_json(&moved);
        // The service closes a keep-alive connection idle past its read timeout (10 s), which
        // slow push rates reach: reconnect once then.
        let reply = match client.request("POST", "/api/markets", &[], body.as_bytes()).await {
            Ok(reply) => reply,
            Err(_) => {
                client = Client::connect(address).await.unwrap().authorized(KEY);
                client.request("POST", "/api/markets", &[], body.as_bytes()).await.unwrap()
            }
        };
        assert_eq!(reply.status, 202, "{}", reply.body);
        pushes += 1;
    }
    pushes
}

/// Timed account writes, one at a time on a quiet service: (position changes of existing
/// accounts, account creations), latencies in seconds from request to acknowledgement (the
/// new margin is published before the answer).
async fn writes(address: SocketAddr, o: &Options) -> (Vec<f64>, Vec<f64>) {
    let mut client = Client::connect(address).await.unwrap().authorized(KEY);
    let mut rng = Rng(0x5EED_0001);
    let (mut updates, mut creations) = (Vec::new(), Vec::new());
    for n in 0..o.writes {
        let key = format!("load-write-{n}");
        let started;
        let creates = o.creation_every > 1 && n % o.creation_every == o.creation_every - 1;
        let reply = if creates {
            let body = format!(r#"{{"id":"new-{n:06}","balances":{{"USDC":"100000"}}}}"#);
            started = Instant::now();
            client
                .request("POST", "/api/accounts", &[("Idempotency-Key", &key)], body.as_bytes())
                .await
        } else {
            let path = format!("/api/accounts/acct-{:06}", rng.below(o.accounts));
            let view = client.request("GET", &path, &[], &[]).await.unwrap().json();
            let held = view["positions"][0]["instrument"].as_str().unwrap().to_owned();
            let body = format!(r#"{{"size":{}}}"#, 1 + rng.below(50));
            let path = format!("{path}/positions/{held}");
            started = Instant::now();
            client.request("PUT", &path, &[("Idempotency-Key", &key)], body.as_bytes()).await
        };
        let seconds = started.elapsed().as_secs_f64();
        let reply = reply.unwrap();
        assert!(reply.status == 200 || reply.status == 201, "{}", reply.body);
        if creates { creations.push(seconds) } else { updates.push(seconds) }
    }
    (updates, creations)
}

/// A fresh database with the market stored and the synthetic book written into it.
async fn seed(
    config: &service::Config,
    o: &Options,
    market: &market::MarketSnapshot,
    instruments: &[product::Instrument],
) {
    let seeded = service::start(config).await.unwrap();
    let hash = {
        let model = seeded.service.model();
        model.methodologies.values().find(|m| m.name == "ballast-pm").unwrap().hash.clone()
    };
    let mut client = Client::connect(seeded.address).await.unwrap().authorized(KEY);
    let reply =
        client.request("POST", "/api/markets", &[], market_json(market).as_bytes()).await.unwrap();
    assert_eq!(reply.status, 202, "{}", reply.body);
    seeded.server.abort();
    seeded.recompute.abort();
    seeded.housekeeping.abort();
    drop(seeded);
    fill(&config.database, o, instruments, &hash).await;
}

/// The live feed of every account, signed in with [`KEY`].
async fn feed(
    address: SocketAddr,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let mut request = format!("ws://{address}/ws").into_client_request().unwrap();
    let protocols = format!("ballast, bearer.{KEY}").parse().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", protocols);
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

/// The run's own folder in the temporary folder.
fn scratch_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("ballast-load-{}", std::process::id()))
}

/// The service's configuration: a fresh SQLite database in the temporary folder, [`KEY`] as
/// its admin key.
fn config(o: &Options) -> service::Config {
    let dir = scratch_dir();
    std::fs::create_dir_all(&dir).unwrap();
    service::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: format!("sqlite://{}", dir.join("load.db").display()),
        sample_accounts: false,
        admin_key: Some(KEY.to_owned()),
        read_timeout: service::HEADER_READ_TIMEOUT_DEFAULT,
        requests_per_sec_per_key: 1_000_000,
        tls: None,
        retention: service::history::Retention {
            step_secs: o.history_step_secs,
            kept_secs: o.history_step_secs.max(service::history::Retention::default().kept_secs),
            ..service::history::Retention::default()
        },
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let o = Arc::new(options());
    if let Some(threads) = o.threads {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().unwrap();
    }
    let (market, instruments) = bench::synthetic::exchange(o.instruments);
    let config = config(&o);
    let started = Instant::now();
    seed(&config, &o, &market, &instruments).await;
    let running = service::start(&config).await.unwrap();
    let address = running.address;
    println!(
        "loaded {} accounts x {} positions over {} instruments in {:.1} s; serving {address}",
        o.accounts,
        o.positions,
        instruments.len(),
        started.elapsed().as_secs_f64()
    );
    let recomputes = Arc::new(Mutex::new(Vec::new()));
    let mut socket = feed(address).await;
    let seen = Arc::clone(&recomputes);
    let listener = tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            let Ok(text) = message.into_text() else { continue };
            let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            if value["type"] == "recompute" {
                let pair =
                    (value["seconds"].as_f64().unwrap(), value["lag_seconds"].as_f64().unwrap());
                seen.lock().unwrap().push(pair);
            }
        }
    });
    let names: Arc<Vec<String>> = Arc::new(instruments.iter().map(ToString::to_string).collect());
    let until = Instant::now() + Duration::from_secs_f64(o.seconds);
    let pusher = tokio::spawn(push_markets(address, Arc::clone(&o), market.clone(), until));
    let clients: Vec<_> = (0..o.clients)
        .map(|c| {
            tokio::spawn(what_ifs(
                address,
                0x9E37_79B9 + c as u64,
                Arc::clone(&o),
                Arc::clone(&names),
                until,
            ))
        })
        .collect();
    let mut latencies = Vec::new();
    for c in clients {
        latencies.extend(c.await.unwrap());
    }
    let pushes = pusher.await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    listener.abort();
    report(&o, &mut latencies, pushes, &recomputes.lock().unwrap());
    // Writes are timed while markets keep arriving, as they would on an exchange.
    let forever = Instant::now() + Duration::from_hours(24);
    let background = tokio::spawn(push_markets(address, Arc::clone(&o), market, forever));
    report_writes(writes(address, &o).await);
    report_phases(address).await;
    background.abort();
    running.server.abort();
    let _ = std::fs::remove_dir_all(scratch_dir());
}

/// The mean time per phase of the service's writes, from its `/metrics`
/// (`ballast_write_phase_seconds`, by what the write changed): where a write's latency goes.
async fn report_phases(address: SocketAddr) {
    let mut client = Client::connect(address).await.unwrap().authorized(KEY);
    let text = client.request("GET", "/metrics", &[], &[]).await.unwrap().body;
    let value = |line: &str| line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
    for line in text.lines().filter(|l| l.starts_with("ballast_write_phase_seconds_sum")) {
        let labels = line.split_once('{').and_then(|(_, rest)| rest.split_once('}'));
        let Some((labels, _)) = labels else { continue };
        let count = format!("ballast_write_phase_seconds_count{{{labels}}}");
        let n = text.lines().find(|l| l.starts_with(&count)).and_then(value);
        if let (Some(sum), Some(n)) = (value(line), n) {
            println!("write phase {labels}: mean {:.2} ms over {n}", sum / n * 1e3);
        }
    }
}

fn report_writes((mut updates, mut creations): (Vec<f64>, Vec<f64>)) {
    for (what, latencies) in
        [("position change (one account)", &mut updates), ("new account (group)", &mut creations)]
    {
        latencies.sort_by(f64::total_cmp);
        println!(
            "writes, {what}: {} timed; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, \
             max {:.2} ms",
            latencies.len(),
            percentile(latencies, 0.5) * 1e3,
            percentile(latencies, 0.9) * 1e3,
            percentile(latencies, 0.99) * 1e3,
            percentile(latencies, 1.0) * 1e3,
        );
    }
}

fn report(o: &Options, latencies: &mut [f64], pushes: usize, recomputes: &[(f64, f64)]) {
    latencies.sort_by(f64::total_cmp);
    let ms = |x: f64| x * 1e3;
    println!(
        "what-if: {} requests in {:.0} s = {:.0}/s over {} connections; latency p50 {:.3} ms, \
         p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        latencies.len(),
        o.seconds,
        latencies.len() as f64 / o.seconds,
        o.clients,
        ms(percentile(latencies, 0.5)),
        ms(percentile(latencies, 0.9)),
        ms(percentile(latencies, 0.99)),
        ms(percentile(latencies, 1.0)),
    );
    let mut seconds: Vec<f64> = recomputes.iter().map(|r| r.0).collect();
    let mut lags: Vec<f64> = recomputes.iter().map(|r| r.1).collect();
    seconds.sort_by(f64::total_cmp);
    lags.sort_by(f64::total_cmp);
    println!(
        "markets: {pushes} pushed at {} Hz, {} recomputes ({} coalesced); recompute p50 {:.1} ms, \
         p99 {:.1} ms; lag (push acknowledged -> all accounts published) p50 {:.1} ms, \
         p99 {:.1} ms, max {:.1} ms",
        o.push_hz,
        recomputes.len(),
        pushes.saturating_sub(recomputes.len()),
        ms(percentile(&seconds, 0.5)),
        ms(percentile(&seconds, 0.99)),
        ms(percentile(&lags, 0.5)),
        ms(percentile(&lags, 0.99)),
        ms(percentile(&lags, 1.0)),
    );
}
