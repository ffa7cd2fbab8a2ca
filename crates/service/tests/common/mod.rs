//! What the service's integration tests share: the configuration of a service on loopback.

#![allow(dead_code, reason = "each test file uses a part")]
#![allow(clippy::unwrap_used, reason = "a test fails loudly at the first surprise")]

use service::Config;

/// A service on an ephemeral loopback port over `database`, seeded with the sample accounts,
/// `admin` as its first admin key, the default header timeout and a rate limit no test reaches;
/// a test changes what it is about with struct update syntax.
pub fn config(database: String, admin: &str) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database,
        sample_accounts: true,
        admin_key: Some(admin.to_owned()),
        read_timeout: service::HEADER_READ_TIMEOUT_DEFAULT,
        requests_per_sec_per_key: 100_000,
        tls: None,
        retention: service::history::Retention::default(),
    }
}

/// A fresh SQLite database under the test target directory, in a folder of its own.
pub fn sqlite(folder: &str) -> String {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(folder);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    format!("sqlite://{}", dir.join("ballast.db").display())
}
