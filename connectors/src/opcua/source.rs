//! [`OpcUaSource`]: one site's OPC UA server → batches of [`Sample`]s.
//!
//! Life of a source: connect (retrying until the server answers) → on every new session,
//! resolve namespace URIs, then create subscriptions and monitored items (or take the old
//! subscriptions over with TransferSubscriptions when the server still has them) → forward
//! notifications → retry tags that failed, republish messages that went missing.

use std::{future::Future, path::PathBuf, sync::Arc, time::Duration};

use chrono::Utc;
use futures::StreamExt;
use opcua::{
    client::HistoryReadAction,
    client::{
        transport::Connector, Session, SessionConnectMode, SessionEventLoop, SessionPollResult,
    },
    client::{SessionActivity, SubscriptionActivity},
    types::{
        DataChangeFilter, DataChangeTrigger, DeadbandType, ExtensionObject, HistoryData,
        HistoryReadValueId, MonitoredItemCreateRequest, MonitoringMode, MonitoringParameters,
        ReadRawModifiedDetails, ReadValueId, StatusCode, TimestampsToReturn,
    },
};
use tokio::{sync::mpsc, task::JoinHandle};
use tracing::{debug, error, info, info_span, warn, Instrument};

use model::{Deadband, Monitoring, NodeAddress, Sample, Site, Tag, Trigger};

use super::{
    client::{
        build_client, namespace_index, pki_dir, prepare_session, read_item_limits, read_namespaces,
        Retries,
    },
    config::SourceOptions,
    continuity::{ClosedGap, Continuity, GapRecord, StaleLimit},
    convert::{node_id, to_sample},
    error::{status_name, ConnectorError},
    notifications::{forward, Converter, Gap, Notifications},
    placement::{place, ItemServer, Limits, Slot, Wanted},
    status::{SourceStatus, StaleTag, TagError},
};

/// Publishing intervals without data after which the server sends a keep-alive message:
/// with 500 ms, one every 5 s.
const KEEP_ALIVE_COUNT: u32 = 10;
/// Publishing intervals without a publish request before the server drops a subscription.
/// Long (10 min at 500 ms), so that after an outage the subscription can be transferred to
/// the new session with its queued notifications.
const LIFETIME_COUNT: u32 = 1_200;
/// Longest wait for the forwarder to hand over what is queued at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// The OPC UA source of one site.
#[derive(Debug)]
pub struct OpcUaSource {
    site: Arc<Site>,
    opts: SourceOptions,
    signals: Arc<[Watched]>,
}

#[derive(Debug, Clone)]
struct Watched {
    tag: Arc<Tag>,
    path: String,
    node: NodeAddress,
    monitoring: Monitoring,
}

impl OpcUaSource {
    /// A source for every signal of `site`, on `site.endpoint`.
    pub fn new(site: Arc<Site>, opts: SourceOptions) -> Self {
        let signals: Arc<[Watched]> = site
            .signals()
            .map(|(_, _, s)| Watched {
                tag: s.tag.clone(),
                path: s.tag.path(),
                node: s.node.clone(),
                monitoring: s.monitoring.clone(),
            })
            .collect();
        OpcUaSource {
            site,
            opts,
            signals,
        }
    }

    pub fn site(&self) -> &Arc<Site> {
        &self.site
    }

    pub fn options(&self) -> &SourceOptions {
        &self.opts
    }

    /// Runs until the downstream receiver is dropped, or forever. Dropping the future stops
    /// it abruptly (the server keeps the session until it times out); prefer
    /// [`OpcUaSource::run_until`] for a clean stop.
    pub async fn run(
        self,
        tx: mpsc::Sender<Vec<Sample>>,
        status: Arc<SourceStatus>,
    ) -> Result<(), ConnectorError> {
        self.run_until(tx, status, std::future::pending()).await
    }

