//! Shared by the process tests: finding and starting an example server.
#![allow(
    dead_code,
    clippy::unwrap_used,
    reason = "each test file uses part of this; helpers stop at the first surprise"
)]

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The example binary `name`, which `cargo test` builds.
pub(crate) fn example(name: &str) -> PathBuf {
    let dir = std::env::current_exe().unwrap();
    let bin = dir
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        bin.exists(),
        "{} is missing: `cargo test` builds the examples",
        bin.display()
    );
    bin
}

/// The example `name` on a free port with only `env` (and a quiet log),
/// killed on drop. In memory unless `env` gives `IN_MEMORY=false` and a
/// `DATA_DIR`: tests must not share a data directory.
pub(crate) fn command<K: AsRef<OsStr>, V: AsRef<OsStr>>(name: &str, env: &[(K, V)]) -> Command {
    let mut c = Command::new(example(name));
    c.env_clear()
        .env("PORT", "0")
        .env("RUST_LOG", "warn")
        .env("IN_MEMORY", "true")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .kill_on_drop(true);
    c
}

/// Starts it and waits for it to say where it listens: the child and
/// its `host:port`.
pub(crate) async fn start<K: AsRef<OsStr>, V: AsRef<OsStr>>(
    name: &str,
    env: &[(K, V)],
) -> (Child, String) {
    let mut child = command(name, env).stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some((_, at)) = line.split_once("listening on http://") {
                return at.split_whitespace().next().unwrap().to_owned();
            }
        }
        panic!("{name} exited before listening");
    })
    .await
    .unwrap_or_else(|_| panic!("{name} did not listen within 60 s"));
    // Keep reading, so the server never writes to a closed pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}
