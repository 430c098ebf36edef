//! `pharmatwin evaluate …`: prediction models scored on outside data and on the simulated
//! plants' ground truth.

use std::{path::Path, sync::Arc, time::Duration};

use anyhow::{Context, Result};
use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use twin_core::{QualityModels, ReleaseRisk, ReleaseWatch};

use crate::batch_history::{in_parallel, OverCompression, SimulatedSite, Watch};

fn read(p: &Path) -> Result<String> {
    std::fs::read_to_string(p).with_context(|| format!("{}: cannot read the file", p.display()))
}

fn print_json(report: &impl Serialize) -> Result<()> {
    println!("{}", serde_json::to_string(report)?);
    Ok(())
}

pub(crate) fn rul(train: &Path, test: &Path, truth: &Path, json: bool) -> Result<()> {
    use analytics::rul;
    let train_units = rul::parse_cmapss(&read(train)?, &train.display().to_string())?;
    let test_units = rul::parse_cmapss(&read(test)?, &test.display().to_string())?;
    let truth_values = rul::parse_rul_truth(&read(truth)?, &truth.display().to_string())?;
    tracing::info!(
        train_units = train_units.len(),
        test_units = test_units.len(),
        "training the RUL model"
    );
    let report = rul::evaluate(&train_units, &test_units, &truth_values)?;
    if json {
        return print_json(&report);
    }
    println!(
        "RUL on {} test units: RMSE {:.2} cycles, NASA score {:.1}, MAE {:.2}, bias {:+.2} (trained on {} cycles, {} features, {:.1} s)",
        report.units, report.rmse, report.score, report.mae, report.bias, report.train_rows, report.features.len(), report.train_seconds
    );
    Ok(())
}

/// CQA model on batch records: trains on one directory, tests on the other.
pub(crate) fn quality(train_dir: &Path, test_dir: &Path, target: &str, json: bool) -> Result<()> {
    tracing::info!(target, "training the CQA model");
    let report = analytics::quality::evaluate(train_dir, test_dir, target)?;
    if json {
        return print_json(&report);
    }
    println!(
        "{} on {} test batches (trained on {}): RMSE {:.4}, R² {:.3}; mean-only baseline RMSE {:.4}, PLS {:.4}, ridge {:.4}",
        report.target,
        report.test_batches,
        report.train_batches,
        report.rmse,
        report.r2,
        report.baseline_rmse,
        report.pls_rmse,
        report.ridge_rmse
    );
    println!(
        "  {:.0} % interval covers {:.0} % of test batches; model {} ({}); {} features, {:.1} s",
        100.0 * report.interval_nominal,
        100.0 * report.interval_coverage,
        report.model_version,
        report.fingerprint,
        report.features.len(),
        report.train_seconds
    );
    Ok(())
}