    /// Runs until `shutdown` completes or the downstream receiver is dropped, then deletes
    /// its subscriptions, closes the session and hands over what is still queued.
    ///
    /// Errors only on what retrying cannot fix: invalid options, a client that cannot be
    /// built, or a session whose event loop ended for good.
    pub async fn run_until(
        self,
        tx: mpsc::Sender<Vec<Sample>>,
        status: Arc<SourceStatus>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ConnectorError> {
        self.opts.validate()?;
        let span = info_span!("opcua_source", site = %self.site.id, endpoint = %self.site.endpoint);
        self.run_inner(tx, status, shutdown).instrument(span).await
    }

    async fn run_inner(
        self,
        tx: mpsc::Sender<Vec<Sample>>,
        status: Arc<SourceStatus>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ConnectorError> {
        let endpoint = self.site.endpoint.clone();
        let sec = &self.site.security;
        let user = match sec.user {
            model::UserIdentity::Anonymous => "anonymous",
            model::UserIdentity::Username { .. } => "username",
            model::UserIdentity::X509 { .. } => "x509",
        };
        status.begin(
            &self.site.id,
            &endpoint,
            format!("{:?} {:?}, {user}", sec.policy, sec.mode),
            self.signals.len(),
        );
        info!(signals = self.signals.len(), "OPC UA source starting");

        let (samples_tx, samples_rx) = mpsc::unbounded_channel();
        let (gaps_tx, mut gaps_rx) = mpsc::unbounded_channel();
        let (stop_forwarder, forwarder_stop) = tokio::sync::oneshot::channel();
        let mut forwarder = Task(tokio::spawn(
            forward(
                samples_rx,
                tx.clone(),
                status.clone(),
                self.opts.max_batch_samples,
                forwarder_stop,
            )
            .in_current_span(),
        ));
        let security = &self.site.security;
        let discovery = build_client(&self.opts, security, &endpoint, Retries::None)?;
        let client = build_client(&self.opts, security, &endpoint, Retries::Forever)?;
        let pki = pki_dir(&self.opts, security);
        tokio::pin!(shutdown);

        // The session's own retries start only once it exists, and creating it needs the
        // server's endpoint list: until the server first answers, retry here.
        let mut wait = self.opts.reconnect_initial();
        let (session, event_loop) = loop {
            let attempt = tokio::select! {
                _ = &mut shutdown => return Ok(()),
                _ = tx.closed() => return Ok(()),
                r = prepare_session(&discovery, &client, &endpoint, security, self.opts.request_timeout()) => r,
            };
            match attempt {
                Ok(pair) => break pair,
                Err(e) => {
                    warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "cannot connect; retrying");
                    status.error(e.to_string());
                }
            }
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                _ = tx.closed() => return Ok(()),
                _ = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(self.opts.reconnect_max());
        };

        let (events_tx, mut events) = mpsc::unbounded_channel();
        let mut driver = Task(tokio::spawn(
            drive(event_loop, events_tx, status.clone(), pki).in_current_span(),
        ));
        let (closed_tx, mut closed_rx) = mpsc::unbounded_channel();
        let default_stale = self.opts.publishing_interval() * self.opts.stale_after_intervals;
        let continuity = Arc::new(Continuity::new(
            self.signals
                .iter()
                .map(|w| -> Option<StaleLimit> {
                    match w.monitoring.stale_after_ms {
                        Some(ms) => Some(Duration::from_millis(ms)),
                        None if self.opts.stale_after_intervals > 0
                            && w.monitoring.trigger == Some(Trigger::StatusValueTimestamp) =>
                        {
                            Some(default_stale.max(item_sampling(&self.opts, w) * 2))
                        }
                        None => None,
                    }
                })
                .collect(),
            self.signals
                .iter()
                .map(|w| item_cover(&self.opts, w))
                .collect(),
            self.opts.publishing_interval() * (KEEP_ALIVE_COUNT + 1),
            closed_tx,
        ));
        let mut running = Running {
            endpoint: endpoint.clone(),
            opts: self.opts.clone(),
            signals: self.signals.clone(),
            converter: Converter {
                tags: self.signals.iter().map(|w| w.tag.clone()).collect(),
                nodes: self.signals.iter().map(|w| w.node.to_string()).collect(),
                status: status.clone(),
                continuity: continuity.clone(),
            },
            continuity,
            subscription_of: vec![None; self.signals.len()],
            status: status.clone(),
            samples: samples_tx,
            gaps: gaps_tx,
            namespaces: None,
            limits: Limits::default(),
            slots: Vec::new(),
            items: vec![Item::Unplaced; self.signals.len()],
            build: Build::Pending { fresh: true },
        };
        let mut retry = tokio::time::interval(self.opts.retry_failed_tags());
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        retry.reset();
        let mut watch = tokio::time::interval(Duration::from_secs(1));
        watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        let result = loop {
            tokio::select! {
                _ = &mut shutdown => break Ok(()),
                _ = tx.closed() => {
                    info!("downstream closed; stopping");
                    break Ok(());
                }
                event = events.recv() => match event {
                    Some(SessionEvent::Connected { new_session }) => {
                        status.session_started(new_session);
                        if let Err(e) = running.on_connected(&session, new_session).await {
                            warn!(error = %e, "subscriptions not (re)built; retrying later");
                            status.error(e.to_string());
                        }
                    }
                    Some(SessionEvent::Lost) => running.on_lost(),
                    None => {
                        let code = (&mut driver.0).await.unwrap_or(StatusCode::BadUnexpectedError);
                        break Err(ConnectorError::SessionEnded {
                            endpoint: endpoint.clone(),
                            status: status_name(code),
                        });
                    }
                },
                Some(gap) = gaps_rx.recv() => running.republish(&session, gap).await,
                Some(closed) = closed_rx.recv() => running.on_gap_closed(&session, closed).await,
                _ = watch.tick() => running.watch(),
                _ = retry.tick() => {
                    if status.is_connected() {
                        if let Err(e) = running.retry(&session).await {
                            debug!(error = %e, "retry of failed tags did not complete");
                        }
                    }
                }
            }
        };

        // Clean stop: CloseSession (with deleteSubscriptions) frees the session and its
        // subscriptions on the server at once, so a restart loop cannot end in
        // BadTooManySessions.
        drop(running);
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, session.disconnect()).await;
        status.disconnected();
        driver.0.abort();
        drop(session);
        // What the callbacks queued is still handed downstream, unless downstream is stuck.
        let _ = stop_forwarder.send(());
        if tokio::time::timeout(DRAIN_TIMEOUT, &mut forwarder.0)
            .await
            .is_err()
        {
            warn!(
                queued = status.snapshot().samples_queued,
                "downstream did not take the queued samples in time; they are dropped"
            );
        }
        info!("OPC UA source stopped");
        result
    }
}

