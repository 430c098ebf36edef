//! Batch records: reading `Laboratory.csv` + `Process.csv` (+ `Normalization.csv`),
//! joining them on `batch`, and deciding which columns a CQA model may see.
//!
//! Files are `;` separated with a header line; cells that are empty, blank or
//! `NA` are missing; `yes`/`no` cells read as 1/0. Cells are kept as text and
//! parsed on demand so that a bad value is reported with its file, line and
//! column, and only when the column is actually used.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Serialize;

use super::{JoinMismatch, QualityError};

/// Raw-material and in-process laboratory results per batch.
pub const LABORATORY_FILE: &str = "Laboratory.csv";
/// Per-batch tablet-press summaries (and a copy of the final results).
pub const PROCESS_FILE: &str = "Process.csv";
/// Optional batch size per product code.
pub const NORMALIZATION_FILE: &str = "Normalization.csv";
/// Join key present in both files.
pub const KEY: &str = "batch";
/// Product code column.
pub const PRODUCT_CODE: &str = "code";
/// Batch size column of the laboratory file.
pub const BATCH_SIZE: &str = "size";
/// Final-quality results repeated in `Process.csv`: never features.
pub const PROCESS_QUALITY_COLUMNS: [&str; 6] = [
    "Drug release average (%)",
    "Drug release min (%)",
    "Residual solvent",
    "Total impurities",
    "Impurity O",
    "Impurity L",
];
/// Prefixes of the raw-material (incoming material test) columns.
pub const RAW_MATERIAL_PREFIXES: [&str; 4] = ["api_", "lactose_", "smcc_", "starch_"];

/// Which input file a column comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Source {
    /// `Laboratory.csv`.
    Laboratory,
    /// `Process.csv`.
    Process,
}

/// What a column means for CQA prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ColumnRole {
    /// The `batch` join key.
    Key,
    /// Product code (feature).
    ProductCode,
    /// Batch size (feature).
    BatchSize,
    /// Tablet-press summary known when compression ends (feature).
    Process,
    /// Incoming raw-material test result (feature).
    RawMaterial,
    /// Raw-material lot identifier or API source code. Lots are numbered in
    /// order of receipt, so as numbers they are time stamps, and a later lot has
    /// an id never seen in training; what a lot is like is already in its
    /// measured `api_*`/`lactose_*`/... values, and the API source is fixed by
    /// the product code. Not a feature.
    LotId,
    /// In-process tablet checks and yields (weight, thickness, hardness,
    /// tensile strength, diameter, yields): measured on the product, not a
    /// feature.
    InProcess,
    /// Final release results (dissolution, solvent, impurities): not a feature.
    FinalQuality,
    /// Anything else (text such as `strength`, `start`): not a feature.
    Other,
}

impl ColumnRole {
    /// Whether a model may use a column of this role as input.
    pub fn is_feature(self) -> bool {
        matches!(
            self,
            Self::ProductCode | Self::BatchSize | Self::Process | Self::RawMaterial
        )
    }
}

/// Role of column `name` of file `source`. Unknown laboratory columns are not
/// features: a new laboratory column is more likely a result than an input.
pub fn column_role(source: Source, name: &str) -> ColumnRole {
    let lower = name.trim().to_ascii_lowercase();
    if lower == KEY {
        return ColumnRole::Key;
    }
    if lower == PRODUCT_CODE {
        return ColumnRole::ProductCode;
    }
    let quality_word = ["release", "dissolution", "impurit", "solvent", "assay"]
        .iter()
        .any(|w| lower.contains(w));
    match source {
        Source::Process => {
            if PROCESS_QUALITY_COLUMNS.contains(&name.trim()) || quality_word {
                ColumnRole::FinalQuality
            } else {
                ColumnRole::Process
            }
        }
        Source::Laboratory => {
            if lower == BATCH_SIZE {
                ColumnRole::BatchSize
            } else if lower == "api_code" || lower.ends_with("_batch") {
                ColumnRole::LotId
            } else if RAW_MATERIAL_PREFIXES.iter().any(|p| lower.starts_with(p)) {
                ColumnRole::RawMaterial
            } else if lower.starts_with("tbl_")
                || lower.starts_with("fct_")
                || lower.contains("yield")
            {
                ColumnRole::InProcess
            } else if quality_word || lower.starts_with("resodual") {
                ColumnRole::FinalQuality
            } else {
                ColumnRole::Other
            }
        }
    }
}