/// Multivariate monitoring on Tennessee Eastman files: fits on `train`, counts false alarms
/// on `normal`, detections on each fault file from `fault_start` on.
pub(crate) fn mspc(
    train: &Path,
    normal: &Path,
    faults: &[std::path::PathBuf],
    fault_start: usize,
    json: bool,
) -> Result<()> {
    use analytics::mspc;
    let parse = |p: &Path| -> Result<Vec<Vec<f64>>> {
        Ok(mspc::parse_tep(&read(p)?, &p.display().to_string())?)
    };
    let train_rows = parse(train)?;
    let normal_rows = parse(normal)?;
    let fault_rows = faults
        .iter()
        .map(|f| {
            let name = f.file_name().map_or_else(
                || f.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            Ok((name, parse(f)?))
        })
        .collect::<Result<Vec<_>>>()?;
    tracing::info!(
        train = train_rows.len(),
        faults = fault_rows.len(),
        "fitting the monitor"
    );
    let report = mspc::evaluate(&train_rows, &normal_rows, &fault_rows, fault_start)?;
    if json {
        return print_json(&report);
    }
    println!(
        "{} ({} components, fitted on {} samples)",
        report.method, report.components, report.train_samples
    );
    println!(
        "False-alarm rate on normal data: {:.1} %  (PCA T²/SPE: {:.1} % / {:.1} %)",
        100.0 * report.false_alarm_rate,
        100.0 * report.pca_t2_false_alarm_rate,
        100.0 * report.pca_spe_false_alarm_rate
    );
    for f in &report.faults {
        println!(
            "  {:<14} detected {:>5.1} %",
            f.name,
            100.0 * f.detection_rate
        );
    }
    println!(
        "Mean detection rate: {:.1} % (all faults), {:.1} % (faults 3, 9, 15 excluded); PCA T² {:.1} %, SPE {:.1} %",
        100.0 * report.mean_detection_rate,
        100.0 * report.mean_detection_rate_excluding_3_9_15,
        100.0 * report.pca_t2_mean_detection_rate,
        100.0 * report.pca_spe_mean_detection_rate
    );
    Ok(())
}

/// Lab CQAs whose prediction is scored against the lab's noise (hardness is measured on the
/// press, yield counted: neither has lab noise to compare with).
const LAB_CQAS: [&str; 4] = ["assay", "dissolution", "content_uniformity", "impurities"];

#[derive(Debug, Serialize)]
struct CqaScore {
    cqa: String,
    batches: usize,
    rmse: f64,
    /// RMSE of the noise-free value against the lab's: the best any model can do.
    noise_rmse: f64,
    ratio: f64,
}

#[derive(Debug, Serialize)]
struct UpsetOutcome {
    batch: String,
    cqa: Option<String>,
    pushed_at: DateTime<Utc>,
    alert_raised_at: Option<DateTime<Utc>>,
    lab_published_at: Option<DateTime<Utc>>,
    /// Hours between the alert and the lab result (positive: the alert came first).
    lead_hours: Option<f64>,
    lab_value: Option<f64>,
    lab_out_of_spec: Option<bool>,
    /// What the models predicted for the finished batch, every CQA.
    predicted: Vec<twin_core::CqaPrediction>,
}

#[derive(Debug, Serialize)]
struct BatchesReport {
    simulated_days: f64,
    seed: u64,
    train_batches: usize,
    test_batches: usize,
    model_version: String,
    features: usize,
    cqas: Vec<CqaScore>,
    /// Worst ratio of prediction RMSE to lab-noise RMSE over the lab CQAs.
    worst_ratio: f64,
    release_risk_alerts: usize,
    /// Test batches (the upset left out) predicted outside the models' training batches,
    /// of `test_batches`: about 0.5 % expected of normal batches.
    outside_training: usize,
    /// Of those, how many each parameter took furthest out.
    outside_parameters: std::collections::BTreeMap<String, usize>,
    /// The first few of those batches, with what took them out.
    outside_examples: Vec<(String, twin_core::OutsideTraining)>,
    /// Whether the upset batch was.
    upset_outside_training: Option<bool>,
    /// Alerts raised per CQA.
    alerts_by_cqa: std::collections::BTreeMap<String, usize>,
    /// Alerts whose batch the lab then found out of specification.
    alerts_confirmed: usize,
    upset: Option<UpsetOutcome>,
    /// One update cycle for the three plants, median of 20: predict every running batch and
    /// chart every lab CQA per site (I-MR, Nelson rules, capability), in milliseconds.
    cycle_ms: f64,
    /// The first alerts raised, for a look at what they said.
    first_alerts: Vec<ReleaseRisk>,
    seconds: f64,
}

/// Simulates the three plants for `days`: trains the CQA models on the first two thirds,
/// then runs on with predictions live, pushes one batch out of specification and scores
/// predictions and alerts against the simulator's ground truth.
pub(crate) fn batches(
    sites: Vec<Arc<model::Site>>,
    days: f64,
    seed: u64,
    json: bool,
) -> Result<()> {
    anyhow::ensure!(
        days >= 6.0,
        "--days must be at least 6 (two thirds train, one third test)"
    );
    let started = std::time::Instant::now();
    let start = Utc
        .with_ymd_and_hms(2026, 3, 2, 0, 0, 0)
        .single()
        .context("start date")?;
    let train_for = Duration::from_secs_f64(days * 2.0 / 3.0 * 86_400.0);
    let test_for = Duration::from_secs_f64(days / 3.0 * 86_400.0);
    let mut runs: Vec<SimulatedSite> = sites
        .iter()
        .enumerate()
        .map(|(i, s)| SimulatedSite::new(s.clone(), seed.wrapping_add(i as u64), start))
        .collect();
    if let Some(first) = runs.first_mut() {
        let line = sites[0].lines[0].id.clone();
        first.plan(OverCompression {
            line,
            // A day into the test period, so the models are trained and watching.
            after: train_for + Duration::from_secs(86_400),
            factor: 2.8,
        });
    }
    let progress =
        |site: &str, f: f64| tracing::info!(site, done_pct = (100.0 * f).round(), "simulating");

    tracing::info!(days = days * 2.0 / 3.0, "simulating the training period");
    in_parallel(&mut runs, |r| r.run(train_for, None, &progress));
    let train: Vec<_> = runs
        .iter()
        .flat_map(|r| r.records().cloned().collect::<Vec<_>>())
        .collect();
    let train_ids: std::collections::HashSet<String> = train.iter().map(|b| b.id.clone()).collect();
    let trained_at = start + chrono::Duration::from_std(train_for)?;
    let models = QualityModels::train(&train, "sim-cqa-1", trained_at)?;
    tracing::info!(batches = models.training_batches, "quality models trained");

    tracing::info!(
        days = days / 3.0,
        "simulating the test period with live predictions"
    );
    let watches = in_parallel(&mut runs, |r| {
        let mut w = Watch {
            models: &models,
            alerts: ReleaseWatch::default(),
            every: Duration::from_secs(600),
        };
        r.run(test_for, Some(&mut w), &progress);
        w.alerts
    });
    let alerts: Vec<ReleaseRisk> = watches.iter().flat_map(|w| w.alerts().to_vec()).collect();

    let mut truth = Vec::new();
    let mut test = Vec::new();
    for r in &runs {
        truth.extend(r.truth());
        test.extend(
            r.records()
                .filter(|b| !train_ids.contains(&b.id) && !b.lab.is_empty())
                .cloned(),
        );
    }
    let upset_batch = runs.iter().find_map(|r| r.upset_hit.clone());
    let outside_of = |b: &twin_core::BatchRecord| {
        models
            .predict(b)
            .into_iter()
            .next()
            .and_then(|p| p.outside_training)
    };
    let mut outside_parameters = std::collections::BTreeMap::new();
    let mut outside_training = 0;
    let mut outside_examples = Vec::new();
    for b in test
        .iter()
        .filter(|b| Some(&b.id) != upset_batch.as_ref().map(|u| &u.0))
    {
        if let Some(o) = outside_of(b) {
            outside_training += 1;
            if let Some(first) = o.parameters.first() {
                *outside_parameters.entry(first.name.clone()).or_insert(0) += 1;
            }
            if outside_examples.len() < 3 {
                outside_examples.push((b.id.clone(), o));
            }
        }
    }
    let upset_outside_training = upset_batch
        .as_ref()
        .and_then(|u| test.iter().find(|b| b.id == u.0))
        .map(|b| outside_of(b).is_some());
    let mut cqas = Vec::new();
    for cqa in models.cqas() {
        let (mut se, mut noise, mut n) = (0.0, 0.0, 0usize);
        for b in test
            .iter()
            .filter(|b| Some(&b.id) != upset_batch.as_ref().map(|u| &u.0))
        {
            let (Some(lab), Some(t)) = (b.lab.get(cqa), truth.iter().find(|t| t.batch_id == b.id))
            else {
                continue;
            };
            let Some(p) = models.predict(b).into_iter().find(|p| p.cqa == cqa) else {
                continue;
            };
            let expected = cqa_value(&t.expected, cqa).unwrap_or(lab.value);
            se += (p.value - lab.value).powi(2);
            noise += (expected - lab.value).powi(2);
            n += 1;
        }
        if n == 0 {
            continue;
        }
        let rmse = (se / n as f64).sqrt();
        let noise_rmse = (noise / n as f64).sqrt();
        cqas.push(CqaScore {
            cqa: cqa.to_string(),
            batches: n,
            rmse,
            noise_rmse,
            ratio: if noise_rmse > 0.0 {
                rmse / noise_rmse
            } else {
                f64::NAN
            },
        });
    }
    let worst_ratio = cqas
        .iter()
        .filter(|c| LAB_CQAS.contains(&c.cqa.as_str()))
        .map(|c| c.ratio)
        .fold(0.0, f64::max);
    let lab_out = |batch: &str, cqa: &str| {
        runs.iter()
            .flat_map(|r| r.records())
            .find(|b| b.id == batch)
            .and_then(|b| b.lab.get(cqa))
            .map(|v| {
                (
                    v.value,
                    v.published,
                    v.spec.is_some_and(|s| !s.contains(v.value)),
                )
            })
    };
    let alerts_confirmed = alerts
        .iter()
        .filter(|a| lab_out(&a.batch, &a.prediction.cqa).is_some_and(|(_, _, out)| out))
        .count();
    let upset = upset_batch.map(|(batch, pushed_at)| {
        // The alert that matters is the one on a CQA the lab then found out of specification.
        let on_batch = || alerts.iter().filter(|a| a.batch == batch);
        let alert = on_batch()
            .filter(|a| lab_out(&batch, &a.prediction.cqa).is_some_and(|(_, _, out)| out))
            .min_by_key(|a| a.raised_at)
            .or_else(|| on_batch().min_by_key(|a| a.raised_at));
        let cqa = alert.map(|a| a.prediction.cqa.clone());
        let lab = cqa
            .as_deref()
            .and_then(|c| lab_out(&batch, c))
            .or_else(|| lab_out(&batch, "dissolution"));
        let predicted = runs
            .iter()
            .flat_map(|r| r.records())
            .find(|b| b.id == batch)
            .map_or_else(Vec::new, |b| models.predict(b));
        UpsetOutcome {
            predicted,
            lead_hours: alert.zip(lab).map(|(a, (_, published, _))| {
                (published - a.raised_at).num_seconds() as f64 / 3600.0
            }),
            alert_raised_at: alert.map(|a| a.raised_at),
            lab_published_at: lab.map(|l| l.1),
            lab_value: lab.map(|l| l.0),
            lab_out_of_spec: lab.map(|l| l.2),
            batch,
            cqa,
            pushed_at,
        }
    });
    let cycle_ms = update_cycle_ms(&runs, &models);
    let report = BatchesReport {
        cycle_ms,
        simulated_days: days,
        seed,
        train_batches: models.training_batches,
        test_batches: test.len(),
        model_version: models.version.clone(),
        features: models.feature_names().len(),
        cqas,
        worst_ratio,
        release_risk_alerts: alerts.len(),
        outside_training,
        outside_parameters,
        outside_examples,
        upset_outside_training,
        alerts_by_cqa: alerts.iter().fold(Default::default(), |mut m, a| {
            *m.entry(a.prediction.cqa.clone()).or_default() += 1;
            m
        }),
        alerts_confirmed,
        upset,
        first_alerts: alerts.iter().take(10).cloned().collect(),
        seconds: started.elapsed().as_secs_f64(),
    };
    if json {
        return print_json(&report);
    }
    println!(
        "Quality predictions on {} simulated days ({} training batches, {} test batches, {} features):",
        days, report.train_batches, report.test_batches, report.features
    );
    for c in &report.cqas {
        println!(
            "  {:<20} RMSE {:>8.4}   lab noise {:>8.4}   ratio {:>5.2}   ({} batches)",
            c.cqa, c.rmse, c.noise_rmse, c.ratio, c.batches
        );
    }
    println!(
        "Update cycle (predict every running batch, chart every CQA per site): {:.2} ms",
        report.cycle_ms
    );
    println!(
        "Outside the models' training: {} of {} normal test batches ({:?}); the upset batch: {}",
        report.outside_training,
        report.test_batches,
        report.outside_parameters,
        report
            .upset_outside_training
            .map_or("-", |o| if o { "yes" } else { "no" })
    );
    println!(
        "Release-risk alerts: {} raised ({:?}), {} confirmed by the lab",
        report.release_risk_alerts, report.alerts_by_cqa, report.alerts_confirmed
    );
    match &report.upset {
        Some(u) => println!(
            "Upset batch {} (pushed {}): alert {} on {}, lab {} ({}), lead {} h",
            u.batch,
            u.pushed_at,
            u.alert_raised_at.map_or("never".into(), |t| t.to_string()),
            u.cqa.as_deref().unwrap_or("-"),
            u.lab_published_at
                .map_or("not yet".into(), |t| t.to_string()),
            u.lab_value.map_or("-".into(), |v| format!("{v:.2}")),
            u.lead_hours.map_or("-".into(), |h| format!("{h:.1}")),
        ),
        None => println!("No batch reached compression after the upset time"),
    }
    Ok(())
}

fn update_cycle_ms(runs: &[SimulatedSite], models: &QualityModels) -> f64 {
    use twin_core::spc::{chart, Scope, Variable};
    let running: Vec<_> = runs
        .iter()
        .flat_map(|r| r.running().cloned().collect::<Vec<_>>())
        .collect();
    let done: Vec<_> = runs
        .iter()
        .flat_map(|r| r.records().cloned().collect::<Vec<_>>())
        .collect();
    let sites: Vec<String> = runs.iter().map(|r| r.site_id().to_string()).collect();
    let cqas: Vec<String> = models.cqas().map(str::to_string).collect();
    let mut times: Vec<f64> = (0..20)
        .map(|_| {
            let t = std::time::Instant::now();
            let predicted: usize = running.iter().map(|b| models.predict(b).len()).sum();
            let mut charts = 0;
            for site in &sites {
                for cqa in &cqas {
                    let scope = Scope {
                        site: Some(site),
                        ..Scope::default()
                    };
                    charts +=
                        usize::from(chart(&done, &scope, &Variable::Lab(cqa.clone()), cqa).is_ok());
                }
            }
            std::hint::black_box((predicted, charts));
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn cqa_value(c: &sites::physics::Cqas, name: &str) -> Option<f64> {
    Some(match name {
        "assay" => c.assay,
        "dissolution" => c.dissolution,
        "content_uniformity" => c.content_uniformity,
        "impurities" => c.impurities,
        "hardness" => c.hardness,
        _ => return None,
    })
}
