//! The simulator: a site's [`Plant`] stepped against the wall clock (at a chosen speed) and
//! served by an OPC UA server at the site's endpoint — what the connectors subscribe to in
//! place of a real plant.
//!
//! Every tick the plant advances by the real time since the last tick times `speed`, and all
//! values are pushed at once with `SimpleNodeManager::set_values` (about twice as cheap as
//! one call per variable), stamped with the wall-clock time so that freshness checks work at
//! any speed. A client writing a set-point (`_sp`) changes the plant at once; the new value
//! is published straight away.
//!
//! Security follows the site file's `[site.security]`: policy None with anonymous access by
//! default; when the site asks for a secured session, every secured policy in Sign and
//! SignAndEncrypt, with the server's own certificate made once in its PKI folder. The
//! simulator trusts any client certificate (it stands in for a plant whose administrator
//! has trusted the connector); the connector still has to trust the simulator's.

mod load;
mod server;

pub use load::{load_site, start_load, RunningLoad, LOAD_NAMESPACE};

use std::{
    fmt,
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use chrono::Utc;
use model::{Site, Value};
use opcua::{
    server::{node_manager::memory::SimpleNodeManager, ServerBuilder, ServerHandle},
    types::{DateTime, NodeId, NumericRange, StatusCode},
};
use tokio::{sync::Notify, task::JoinHandle, time::MissedTickBehavior};
use tracing::{debug, error, info, warn};

use crate::{physics::Plant, scenario::FaultSchedule};
use server::{build_address_space, data_value, status_of, value_of, Endpoint};

/// How a simulator runs.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Simulated seconds per real second (60 = an hour a minute).
    pub speed: f64,
    /// Seed of the plant model: the same seed gives the same plant history.
    pub seed: u64,
    /// Real time between updates.
    pub tick: Duration,
    /// Where to listen instead of the site's endpoint: a full `opc.tcp://host:port/path`
    /// URL, or just a port (`"0"` picks a free one) on the site's host and path.
    pub endpoint: Option<String>,
    /// Where the OPC UA server keeps its certificate store; a folder under the system's
    /// temporary directory when not given.
    pub pki_dir: Option<PathBuf>,
    /// Serve a counter instead of the plant: at tick `k` every numeric or text signal holds
    /// `k` and every boolean `k` is odd, stamped `start + k × tick`. Each signal then
    /// changes on every tick, on a time grid, so a reader can tell from any series' first
    /// and last point how many points it must hold, and spot a duplicate by its value —
    /// the reference of the loss and duplicate tests.
    pub tick_counter: bool,
    /// Faults to inject into the plant as its simulated time reaches them.
    pub faults: FaultSchedule,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            speed: 1.0,
            seed: 0,
            tick: Duration::from_secs(1),
            endpoint: None,
            pki_dir: None,
            tick_counter: false,
            faults: FaultSchedule::default(),
        }
    }
}

/// Highest speed accepted: a day of plant time per real second is more than any use needs.
const MAX_SPEED: f64 = 86_400.0;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("simulator options: {0}")]
    Options(String),
    #[error("endpoint `{endpoint}`: {reason}")]
    Endpoint { endpoint: String, reason: String },
    #[error("cannot listen on {endpoint}: {source}")]
    Bind {
        endpoint: String,
        #[source]
        source: std::io::Error,
    },
    #[error("OPC UA server at {endpoint}: {message}")]
    Server { endpoint: String, message: String },
    #[error("node {node}: {reason}")]
    AddressSpace { node: String, reason: String },
}

/// A simulator serving a site. Dropping it stops the server; [`RunningSimulator::shutdown`]
/// also waits until it has stopped.
pub struct RunningSimulator {
    site: Arc<Site>,
    url: String,
    local_addr: SocketAddr,
    handle: ServerHandle,
    plant: Arc<Mutex<Plant>>,
    pki_dir: PathBuf,
    /// The address space and the signals' nodes, for tests to look at what is served.
    #[cfg(test)]
    manager: Arc<SimpleNodeManager>,
    #[cfg(test)]
    nodes: Arc<Vec<NodeId>>,
    tasks: Vec<JoinHandle<()>>,
}

