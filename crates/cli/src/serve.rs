//! `ballast serve`: the HTTP + WebSocket service with its dashboard (crate `service`).

use std::net::SocketAddr;

use anyhow::{Context, Result};
use clap::Args;

/// Arguments of `ballast serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Database: `sqlite://PATH` (embedded, created if missing) or `postgres://...`.
    #[arg(long, default_value = "sqlite://ballast.db")]
    pub database: String,
    /// Do not add the sample accounts to an empty database.
    #[arg(long)]
    pub no_sample_accounts: bool,
    /// Threads for recomputation and what-ifs (rayon); all cores when absent.
    #[arg(long)]
    pub threads: Option<usize>,
    /// File holding the first admin key (`bk_<16 hex>_<64 hex>`) for a database without keys;
    /// without it a new key is made and printed once.
    #[arg(long)]
    pub admin_key_file: Option<std::path::PathBuf>,
    /// Requests per second each API key may make on average (bursts of twice as many).
    #[arg(long, default_value_t = service::REQUESTS_PER_SEC_PER_KEY_DEFAULT)]
    pub rate_limit: u32,
    /// Seconds of market pushes kept as received; older ones are thinned to one per
    /// `--history-step-secs`.
    #[arg(long, default_value_t = service::history::Retention::default().raw_secs)]
    pub market_raw_secs: i64,
    /// Seconds between samples of every account's margin (only changed accounts are written),
    /// and the resolution of thinned market history.
    #[arg(long, default_value_t = service::history::Retention::default().step_secs)]
    pub history_step_secs: i64,
    /// Seconds of history kept (markets, margin samples, alerts); the current market stays.
    #[arg(long, default_value_t = service::history::Retention::default().kept_secs)]
    pub history_kept_secs: i64,
    /// Serve HTTPS and WSS with this PEM certificate chain (server certificate first); needs
    /// `--tls-key`.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of `--tls-cert` (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
}

/// Runs the service until the process is stopped.
pub fn run(args: &ServeArgs) -> Result<()> {
    if let Some(threads) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .context("configuring the recompute threads")?;
    }
    let runtime = crate::async_runtime()?;
    runtime.block_on(async {
        let admin_key = match &args.admin_key_file {
            Some(path) => Some(crate::input::read_text(Some(path))?.trim().to_owned()),
            None => None,
        };
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(service::tls::TlsPem {
                cert_chain: std::fs::read(cert)
                    .with_context(|| format!("reading --tls-cert {}", cert.display()))?,
                private_key: std::fs::read(key)
                    .with_context(|| format!("reading --tls-key {}", key.display()))?,
            }),
            _ => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let config = service::Config {
            listen: args.listen,
            database: args.database.clone(),
            sample_accounts: !args.no_sample_accounts,
            admin_key,
            read_timeout: service::HEADER_READ_TIMEOUT_DEFAULT,
            requests_per_sec_per_key: args.rate_limit,
            tls,
            retention: service::history::Retention {
                raw_secs: args.market_raw_secs,
                step_secs: args.history_step_secs,
                kept_secs: args.history_kept_secs,
            },
        };
        let running = service::start(&config).await.context("starting the service")?;
        // The first line is read by scripts and tests to find the port, the second (on a first
        // start) to find the admin key.
        println!("Ballast service listening on {scheme}://{}/ (database {})", running.address, {
            &args.database
        });
        if let Some(key) = &running.admin_key {
            println!("admin key (shown once; only its hash is stored): {key}");
            println!("dashboard, signed in: {scheme}://{}/#key={key}", running.address);
        }
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
        running.server.abort();
        Ok(())
    })
}
