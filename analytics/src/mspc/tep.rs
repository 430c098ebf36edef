//! Reading Tennessee Eastman process (TEP) data files.
//!
//! The Braatz group's files hold one sample per row and 52 whitespace
//! separated variables (XMEAS 1–41, XMV 1–11), but copies circulate with
//! `d00.dat` stored transposed (52 rows of 500 samples), so both layouts are
//! accepted.

use super::MspcError;

/// Number of variables in a TEP sample.
pub const TEP_VARIABLES: usize = 52;

/// Parses a TEP data file into samples (rows of [`TEP_VARIABLES`] values).
///
/// Blank lines are ignored. When every row has the same width `w ≠ 52` and
/// there are exactly 52 rows, the file is taken as transposed and turned
/// around. Ragged rows, non-numeric or non-finite fields, and any other shape
/// are errors naming `origin` and the 1-based line.
pub fn parse_tep(text: &str, origin: &str) -> Result<Vec<Vec<f64>>, MspcError> {
    let err = |line: usize, message: String| MspcError::Parse {
        origin: origin.to_string(),
        line,
        message,
    };
    let mut rows: Vec<Vec<f64>> = Vec::new();
    let mut first_line = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let mut row = Vec::with_capacity(TEP_VARIABLES);
        for (k, field) in raw.split_whitespace().enumerate() {
            let v = field
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    err(
                        line,
                        format!("field {} {field:?} is not a finite number", k + 1),
                    )
                })?;
            row.push(v);
        }
        if row.is_empty() {
            continue;
        }
        if let Some(first) = rows.first() {
            if row.len() != first.len() {
                return Err(err(
                    line,
                    format!(
                        "{} fields, but line {first_line} has {}",
                        row.len(),
                        first.len()
                    ),
                ));
            }
        } else {
            first_line = line;
        }
        rows.push(row);
    }
    let width = match rows.first() {
        Some(r) => r.len(),
        None => return Err(MspcError::Input(format!("{origin}: no data rows"))),
    };
    if width == TEP_VARIABLES {
        return Ok(rows);
    }
    if rows.len() == TEP_VARIABLES {
        let transposed = (0..width)
            .map(|s| rows.iter().map(|r| r[s]).collect())
            .collect();
        return Ok(transposed);
    }
    Err(MspcError::Input(format!(
        "{origin}: {} rows of {width} values; expected {TEP_VARIABLES} variables per row \
         (or {TEP_VARIABLES} rows when transposed)",
        rows.len()
    )))
}

/// Fault number of a TEP file name: the first run of digits in the file's
/// stem, so `d03.dat`, `d03_te.dat` and `/data/d03_te.dat` give 3 and
/// `d00.dat` gives 0. `None` when the name holds no digits.
pub fn fault_number(name: &str) -> Option<u32> {
    let file = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let stem = file.split('.').next().unwrap_or(file);
    let digits: String = stem
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// Whether a fault is one of the three TEP faults (3, 9, 15) that leave no
/// trace in the measured variables and are conventionally left out of mean
/// detection rates.
pub fn is_unobservable_fault(number: u32) -> bool {
    matches!(number, 3 | 9 | 15)
}
