//! A TCP relay that makes whatever is behind it look slow.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Forwards loopback connections to a target, holding each chunk of bytes, in both directions,
/// for the current delay (none at first). Dropping it closes the listener and every connection.
pub struct DelayRelay {
    addr: SocketAddr,
    delay_ms: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl DelayRelay {
    /// Listens on a free loopback port and forwards to `target`. Needs a Tokio runtime.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("a bound address");
        let delay_ms = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(serve(listener, target, Arc::clone(&delay_ms)));
        Self {
            addr,
            delay_ms,
            task,
        }
    }

    /// The relay's address as a plaintext gRPC endpoint, e.g. `http://127.0.0.1:40000`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Holds every later chunk for `delay`; `Duration::ZERO` forwards at once again.
    pub fn set_delay(&self, delay: Duration) {
        let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.delay_ms.store(millis, Ordering::SeqCst);
    }
}

impl Drop for DelayRelay {
    fn drop(&mut self) {
        // The accept task owns the connections' tasks: aborting it drops and aborts them too.
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, target: SocketAddr, delay_ms: Arc<AtomicU64>) {
    let mut connections = JoinSet::new();
    while let Ok((inbound, _)) = listener.accept().await {
        while connections.try_join_next().is_some() {}
        let Ok(outbound) = TcpStream::connect(target).await else {
            continue;
        };
        let _ = inbound.set_nodelay(true);
        let _ = outbound.set_nodelay(true);
        let (in_read, in_write) = inbound.into_split();
        let (out_read, out_write) = outbound.into_split();
        connections.spawn(pump(in_read, out_write, Arc::clone(&delay_ms)));
        connections.spawn(pump(out_read, in_write, Arc::clone(&delay_ms)));
    }
}

async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay_ms: Arc<AtomicU64>) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let delay = delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
