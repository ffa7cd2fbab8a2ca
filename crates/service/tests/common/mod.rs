//! What the service's integration tests share: the configuration of a service on loopback.

#![allow(dead_code, reason = "each test file uses a part")]
#![allow(clippy::unwrap_used, reason = "a test fails loudly at the first surprise")]

use std::sync::atomic::{AtomicUsize, Ordering};

use service::Config;

static NEXT: AtomicUsize = AtomicUsize::new(0);

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

/// A fresh database URL of each available backend.
pub async fn databases(test: &str) -> Vec<String> {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = format!("ballast-api-{test}-{n}");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut urls = vec![format!("sqlite://{}", dir.join("ballast.db").display())];
    if let Ok(admin) = std::env::var("BALLAST_TEST_POSTGRES_URL") {
        let name = format!("ballast_api_{}_{test}_{n}", std::process::id());
        urls.push(service::store::create_postgres_database(&admin, &name).await.unwrap());
    } else {
        let under_ci = std::env::var_os("CI").is_some();
        assert!(!under_ci, "BALLAST_TEST_POSTGRES_URL must be set under CI (scripts/test sets it)");
        eprintln!(
            "\n*** WARNING: BALLAST_TEST_POSTGRES_URL is unset: the PostgreSQL half of `{test}` \
             is SKIPPED. Run ./scripts/test, which starts a throwaway cluster. ***\n"
        );
    }
    urls
}
