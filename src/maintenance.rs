//! Maintenance models trained on simulated run-to-failure fleets, and the live watch that
//! scores every part and passes alert events on.

use std::{sync::Arc, time::Duration};

use anyhow::Result;
use chrono::{DateTime, TimeDelta, Utc};
use model::Site;
use sites::physics::{Maintenance, Part};
use tokio::sync::mpsc;
use twin_core::{MaintenanceModels, Twin};

use crate::batch_history::{in_parallel, SimulatedSite};

/// How often the live twin scores every part (windows close on source time; scoring
/// sooner than a window is cheap and keeps alerts prompt).
const SCORE_INTERVAL: Duration = Duration::from_secs(2);
/// Wear acceleration of the simulated training fleet.
pub(crate) const TRAINING_PACE: f64 = 4.0;
/// Planning horizon of the failure probability, hours.
pub(crate) const HORIZON_H: f64 = 168.0;

/// Trains the degradation models on `sites` simulated for `days` with no planned
/// maintenance and every part wearing `pace` times faster. Returns the models and how many
/// labelled windows they learnt from.
pub(crate) fn train_on_fleet(
    sites: &[Arc<Site>],
    days: f64,
    pace: f64,
    seed: u64,
    start: DateTime<Utc>,
    horizon_h: f64,
) -> Result<(MaintenanceModels, usize)> {
    let progress = |site: &str, f: f64| {
        tracing::info!(
            site,
            done_pct = (100.0 * f).round(),
            "simulating run-to-failure fleet"
        )
    };
    let mut fleet: Vec<SimulatedSite> = sites
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut r = SimulatedSite::new(s.clone(), seed.wrapping_add(1000 + i as u64), start);
            r.watch_condition(Maintenance::RunToFailure, None);
            r.accelerate_wear(pace);
            r
        })
        .collect();
    in_parallel(&mut fleet, |r| {
        r.run(Duration::from_secs_f64(days * 86_400.0), None, &progress)
    });
    let mut windows = Vec::new();
    for r in &fleet {
        let Some(c) = r.condition() else { continue };
        for (w, h) in &c.labelled {
            let wear = Part::ALL
                .iter()
                .map(|p| (p.as_str().to_string(), h.wear(*p)))
                .collect();
            windows.push((r.site_id().to_string(), w.clone(), wear));
        }
    }
    let trained_at = start + TimeDelta::seconds((days * 86_400.0) as i64);
    let models =
        MaintenanceModels::train(&windows, pace, "sim-maintenance-1", trained_at, horizon_h);
    anyhow::ensure!(
        !models.parts.is_empty(),
        "no part had enough history to train on: {:?}",
        models.skipped
    );
    Ok((models, windows.len()))
}

/// Trains bootstrap models from `days` of simulated fleet history, then scores every part
/// every few seconds and passes alert events to `notify`.
pub(crate) async fn watch(
    twin: Arc<Twin>,
    sites: Vec<Arc<Site>>,
    days: f64,
    notify: Option<mpsc::Sender<serde_json::Value>>,
) {
    if days <= 0.0 {
        return;
    }
    let span = tracing::info_span!("maintenance_models", days);
    let trained = tokio::task::spawn_blocking(move || {
        let _enter = span.enter();
        let start = Utc::now() - TimeDelta::seconds((days * 86_400.0) as i64);
        train_on_fleet(&sites, days, TRAINING_PACE, 4242, start, HORIZON_H)
    })
    .await;
    match trained {
        Ok(Ok((models, windows))) => {
            tracing::info!(
                parts = models.parts.len(),
                windows,
                "maintenance models trained"
            );
            twin.set_maintenance_models(models);
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "maintenance models not trained; no predictions");
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "maintenance model training failed");
            return;
        }
    }
    let mut tick = tokio::time::interval(SCORE_INTERVAL);
    loop {
        tick.tick().await;
        for n in twin.score_maintenance(Utc::now()) {
            let a = &n.alert;
            tracing::warn!(
                event = n.event,
                site = %a.site,
                line = %a.line,
                equipment = %a.equipment,
                part = %a.part,
                p_fail = a.latest.p_fail,
                "predictive maintenance alert"
            );
            if let Some(tx) = &notify {
                match serde_json::to_value(&n) {
                    Ok(doc) => {
                        if tx.send(doc).await.is_err() {
                            tracing::warn!("web hook sender stopped");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "alert not serialisable"),
                }
            }
        }
    }
}
