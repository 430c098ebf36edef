//! Predicted critical quality attributes of each batch, and the release-risk alerts raised
//! when a batch is predicted out of specification before the lab has tested it.
//!
//! Features are the batch record's process-parameter means, settled levels and phase
//! durations, each relative to the mean of its product in the training batches (products
//! differ in their nominal force, hardness, moisture: a hard tablet is hard for *its*
//! product), plus the product itself. Every model starts from the means and durations; a
//! CQA whose validation prefers its known drivers (`KNOWN_DRIVERS`) or a few screened
//! inputs gets those instead.

use std::collections::BTreeMap;

use analytics::quality::{ranges, Domain, InputRoles, RidgeBoostModel, DOMAIN_CONFIDENCE};
use chrono::{DateTime, Utc};
use model::Range;
use serde::Serialize;

use crate::{BatchRecord, SETTLED_SUFFIX};

/// A parameter is a feature when at least this share of training batches recorded it.
const MIN_COVERAGE: f64 = 0.8;
/// Nominal coverage of the prediction interval.
const COVERAGE: f64 = 0.9;
/// Forward-chaining folds for the penalty and the interval.
const FOLDS: usize = 5;

/// What process knowledge names as the drivers of a CQA (the product's risk assessment,
/// ICH Q9), by feature name: offered as one candidate input set, which forward validation
/// weighs against the screened ones. Content uniformity is set by how evenly the API is
/// spread in the blend when blending ends (its settled uniformity; the mean is mostly the
/// start-up transient) and how evenly the press fills its dies over the whole run (the mean
/// weight variation). Among hundreds of inputs, correlation screening finds the press but
/// misses the blend, whose effect is small next to the lab's noise.
const KNOWN_DRIVERS: [(&str, &[&str]); 1] = [(
    "content_uniformity",
    &[
        "bin_blender.blend_uniformity_rsd.settled",
        "tablet_press.weight_rsd",
    ],
)];

/// Fewer completed batches with lab results than this train nothing worth trusting.
pub const MIN_TRAINING_BATCHES: usize = 30;

#[derive(Debug, thiserror::Error)]
pub enum QualityError {
    #[error(
        "{have} batches with lab results; at least {MIN_TRAINING_BATCHES} are needed to train"
    )]
    TooFewBatches { have: usize },
    #[error("training the {cqa} model: {source}")]
    Model {
        cqa: String,
        source: analytics::quality::QualityError,
    },
}

/// The prediction of one CQA of one batch, with the model that made it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CqaPrediction {
    pub cqa: String,
    pub value: f64,
    pub lower: f64,
    pub upper: f64,
    pub spec: Option<Range>,
    /// The predicted value lies outside the specification.
    pub out_of_spec: bool,
    pub model_version: String,
    /// Training-data fingerprint of the model that made the prediction: a screened model
    /// hands a batch beyond its training range to the full model, and this says which did.
    pub fingerprint: String,
    /// The batch lies outside what the model was trained on: the number is an
    /// extrapolation, not a prediction to release on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outside_training: Option<OutsideTraining>,
}

/// How far a batch lies outside the training batches of the model that predicted it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutsideTraining {
    /// The largest deviation over the parameters, in training standard deviations (each
    /// parameter relative to its product's mean), and the limit it passed: the one 99.5 %
    /// of the training batches stay within.
    pub distance: f64,
    pub limit: f64,
    /// The parameters furthest out, with the batch's value and the training range.
    pub parameters: Vec<OutsideParameter>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutsideParameter {
    pub name: String,
    pub value: f64,
    /// Standard deviations from the training mean (signed).
    pub z: f64,
    pub low: f64,
    pub high: f64,
}

/// One model per CQA and batch stage, trained on completed batch records.
///
/// A running batch is predicted by the models of its stage (phases finished), trained on
/// what the training batches had recorded at the same stage: filling in the parameters of
/// phases still to come with typical values would break the balance between correlated
/// parameters that a model of whole batches relies on.
#[derive(Debug, Clone)]
pub struct QualityModels {
    pub version: String,
    pub trained_at: DateTime<Utc>,
    pub training_batches: usize,
    products: Vec<String>,
    /// Indexed by the number of phases finished.
    stages: Vec<Stage>,
}

