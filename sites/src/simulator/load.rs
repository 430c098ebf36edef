//! The load server: a site of `N` integer counters, all set to the tick's number on every
//! tick, served by the same async-opcua server as the plants — what the connector's
//! throughput and memory are measured against (`pharmatwin bench-opcua`).
//!
//! Kept apart from the plant model on purpose: stepping a plant of 20,000 signals would
//! measure the physics, not OPC UA, and a counter lets a reader check that it lost nothing
//! (each item's values must be consecutive numbers).

use std::{
    fmt,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use model::Site;
use opcua::{
    server::{ServerBuilder, ServerHandle},
    types::{DataValue, DateTime, Variant},
};
use tokio::{task::JoinHandle, time::MissedTickBehavior};
use tracing::{error, info};

use super::{
    server::{self, build_address_space, endpoints, limits, Endpoint},
    SimError,
};

/// Namespace of the counters.
pub const LOAD_NAMESPACE: &str = "urn:pharmatwin:bench-load";
/// Counters per equipment ("bank") of the load site.
const BANK: usize = 100;
/// Fastest tick accepted: beyond this the timer, not the server, sets the pace.
const MAX_RATE_HZ: f64 = 100.0;

/// The load site: `items` integer signals `c00`…`c99` in banks `bank-0000`, `bank-0001`…,
/// node ids `nsu=urn:pharmatwin:bench-load;s=load.bank-0000.c00`. Deterministic, so a
/// server process and a client process that build it with the same `items` agree on every
/// node without exchanging anything.
pub fn load_site(items: usize) -> Result<Site, SimError> {
    if items == 0 {
        return Err(SimError::Options(
            "the load site needs at least 1 item".into(),
        ));
    }
    let mut text = format!(
        "templates = \"bank.toml\"\n[site]\nid = \"bench\"\nname = \"OPC UA load\"\n\
         namespace_uri = \"{LOAD_NAMESPACE}\"\nendpoint = \"opc.tcp://127.0.0.1:4840/\"\n\
         [[areas]]\nid = \"load\"\n[[lines]]\nid = \"load\"\narea = \"load\"\n"
    );
    // Whole banks come from the template (a short file even for 100,000 items); the rest
    // are listed in one last bank.
    for b in 0..items / BANK {
        text.push_str(&format!(
            "[[lines.equipment]]\nid = \"bank-{b:04}\"\ntype = \"bank\"\n"
        ));
    }
    if !items.is_multiple_of(BANK) {
        text.push_str(&format!(
            "[[lines.equipment]]\nid = \"bank-{:04}\"\n",
            items / BANK
        ));
        for i in 0..items % BANK {
            text.push_str(&counter_signal("lines.equipment.signals", i));
        }
    }
    let mut template = String::from("[types.bank]\nname = \"Counters\"\n");
    for i in 0..BANK {
        template.push_str(&counter_signal("types.bank.signals", i));
    }
    model::load_site_text("bench-load.toml", &text, |_| {
        Ok(("bank.toml".into(), template.clone()))
    })
    .map_err(|e| SimError::Options(format!("load site: {e}")))
}

fn counter_signal(table: &str, i: usize) -> String {
    format!(
        "[[{table}]]\nid = \"c{i:02}\"\ncategory = \"machine\"\nunit = \"1\"\ndata_type = \"int\"\n"
    )
}

/// A running load server. Dropping it stops the server.
pub struct RunningLoad {
    url: String,
    handle: ServerHandle,
    ticks: Arc<AtomicU64>,
    tasks: Vec<JoinHandle<()>>,
}

impl fmt::Debug for RunningLoad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningLoad")
            .field("url", &self.url)
            .field("ticks", &self.ticks())
            .finish_non_exhaustive()
    }
}

impl RunningLoad {
    pub fn endpoint_url(&self) -> &str {
        &self.url
    }

    /// Ticks done so far: every counter holds this number.
    pub fn ticks(&self) -> u64 {
        self.ticks.load(Ordering::Relaxed)
    }

    pub async fn shutdown(mut self) {
        self.handle.cancel();
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for RunningLoad {
    fn drop(&mut self) {
        self.handle.cancel();
    }
}

/// Serves `site` (see [`load_site`]; any site works, its signals all become counters) at
/// `endpoint` (a port, `"0"` for a free one, or a full URL; the site's endpoint when
/// `None`), setting every counter to the tick's number `rate_hz` times a second, all in one
/// `set_values` call. A tick that comes late is not made up for: the counters then advance
/// more slowly, and [`RunningLoad::ticks`] tells by how much.
pub async fn start_load(
    site: Arc<Site>,
    rate_hz: f64,
    endpoint: Option<&str>,
) -> Result<RunningLoad, SimError> {
    if !(rate_hz.is_finite() && rate_hz > 0.0 && rate_hz <= MAX_RATE_HZ) {
        return Err(SimError::Options(format!(
            "rate {rate_hz} Hz must be above 0 and at most {MAX_RATE_HZ}"
        )));
    }
    let mut endpoint = Endpoint::configured_or(&site, endpoint)?;
    let listener = endpoint.bind().await?;
    let url = endpoint.url();

    let mut limits = limits();
    let subs = &mut limits.subscriptions;
    // Sampling interval 0 means "report every change": a counter that moved twice between
    // two samples would otherwise look like a lost value.
    subs.min_sampling_interval_ms = 0.0;
    subs.min_publishing_interval_ms = 10.0;
    // A client publishing every 100 ms at 100 Hz needs ten values queued per item.
    subs.max_monitored_item_queue_size = 1_000;
    subs.max_queued_notifications = 1_000;
    let mut builder = ServerBuilder::new()
        .application_name("PharmaTwin load server")
        .application_uri("urn:pharmatwin:simulator:load")
        .product_uri("urn:pharmatwin:simulator")
        .host(endpoint.host.clone())
        .port(endpoint.port)
        .create_sample_keypair(false);
    for (id, e) in endpoints(&site, &endpoint.path, &[]) {
        builder = builder.add_endpoint(id, e);
    }
    let (server, handle, manager) = server::build(
        builder,
        &url,
        std::env::temp_dir().join("pharmatwin-pki").join("load"),
        limits,
        &site,
        "pharmatwin-load",
    )?;
    let initial = vec![model::Value::Int(0); site.signal_count()];
    let index_of = |uri: &str| handle.get_namespace_index(uri);
    let nodes = build_address_space(&site, &manager, &index_of, &initial)?;

    let server_task = {
        let url = url.clone();
        tokio::spawn(async move {
            if let Err(message) = server.run_with(listener).await {
                error!(endpoint = %url, "OPC UA load server stopped: {message}");
            }
        })
    };
    let ticks = Arc::new(AtomicU64::new(0));
    let tick_task = {
        let (handle, ticks) = (handle.clone(), ticks.clone());
        let period = Duration::from_secs_f64(1.0 / rate_hz);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut k = 0i64;
            loop {
                tokio::select! {
                    _ = handle.token().cancelled() => break,
                    _ = interval.tick() => {}
                }
                k += 1;
                let now = DateTime::now();
                let _ = manager.set_values(
                    handle.subscriptions(),
                    nodes
                        .iter()
                        .map(|n| (n, None, DataValue::new_at(Variant::Int64(k), now))),
                );
                ticks.store(k as u64, Ordering::Relaxed);
            }
        })
    };
    info!(endpoint = %url, items = site.signal_count(), rate_hz, "load server serving");
    Ok(RunningLoad {
        url,
        handle,
        ticks,
        tasks: vec![server_task, tick_task],
    })
}
