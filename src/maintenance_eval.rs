//! `pharmatwin evaluate maintenance`: predictive-maintenance alerts scored against the
//! simulated plants' ground truth of fault onsets and failures.
//!
//! Models are trained on a separate fleet run to failure (the three plants with another
//! seed and no planned maintenance), then the plants run with preventive maintenance on
//! the makers' schedule — which misses the units that wear faster than nominal — while the
//! twin predicts every hour from the signals alone.

use std::{sync::Arc, time::Duration};

use anyhow::{Context, Result};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde::Serialize;
use sites::physics::{Maintenance, WearEvent, WearEventKind, ONSET};
use twin_core::{ConditionMonitor, MaintenanceAlert, MaintenanceModels, MaintenanceWatch};

use crate::{
    batch_history::{in_parallel, SimulatedSite},
    maintenance::train_on_fleet,
};

/// Failures this soon after the start are not scored: the monitor has no history yet.
const WARM_UP_H: i64 = 48;
/// An alert must come at least this long before the failure to count.
const LEAD_H: i64 = 24;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    pub(crate) days: f64,
    pub(crate) train_days: f64,
    pub(crate) seed: u64,
    pub(crate) horizon_h: f64,
    pub(crate) threshold: f64,
    /// Preventive maintenance renews a part at this fraction of the maker's nominal life.
    pub(crate) interval: f64,
    /// The training fleet wears this many times faster than in service.
    pub(crate) pace: f64,
}

#[derive(Debug, Serialize)]
struct FailureScore {
    site: String,
    line: String,
    equipment: String,
    part: String,
    failed_at: DateTime<Utc>,
    alerted_at: Option<DateTime<Utc>>,
    lead_h: Option<f64>,
    events: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    days: f64,
    train_days: f64,
    pace: f64,
    seed: u64,
    horizon_h: f64,
    threshold: f64,
    training_windows: usize,
    models: Vec<String>,
    /// Wear failures after the warm-up, and those alerted at least 24 h ahead.
    failures: usize,
    alerted_24h: usize,
    alerted_24h_pct: f64,
    median_lead_h: Option<f64>,
    failures_in_warm_up: usize,
    /// Predictive alerts raised, and those whose part had a real fault (past onset when
    /// raised, or reaching onset or failure within the horizon).
    alerts: usize,
    true_alerts: usize,
    precision_pct: f64,
    /// Random trips of sound drives (not predictable, not scored) and planned renewals.
    trips: usize,
    planned_renewals: usize,
    /// One prediction cycle over all units of the three plants.
    cycle_ms: f64,
    cycle_cold_ms: f64,
    train_seconds: f64,
    seconds: f64,
    missed: Vec<FailureScore>,
    false_alerts: Vec<FalseAlert>,
}

#[derive(Debug, Serialize)]
struct FalseAlert {
    site: String,
    line: String,
    equipment: String,
    part: String,
    raised_at: DateTime<Utc>,
    true_wear: f64,
    estimated_wear: f64,
    p_fail: f64,
    windows: usize,
    /// The part's events around the alert (what maintenance would look at).
    events: Vec<String>,
}