#[derive(Debug, Clone)]
struct Stage {
    params: Vec<String>,
    /// Mean of each parameter per product, and over all batches for unseen products.
    product_means: BTreeMap<String, Vec<f64>>,
    overall_means: Vec<f64>,
    /// Parameters that were positive in every training batch: compared to their product's
    /// mean as a ratio. Others (deviations around zero) as a difference — a ratio to a mean
    /// near zero would explode.
    positive: Vec<bool>,
    /// Where the training batches lie, and each parameter's recorded range.
    domain: Domain,
    raw_low: Vec<f64>,
    raw_high: Vec<f64>,
    models: BTreeMap<String, (RidgeBoostModel, Option<Range>)>,
}

impl QualityModels {
    /// Trains on the batches that have lab results; `version` names the model set.
    pub fn train(
        records: &[BatchRecord],
        version: &str,
        trained_at: DateTime<Utc>,
    ) -> Result<Self, QualityError> {
        let tested: Vec<&BatchRecord> = records.iter().filter(|b| !b.lab.is_empty()).collect();
        if tested.len() < MIN_TRAINING_BATCHES {
            return Err(QualityError::TooFewBatches { have: tested.len() });
        }
        let mut products: Vec<String> = tested.iter().filter_map(|b| b.product.clone()).collect();
        products.sort();
        products.dedup();
        let mut cqas: BTreeMap<&str, Option<Range>> = BTreeMap::new();
        for b in &tested {
            for (k, v) in &b.lab {
                cqas.entry(k).or_insert(v.spec);
            }
        }
        let last = tested.iter().map(|b| b.phases_done()).max().unwrap_or(0);
        let mut stages = Vec::with_capacity(last + 1);
        for k in 0..=last {
            // What each training batch had recorded when its k-th phase ended.
            let known: Vec<BTreeMap<String, f64>> = tested
                .iter()
                .map(|b| match k {
                    0 => BTreeMap::new(),
                    _ if k >= b.phases_done() => b.features(),
                    _ => b.features_known_at(b.phase_end(k)),
                })
                .collect();
            stages.push(Stage::train(&tested, &known, &products, &cqas)?);
        }
        Ok(QualityModels {
            version: version.to_string(),
            trained_at,
            training_batches: tested.len(),
            products,
            stages,
        })
    }

    /// Feature names of the whole-batch models, in model order.
    pub fn feature_names(&self) -> Vec<String> {
        self.stages
            .last()
            .map_or_else(Vec::new, |s| s.feature_names(&self.products))
    }

    /// CQAs this set predicts.
    pub fn cqas(&self) -> impl Iterator<Item = &str> {
        self.stages
            .last()
            .into_iter()
            .flat_map(|s| s.models.keys().map(String::as_str))
    }

    /// Predicts every CQA of a batch, running or finished, with the models of its stage.
    pub fn predict(&self, b: &BatchRecord) -> Vec<CqaPrediction> {
        let Some(stage) = self
            .stages
            .get(b.phases_done().min(self.stages.len().saturating_sub(1)))
        else {
            return Vec::new();
        };
        let raw = b.feature_row(&stage.params);
        let row = stage.transform(&raw, b.product.as_deref(), &self.products);
        let outside = stage.outside_training(&raw, &row);
        stage
            .models
            .iter()
            .filter_map(|(cqa, (model, spec))| {
                let (p, by) = model.predict_by(&row).ok()?;
                Some(CqaPrediction {
                    cqa: cqa.clone(),
                    value: p.value,
                    lower: p.lower,
                    upper: p.upper,
                    spec: *spec,
                    out_of_spec: spec.is_some_and(|s| !s.contains(p.value)),
                    model_version: self.version.clone(),
                    fingerprint: by.fingerprint.clone(),
                    outside_training: outside.clone(),
                })
            })
            .collect()
    }
}

