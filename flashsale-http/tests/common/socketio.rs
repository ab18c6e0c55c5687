//! One socket.io-client v4 connection on Node (the reference's own
//! client, websocket transport), printing what it receives; shared by the
//! test files of flashsale-http and of the example servers.
#![allow(
    dead_code,
    clippy::unwrap_used,
    reason = "test helpers stop at the first surprise"
)]

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// One socket.io-client v4 connection, printing what it receives.
pub(crate) struct Client {
    _node: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Client {
    /// Connects to `base`, joins the rooms in `join`; the rooms joined.
    pub(crate) async fn connect(base: &str, join: Value) -> (Client, Value) {
        // Every crate of the workspace sits beside flashsale-http.
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../flashsale-http/tests/socketio-client"
        );
        assert!(
            std::path::Path::new(dir)
                .join("node_modules/socket.io-client")
                .exists(),
            "run `npm ci` in {dir} (scripts/test.sh does)"
        );
        let mut node = Command::new("node")
            .arg(format!("{dir}/listen.mjs"))
            .arg(base)
            .arg(join.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node is installed");
        let lines = BufReader::new(node.stdout.take().unwrap()).lines();
        let mut client = Client { _node: node, lines };
        let rooms = client.next("joined").await;
        (client, rooms)
    }

    /// Every event up to and including the next `event`, in order; the
    /// last one's data.
    pub(crate) async fn until(&mut self, event: &str) -> (Vec<String>, Value) {
        let mut seen = Vec::new();
        let read = async {
            while let Some(line) = self.lines.next_line().await.unwrap() {
                let v: Value = serde_json::from_str(&line).unwrap();
                let name = v["event"].as_str().unwrap().to_owned();
                seen.push(name.clone());
                assert_ne!(name, "connect_error", "{v}");
                if name == event {
                    return v["data"].clone();
                }
            }
            panic!("client exited before {event}; got {seen:?}");
        };
        let data = tokio::time::timeout(Duration::from_secs(15), read)
            .await
            .unwrap_or_else(|_| panic!("no {event} within 15 s"));
        (seen, data)
    }

    pub(crate) async fn next(&mut self, event: &str) -> Value {
        self.until(event).await.1
    }
}