pub(crate) fn evaluate(sites: Vec<Arc<model::Site>>, o: Options, json: bool) -> Result<()> {
    anyhow::ensure!(o.days >= 4.0, "--days must be at least 4");
    anyhow::ensure!(o.train_days >= 4.0, "--train-days must be at least 4");
    let started = std::time::Instant::now();
    let start = Utc
        .with_ymd_and_hms(2026, 3, 2, 0, 0, 0)
        .single()
        .context("start date")?;
    let progress =
        |site: &str, f: f64| tracing::info!(site, done_pct = (100.0 * f).round(), "simulating");

    let t = std::time::Instant::now();
    let (models, training_windows) =
        train_on_fleet(&sites, o.train_days, o.pace, o.seed, start, o.horizon_h)?;
    let train_seconds = t.elapsed().as_secs_f64();
    tracing::info!(
        parts = models.parts.len(),
        windows = training_windows,
        train_seconds,
        "maintenance models trained"
    );

    let models = Arc::new(models);
    let mut watch = MaintenanceWatch::default();
    watch.threshold = o.threshold;
    let mut runs: Vec<SimulatedSite> = sites
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut r = SimulatedSite::new(s.clone(), o.seed.wrapping_add(i as u64), start);
            r.watch_condition(
                Maintenance::Interval {
                    fraction: o.interval,
                },
                Some((models.clone(), watch.clone())),
            );
            r
        })
        .collect();
    tracing::info!(days = o.days, "simulating the plants with live predictions");
    in_parallel(&mut runs, |r| {
        r.run(Duration::from_secs_f64(o.days * 86_400.0), None, &progress)
    });

    let horizon = TimeDelta::seconds((o.horizon_h * 3600.0) as i64);
    let warm_up_end = start + TimeDelta::hours(WARM_UP_H);
    let mut failures = Vec::new();
    let mut in_warm_up = 0;
    let (mut alerts, mut true_alerts, mut trips, mut planned) = (0, 0, 0, 0);
    let mut false_alerts = Vec::new();
    for r in &runs {
        let site = r.site_id();
        let events = r.plant().wear_events();
        let Some(c) = r.condition() else { continue };
        let raised: &[MaintenanceAlert] = c.watch().map_or(&[], |w| w.alerts());
        for e in &events {
            match e.kind {
                WearEventKind::Trip => trips += 1,
                WearEventKind::Renewed { planned: true } => planned += 1,
                WearEventKind::Failure if e.at < warm_up_end => in_warm_up += 1,
                WearEventKind::Failure => {
                    let life_start = events
                        .iter()
                        .filter(|x| same_part(x, e) && x.at < e.at)
                        .filter(|x| matches!(x.kind, WearEventKind::Renewed { .. }))
                        .map(|x| x.at)
                        .max()
                        .unwrap_or(start);
                    let first = raised
                        .iter()
                        .filter(|a| alert_on(a, e) && a.raised_at >= life_start)
                        .filter(|a| a.raised_at <= e.at)
                        .map(|a| a.raised_at)
                        .min();
                    failures.push(FailureScore {
                        site: site.to_string(),
                        line: e.line.clone(),
                        equipment: e.equipment.clone(),
                        part: e.part.as_str().to_string(),
                        failed_at: e.at,
                        alerted_at: first,
                        lead_h: first.map(|a| (e.at - a).num_seconds() as f64 / 3600.0),
                        events: story(c.monitor(), &events, &e.line, &e.equipment, e.part.as_str()),
                    });
                }
                _ => {}
            }
        }
        for a in raised {
            alerts += 1;
            let wear = c
                .raised_at_wear
                .iter()
                .find(|(id, _)| *id == a.id)
                .map_or(f64::NAN, |x| x.1);
            let renewed = events
                .iter()
                .filter(|x| alert_on(a, x) && x.at > a.raised_at)
                .filter(|x| matches!(x.kind, WearEventKind::Renewed { .. }))
                .map(|x| x.at)
                .min();
            let fault_follows = events.iter().any(|x| {
                alert_on(a, x)
                    && matches!(x.kind, WearEventKind::Onset | WearEventKind::Failure)
                    && x.at > a.raised_at
                    && x.at <= a.raised_at + horizon
                    && renewed.is_none_or(|r| x.at <= r)
            });
            if wear >= ONSET || fault_follows {
                true_alerts += 1;
            } else {
                false_alerts.push(FalseAlert {
                    site: site.to_string(),
                    line: a.line.clone(),
                    equipment: a.equipment.clone(),
                    part: a.part.clone(),
                    raised_at: a.raised_at,
                    true_wear: wear,
                    estimated_wear: a.first.wear,
                    p_fail: a.first.p_fail,
                    windows: a.first.windows,
                    events: story(c.monitor(), &events, &a.line, &a.equipment, &a.part),
                });
            }
        }
    }
    let alerted_24h = failures
        .iter()
        .filter(|f| f.lead_h.is_some_and(|h| h >= LEAD_H as f64))
        .count();
    let mut leads: Vec<f64> = failures.iter().filter_map(|f| f.lead_h).collect();
    leads.sort_by(f64::total_cmp);
    let (cycle_ms, cycle_cold_ms) = cycle_ms(&runs, &models);
    let pct = |a: usize, b: usize| {
        if b == 0 {
            100.0
        } else {
            100.0 * a as f64 / b as f64
        }
    };
    let report = Report {
        days: o.days,
        train_days: o.train_days,
        pace: o.pace,
        seed: o.seed,
        horizon_h: o.horizon_h,
        threshold: o.threshold,
        training_windows,
        models: models
            .parts
            .iter()
            .map(|m| {
                format!(
                    "{}/{} ({} windows, error sd {:.3})",
                    m.kind, m.part, m.windows, m.error_sd
                )
            })
            .collect(),
        failures: failures.len(),
        alerted_24h,
        alerted_24h_pct: pct(alerted_24h, failures.len()),
        median_lead_h: leads.get(leads.len() / 2).copied(),
        failures_in_warm_up: in_warm_up,
        alerts,
        true_alerts,
        precision_pct: pct(true_alerts, alerts),
        trips,
        planned_renewals: planned,
        cycle_ms,
        cycle_cold_ms,
        train_seconds,
        seconds: started.elapsed().as_secs_f64(),
        missed: failures
            .into_iter()
            .filter(|f| !f.lead_h.is_some_and(|h| h >= LEAD_H as f64))
            .collect(),
        false_alerts,
    };
    if json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    println!(
        "Predictive maintenance over {} simulated days of 3 plants (seed {}), models trained on {} days run to failure at {}× wear ({} windows):",
        report.days, report.seed, report.train_days, report.pace, report.training_windows
    );
    for m in &report.models {
        println!("  model {m}");
    }
    println!(
        "Failures alerted ≥ {LEAD_H} h ahead: {}/{} ({:.1} %), median lead {} h ({} more in the first {WARM_UP_H} h, not scored)",
        report.alerted_24h,
        report.failures,
        report.alerted_24h_pct,
        report.median_lead_h.map_or("-".into(), |h| format!("{h:.0}")),
        report.failures_in_warm_up
    );
    println!(
        "Alerts preceding a real fault: {}/{} ({:.1} %)",
        report.true_alerts, report.alerts, report.precision_pct
    );
    println!(
        "Random trips (not predictable): {}; planned renewals: {}",
        report.trips, report.planned_renewals
    );
    println!(
        "Prediction cycle, all units of 3 plants: {:.2} ms ({:.1} ms with every window re-estimated); training {:.1} s",
        report.cycle_ms, report.cycle_cold_ms, report.train_seconds
    );
    for f in &report.missed {
        println!(
            "  missed: {}/{}/{} {} failed {} (alert {})",
            f.site,
            f.line,
            f.equipment,
            f.part,
            f.failed_at,
            f.alerted_at.map_or("none".into(), |a| a.to_string())
        );
        for e in &f.events {
            println!("      {e}");
        }
    }
    for f in &report.false_alerts {
        println!(
            "  false alert: {}/{}/{} {} at {} (true wear {:.2}, estimated {:.2}, p {:.2}, {} windows)",
            f.site, f.line, f.equipment, f.part, f.raised_at, f.true_wear, f.estimated_wear, f.p_fail, f.windows
        );
        for e in &f.events {
            println!("      {e}");
        }
    }
    Ok(())
}