impl Stage {
    fn train(
        tested: &[&BatchRecord],
        known: &[BTreeMap<String, f64>],
        products: &[String],
        cqas: &BTreeMap<&str, Option<Range>>,
    ) -> Result<Stage, QualityError> {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for f in known {
            for k in f.keys() {
                *seen.entry(k).or_default() += 1;
            }
        }
        let params: Vec<String> = seen
            .into_iter()
            .filter(|(_, n)| *n as f64 >= MIN_COVERAGE * tested.len() as f64)
            .map(|(k, _)| k.to_string())
            .collect();
        let raw: Vec<Vec<f64>> = known
            .iter()
            .map(|f| {
                params
                    .iter()
                    .map(|p| f.get(p).copied().unwrap_or(f64::NAN))
                    .collect()
            })
            .collect();
        let overall_means = column_means(raw.iter());
        let positive = (0..params.len())
            .map(|j| raw.iter().all(|r| !r[j].is_finite() || r[j] > 0.0))
            .collect();
        let product_means = products
            .iter()
            .map(|p| {
                let rows = tested
                    .iter()
                    .zip(&raw)
                    .filter(|(b, _)| b.product.as_ref() == Some(p))
                    .map(|(_, r)| r);
                (p.clone(), column_means(rows))
            })
            .collect();
        let (raw_low, raw_high) = ranges(&raw);
        let mut stage = Stage {
            params,
            product_means,
            overall_means,
            positive,
            domain: Domain::fit(&[], &[], DOMAIN_CONFIDENCE),
            raw_low,
            raw_high,
            models: BTreeMap::new(),
        };
        let names = stage.feature_names(products);
        // Means and phase times are every model's inputs; settled levels only join a model
        // through screening, which keeps few inputs (see `RidgeBoostModel::fit_selected`).
        let base: Vec<bool> = stage
            .params
            .iter()
            .map(|p| !p.ends_with(SETTLED_SUFFIX))
            .chain(products.iter().map(|_| false))
            .collect();
        let keep: Vec<bool> = stage
            .params
            .iter()
            .map(|_| false)
            .chain(products.iter().map(|_| true))
            .collect();
        let rows: Vec<Vec<f64>> = tested
            .iter()
            .zip(&raw)
            .map(|(b, r)| stage.transform(r, b.product.as_deref(), products))
            .collect();
        let measured: Vec<bool> = (0..names.len()).map(|j| j < stage.params.len()).collect();
        stage.domain = Domain::fit(&rows, &measured, DOMAIN_CONFIDENCE);
        for (cqa, spec) in cqas {
            let (x, y): (Vec<Vec<f64>>, Vec<f64>) = tested
                .iter()
                .zip(&rows)
                .filter_map(|(b, r)| b.lab.get(*cqa).map(|v| (r.clone(), v.value)))
                .unzip();
            let drivers = KNOWN_DRIVERS
                .iter()
                .find(|(c, _)| c == cqa)
                .map_or(&[][..], |(_, d)| *d);
            let known: Vec<bool> = stage
                .params
                .iter()
                .map(|p| drivers.contains(&p.as_str()))
                .chain(products.iter().map(|_| false))
                .collect();
            let roles = InputRoles {
                base: &base,
                keep: &keep,
                known: &known,
            };
            // Linear with trees on its residuals: a batch pushed out of specification lies
            // beyond the training range, where trees alone would flatten the prediction.
            let model = RidgeBoostModel::fit_selected(&names, &x, &y, &roles, FOLDS, COVERAGE)
                .map_err(|source| QualityError::Model {
                    cqa: cqa.to_string(),
                    source,
                })?;
            tracing::debug!(
                cqa,
                inputs = ?model.features,
                trees = model.n_trees,
                cv_rmse = model.cv_rmse,
                "quality model trained"
            );
            stage.models.insert(cqa.to_string(), (model, *spec));
        }
        Ok(stage)
    }

    fn feature_names(&self, products: &[String]) -> Vec<String> {
        self.params
            .iter()
            .map(|p| format!("{p} vs product"))
            .chain(products.iter().map(|p| format!("product={p}")))
            .collect()
    }

    /// The batch's distance from the training batches, when it is beyond the limit. `raw`
    /// is its parameters as recorded, `row` as the models see them.
    fn outside_training(&self, raw: &[f64], row: &[f64]) -> Option<OutsideTraining> {
        let check = self.domain.check(row);
        check.outside().then(|| OutsideTraining {
            distance: check.distance,
            limit: check.limit,
            parameters: check
                .furthest
                .iter()
                .map(|&(j, z)| OutsideParameter {
                    name: self.params[j].clone(),
                    value: raw[j],
                    z,
                    low: self.raw_low[j],
                    high: self.raw_high[j],
                })
                .collect(),
        })
    }

    fn transform(&self, raw: &[f64], product: Option<&str>, products: &[String]) -> Vec<f64> {
        let means = product
            .and_then(|p| self.product_means.get(p))
            .unwrap_or(&self.overall_means);
        raw.iter()
            .zip(means)
            .zip(&self.positive)
            .map(|((x, m), &positive)| if positive && *m > 0.0 { x / m } else { x - m })
            .chain(
                products
                    .iter()
                    .map(|p| f64::from(u8::from(product == Some(p.as_str())))),
            )
            .collect()
    }
}