/// Aborts the task when dropped, so that dropping the source's future stops everything.
struct Task<T>(JoinHandle<T>);

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Debug)]
enum SessionEvent {
    Connected { new_session: bool },
    Lost,
}

/// Polls the session's event loop (nothing happens unless it is polled) and reports what
/// the source must act on.
async fn drive(
    event_loop: SessionEventLoop<impl Connector + 'static>,
    events: mpsc::UnboundedSender<SessionEvent>,
    status: Arc<SourceStatus>,
    pki: PathBuf,
) -> StatusCode {
    let stream = event_loop.enter();
    tokio::pin!(stream);
    // The last certificate refusal reported, so that every retry does not warn again.
    let mut refused: Option<StatusCode> = None;
    while let Some(r) = stream.next().await {
        match r {
            Ok(SessionPollResult::Reconnected(mode)) => {
                status.connect_attempted();
                let new_session = matches!(mode, SessionConnectMode::NewSession(_));
                info!(new_session, "session connected");
                refused = None;
                let _ = events.send(SessionEvent::Connected { new_session });
            }
            Ok(SessionPollResult::ReconnectFailed(code)) if is_certificate_refusal(code) => {
                status.connect_attempted();
                let message = certificate_refusal(code, &pki);
                if refused != Some(code) {
                    error!(status = %code, pki = %pki.display(), "{message}");
                    refused = Some(code);
                }
                status.error(message);
            }
            Ok(SessionPollResult::ConnectionLost(code)) => {
                warn!(status = %code, "connection lost; reconnecting");
                status.connection_lost(format!("connection lost: {code}"));
                let _ = events.send(SessionEvent::Lost);
            }
            Ok(SessionPollResult::ReconnectFailed(code)) => {
                status.connect_attempted();
                debug!(status = %code, "reconnect attempt failed");
                status.error(format!("reconnect failed: {code}"));
            }
            Ok(SessionPollResult::SessionActivity(SessionActivity::KeepAliveFailed(code))) => {
                warn!(status = %code, "keep-alive failed");
            }
            Ok(SessionPollResult::Subscription(SubscriptionActivity::FatalFailure(code))) => {
                warn!(status = %code, "publishing failed fatally; the session restarts");
            }
            Ok(SessionPollResult::Subscription(SubscriptionActivity::PublishFailed(code))) => {
                debug!(status = %code, "publish failed");
            }
            Ok(_) => {}
            Err(code) => {
                warn!(status = %code, "session event loop ended");
                status.disconnected();
                return code;
            }
        }
    }
    status.disconnected();
    StatusCode::Good
}

