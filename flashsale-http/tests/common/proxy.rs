//! A TCP proxy that a test can cut and restore; shared by the test files of
//! flashsale-http (the browser's live link) and of the example servers (the
//! Kafka broker).
#![allow(
    dead_code,
    clippy::unwrap_used,
    reason = "test helpers stop at the first surprise"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A TCP proxy in front of a server that can be cut: every connection
/// dropped and new ones refused, as when the server or the network is
/// down, and restored.
pub(crate) struct Proxy {
    up: Arc<AtomicBool>,
    /// Connections refused while cut.
    pub(crate) refused: Arc<watch::Sender<u32>>,
    connections: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    pub(crate) async fn start(listener: TcpListener, target: String) -> Proxy {
        let up = Arc::new(AtomicBool::new(true));
        let refused = Arc::new(watch::Sender::new(0));
        let connections = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (up2, refused2, connections2) = (up.clone(), refused.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    refused2.send_modify(|n| *n += 1);
                    continue; // dropped: the server is "down"
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                connections2.lock().unwrap().push(task.abort_handle());
            }
        });
        Proxy {
            up,
            refused,
            connections,
        }
    }

    pub(crate) fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.connections.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    pub(crate) fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}
