//! Browser test of the dashboard: `ballast serve` on a fresh SQLite database, then headless
//! Chromium driven by playwright-core (`crates/service/browser-test/dashboard.mjs`) loads the
//! page and checks what a risk manager relies on (the heatmap and its live update, coin
//! figures, MM breaches below 1, unpriced accounts with their reason, the worst scenario in
//! words, positions, what-if, search, the layout at 1280 px and 375 px); the screenshots it
//! takes stay in the target's tmp dir and their paths are printed.
//! `scripts/test` installs Chromium and the npm package; without them the test says so loudly,
//! and fails under CI (`CI` set), where they must be present.

#![allow(clippy::unwrap_used, reason = "a test fails loudly at the first surprise")]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn dashboard_shows_the_heatmap_and_updates_live() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script_dir = root.join("crates/service/browser-test");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ready =
        script_dir.join("node_modules/playwright-core").is_dir() && Path::new(&chromium).exists();
    if !ready {
        let message = "playwright-core (npm ci in crates/service/browser-test) or Chromium \
                       (apt-get install chromium) is missing: run ./scripts/test";
        assert!(std::env::var_os("CI").is_none(), "{message}");
        eprintln!("\n*** WARNING: the dashboard browser test is SKIPPED: {message} ***\n");
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ballast-browser");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let database = format!("sqlite://{}", dir.join("ballast.db").display());
    let mut server = Command::new(env!("CARGO_BIN_EXE_ballast"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database", &database])
        .args(["--history-step-secs", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(server.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_owned();
    // A first start prints the admin key it made, once.
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let key = line.split_whitespace().last().unwrap().to_owned();
    assert!(key.starts_with("bk_"), "no admin key printed: {line:?}");
    // The screenshots (1280 px and 375 px wide) outlive the run, for review.
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    let output = Command::new("node")
        .arg(script_dir.join("dashboard.mjs"))
        .arg(&url)
        .arg(&key)
        .arg(&screenshots)
        .env("CHROMIUM", &chromium)
        .output()
        .unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "browser test failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("seen live"), "{stdout}");
    assert!(stdout.contains("dashboard-375.png"), "{stdout}");
    println!("{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