/// A part's events, and with `PT_DEBUG` set its estimated wear per window: what an
/// engineer looks at to see why an alert came or did not.
fn story(
    monitor: &ConditionMonitor,
    events: &[WearEvent],
    line: &str,
    equipment: &str,
    part: &str,
) -> Vec<String> {
    let mut out: Vec<String> = events
        .iter()
        .filter(|x| x.line == line && x.equipment == equipment && x.part.as_str() == part)
        .map(|x| format!("{:?} {}", x.kind, x.at))
        .collect();
    if std::env::var_os("PT_DEBUG").is_some() {
        out.extend(
            monitor
                .series(line, equipment, part)
                .iter()
                .filter(|(_, e, s)| e.is_finite() || *s)
                .map(|(t, e, s)| {
                    format!(
                        "{t} estimate {e:.2}{}",
                        if *s { " (stood still)" } else { "" }
                    )
                }),
        );
    }
    out
}

fn same_part(a: &WearEvent, b: &WearEvent) -> bool {
    a.line == b.line && a.equipment == b.equipment && a.part == b.part
}

fn alert_on(a: &MaintenanceAlert, e: &WearEvent) -> bool {
    a.line == e.line && a.equipment == e.equipment && a.part == e.part.as_str()
}

/// Milliseconds of one prediction cycle over the three plants: steady (one new window per
/// unit) and cold (every kept window estimated afresh, as after a model change).
fn cycle_ms(runs: &[SimulatedSite], models: &MaintenanceModels) -> (f64, f64) {
    let mut monitors: Vec<_> = runs
        .iter()
        .filter_map(|r| r.condition().map(|c| c.monitor().clone()))
        .collect();
    let mut fresh = models.clone();
    fresh.fingerprint.push_str("/cold");
    let t = std::time::Instant::now();
    for m in &mut monitors {
        m.score(&fresh);
    }
    let cold = t.elapsed().as_secs_f64() * 1e3;
    let reps = 20;
    let t = std::time::Instant::now();
    for _ in 0..reps {
        for m in &mut monitors {
            std::hint::black_box(m.score(&fresh));
        }
    }
    (t.elapsed().as_secs_f64() * 1e3 / reps as f64, cold)
}
