//! The applicability domain of a model: how far a row lies from the rows it was trained on.
//!
//! A regression model extrapolates without a word of warning: a batch whose drying went
//! wrong gets a confident number the model has never seen the like of. Pharma practice
//! (PLS with its Hotelling T² and DModX) is to say when a prediction is outside the model's
//! experience. Here the distance is the largest standardised deviation over the columns —
//! it names the variables responsible, which a quality reviewer needs — and its limit is a
//! high quantile of the training rows' own distances, so that a normal batch is flagged
//! about as rarely as that quantile says.

use serde::Serialize;

use super::linear::Standardizer;

/// Training rows' distances below the limit.
pub const DOMAIN_CONFIDENCE: f64 = 0.995;

/// Columns named in a [`DomainCheck`], furthest first.
const NAMED: usize = 3;

/// Where the training rows lie, column by column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Domain {
    scale: Standardizer,
    /// Columns that vary in training (a constant one has no spread to measure against).
    varies: Vec<bool>,
    /// Training range per column (NaN when a column was never recorded).
    pub low: Vec<f64>,
    pub high: Vec<f64>,
    /// Distance beyond which a row is outside.
    pub limit: f64,
}

/// One row against a [`Domain`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DomainCheck {
    /// The largest |z| over the row's recorded, varying columns.
    pub distance: f64,
    pub limit: f64,
    /// Up to three columns furthest out: (column, z).
    pub furthest: Vec<(usize, f64)>,
}

impl DomainCheck {
    pub fn outside(&self) -> bool {
        self.distance > self.limit
    }
}

impl Domain {
    /// Fits on `rows` (all of the same length; NaN for a value not recorded). `columns`
    /// says which columns count (others, such as product indicators, are left out).
    pub fn fit(rows: &[Vec<f64>], columns: &[bool], confidence: f64) -> Domain {
        let scale = Standardizer::fit(rows);
        let p = scale.means.len();
        let (low, high) = ranges(rows);
        let varies = (0..p)
            .map(|j| columns.get(j).copied().unwrap_or(false) && high[j] > low[j])
            .collect();
        let mut domain = Domain {
            scale,
            varies,
            low,
            high,
            limit: f64::INFINITY,
        };
        let mut own: Vec<f64> = rows.iter().map(|r| domain.distance(r).0).collect();
        own.sort_by(f64::total_cmp);
        if let Some(last) = own.len().checked_sub(1) {
            let at = ((last as f64) * confidence.clamp(0.0, 1.0)).round() as usize;
            domain.limit = own[at.min(last)];
        }
        domain
    }

    /// The row's distance and its columns by |z|, largest first.
    fn distance(&self, row: &[f64]) -> (f64, Vec<(usize, f64)>) {
        let mut z: Vec<(usize, f64)> = row
            .iter()
            .enumerate()
            .filter(|(j, v)| v.is_finite() && self.varies.get(*j).copied().unwrap_or(false))
            .map(|(j, &v)| (j, (v - self.scale.means[j]) / self.scale.scales[j]))
            .collect();
        z.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        (z.first().map_or(0.0, |(_, z)| z.abs()), z)
    }

    /// How far `row` lies from the training rows.
    pub fn check(&self, row: &[f64]) -> DomainCheck {
        let (distance, mut z) = self.distance(row);
        z.truncate(NAMED);
        DomainCheck {
            distance,
            limit: self.limit,
            furthest: z,
        }
    }
}

/// Each column's smallest and largest recorded value (NaN when it has none).
pub fn ranges(rows: &[Vec<f64>]) -> (Vec<f64>, Vec<f64>) {
    let p = rows.first().map_or(0, Vec::len);
    let mut low = vec![f64::NAN; p];
    let mut high = vec![f64::NAN; p];
    for r in rows {
        for (j, &v) in r.iter().enumerate().filter(|(_, v)| v.is_finite()) {
            low[j] = if low[j].is_nan() { v } else { low[j].min(v) };
            high[j] = if high[j].is_nan() { v } else { high[j].max(v) };
        }
    }
    (low, high)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Vec<Vec<f64>> {
        // Two varying columns, a constant one and an indicator left out.
        (0..200)
            .map(|i| {
                let a = (i % 20) as f64;
                let b = 10.0 + ((i * 7) % 13) as f64 * 0.1;
                vec![a, b, 5.0, f64::from(u8::from(i % 2 == 0))]
            })
            .collect()
    }

    #[test]
    fn training_rows_are_inside_at_the_confidence_and_a_far_row_is_named() {
        let rows = grid();
        let d = Domain::fit(&rows, &[true, true, true, false], DOMAIN_CONFIDENCE);
        let outside = rows.iter().filter(|r| d.check(r).outside()).count();
        assert!(outside <= 1, "{outside} of 200 training rows outside");
        assert_eq!((d.low[0], d.high[0]), (0.0, 19.0));

        // Column 1 far beyond its range: outside, and it is the column named first.
        let c = d.check(&[10.0, 20.0, 5.0, 1.0]);
        assert!(c.outside(), "{c:?}");
        assert_eq!(c.furthest[0].0, 1);
        assert!(c.furthest[0].1 > 10.0, "{c:?}");
        // The constant column and the left-out indicator never count; a missing value
        // neither.
        let c = d.check(&[10.0, f64::NAN, 500.0, 100.0]);
        assert!(!c.outside(), "{c:?}");
        assert!(c.furthest.iter().all(|(j, _)| *j == 0));
    }
}