fn column_means<'a>(rows: impl Iterator<Item = &'a Vec<f64>>) -> Vec<f64> {
    let mut sum: Vec<f64> = Vec::new();
    let mut n: Vec<usize> = Vec::new();
    for r in rows {
        sum.resize(r.len(), 0.0);
        n.resize(r.len(), 0);
        for (i, x) in r.iter().enumerate().filter(|(_, x)| x.is_finite()) {
            sum[i] += x;
            n[i] += 1;
        }
    }
    sum.iter()
        .zip(&n)
        .map(|(s, &k)| if k > 0 { s / k as f64 } else { f64::NAN })
        .collect()
}

/// A batch predicted out of specification, raised to quality before the lab result exists.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReleaseRisk {
    pub batch: String,
    pub site: String,
    pub line: String,
    pub product: Option<String>,
    pub prediction: CqaPrediction,
    pub raised_at: DateTime<Utc>,
    /// The lab result, once released: whether the alert was right.
    pub lab_value: Option<f64>,
}

/// Release-risk alerts, one per batch and CQA.
#[derive(Debug, Default)]
pub struct ReleaseWatch {
    alerts: Vec<ReleaseRisk>,
}

impl ReleaseWatch {
    /// Predicts the batches still without lab results; returns the newly raised alerts.
    pub fn check<'a>(
        &mut self,
        models: &QualityModels,
        batches: impl IntoIterator<Item = &'a BatchRecord>,
        now: DateTime<Utc>,
    ) -> Vec<ReleaseRisk> {
        let mut raised = Vec::new();
        for b in batches {
            for a in self.alerts.iter_mut().filter(|a| a.batch == b.id) {
                if let Some(lab) = b.lab.get(&a.prediction.cqa) {
                    a.lab_value = Some(lab.value);
                }
            }
            if !b.lab.is_empty() {
                continue;
            }
            for p in models.predict(b).into_iter().filter(|p| p.out_of_spec) {
                if self
                    .alerts
                    .iter()
                    .any(|a| a.batch == b.id && a.prediction.cqa == p.cqa)
                {
                    continue;
                }
                let alert = ReleaseRisk {
                    batch: b.id.clone(),
                    site: b.site.clone(),
                    line: b.line.clone(),
                    product: b.product.clone(),
                    prediction: p,
                    raised_at: now,
                    lab_value: None,
                };
                self.alerts.push(alert.clone());
                raised.push(alert);
            }
        }
        raised
    }

    pub fn alerts(&self) -> &[ReleaseRisk] {
        &self.alerts
    }
}

/// Completed batches per site the release watch looks at: days of production, longer than
/// any lab takes.
const RECENT_BATCHES: usize = 50;

impl crate::Twin {
    /// Installs the quality models every later prediction uses.
    pub fn set_quality_models(&self, models: QualityModels) {
        *self.quality.write().unwrap_or_else(|e| e.into_inner()) =
            Some(std::sync::Arc::new(models));
    }

    pub fn quality_models(&self) -> Option<std::sync::Arc<QualityModels>> {
        self.quality
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Predicted CQAs of a batch; empty until models are installed.
    pub fn predict_batch(&self, b: &BatchRecord) -> Vec<CqaPrediction> {
        self.quality_models()
            .map_or_else(Vec::new, |m| m.predict(b))
    }

    /// Predicts every batch still waiting for its lab results; returns the alerts raised now.
    pub fn check_release_risk(&self, now: DateTime<Utc>) -> Vec<ReleaseRisk> {
        let Some(models) = self.quality_models() else {
            return Vec::new();
        };
        // The recent batches, tested or not: `check` predicts those still waiting for the
        // lab and gives earlier alerts the lab result of theirs.
        let recent: Vec<BatchRecord> = self
            .with_batches(None, |r| {
                r.running()
                    .chain(r.completed().rev().take(RECENT_BATCHES))
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .into_iter()
            .flatten()
            .collect();
        self.release
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .check(&models, &recent, now)
    }

    /// Every release-risk alert raised so far, oldest first.
    pub fn release_risks(&self) -> Vec<ReleaseRisk> {
        self.release
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .alerts()
            .to_vec()
    }
}
