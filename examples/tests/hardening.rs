//! The `flashsale` server as a process, against clients that misbehave at
//! the connection level: slow-header connections are closed after the
//! header timeout while others are served, and SIGTERM ends the process
//! within its grace period even with such connections open.
#![allow(clippy::unwrap_used, reason = "a test fails at the first surprise")]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Child;

mod process;

async fn start(env: &[(&str, &str)]) -> (Child, String) {
    process::start("flashsale", env).await
}

/// `n` connections that send half a request head and then nothing.
async fn slow_headers(addr: &str, n: usize) -> Vec<TcpStream> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Slow: ")
            .await
            .unwrap();
        conns.push(c);
    }
    conns
}

async fn healthy(addr: &str) -> bool {
    reqwest::get(format!("http://{addr}/healthz"))
        .await
        .is_ok_and(|r| r.status().is_success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_connections_are_closed_while_others_are_served() {
    let (_server, addr) = start(&[("HEADER_TIMEOUT_MS", "500")]).await;
    let conns = slow_headers(&addr, 500).await;
    assert!(healthy(&addr).await, "served beside 500 slow connections");
    // Every slow connection is closed by the server: reading ends (the
    // bound is generous; the timeout is 0.5 s).
    let closed = tokio::time::timeout(Duration::from_secs(30), async {
        for mut c in conns {
            let mut buf = [0u8; 256];
            loop {
                match c.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {} // a 408 answer, then the close
                }
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "slow connections were left open");
    assert!(healthy(&addr).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_server_within_its_grace_with_hanging_clients() {
    let (mut server, addr) = start(&[("SHUTDOWN_GRACE_S", "1")]).await;
    let _conns = slow_headers(&addr, 200).await;
    assert!(healthy(&addr).await);
    let pid = server.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    // Grace is 1 s; the header timeout (10 s) has not run out.
    let exit = tokio::time::timeout(Duration::from_secs(8), server.wait())
        .await
        .expect("still running after its grace period")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}
