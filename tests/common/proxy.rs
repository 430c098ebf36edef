//! A TCP proxy between the connector and an OPC UA server that can stall the network (bytes
//! stop flowing both ways, connections stay open) or cut it (connections dropped, new ones
//! refused) — the outages a plant network has, on loopback.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{tcp::OwnedReadHalf, tcp::OwnedWriteHalf, TcpListener, TcpStream},
};

#[derive(Default)]
struct Switches {
    stalled: AtomicBool,
    down: AtomicBool,
    /// Bumped by a cut: copies of an older generation end, dropping their connection.
    generation: AtomicU64,
}

pub struct Proxy {
    pub port: u16,
    switches: Arc<Switches>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards every connection to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let switches = Arc::new(Switches::default());
        let sw = switches.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if sw.down.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let generation = sw.generation.load(Ordering::SeqCst);
                let (cr, cw) = client.into_split();
                let (sr, sw_) = server.into_split();
                tokio::spawn(copy(cr, sw_, sw.clone(), generation));
                tokio::spawn(copy(sr, cw, sw.clone(), generation));
            }
        });
        Proxy {
            port,
            switches,
            task,
        }
    }

    /// `opc.tcp://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("opc.tcp://127.0.0.1:{}{path}", self.port)
    }

    /// Holds every byte in both directions until [`Proxy::resume`]; connections stay open.
    pub fn stall(&self) {
        self.switches.stalled.store(true, Ordering::SeqCst);
    }

    pub fn resume(&self) {
        self.switches.stalled.store(false, Ordering::SeqCst);
    }

    /// Drops every connection and refuses new ones until [`Proxy::restore`].
    pub fn cut(&self) {
        self.switches.down.store(true, Ordering::SeqCst);
        self.switches.generation.fetch_add(1, Ordering::SeqCst);
    }

    pub fn restore(&self) {
        self.switches.down.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.switches.generation.fetch_add(1, Ordering::SeqCst);
    }
}

async fn copy(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, sw: Arc<Switches>, generation: u64) {
    let mut buf = vec![0u8; 64 * 1024];
    let alive = |sw: &Switches| sw.generation.load(Ordering::SeqCst) == generation;
    loop {
        while sw.stalled.load(Ordering::SeqCst) && alive(&sw) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if !alive(&sw) {
            return;
        }
        // Wake up now and then to notice a stall or a cut while the line is quiet.
        let n = match tokio::time::timeout(Duration::from_millis(20), from.read(&mut buf)).await {
            Err(_) => continue,
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => n,
        };
        // Bytes read just as the stall began wait with it.
        while sw.stalled.load(Ordering::SeqCst) && alive(&sw) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if !alive(&sw) || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