impl fmt::Debug for RunningSimulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningSimulator")
            .field("site", &self.site.id)
            .field("url", &self.url)
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl RunningSimulator {
    /// The URL clients connect to, with the port actually bound.
    pub fn endpoint_url(&self) -> &str {
        &self.url
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn site(&self) -> &Arc<Site> {
        &self.site
    }

    /// The server's application instance certificate (DER), present when the site is
    /// secured: what a connector's administrator trusts.
    pub fn certificate_path(&self) -> Option<PathBuf> {
        let path = self.pki_dir.join("own").join("cert.der");
        path.is_file().then_some(path)
    }

    /// Runs `f` on the plant model, e.g. to read its ground truth or the simulated time.
    pub fn with_plant<R>(&self, f: impl FnOnce(&mut Plant) -> R) -> R {
        f(&mut lock(&self.plant))
    }

    /// Stops the server and the ticking, and waits for both.
    pub async fn shutdown(mut self) {
        self.handle.cancel();
        for task in std::mem::take(&mut self.tasks) {
            if let Err(e) = task.await {
                warn!(site = %self.site.id, "simulator task ended abnormally: {e}");
            }
        }
        info!(site = %self.site.id, endpoint = %self.url, "simulator stopped");
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        self.handle.cancel();
    }
}

fn lock(plant: &Mutex<Plant>) -> MutexGuard<'_, Plant> {
    // A panic while holding the lock leaves a plant that is still whole: carry on with it.
    plant.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SimOptions {
    fn check(&self) -> Result<(), SimError> {
        if !(self.speed.is_finite() && self.speed > 0.0 && self.speed <= MAX_SPEED) {
            return Err(SimError::Options(format!(
                "speed {} must be above 0 and at most {MAX_SPEED}",
                self.speed
            )));
        }
        if self.tick < Duration::from_millis(10) {
            return Err(SimError::Options(format!(
                "tick {:?} is shorter than 10 ms",
                self.tick
            )));
        }
        Ok(())
    }

    fn endpoint(&self, site: &Site) -> Result<Endpoint, SimError> {
        Endpoint::configured_or(site, self.endpoint.as_deref())
    }
}

/// Starts serving `site` from a simulated plant; returns once the server listens.
pub async fn start(site: Arc<Site>, opts: SimOptions) -> Result<RunningSimulator, SimError> {
    opts.check()?;
    let mut endpoint = opts.endpoint(&site)?;
    let listener = endpoint.bind().await?;
    let local_addr = listener.local_addr().map_err(|source| SimError::Bind {
        endpoint: endpoint.url(),
        source,
    })?;
    let url = endpoint.url();

    let pki_dir = opts
        .pki_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("pharmatwin-pki").join(&site.id));
    let secured = site.security.policy != model::SecurityPolicy::None;
    let mut builder = ServerBuilder::new()
        .application_name(format!("PharmaTwin simulator: {}", site.name))
        .application_uri(format!("urn:pharmatwin:simulator:{}", site.id))
        .product_uri("urn:pharmatwin:simulator")
        .host(endpoint.host.clone())
        .port(endpoint.port)
        .create_sample_keypair(secured)
        .trust_client_certs(secured);
    let users = server::user_tokens(&site)?;
    let user_ids: Vec<String> = users.iter().map(|(id, _)| id.clone()).collect();
    for (id, token) in users {
        builder = builder.add_user_token(id, token);
    }
    for (id, e) in server::endpoints(&site, &endpoint.path, &user_ids) {
        builder = builder.add_endpoint(id, e);
    }
    let (server, handle, manager) = server::build(
        builder,
        &url,
        pki_dir.clone(),
        server::limits(),
        &site,
        "pharmatwin-site",
    )?;

    let mut plant = Plant::new(&site, opts.seed, Utc::now());
    let initial = plant.sample().to_vec();
    let index_of = |uri: &str| handle.get_namespace_index(uri);
    let nodes = Arc::new(build_address_space(&site, &manager, &index_of, &initial)?);
    let plant = Arc::new(Mutex::new(plant));
    let publish_now = Arc::new(Notify::new());
    add_write_callbacks(&site, &manager, &nodes, &plant, &publish_now);

    let server_task = {
        let url = url.clone();
        tokio::spawn(async move {
            if let Err(message) = server.run_with(listener).await {
                error!(endpoint = %url, "OPC UA server stopped: {message}");
            }
        })
    };
    let tick_task = tokio::spawn(tick(Ticker {
        site: site.id.clone(),
        plant: plant.clone(),
        manager: manager.clone(),
        handle: handle.clone(),
        nodes: nodes.clone(),
        period: opts.tick,
        speed: opts.speed,
        publish_now,
        faults: opts.faults.clone(),
        counter: opts.tick_counter.then(|| Counter {
            start: Utc::now(),
            tick: 0,
        }),
    }));
    info!(
        site = %site.id,
        endpoint = %url,
        signals = nodes.len(),
        speed = opts.speed,
        seed = opts.seed,
        "simulator serving"
    );
    Ok(RunningSimulator {
        site,
        url,
        local_addr,
        handle,
        plant,
        pki_dir,
        #[cfg(test)]
        manager,
        #[cfg(test)]
        nodes,
        tasks: vec![server_task, tick_task],
    })
}

