//! Reading input files (or stdin) with a size limit.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use basics::limits::INPUT_FILE_BYTES_MAX;

/// Reads `path`, or stdin when `path` is `None` or `-`, refusing inputs over
/// [`INPUT_FILE_BYTES_MAX`].
pub fn read_text(path: Option<&Path>) -> Result<String> {
    let mut text = String::new();
    match path {
        Some(p) if p.as_os_str() != "-" => {
            let file =
                std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
            file.take(INPUT_FILE_BYTES_MAX + 1)
                .read_to_string(&mut text)
                .with_context(|| format!("cannot read {} as UTF-8 text", p.display()))?;
        }
        _ => {
            std::io::stdin()
                .take(INPUT_FILE_BYTES_MAX + 1)
                .read_to_string(&mut text)
                .context("cannot read standard input as UTF-8 text")?;
        }
    }
    if text.len() as u64 > INPUT_FILE_BYTES_MAX {
        bail!("input is larger than {INPUT_FILE_BYTES_MAX} bytes");
    }
    Ok(text)
}