/// Whether a failed connection attempt is the client refusing the server's certificate
/// (an administrator has to act) rather than the server being away.
fn is_certificate_refusal(code: StatusCode) -> bool {
    matches!(
        StatusCode::from(code.bits() & 0xFFFF_0000),
        StatusCode::BadCertificateUntrusted
            | StatusCode::BadSecurityChecksFailed
            | StatusCode::BadCertificateInvalid
            | StatusCode::BadCertificateHostNameInvalid
            | StatusCode::BadCertificateUriInvalid
            | StatusCode::BadCertificateTimeInvalid
            | StatusCode::BadCertificateIssuerTimeInvalid
            | StatusCode::BadCertificateRevoked
            | StatusCode::BadCertificateUseNotAllowed
    )
}

/// What the administrator reads when the server's certificate is refused: why, and where
/// to trust it.
fn certificate_refusal(code: StatusCode, pki: &std::path::Path) -> String {
    let rejected = pki.join("rejected");
    let trusted = pki.join("trusted");
    match StatusCode::from(code.bits() & 0xFFFF_0000) {
        StatusCode::BadCertificateUntrusted | StatusCode::BadSecurityChecksFailed => format!(
            "server certificate not trusted ({code}): it is in {}; if it is the server's, move it \
             to {}; the connector keeps retrying and connects once it is trusted",
            rejected.display(),
            trusted.display(),
        ),
        _ => format!(
            "server certificate refused ({code}): it does not match the endpoint (host name, \
             application URI) or is not valid now; the connector keeps retrying"
        ),
    }
}

/// The source's state while connected at least once.
struct Running {
    endpoint: String,
    opts: SourceOptions,
    signals: Arc<[Watched]>,
    converter: Converter,
    status: Arc<SourceStatus>,
    samples: mpsc::UnboundedSender<Vec<Sample>>,
    gaps: mpsc::UnboundedSender<Gap>,
    /// The namespace array the monitored items were created with.
    namespaces: Option<Vec<String>>,
    limits: Limits,
    slots: Vec<Slot>,
    /// Per signal, whether it has a monitored item in one of `slots`.
    items: Vec<Item>,
    /// Whether the subscriptions match the current session.
    build: Build,
    continuity: Arc<Continuity>,
    /// Per signal, the subscription its monitored item is in.
    subscription_of: Vec<Option<u32>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Unplaced,
    Monitored,
    /// Refused because the server's subscription or item limit is reached: retried with
    /// the next session, not every retry period (each refusal is logged by the library).
    OverCapacity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Build {
    Done,
    /// Still to do; `fresh` when the session is new, so old subscriptions must be moved
    /// over or replaced.
    Pending {
        fresh: bool,
    },
}

impl Running {
    async fn on_connected(
        &mut self,
        session: &Arc<Session>,
        new_session: bool,
    ) -> Result<(), ConnectorError> {
        if !new_session {
            // The server kept the session and its subscriptions. The client's publish loop
            // restarts idle after a reconnect and nothing else wakes it: without this
            // trigger, the subscriptions stay silent for good.
            session.trigger_publish_now();
        }
        let fresh = match self.build {
            Build::Done if !new_session => {
                info!("session reactivated; subscriptions continue");
                return Ok(());
            }
            Build::Done => true,
            Build::Pending { fresh } => fresh || new_session,
        };
        self.build = Build::Pending { fresh };
        self.rebuild(session, fresh).await?;
        self.build = Build::Done;
        Ok(())
    }

    async fn rebuild(&mut self, session: &Arc<Session>, fresh: bool) -> Result<(), ConnectorError> {
        let namespaces = read_namespaces(session, &self.endpoint).await?;
        if fresh && !self.slots.is_empty() {
            if self.namespaces.as_ref() == Some(&namespaces) && self.transfer(session).await {
                return Ok(());
            }
            let ids: Vec<u32> = self.slots.iter().map(|s| s.id).collect();
            match session.delete_subscriptions(&ids).await {
                Ok(_) => {}
                // A restarted server has none: nothing to delete there. The client keeps
                // its records of them (it forgets them only on a successful delete), which
                // costs nothing: they receive nothing and are replaced when ids repeat.
                Err(e)
                    if e.status() == StatusCode::BadNoSubscription
                        || e.status() == StatusCode::BadSubscriptionIdInvalid => {}
                Err(e) => {
                    return Err(ConnectorError::service(
                        &self.endpoint,
                        "deleting old subscriptions",
                        &e,
                    ))
                }
            }
            let opened = self.continuity.open(
                (0..self.signals.len()).filter(|i| self.items[*i] == Item::Monitored),
                "the subscriptions were lost with the session and recreated",
            );
            self.status.set_open_gaps(self.continuity.open_gaps());
            debug!(opened, "gaps opened for the recreated subscriptions");
            self.slots.clear();
            self.items.iter_mut().for_each(|m| *m = Item::Unplaced);
            self.subscription_of.iter_mut().for_each(|s| *s = None);
            for i in 0..self.signals.len() {
                self.continuity.assign(i, None);
            }
            info!(
                subscriptions = ids.len(),
                "recreating subscriptions on the new session"
            );
        }
        self.namespaces = Some(namespaces);
        let (per_call, per_subscription) = read_item_limits(session).await;
        self.limits = Limits::from_server(per_call, per_subscription, self.limits);
        debug!(?per_call, ?per_subscription, limits = ?self.limits, "server item limits");
        // Tags that could not be placed now are retried by the periodic retry; the
        // subscriptions themselves match the session either way.
        self.place_unmonitored(session, true).await;
        Ok(())
    }

