//! Forward-chaining (time-ordered) cross-validation folds.
//!
//! Batches of one campaign or one raw-material lot are alike, so a shuffled
//! split leaks; every fold trains on a prefix of the rows and validates on the
//! block that follows it, as the model will be used.

/// One forward-chaining fold: train on rows `..train_end`, validate on rows
/// `valid_start..valid_end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fold {
    /// End (exclusive) of the training prefix.
    pub train_end: usize,
    /// Start of the validation block (`train_end` plus the gap).
    pub valid_start: usize,
    /// End (exclusive) of the validation block.
    pub valid_end: usize,
}

impl Fold {
    /// Validation rows.
    pub fn valid(&self) -> std::ops::Range<usize> {
        self.valid_start..self.valid_end
    }
}

/// Smallest validation block worth scoring.
pub const MIN_VALID_ROWS: usize = 5;

/// Splits rows `first_train * n .. n` into at most `folds` consecutive
/// validation blocks, each validated by a model trained on the rows before it
/// except the last `gap` ones. Fewer folds are returned when the blocks would be
/// smaller than [`MIN_VALID_ROWS`]; none when even one block is impossible.
///
/// The gap matters because consecutive batches (one campaign, one lot) are
/// alike: a model that has seen the start of a campaign predicts its continuation
/// far better than it will predict batches months ahead, so without a gap the
/// validation flatters features that only identify the current campaign. The
/// gap shrinks (down to none) when the first training prefix would otherwise be
/// shorter than the gap itself.
pub fn forward_folds(n: usize, folds: usize, first_train: f64, gap: usize) -> Vec<Fold> {
    let start = ((n as f64 * first_train.clamp(0.05, 0.95)).round() as usize).max(1);
    if start >= n {
        return Vec::new();
    }
    let gap = gap.min(start / 2);
    let span = n - start;
    let k = folds.min(span / MIN_VALID_ROWS);
    (0..k)
        .map(|i| {
            let valid_start = start + span * i / k;
            Fold {
                train_end: valid_start - gap,
                valid_start,
                valid_end: start + span * (i + 1) / k,
            }
        })
        .collect()
}
