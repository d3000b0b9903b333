//! A typed columnar table: the shape data has between loading and feature building.

use crate::{Error, Result};

/// The type of a column, as inferred from data or declared in TOML (`[data.types]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// Real numbers; missing values are NaN.
    Numeric,
    /// Labels from a finite set of levels.
    Categorical,
    /// `true` / `false`.
    Boolean,
    /// A point in time, stored as seconds since 1970-01-01 UTC.
    Timestamp,
}

impl ColumnType {
    /// All column types, for error messages.
    pub const ALL: [&'static str; 4] = ["numeric", "categorical", "boolean", "timestamp"];
}

/// The values of one column. Missing values are kept as missing: NaN for numbers, `None` otherwise.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    /// Numbers; NaN marks a missing value (infinities are rejected at load time).
    Numeric(Vec<f64>),
    /// Dictionary-encoded labels: `codes[i]` indexes `levels`.
    Categorical {
        /// Distinct labels in first-seen order.
        levels: Vec<String>,
        /// One code per row, `None` when missing.
        codes: Vec<Option<u32>>,
    },
    /// Booleans.
    Boolean(Vec<Option<bool>>),
    /// Seconds since the Unix epoch.
    Timestamp(Vec<Option<i64>>),
}

impl ColumnData {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Numeric(v) => v.len(),
            ColumnData::Categorical { codes, .. } => codes.len(),
            ColumnData::Boolean(v) => v.len(),
            ColumnData::Timestamp(v) => v.len(),
        }
    }
    /// True when the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The column's type.
    pub fn column_type(&self) -> ColumnType {
        match self {
            ColumnData::Numeric(_) => ColumnType::Numeric,
            ColumnData::Categorical { .. } => ColumnType::Categorical,
            ColumnData::Boolean(_) => ColumnType::Boolean,
            ColumnData::Timestamp(_) => ColumnType::Timestamp,
        }
    }
    /// Whether row `i` is missing.
    pub fn is_missing(&self, i: usize) -> bool {
        match self {
            ColumnData::Numeric(v) => v[i].is_nan(),
            ColumnData::Categorical { codes, .. } => codes[i].is_none(),
            ColumnData::Boolean(v) => v[i].is_none(),
            ColumnData::Timestamp(v) => v[i].is_none(),
        }
    }
    /// Number of missing values.
    pub fn missing_count(&self) -> usize {
        (0..self.len()).filter(|&i| self.is_missing(i)).count()
    }
    /// Row `i` as a number: numbers as is, booleans as 0/1, timestamps as seconds,
    /// categories as their code. NaN when missing.
    pub fn value_f64(&self, i: usize) -> f64 {
        match self {
            ColumnData::Numeric(v) => v[i],
            ColumnData::Categorical { codes, .. } => codes[i].map_or(f64::NAN, f64::from),
            ColumnData::Boolean(v) => v[i].map_or(f64::NAN, |b| if b { 1.0 } else { 0.0 }),
            ColumnData::Timestamp(v) => v[i].map_or(f64::NAN, |t| t as f64),
        }
    }
    /// Row `i` as text, for categorical keys and messages; `None` when missing.
    pub fn value_string(&self, i: usize) -> Option<String> {
        match self {
            ColumnData::Numeric(v) => (!v[i].is_nan()).then(|| format_number(v[i])),
            ColumnData::Categorical { levels, codes } => codes[i].map(|c| levels[c as usize].clone()),
            ColumnData::Boolean(v) => v[i].map(|b| if b { "TRUE" } else { "FALSE" }.to_string()),
            ColumnData::Timestamp(v) => v[i].map(|t| t.to_string()),
        }
    }
    /// A new column with the rows at `idx`, in that order.
    pub fn take(&self, idx: &[usize]) -> ColumnData {
        match self {
            ColumnData::Numeric(v) => ColumnData::Numeric(idx.iter().map(|&i| v[i]).collect()),
            ColumnData::Categorical { levels, codes } => {
                ColumnData::Categorical { levels: levels.clone(), codes: idx.iter().map(|&i| codes[i]).collect() }
            }
            ColumnData::Boolean(v) => ColumnData::Boolean(idx.iter().map(|&i| v[i]).collect()),
            ColumnData::Timestamp(v) => ColumnData::Timestamp(idx.iter().map(|&i| v[i]).collect()),
        }
    }
    /// Build a categorical column from optional strings.
    pub fn categorical_from<S: AsRef<str>>(values: impl IntoIterator<Item = Option<S>>) -> ColumnData {
        let mut levels: Vec<String> = Vec::new();
        let mut index = std::collections::HashMap::<String, u32>::new();
        let codes = values
            .into_iter()
            .map(|v| {
                v.map(|s| {
                    let s = s.as_ref();
                    *index.entry(s.to_string()).or_insert_with(|| {
                        levels.push(s.to_string());
                        (levels.len() - 1) as u32
                    })
                })
            })
            .collect();
        ColumnData::Categorical { levels, codes }
    }
}

/// Print a number without a trailing `.0` for integers, as a category label would read.
pub fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 { format!("{}", x as i64) } else { format!("{x}") }
}

/// A named column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Column name, unique within its frame.
    pub name: String,
    /// The values.
    pub data: ColumnData,
}

/// Where a frame's rows came from: the file and each row's line in it, so that an error found
/// after loading (a missing target, a bad split value) can name `file:line` instead of a row
/// index, and the values a reader turned into missing on request
/// (`data.on_bad_value = { column = "missing" }`), counted per column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Origin {
    /// The file, as shown in messages.
    pub file: String,
    /// The 1-based line of each row in the file (rows in the frame's order).
    pub lines: Vec<usize>,
    /// Per column, how many unreadable values were read as missing.
    pub bad_as_missing: std::collections::BTreeMap<String, usize>,
}