    /// Moves the old subscriptions to the new session; true if all of them moved.
    async fn transfer(&mut self, session: &Arc<Session>) -> bool {
        let ids: Vec<u32> = self.slots.iter().map(|s| s.id).collect();
        match session.transfer_subscriptions(&ids, true).await {
            Ok(results)
                if results.len() == ids.len()
                    && results.iter().all(|r| r.status_code.is_good()) =>
            {
                info!(
                    subscriptions = ids.len(),
                    "subscriptions transferred to the new session"
                );
                for (id, r) in ids.iter().zip(results) {
                    // Messages the server still holds unacknowledged may never have arrived.
                    for seq in r.available_sequence_numbers.into_iter().flatten() {
                        let _ = self.gaps.send(Gap {
                            subscription: *id,
                            first: seq,
                            count: 1,
                        });
                    }
                }
                true
            }
            Ok(results) => {
                debug!(?results, "subscriptions not transferable");
                false
            }
            Err(e) => {
                debug!(error = %e, "TransferSubscriptions failed");
                false
            }
        }
    }

    /// Creates monitored items for the signals that have none yet (with `over_capacity`,
    /// also for those the server refused for its limits).
    async fn place_unmonitored(&mut self, session: &Arc<Session>, over_capacity: bool) {
        let Some(namespaces) = &self.namespaces else {
            return;
        };
        let mut wanted = Vec::new();
        for (i, w) in self.signals.iter().enumerate() {
            match self.items[i] {
                Item::Monitored => continue,
                Item::OverCapacity if !over_capacity => continue,
                _ => {}
            }
            match namespace_index(namespaces, &w.node.namespace_uri) {
                Some(ns) => wanted.push(Wanted {
                    handle: handle_of(i),
                    node: node_id(&w.node, ns),
                }),
                None => self.tag_failed(
                    w,
                    "NamespaceUnknown",
                    format!(
                        "namespace `{}` is not served by {}",
                        w.node.namespace_uri, self.endpoint
                    ),
                ),
            }
        }
        if wanted.is_empty() {
            return;
        }
        let asked = wanted.len();
        let mut server = SessionItems {
            session,
            signals: &self.signals,
            status: &self.status,
            opts: &self.opts,
            converter: &self.converter,
            samples: &self.samples,
            gaps: &self.gaps,
        };
        let outcome = place(&mut server, &mut self.limits, &mut self.slots, wanted).await;
        for &(handle, subscription) in &outcome.created {
            if let Some(i) = index_of(handle) {
                self.items[i] = Item::Monitored;
                self.subscription_of[i] = Some(subscription);
                self.continuity.assign(i, Some(subscription));
                self.status.clear_tag_error(&self.signals[i].path);
            }
        }
        let monitored = self.items.iter().filter(|m| **m == Item::Monitored).count();
        for &(handle, code) in &outcome.failed {
            let Some(i) = index_of(handle) else {
                continue;
            };
            let w = self.signals[i].clone();
            let capacity = code == StatusCode::BadTooManySubscriptions
                || code == StatusCode::BadTooManyMonitoredItems;
            let message = if capacity {
                self.items[i] = Item::OverCapacity;
                format!(
                    "the server's limit is reached at {monitored} items in {} subscriptions; \
                     raise its subscriptions per session or items per subscription",
                    self.slots.len()
                )
            } else {
                self.items[i] = Item::Unplaced;
                format!("monitored item refused: {code}")
            };
            self.tag_failed(&w, &status_name(code), message);
        }
        self.status.set_monitoring(monitored, self.slots.len());
        info!(
            asked,
            created = outcome.created.len(),
            failed = outcome.failed.len(),
            monitored,
            subscriptions = self.slots.len(),
            "monitored items created"
        );
        if let Some(code) = outcome.aborted {
            warn!(
                status = %code,
                "creating monitored items stopped; the remaining tags are retried later"
            );
        }
    }

