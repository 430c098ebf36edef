//! Energy and cost per batch for HQ: each line's recent batches, what their units' energy
//! meters counted while they ran, priced at the site's tariff (`[site.costs]`), with the
//! material they consumed. The computation is twin-core's; this module reads the meters
//! from the store.

use std::{collections::HashMap, sync::Mutex};

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Extension, Json,
};
use chrono::{Duration, Utc};
use serde::Deserialize;
use serde_json::json;
use twin_core::{batch_cost, summarise, BatchCost, MeterReadings, ENERGY_SIGNAL};

use crate::{api::error, auth::Principal, AppState};

/// Costs of completed batches whose every meter was read, by `site/batch`: they no longer
/// change, so the meters are read again only from the oldest batch not in here. A plant at
/// real speed samples each meter every second; re-reading ten batches' worth of that on
/// every poll is what this spares.
static DONE: Mutex<Option<HashMap<String, BatchCost>>> = Mutex::new(None);
/// More entries than this and the cache starts again (a few KB each).
const DONE_KEEP: usize = 20_000;

fn done(key: &str) -> Option<BatchCost> {
    let cache = DONE.lock().unwrap_or_else(|e| e.into_inner());
    cache.as_ref()?.get(key).cloned()
}

fn keep_done(list: &[BatchCost]) {
    let mut cache = DONE.lock().unwrap_or_else(|e| e.into_inner());
    let map = cache.get_or_insert_with(HashMap::new);
    if map.len() > DONE_KEEP {
        map.clear();
    }
    for c in list
        .iter()
        .filter(|c| c.end.is_some() && c.meters > 0 && c.meters_missing.is_empty())
    {
        map.insert(format!("{}/{}", c.site, c.batch), c.clone());
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CostQuery {
    site: Option<String>,
    line: Option<String>,
    /// Batches per line, newest first (running ones included); default 10, at most 50.
    limit: Option<usize>,
}

/// Per site the tariff, the means over its completed batches, and each recent batch's
/// kWh and cost.
pub(crate) async fn costs(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<CostQuery>,
) -> Response {
    let scoped = match (&q.site, &q.line) {
        (Some(site), Some(line)) => p.line(site, line),
        (site, None) => p.site_if(site.as_deref()),
        (None, Some(_)) => return error(StatusCode::BAD_REQUEST, "line: name its site too"),
    };
    if let Err(r) = scoped {
        return r.into_response();
    }
    let limit = q.limit.unwrap_or(10).clamp(1, 50);
    let now = Utc::now();
    let mut out = Vec::new();
    for site in state.twin.sites() {
        if q.site.as_ref().is_some_and(|s| s != &site.id) || !p.user().scope.allows_site(&site.id) {
            continue;
        }
        let mut list = Vec::new();
        for line in &site.lines {
            if q.line.as_ref().is_some_and(|l| l != &line.id) || !p.sees_line(&site.id, &line.id) {
                continue;
            }
            let batches = state.twin.batches(Some(&site.id), Some(&line.id), limit);
            let known: Vec<Option<BatchCost>> = batches
                .iter()
                .map(|b| done(&format!("{}/{}", site.id, b.id)))
                .collect();
            let Some(from) = batches
                .iter()
                .zip(&known)
                .filter(|(_, k)| k.is_none())
                .map(|(b, _)| b.start)
                .min()
            else {
                list.extend(known.into_iter().flatten());
                continue;
            };
            // A little before the oldest start, so its reading there can be interpolated.
            let from = from - Duration::minutes(2);
            let mut meters = Vec::new();
            for sig in line
                .equipment
                .iter()
                .flat_map(|e| &e.signals)
                .filter(|s| s.id == ENERGY_SIGNAL)
            {
                let path = sig.tag.path();
                let samples = match state.historian.query(&path, from, now).await {
                    Ok(s) => s,
                    Err(e) => {
                        return error(StatusCode::SERVICE_UNAVAILABLE, format!("{path}: {e}"))
                    }
                };
                meters.push(MeterReadings {
                    equipment: sig.tag.equipment.clone(),
                    // A Bad reading is no reading: the meter's count is not known then.
                    readings: samples
                        .iter()
                        .filter(|s| s.quality.is_good())
                        .filter_map(|s| Some((s.source_ts, s.value.as_f64()?)))
                        .collect(),
                });
            }
            let fresh: Vec<BatchCost> = batches
                .iter()
                .zip(known)
                .map(|(b, k)| k.unwrap_or_else(|| batch_cost(b, &meters, &site.costs, now)))
                .collect();
            keep_done(&fresh);
            list.extend(fresh);
        }
        out.push(json!({
            "site": site.id,
            "tariff": site.costs,
            "summary": summarise(&list, &site.costs.currency),
            "batches": list,
        }));
    }
    Json(json!({ "sites": out })).into_response()
}
