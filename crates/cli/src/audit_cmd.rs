//! `ballast audit verify`: checks the service's hash-chained audit log and names the first
//! broken entry.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

/// Arguments of `ballast audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check every entry's link and hash, oldest first.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// The service's database: `sqlite://PATH` or `postgres://...`.
    #[arg(long, default_value = "sqlite://ballast.db")]
    database: String,
}

/// Runs `ballast audit`.
pub fn run(args: &AuditArgs) -> Result<()> {
    let AuditCommand::Verify(verify) = &args.command;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let entries = runtime.block_on(async {
        let store = service::store::Store::open(&verify.database).await?;
        store.audit_log().await
    })?;
    if let Err(broken) = service::audit::verify(&entries) {
        bail!("audit log broken at {broken}");
    }
    match entries.last() {
        Some(last) => println!(
            "audit log intact: {} entries; the last, {} by {} at {}, hashes to {}",
            entries.len(),
            last.note.action,
            last.note.actor,
            last.at,
            last.hash
        ),
        None => println!("audit log intact: empty"),
    }
    Ok(())
}