/// One cell, classified.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cell {
    Missing,
    Number(f64),
    Text,
}

fn classify(raw: &str) -> Cell {
    let s = raw.trim();
    let lower = s.to_ascii_lowercase();
    match lower.as_str() {
        "" | "na" | "n/a" | "nan" | "null" | "none" | "-" => Cell::Missing,
        "yes" | "true" => Cell::Number(1.0),
        "no" | "false" => Cell::Number(0.0),
        _ => {
            // Decimal commas are common in `;`-separated exports.
            match s.replace(',', ".").parse::<f64>() {
                Ok(v) if v.is_finite() => Cell::Number(v),
                Ok(_) => Cell::Missing,
                Err(_) => Cell::Text,
            }
        }
    }
}

/// A parsed `;`-separated file.
struct Csv {
    file: String,
    header: Vec<String>,
    /// `(1-based line, cells)`.
    rows: Vec<(usize, Vec<String>)>,
}

impl Csv {
    fn parse(text: &str, file: &str) -> Result<Self, QualityError> {
        let split = |line: &str| -> Vec<String> {
            line.split(';')
                .map(|c| {
                    let c = c.trim();
                    c.strip_prefix('"')
                        .and_then(|c| c.strip_suffix('"'))
                        .unwrap_or(c)
                        .to_string()
                })
                .collect()
        };
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
            .filter(|(_, l)| !l.trim().is_empty());
        let Some((header_line, header)) = lines.next() else {
            return Err(QualityError::Row {
                file: file.to_string(),
                line: 1,
                message: "empty file, expected a header line".into(),
            });
        };
        let header = split(header.trim_start_matches('\u{feff}'));
        let mut seen = HashMap::new();
        for name in &header {
            if seen.insert(name.as_str(), ()).is_some() {
                return Err(QualityError::Parse {
                    file: file.to_string(),
                    line: header_line,
                    column: name.clone(),
                    message: "column name appears twice in the header".into(),
                });
            }
        }
        let mut rows = Vec::new();
        for (line, raw) in lines {
            let cells = split(raw);
            if cells.len() != header.len() {
                return Err(QualityError::Row {
                    file: file.to_string(),
                    line,
                    message: format!("expected {} fields, found {}", header.len(), cells.len()),
                });
            }
            rows.push((line, cells));
        }
        Ok(Self {
            file: file.to_string(),
            header,
            rows,
        })
    }

    fn index(&self, column: &str) -> Result<usize, QualityError> {
        self.header
            .iter()
            .position(|h| h == column)
            .ok_or_else(|| QualityError::MissingColumn {
                file: self.file.clone(),
                column: column.to_string(),
            })
    }

    /// Batch id per row, with the line of its first appearance.
    fn batch_rows(&self) -> Result<BTreeMap<u64, usize>, QualityError> {
        let k = self.index(KEY)?;
        let mut out: BTreeMap<u64, usize> = BTreeMap::new();
        for (r, (line, cells)) in self.rows.iter().enumerate() {
            let s = cells[k].trim();
            let batch = s.parse::<u64>().map_err(|_| QualityError::Parse {
                file: self.file.clone(),
                line: *line,
                column: KEY.into(),
                message: format!("{s:?} is not a batch number"),
            })?;
            if let Some(&first) = out.get(&batch) {
                return Err(QualityError::DuplicateBatch {
                    file: self.file.clone(),
                    line: *line,
                    batch,
                    first_line: self.rows[first].0,
                });
            }
            out.insert(batch, r);
        }
        Ok(out)
    }
}

