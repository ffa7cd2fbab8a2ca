//! `ballast methodology list` and `ballast methodology show`.

use anyhow::{Result, anyhow};
use clap::{Args, Subcommand};
use formats::bundled::{BUNDLED, bundled_text};
use formats::methodology::{Profile, hash_hex};

use crate::input::read_text;
use crate::profile::load_profile;

/// Arguments of `ballast methodology`.
#[derive(Debug, Args)]
pub struct MethodologyArgs {
    #[command(subcommand)]
    command: MethodologyCommand,
}

#[derive(Debug, Subcommand)]
enum MethodologyCommand {
    /// List every bundled methodology with its version, canonical hash and first source.
    List,
    /// Print a methodology file (bundled name or path) and its canonical hash.
    Show {
        /// Bundled name (see `list`) or path to a TOML file.
        name: String,
    },
}

/// Runs `ballast methodology`.
pub fn run(args: &MethodologyArgs) -> Result<()> {
    match &args.command {
        MethodologyCommand::List => {
            println!("{:<22} {:<12} {:<13} hash", "name", "version", "kind");
            for (name, text) in BUNDLED {
                let profile = Profile::from_toml(text)?;
                let (kind, source) = match &profile {
                    Profile::Portfolio(m) => ("portfolio", m.sources.first()),
                    Profile::PerPosition(s) => ("per-position", s.sources.first()),
                };
                println!(
                    "{name:<22} {:<12} {kind:<13} {}",
                    profile.version(),
                    hash_hex(&profile.hash())
                );
                let description: String = profile.description().chars().take(96).collect();
                println!("    {description}");
                println!("    source: {}", source.map_or("-", String::as_str));
            }
            Ok(())
        }
        MethodologyCommand::Show { name } => {
            let profile = load_profile(name)?;
            let text = match bundled_text(name) {
                Some(text) => text.to_owned(),
                None => read_text(Some(std::path::Path::new(name)))
                    .map_err(|e| anyhow!("{name}: {e}"))?,
            };
            print!("{text}");
            if !text.ends_with('\n') {
                println!();
            }
            println!(
                "# {}@{} canonical hash: {}",
                profile.name(),
                profile.version(),
                hash_hex(&profile.hash())
            );
            Ok(())
        }
    }
}