    /// Records a tag that does not flow; warns when the reason is new, not on every retry.
    fn tag_failed(&self, w: &Watched, status: &str, message: String) {
        let node = w.node.to_string();
        let known = self.status.tag_error(&w.path);
        if known.as_ref().is_some_and(|k| k.status == status) {
            debug!(tag = %w.path, %node, %status, "tag still failing");
            return;
        }
        warn!(tag = %w.path, %node, %status, %message, "tag not monitored");
        self.status.set_tag_error(TagError {
            tag: w.path.clone(),
            node,
            status: status.to_string(),
            message,
            since: Utc::now(),
        });
    }

    /// Periodic work while connected: rebuild if the last attempt failed, else try the tags
    /// that failed again (their nodes or namespace may exist by now).
    async fn retry(&mut self, session: &Arc<Session>) -> Result<(), ConnectorError> {
        if let Build::Pending { fresh } = self.build {
            return self.on_connected(session, fresh).await;
        }
        if !self.items.contains(&Item::Unplaced) {
            return Ok(());
        }
        let namespaces = read_namespaces(session, &self.endpoint).await?;
        if self.namespaces.as_ref() != Some(&namespaces) {
            let old = self.namespaces.clone().unwrap_or_default();
            let moved = self
                .signals
                .iter()
                .zip(&self.items)
                .filter(|(_, m)| **m == Item::Monitored)
                .any(|(w, _)| {
                    namespace_index(&old, &w.node.namespace_uri)
                        != namespace_index(&namespaces, &w.node.namespace_uri)
                });
            if moved {
                // Monitored items would point at other nodes now: start over.
                warn!("server namespace indexes changed; recreating subscriptions");
                self.build = Build::Pending { fresh: true };
                return self.on_connected(session, true).await;
            }
            self.namespaces = Some(namespaces);
        }
        self.place_unmonitored(session, false).await;
        Ok(())
    }

    /// Asks the server again for notification messages that never arrived.
    async fn republish(&mut self, session: &Arc<Session>, gap: Gap) {
        let mut recovered = 0u64;
        let mut lost = 0u64;
        let mut reason = StatusCode::BadMessageNotAvailable;
        for k in 0..gap.count {
            // Sequence numbers skip 0 when they wrap.
            let seq = gap.first.wrapping_add(k).max(1);
            match session.republish(gap.subscription, seq).await {
                Ok(msg) => {
                    recovered += 1;
                    let Some(data) = msg.notification_data else {
                        continue;
                    };
                    let batch = self.converter.message(data, Utc::now());
                    if !batch.is_empty() {
                        self.status.queued(batch.len());
                        let _ = self.samples.send(batch);
                    }
                }
                Err(e) if e.status() == StatusCode::BadMessageNotAvailable => {
                    lost += 1;
                }
                Err(e) => {
                    // Not connected, subscription gone…: the rest would fail alike.
                    reason = e.status();
                    lost += u64::from(gap.count - k);
                    break;
                }
            }
        }
        self.status.republished(recovered);
        if lost > 0 {
            let members: Vec<usize> = (0..self.signals.len())
                .filter(|i| self.subscription_of[*i] == Some(gap.subscription))
                .collect();
            self.continuity.open(
                members,
                &format!("{lost} notification message(s) lost: the server could not republish them ({reason})"),
            );
            self.status.set_open_gaps(self.continuity.open_gaps());
            warn!(
                subscription = gap.subscription,
                first = gap.first,
                lost,
                recovered,
                status = %reason,
                "notification messages lost: the server could not republish them"
            );
            self.status.error(format!(
                "{lost} notification message(s) of subscription {} lost: {reason}",
                gap.subscription
            ));
        } else {
            info!(
                subscription = gap.subscription,
                recovered, "missing notification messages republished"
            );
        }
    }
}

impl Running {
    fn on_lost(&mut self) {
        self.continuity.restart_updates();
        self.status.set_stale(Vec::new());
    }

    /// Once a second: which tags went stale, how many gaps are open.
    fn watch(&mut self) {
        self.status.set_open_gaps(self.continuity.open_gaps());
        if !self.status.is_connected() {
            return;
        }
        let stale = self
            .continuity
            .stale(Utc::now())
            .into_iter()
            .map(|(i, last_update)| StaleTag {
                tag: self.signals[i].path.clone(),
                last_update,
            })
            .collect();
        self.status.set_stale(stale);
    }