/// A column of a [`BatchTable`], cells kept as text (one per batch).
#[derive(Debug, Clone, PartialEq)]
pub struct TableColumn {
    /// Header name, as in the file.
    pub name: String,
    /// File it comes from.
    pub source: Source,
    cells: Vec<String>,
    lines: Vec<usize>,
}

impl TableColumn {
    /// What the column means for CQA prediction.
    pub fn role(&self) -> ColumnRole {
        column_role(self.source, &self.name)
    }
}

/// A batch present in only one of the two files (left out of the join).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnmatchedBatch {
    /// Batch number.
    pub batch: u64,
    /// The file that has it.
    pub found_in: String,
    /// The file that lacks it.
    pub missing_from: String,
}

/// Laboratory and process records joined on `batch`, in increasing batch
/// (= time) order.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchTable {
    batches: Vec<u64>,
    columns: Vec<TableColumn>,
    unmatched: Vec<UnmatchedBatch>,
    /// `(product code, batch size)` from `Normalization.csv`.
    batch_sizes: Vec<(f64, f64)>,
    laboratory_file: String,
    process_file: String,
}

/// Reads `Laboratory.csv` and `Process.csv` (and `Normalization.csv` when
/// present) from `dir` and joins them on `batch`.
pub fn load_batches(dir: &Path) -> Result<BatchTable, QualityError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path)
            .map(|text| (text, path.display().to_string()))
            .map_err(|source| QualityError::Io {
                path: path.display().to_string(),
                source,
            })
    };
    let (lab, lab_file) = read(LABORATORY_FILE)?;
    let (process, process_file) = read(PROCESS_FILE)?;
    let normalization = if dir.join(NORMALIZATION_FILE).exists() {
        Some(read(NORMALIZATION_FILE)?)
    } else {
        None
    };
    BatchTable::parse(
        (&lab, &lab_file),
        (&process, &process_file),
        normalization
            .as_ref()
            .map(|(t, f)| (t.as_str(), f.as_str())),
    )
}

impl BatchTable {
    /// Parses and joins in-memory file contents, each given as `(text, file
    /// name used in errors)`.
    pub fn parse(
        laboratory: (&str, &str),
        process: (&str, &str),
        normalization: Option<(&str, &str)>,
    ) -> Result<Self, QualityError> {
        let lab = Csv::parse(laboratory.0, laboratory.1)?;
        let proc_ = Csv::parse(process.0, process.1)?;
        lab.index(PRODUCT_CODE)?;
        let lab_rows = lab.batch_rows()?;
        let proc_rows = proc_.batch_rows()?;
        let mut unmatched = Vec::new();
        let mut pairs = Vec::new();
        for (&batch, &lr) in &lab_rows {
            match proc_rows.get(&batch) {
                Some(&pr) => pairs.push((batch, lr, pr)),
                None => unmatched.push(UnmatchedBatch {
                    batch,
                    found_in: lab.file.clone(),
                    missing_from: proc_.file.clone(),
                }),
            }
        }
        for &batch in proc_rows.keys().filter(|b| !lab_rows.contains_key(b)) {
            unmatched.push(UnmatchedBatch {
                batch,
                found_in: proc_.file.clone(),
                missing_from: lab.file.clone(),
            });
        }
        unmatched.sort_by_key(|u| u.batch);

        let column = |csv: &Csv, source: Source, c: usize, side: usize| TableColumn {
            name: csv.header[c].clone(),
            source,
            cells: pairs
                .iter()
                .map(|p| {
                    let r = if side == 0 { p.1 } else { p.2 };
                    csv.rows[r].1[c].clone()
                })
                .collect(),
            lines: pairs
                .iter()
                .map(|p| csv.rows[if side == 0 { p.1 } else { p.2 }].0)
                .collect(),
        };
        let mut columns = Vec::new();
        for (c, name) in lab.header.iter().enumerate() {
            if name != KEY {
                columns.push(column(&lab, Source::Laboratory, c, 0));
            }
        }
        for (c, name) in proc_.header.iter().enumerate() {
            if name == KEY {
                continue;
            }
            let col = column(&proc_, Source::Process, c, 1);
            // A column in both files (the product code) must agree batch by batch.
            if let Some(twin) = columns.iter().find(|t| &t.name == name) {
                for (i, (a, b)) in twin.cells.iter().zip(&col.cells).enumerate() {
                    let same = match (classify(a), classify(b)) {
                        (Cell::Number(x), Cell::Number(y)) => {
                            (x - y).abs() <= 1e-9 * x.abs().max(1.0)
                        }
                        (Cell::Missing, Cell::Missing) => true,
                        _ => a.trim() == b.trim(),
                    };
                    if !same {
                        return Err(QualityError::JoinMismatch(Box::new(JoinMismatch {
                            batch: pairs[i].0,
                            column: name.clone(),
                            laboratory: a.clone(),
                            process: b.clone(),
                            laboratory_file: lab.file.clone(),
                            process_file: proc_.file.clone(),
                        })));
                    }
                }
                continue;
            }
            columns.push(col);
        }
        let batch_sizes = match normalization {
            Some((text, file)) => parse_normalization(text, file)?,
            None => Vec::new(),
        };
        Ok(Self {
            batches: pairs.iter().map(|p| p.0).collect(),
            columns,
            unmatched,
            batch_sizes,
            laboratory_file: lab.file,
            process_file: proc_.file,
        })
    }