/// A typed columnar table. All columns have the same length.
#[derive(Debug, Clone, Default)]
pub struct Frame {
    columns: Vec<Column>,
    rows: usize,
    origin: Option<std::sync::Arc<Origin>>,
}

/// Frames are equal when their columns are; where the rows came from does not count.
impl PartialEq for Frame {
    fn eq(&self, other: &Frame) -> bool {
        self.rows == other.rows && self.columns == other.columns
    }
}

impl Frame {
    /// A frame from columns; errors when lengths differ or names repeat.
    pub fn new(columns: Vec<Column>) -> Result<Frame> {
        let rows = columns.first().map_or(0, |c| c.data.len());
        for (i, c) in columns.iter().enumerate() {
            if c.data.len() != rows {
                return Err(Error::data(format!("column `{}` has {} rows, expected {rows}", c.name, c.data.len())));
            }
            if columns[..i].iter().any(|o| o.name == c.name) {
                return Err(Error::data(format!("column `{}` appears twice", c.name)));
            }
        }
        Ok(Frame { columns, rows, origin: None })
    }
    /// The same frame, remembering where its rows came from (`origin.lines` has one entry per row).
    pub fn with_origin(mut self, origin: Origin) -> Frame {
        debug_assert_eq!(origin.lines.len(), self.rows);
        self.origin = (origin.lines.len() == self.rows).then(|| std::sync::Arc::new(origin));
        self
    }
    /// Where the rows came from, when the frame was read from a file.
    pub fn origin(&self) -> Option<&Origin> {
        self.origin.as_deref()
    }
    /// Row `i` (0-based) as a place for messages: `file:line` when the frame was read from a
    /// file, else `row i+1`.
    pub fn row_place(&self, i: usize) -> String {
        match self.origin.as_deref().and_then(|o| o.lines.get(i).map(|l| (o, l))) {
            Some((o, l)) => format!("{}:{l}", o.file),
            None => format!("row {}", i + 1),
        }
    }
    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.rows
    }
    /// Number of columns.
    pub fn n_cols(&self) -> usize {
        self.columns.len()
    }
    /// The columns, in order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }
    /// Column names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_str()).collect()
    }
    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
    /// The column called `name`, or an error naming the closest existing column.
    pub fn require(&self, name: &str, role: &str) -> Result<&Column> {
        self.column(name).ok_or_else(|| {
            let hint =
                crate::did_you_mean(name, self.names()).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
            Error::data(format!(
                "{role} column `{name}` is not in the data (columns: {}){hint}",
                self.names().join(", ")
            ))
        })
    }
    /// Mutable access to the column called `name`.
    pub fn column_mut(&mut self, name: &str) -> Option<&mut Column> {
        self.columns.iter_mut().find(|c| c.name == name)
    }
    /// Add a column, or replace the one with the same name (keeping its position).
    pub fn set(&mut self, name: &str, data: ColumnData) -> Result<()> {
        if !self.columns.is_empty() && data.len() != self.rows {
            return Err(Error::data(format!("column `{name}` has {} rows, expected {}", data.len(), self.rows)));
        }
        if self.columns.is_empty() {
            self.rows = data.len();
        }
        match self.column_mut(name) {
            Some(c) => c.data = data,
            None => self.columns.push(Column { name: name.to_string(), data }),
        }
        Ok(())
    }
    /// Remove and return the column called `name`.
    pub fn remove(&mut self, name: &str) -> Option<Column> {
        let pos = self.columns.iter().position(|c| c.name == name)?;
        Some(self.columns.remove(pos))
    }
    /// A new frame with the rows at `idx`, in that order.
    pub fn take(&self, idx: &[usize]) -> Frame {
        Frame {
            columns: self.columns.iter().map(|c| Column { name: c.name.clone(), data: c.data.take(idx) }).collect(),
            rows: idx.len(),
            origin: self.origin.as_ref().map(|o| {
                std::sync::Arc::new(Origin {
                    file: o.file.clone(),
                    lines: idx.iter().map(|&i| o.lines[i]).collect(),
                    bad_as_missing: o.bad_as_missing.clone(),
                })
            }),
        }
    }
    /// Stack `other` under `self`; columns are matched by name and must have the same types.
    /// Categorical levels are merged.
    pub fn concat(&self, other: &Frame) -> Result<Frame> {
        let mut out = Vec::with_capacity(self.columns.len());
        for c in &self.columns {
            let o = other.require(&c.name, "concatenated")?;
            let data = match (&c.data, &o.data) {
                (ColumnData::Numeric(a), ColumnData::Numeric(b)) => {
                    ColumnData::Numeric(a.iter().chain(b).copied().collect())
                }
                (ColumnData::Boolean(a), ColumnData::Boolean(b)) => {
                    ColumnData::Boolean(a.iter().chain(b).copied().collect())
                }
                (ColumnData::Timestamp(a), ColumnData::Timestamp(b)) => {
                    ColumnData::Timestamp(a.iter().chain(b).copied().collect())
                }
                (ColumnData::Categorical { .. }, ColumnData::Categorical { .. }) => {
                    let n = c.data.len() + o.data.len();
                    ColumnData::categorical_from((0..n).map(|i| {
                        if i < c.data.len() { c.data.value_string(i) } else { o.data.value_string(i - c.data.len()) }
                    }))
                }
                (a, b) => {
                    return Err(Error::data(format!(
                        "column `{}` is {:?} in one part and {:?} in the other",
                        c.name,
                        a.column_type(),
                        b.column_type()
                    )));
                }
            };
            out.push(Column { name: c.name.clone(), data });
        }
        Frame::new(out)
    }
}