    /// Back-fills a closed gap from the server's history where it keeps one, and records it.
    async fn on_gap_closed(&mut self, session: &Arc<Session>, gap: ClosedGap) {
        let w = self.signals[gap.index].clone();
        let (backfilled, backfill_error) = match self.backfill(session, &w, &gap).await {
            Ok(n) => (n, None),
            Err(e) => (0, Some(e)),
        };
        let record = GapRecord {
            tag: w.path.clone(),
            from: gap.from,
            to: gap.to,
            reason: gap.reason,
            backfilled,
            backfill_error,
            recorded_at: Utc::now(),
        };
        warn!(tag = %record.tag, from = %record.from, to = %record.to, reason = %record.reason, backfilled, "gap in the tag's history recorded");
        if let Some(log) = &self.opts.gap_log {
            if let Err(e) = append_gap(log, &record) {
                error!(log = %log.display(), error = %e, "cannot write the gap record");
                self.status
                    .error(format!("cannot write gap log {}: {e}", log.display()));
            }
        }
        self.status.gap_recorded(record);
        self.status.set_open_gaps(self.continuity.open_gaps());
    }

    /// Reads the tag's raw history strictly inside the gap and sends it on, flagged.
    async fn backfill(
        &self,
        session: &Arc<Session>,
        w: &Watched,
        gap: &ClosedGap,
    ) -> Result<usize, String> {
        let namespaces = self.namespaces.as_ref().ok_or("no namespaces yet")?;
        let ns = namespace_index(namespaces, &w.node.namespace_uri)
            .ok_or("the tag's namespace is not served")?;
        let details = ReadRawModifiedDetails {
            is_read_modified: false,
            start_time: gap.from.into(),
            end_time: gap.to.into(),
            num_values_per_node: 0,
            return_bounds: false,
        };
        let mut continuation = opcua::types::ByteString::null();
        let mut values = Vec::new();
        // A server pages a long history; a bounded number of pages keeps a runaway at bay.
        for _ in 0..MAX_HISTORY_PAGES {
            let read = HistoryReadValueId {
                node_id: node_id(&w.node, ns),
                index_range: Default::default(),
                data_encoding: Default::default(),
                continuation_point: continuation.clone(),
            };
            let results = session
                .history_read(
                    HistoryReadAction::ReadRawModifiedDetails(details.clone()),
                    TimestampsToReturn::Both,
                    false,
                    &[read],
                )
                .await
                .map_err(|e| e.status().to_string())?;
            let r = results.into_iter().next().ok_or("no result")?;
            if r.status_code.is_bad() {
                return Err(status_name(r.status_code));
            }
            if let Some(data) = r.history_data.inner_as::<HistoryData>() {
                values.extend(data.data_values.clone().unwrap_or_default());
            }
            if r.continuation_point.is_null_or_empty() {
                break;
            }
            continuation = r.continuation_point;
        }
        let now = Utc::now();
        let batch: Vec<Sample> = values
            .into_iter()
            .map(|dv| Sample {
                backfilled: true,
                ..to_sample(&w.tag, dv, now)
            })
            .filter(|s| s.source_ts > gap.from && s.source_ts < gap.to)
            .collect();
        let n = batch.len();
        if n > 0 {
            self.status.queued(n);
            let _ = self.samples.send(batch);
        }
        Ok(n)
    }
}

/// Pages of history read per gap at most.
const MAX_HISTORY_PAGES: usize = 100;

/// How long the server can hold a changing item's values without a publish.
fn item_cover(opts: &SourceOptions, w: &Watched) -> Duration {
    let queue = w.monitoring.queue_size.unwrap_or(opts.queue_size);
    (item_sampling(opts, w) * queue).max(opts.publishing_interval())
}

fn item_sampling(opts: &SourceOptions, w: &Watched) -> Duration {
    Duration::from_millis(
        w.monitoring
            .sampling_ms
            .unwrap_or(opts.sampling_interval_ms),
    )
}

/// Appends one gap record to the log and syncs it: a gap is evidence for the batch record.
fn append_gap(log: &std::path::Path, record: &GapRecord) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
    line.push(b'\n');
    f.write_all(&line)?;
    f.sync_data()
}