    /// Number of joined batches.
    pub fn len(&self) -> usize {
        self.batches.len()
    }

    /// Whether no batch is present in both files.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Batch numbers, increasing.
    pub fn batches(&self) -> &[u64] {
        &self.batches
    }

    /// All columns except the join key (a column present in both files once).
    pub fn columns(&self) -> &[TableColumn] {
        &self.columns
    }

    /// Batches present in only one file, left out of the join.
    pub fn unmatched(&self) -> &[UnmatchedBatch] {
        &self.unmatched
    }

    /// `(product code, batch size)` pairs read from `Normalization.csv`.
    pub fn batch_sizes(&self) -> &[(f64, f64)] {
        &self.batch_sizes
    }

    /// Name of the file `source` was read from.
    pub fn file(&self, source: Source) -> &str {
        match source {
            Source::Laboratory => &self.laboratory_file,
            Source::Process => &self.process_file,
        }
    }

    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&TableColumn> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Whether column `name` holds text rather than numbers: most of its
    /// non-missing cells do not parse (e.g. `strength` = `5MG`).
    pub fn is_text(&self, name: &str) -> bool {
        let Some(c) = self.column(name) else {
            return false;
        };
        let (mut text, mut present) = (0usize, 0usize);
        for s in &c.cells {
            match classify(s) {
                Cell::Missing => {}
                Cell::Number(_) => present += 1,
                Cell::Text => {
                    present += 1;
                    text += 1;
                }
            }
        }
        2 * text > present
    }

    /// Values of column `name` (`NaN` = missing). A cell that is neither a
    /// number, `yes`/`no` nor missing is an error naming its file, line and column.
    pub fn numeric(&self, name: &str) -> Result<Vec<f64>, QualityError> {
        let c = self
            .column(name)
            .ok_or_else(|| QualityError::MissingColumn {
                file: format!("{} / {}", self.laboratory_file, self.process_file),
                column: name.to_string(),
            })?;
        c.cells
            .iter()
            .zip(&c.lines)
            .map(|(s, &line)| match classify(s) {
                Cell::Missing => Ok(f64::NAN),
                Cell::Number(v) => Ok(v),
                Cell::Text => Err(QualityError::Parse {
                    file: self.file(c.source).to_string(),
                    line,
                    column: c.name.clone(),
                    message: format!("{:?} is not a number", s.trim()),
                }),
            })
            .collect()
    }

    /// Numeric laboratory columns that can be predicted.
    pub fn targets(&self) -> Vec<String> {
        self.columns
            .iter()
            .filter(|c| c.source == Source::Laboratory && !self.is_text(&c.name))
            .map(|c| c.name.clone())
            .collect()
    }