/// A client's write of a set-point goes straight into the plant; a value the plant refuses
/// is answered with the matching status code.
fn add_write_callbacks(
    site: &Site,
    manager: &SimpleNodeManager,
    nodes: &[NodeId],
    plant: &Arc<Mutex<Plant>>,
    publish_now: &Arc<Notify>,
) {
    for (index, ((_, _, signal), node)) in site.signals().zip(nodes).enumerate() {
        if !signal.id.ends_with("_sp") {
            continue;
        }
        let plant = plant.clone();
        let publish_now = publish_now.clone();
        let path = signal.tag.path();
        manager
            .inner()
            .add_write_callback(node.clone(), move |value, range| {
                if !matches!(range, NumericRange::None) {
                    return StatusCode::BadIndexRangeInvalid;
                }
                let Some(value) = value.value.as_ref().and_then(value_of) else {
                    return StatusCode::BadTypeMismatch;
                };
                match lock(&plant).write(index, &value) {
                    Ok(()) => {
                        info!(signal = %path, %value, "set-point written by a client");
                        publish_now.notify_one();
                        StatusCode::Good
                    }
                    Err(e) => {
                        warn!(signal = %path, "write refused: {e}");
                        status_of(&e)
                    }
                }
            });
    }
}

struct Ticker {
    site: String,
    plant: Arc<Mutex<Plant>>,
    manager: Arc<SimpleNodeManager>,
    handle: ServerHandle,
    nodes: Arc<Vec<NodeId>>,
    period: Duration,
    speed: f64,
    publish_now: Arc<Notify>,
    faults: FaultSchedule,
    counter: Option<Counter>,
}

/// The tick counter served in place of the plant (`SimOptions::tick_counter`).
struct Counter {
    start: chrono::DateTime<Utc>,
    tick: u64,
}

impl Counter {
    /// The plant's values replaced by the counter, each keeping its type, and their time.
    fn values(
        &mut self,
        advance: bool,
        period: Duration,
        plant: &[Value],
    ) -> (DateTime, Vec<Value>) {
        if advance {
            self.tick += 1;
        }
        let k = self.tick;
        let at = self.start
            + chrono::Duration::from_std(period * u32::try_from(k).unwrap_or(u32::MAX))
                .unwrap_or_default();
        let values = plant
            .iter()
            .map(|v| match v {
                Value::Bool(_) => Value::Bool(k % 2 == 1),
                Value::Int(_) => Value::Int(k as i64),
                Value::Float(_) => Value::Float(k as f64),
                Value::Text(_) => Value::Text(k.to_string()),
                Value::Null => Value::Null,
            })
            .collect();
        (DateTime::from(at), values)
    }
}

async fn tick(mut t: Ticker) {
    let mut interval = tokio::time::interval(t.period);
    // The counter stamps tick k at start + k × period: catching up late ticks keeps those
    // stamps near the wall clock instead of drifting behind it by every delay.
    interval.set_missed_tick_behavior(if t.counter.is_some() {
        MissedTickBehavior::Burst
    } else {
        MissedTickBehavior::Delay
    });
    let mut last = Instant::now();
    let mut failing = false;
    loop {
        let advance = tokio::select! {
            _ = t.handle.token().cancelled() => break,
            _ = interval.tick() => true,
            _ = t.publish_now.notified() => false,
        };
        let now = DateTime::now();
        let values: Vec<_> = if let Some(counter) = &mut t.counter {
            // The plant is not stepped: only its value types are used.
            let (at, values) = counter.values(advance, t.period, lock(&t.plant).sample());
            values.iter().map(|v| data_value(v, at)).collect()
        } else {
            let mut plant = lock(&t.plant);
            if advance {
                // Real time elapsed, not the nominal tick: a late tick must not slow the plant.
                // After a long stall (a suspended process), catch up at most ten ticks.
                let elapsed = last.elapsed().min(t.period * 10);
                last = Instant::now();
                plant.step(elapsed.mul_f64(t.speed));
                for (f, applied) in t.faults.apply_due(&mut plant) {
                    if applied {
                        info!(site = %t.site, line = %f.line, equipment = %f.equipment, target = f.target(), "scenario fault injected");
                    } else {
                        warn!(site = %t.site, line = %f.line, equipment = %f.equipment, target = f.target(), "scenario fault names no such unit, part or signal; ignored");
                    }
                }
            }
            plant.sample().iter().map(|v| data_value(v, now)).collect()
        };
        let subscriptions = t.handle.subscriptions();
        let pushed = t.manager.set_values(
            subscriptions,
            t.nodes.iter().zip(values).map(|(n, v)| (n, None, v)),
        );
        match pushed {
            Err(status) if !failing => {
                warn!(site = %t.site, "cannot publish the plant's values: {status}");
                failing = true;
            }
            Ok(()) if failing => {
                info!(site = %t.site, "publishing the plant's values again");
                failing = false;
            }
            _ => {}
        }
    }
    debug!(site = %t.site, "simulator ticking stopped");
}

#[cfg(test)]
mod tests;