/// The monitoring parameters asked of the server for one signal.
fn monitoring_parameters(opts: &SourceOptions, w: &Watched, handle: u32) -> MonitoringParameters {
    let m = &w.monitoring;
    let trigger = m.trigger.unwrap_or(Trigger::StatusValue);
    // No filter is the server's StatusValue without deadband; send one only when it differs.
    let filter = if trigger == Trigger::StatusValue && m.deadband.is_none() {
        ExtensionObject::null()
    } else {
        let (deadband_type, deadband_value) = match m.deadband {
            None => (DeadbandType::None, 0.0),
            Some(Deadband::Absolute(v)) => (DeadbandType::Absolute, v),
            Some(Deadband::Percent(v)) => (DeadbandType::Percent, v),
        };
        ExtensionObject::from_message(DataChangeFilter {
            trigger: match trigger {
                Trigger::Status => DataChangeTrigger::Status,
                Trigger::StatusValue => DataChangeTrigger::StatusValue,
                Trigger::StatusValueTimestamp => DataChangeTrigger::StatusValueTimestamp,
            },
            deadband_type: deadband_type as u32,
            deadband_value,
        })
    };
    MonitoringParameters {
        client_handle: handle,
        sampling_interval: item_sampling(opts, w).as_millis() as f64,
        filter,
        queue_size: m.queue_size.unwrap_or(opts.queue_size),
        discard_oldest: m.discard_oldest.unwrap_or(true),
    }
}

/// Client handle of signal `i`: never 0, which async-opcua would replace with its own.
fn handle_of(i: usize) -> u32 {
    u32::try_from(i + 1).unwrap_or(u32::MAX)
}

fn index_of(handle: u32) -> Option<usize> {
    usize::try_from(handle).ok()?.checked_sub(1)
}

/// [`ItemServer`] on a live session.
struct SessionItems<'a> {
    session: &'a Arc<Session>,
    signals: &'a [Watched],
    status: &'a SourceStatus,
    opts: &'a SourceOptions,
    converter: &'a Converter,
    samples: &'a mpsc::UnboundedSender<Vec<Sample>>,
    gaps: &'a mpsc::UnboundedSender<Gap>,
}

#[async_trait::async_trait]
impl ItemServer for SessionItems<'_> {
    async fn create_subscription(&mut self) -> Result<u32, StatusCode> {
        let (callback, id_cell) = Notifications::new(
            self.converter.clone(),
            self.samples.clone(),
            self.gaps.clone(),
        );
        let id = self
            .session
            .create_subscription(
                self.opts.publishing_interval(),
                LIFETIME_COUNT,
                KEEP_ALIVE_COUNT,
                self.opts.max_notifications_per_publish,
                0,
                true,
                callback,
            )
            .await
            .map_err(|e| e.status())?;
        id_cell.store(id, std::sync::atomic::Ordering::Relaxed);
        debug!(subscription = id, "subscription created");
        Ok(id)
    }

    async fn create_items(
        &mut self,
        subscription: u32,
        items: &[Wanted],
    ) -> Result<Vec<StatusCode>, StatusCode> {
        let requests: Vec<MonitoredItemCreateRequest> = items
            .iter()
            .filter_map(|w| {
                let signal = self.signals.get(index_of(w.handle)?)?;
                Some(MonitoredItemCreateRequest {
                    item_to_monitor: ReadValueId::from(w.node.clone()),
                    monitoring_mode: MonitoringMode::Reporting,
                    requested_parameters: monitoring_parameters(self.opts, signal, w.handle),
                })
            })
            .collect();
        let asked: Vec<(f64, u32)> = requests
            .iter()
            .map(|r| {
                (
                    r.requested_parameters.sampling_interval,
                    r.requested_parameters.queue_size,
                )
            })
            .collect();
        let created = self
            .session
            .create_monitored_items(subscription, TimestampsToReturn::Both, requests)
            .await
            .map_err(|e| e.status())?;
        // What the server granted instead of what was asked: a slower sampling or a shorter
        // queue changes what a stall can lose, so it is said.
        let mut revised = 0;
        for ((w, (sampling, queue)), c) in items.iter().zip(&asked).zip(&created) {
            let r = &c.result;
            if r.status_code.is_good()
                && (r.revised_sampling_interval != *sampling || r.revised_queue_size != *queue)
            {
                revised += 1;
                debug!(node = %w.node, asked_sampling_ms = sampling, revised_sampling_ms = r.revised_sampling_interval, asked_queue = queue, revised_queue = r.revised_queue_size, "the server revised the item's monitoring");
            }
        }
        if revised > 0 {
            info!(
                revised,
                of = created.len(),
                "the server revised sampling intervals or queue sizes (debug log lists them)"
            );
            self.status.revised(revised);
        }
        Ok(created.iter().map(|c| c.result.status_code).collect())
    }
}