    /// Values of laboratory column `target` (`NaN` where not measured). An unknown
    /// name is an error listing the valid ones.
    pub fn target_values(&self, target: &str) -> Result<Vec<f64>, QualityError> {
        let known = self
            .column(target)
            .is_some_and(|c| c.source == Source::Laboratory);
        if !known || self.is_text(target) {
            return Err(QualityError::UnknownTarget {
                target: target.to_string(),
                valid: self.targets(),
            });
        }
        self.numeric(target)
    }
}

fn parse_normalization(text: &str, file: &str) -> Result<Vec<(f64, f64)>, QualityError> {
    let csv = Csv::parse(text, file)?;
    let find = |word: &str| {
        csv.header
            .iter()
            .position(|h| h.to_ascii_lowercase().contains(word))
            .ok_or_else(|| QualityError::MissingColumn {
                file: file.to_string(),
                column: format!("<a column whose name contains {word:?}>"),
            })
    };
    let (code, size) = (find("code")?, find("size")?);
    let mut out = Vec::new();
    for (line, cells) in &csv.rows {
        let num = |c: usize| match classify(&cells[c]) {
            Cell::Number(v) => Ok(v),
            _ => Err(QualityError::Parse {
                file: file.to_string(),
                line: *line,
                column: csv.header[c].clone(),
                message: format!("{:?} is not a number", cells[c]),
            }),
        };
        out.push((num(code)?, num(size)?));
    }
    Ok(out)
}

/// The input columns of a CQA model, chosen on a training table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureSet {
    /// Feature names, in matrix column order.
    pub names: Vec<String>,
    /// Source file of each feature.
    pub sources: Vec<Source>,
    /// Feature-role columns left out because they hold text.
    pub skipped_text: Vec<String>,
}

impl FeatureSet {
    /// Process columns of `Process.csv` (not its final results), numeric
    /// raw-material columns, product code and batch size of `table`, never
    /// `target` itself.
    pub fn select(table: &BatchTable, target: &str) -> Result<Self, QualityError> {
        table.target_values(target)?;
        let mut names = Vec::new();
        let mut sources = Vec::new();
        let mut skipped_text = Vec::new();
        for c in table.columns() {
            if c.name == target || !c.role().is_feature() {
                continue;
            }
            if table.is_text(&c.name) && c.role() != ColumnRole::ProductCode {
                skipped_text.push(c.name.clone());
                continue;
            }
            names.push(c.name.clone());
            sources.push(c.source);
        }
        if names.is_empty() {
            return Err(QualityError::Input(format!(
                "no feature columns in {} / {}",
                table.file(Source::Laboratory),
                table.file(Source::Process)
            )));
        }
        Ok(Self {
            names,
            sources,
            skipped_text,
        })
    }

    /// Row-major feature matrix of `table` (one row per batch, `NaN` = missing).
    /// Missing batch sizes are taken from `Normalization.csv` by product code.
    pub fn matrix(&self, table: &BatchTable) -> Result<Vec<Vec<f64>>, QualityError> {
        let mut cols = Vec::with_capacity(self.names.len());
        for (name, &source) in self.names.iter().zip(&self.sources) {
            if table.column(name).is_none() {
                return Err(QualityError::MissingColumn {
                    file: table.file(source).to_string(),
                    column: name.clone(),
                });
            }
            let mut values = table.numeric(name)?;
            if column_role(source, name) == ColumnRole::BatchSize
                && values.iter().any(|v| v.is_nan())
                && !table.batch_sizes().is_empty()
            {
                let codes = table.numeric(PRODUCT_CODE)?;
                for (v, code) in values.iter_mut().zip(codes) {
                    if v.is_nan() {
                        if let Some(&(_, size)) =
                            table.batch_sizes().iter().find(|(c, _)| *c == code)
                        {
                            *v = size;
                        }
                    }
                }
            }
            cols.push(values);
        }
        Ok((0..table.len())
            .map(|r| cols.iter().map(|c| c[r]).collect())
            .collect())
    }
}
