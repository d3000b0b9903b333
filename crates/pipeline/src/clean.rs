//! Built-in cleaners. Each is fitted on training rows; at predict time none drops a row.

use crate::codec::{step_from_bytes, step_to_bytes};
use crate::steps::{parse_settings, present, quantile, select, sorted};
use promoml_core::{
    Cleaner, ColumnData, ColumnType, Error, FittedCleaner, Frame, Registry, Result, SettingDoc, StepContext,
    StepFactory,
};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

const ALL: [ColumnType; 4] = [ColumnType::Numeric, ColumnType::Categorical, ColumnType::Boolean, ColumnType::Timestamp];

/// Register the built-in cleaners.
pub fn register(r: &mut Registry) {
    r.add_cleaner(Factory::DropDuplicates);
    r.add_cleaner(Factory::Impute);
    r.add_cleaner(Factory::ClipOutliers);
    r.add_cleaner(Factory::DropColumns);
    r.add_cleaner(Factory::SelectColumns);
    r.add_cleaner(Factory::Filter);
}

/// The built-in cleaner kinds.
#[derive(Debug, Clone, Copy)]
pub enum Factory {
    /// `drop_duplicates`.
    DropDuplicates,
    /// `impute`.
    Impute,
    /// `clip_outliers`.
    ClipOutliers,
    /// `drop_columns`.
    DropColumns,
    /// `select_columns`.
    SelectColumns,
    /// `filter`.
    Filter,
}

const COLUMNS_DOC: SettingDoc = SettingDoc {
    name: "columns",
    accepts: "list of column names",
    default: "every eligible column",
    doc: "columns the step applies to",
};

impl StepFactory<dyn Cleaner> for Factory {
    fn kind(&self) -> &str {
        match self {
            Factory::DropDuplicates => "drop_duplicates",
            Factory::Impute => "impute",
            Factory::ClipOutliers => "clip_outliers",
            Factory::DropColumns => "drop_columns",
            Factory::SelectColumns => "select_columns",
            Factory::Filter => "filter",
        }
    }
    fn description(&self) -> &str {
        match self {
            Factory::DropDuplicates => {
                "drop repeated training rows (all columns, or a subset); never drops at predict time"
            }
            Factory::Impute => {
                "fill missing values with statistics of the training rows, optionally adding was-missing indicators"
            }
            Factory::ClipOutliers => "clip numeric values to bounds learned on training rows (IQR fences or quantiles)",
            Factory::DropColumns => "remove columns",
            Factory::SelectColumns => "keep only these columns (plus target, treatment and id)",
            Factory::Filter => "keep training rows that satisfy a condition; every row is kept at predict time",
        }
    }
    fn settings(&self) -> Vec<SettingDoc> {
        match self {
            Factory::DropDuplicates => vec![SettingDoc { doc: "columns that define a duplicate", ..COLUMNS_DOC }],
            Factory::Impute => vec![
                SettingDoc {
                    name: "strategy",
                    accepts: "\"mean\" | \"median\" | \"mode\" | \"constant\"",
                    default: "\"median\"",
                    doc: "fill value for numeric columns; categorical and boolean columns use the mode unless `constant`",
                },
                SettingDoc {
                    name: "value",
                    accepts: "number or string",
                    default: "none",
                    doc: "the fill value for `constant`",
                },
                SettingDoc {
                    name: "indicator",
                    accepts: "bool",
                    default: "false",
                    doc: "add `<column>_was_missing` for columns with missing training values",
                },
                COLUMNS_DOC,
            ],
            Factory::ClipOutliers => vec![
                SettingDoc {
                    name: "method",
                    accepts: "\"iqr\" | \"quantile\"",
                    default: "\"iqr\"",
                    doc: "how bounds are set",
                },
                SettingDoc {
                    name: "k",
                    accepts: "float in [0, 1000]",
                    default: "1.5",
                    doc: "IQR fence multiplier: [Q1 - k·IQR, Q3 + k·IQR]",
                },
                SettingDoc {
                    name: "lower",
                    accepts: "float in [0, 1]",
                    default: "0.01",
                    doc: "lower quantile for `quantile`",
                },
                SettingDoc {
                    name: "upper",
                    accepts: "float in [0, 1]",
                    default: "0.99",
                    doc: "upper quantile for `quantile`",
                },
                SettingDoc { doc: "numeric columns to clip", ..COLUMNS_DOC },
            ],
            Factory::DropColumns => vec![SettingDoc { default: "required", doc: "columns to remove", ..COLUMNS_DOC }],
            Factory::SelectColumns => vec![SettingDoc { default: "required", doc: "columns to keep", ..COLUMNS_DOC }],
            Factory::Filter => vec![
                SettingDoc { name: "column", accepts: "column name", default: "required", doc: "the column tested" },
                SettingDoc {
                    name: "op",
                    accepts: "\"==\" \"!=\" \"<\" \"<=\" \">\" \">=\" \"is_missing\" \"not_missing\"",
                    default: "required",
                    doc: "comparison; rows where it holds are kept",
                },
                SettingDoc {
                    name: "value",
                    accepts: "number, string or bool",
                    default: "none",
                    doc: "right-hand side",
                },
            ],
        }
    }
    fn build(&self, settings: &serde_json::Value) -> Result<Box<dyn Cleaner>> {
        Ok(match self {
            Factory::DropDuplicates => Box::new(parse_settings::<DropDuplicates>(settings)?),
            Factory::Impute => {
                let s: Impute = parse_settings(settings)?;
                if s.strategy == ImputeStrategy::Constant && s.value.is_none() {
                    return Err(Error::config("value", "strategy \"constant\" needs a `value`"));
                }
                Box::new(s)
            }
            Factory::ClipOutliers => {
                let s: ClipOutliers = parse_settings(settings)?;
                crate::limits::real(s.k, 0.0, 1000.0).map_err(|m| Error::config("k", m))?;
                if !(0.0..=1.0).contains(&s.lower) || !(0.0..=1.0).contains(&s.upper) || s.lower >= s.upper {
                    return Err(Error::config("lower", "need 0 <= lower < upper <= 1"));
                }
                Box::new(s)
            }
            Factory::DropColumns => Box::new(ColumnSet { keep: false, ..parse_settings(settings)? }),
            Factory::SelectColumns => Box::new(ColumnSet { keep: true, ..parse_settings(settings)? }),
            Factory::Filter => {
                let s: Filter = parse_settings(settings)?;
                if !matches!(s.op.as_str(), "is_missing" | "not_missing") && s.value.is_none() {
                    return Err(Error::config("value", format!("op \"{}\" needs a `value`", s.op)));
                }
                Box::new(s)
            }
        })
    }
    fn load(&self, bytes: &[u8]) -> Result<Box<dyn FittedCleaner>> {
        let kind = self.kind();
        Ok(match self {
            Factory::DropDuplicates => Box::new(step_from_bytes::<FittedDropDuplicates>(kind, bytes)?),
            Factory::Impute => Box::new(step_from_bytes::<FittedImpute>(kind, bytes)?),
            Factory::ClipOutliers => Box::new(step_from_bytes::<FittedClip>(kind, bytes)?),
            Factory::DropColumns | Factory::SelectColumns => Box::new(step_from_bytes::<FittedColumnSet>(kind, bytes)?),
            Factory::Filter => Box::new(step_from_bytes::<Filter>(kind, bytes)?),
        })
    }
}

/// Hashable key of one cell.
fn cell_key(data: &ColumnData, i: usize) -> u64 {
    match data {
        ColumnData::Numeric(v) => {
            if v[i].is_nan() {
                u64::MAX
            } else {
                (v[i] + 0.0).to_bits()
            }
        }
        ColumnData::Categorical { codes, .. } => codes[i].map_or(u64::MAX, u64::from),
        ColumnData::Boolean(v) => v[i].map_or(u64::MAX, u64::from),
        ColumnData::Timestamp(v) => v[i].map_or(u64::MAX, |t| t as u64),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DropDuplicates {
    columns: Option<Vec<String>>,
}

impl Cleaner for DropDuplicates {
    fn fit(&self, train: &Frame, ctx: &StepContext) -> Result<Box<dyn FittedCleaner>> {
        let cols = match &self.columns {
            Some(c) => select(train, &Some(c.clone()), &StepContext::default(), &ALL)?,
            None => train.names().iter().map(|s| s.to_string()).collect(),
        };
        let _ = ctx;
        Ok(Box::new(FittedDropDuplicates { columns: cols }))
    }
}

#[derive(Serialize, Deserialize)]
struct FittedDropDuplicates {
    columns: Vec<String>,
}

impl FittedCleaner for FittedDropDuplicates {
    fn apply_train(&self, frame: Frame) -> Result<Frame> {
        let cols: Vec<&ColumnData> =
            self.columns.iter().map(|c| frame.require(c, "duplicate key").map(|c| &c.data)).collect::<Result<_>>()?;
        let mut seen = HashSet::with_capacity(frame.n_rows());
        let keep: Vec<usize> = (0..frame.n_rows())
            .filter(|&i| seen.insert(cols.iter().map(|c| cell_key(c, i)).collect::<Vec<u64>>()))
            .collect();
        Ok(if keep.len() == frame.n_rows() { frame } else { frame.take(&keep) })
    }
    fn apply_predict(&self, frame: Frame) -> Result<Frame> {
        Ok(frame)
    }
    fn save(&self) -> Result<Vec<u8>> {
        step_to_bytes("drop_duplicates", self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ImputeStrategy {
    Mean,
    Median,
    Mode,
    Constant,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Impute {
    #[serde(default = "median")]
    strategy: ImputeStrategy,
    value: Option<serde_json::Value>,
    #[serde(default)]
    indicator: bool,
    columns: Option<Vec<String>>,
}

fn median() -> ImputeStrategy {
    ImputeStrategy::Median
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Fill {
    Num(f64),
    Code(String),
    Bool(bool),
    Time(i64),
}

/// The most frequent non-missing cell (ties: the first seen).
fn mode_of(data: &ColumnData) -> Option<usize> {
    let mut counts: HashMap<u64, (usize, usize)> = HashMap::new();
    for i in 0..data.len() {
        if !data.is_missing(i) {
            let e = counts.entry(cell_key(data, i)).or_insert((0, i));
            e.0 += 1;
        }
    }
    counts.values().max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1))).map(|&(_, i)| i)
}

impl Cleaner for Impute {
    fn fit(&self, train: &Frame, ctx: &StepContext) -> Result<Box<dyn FittedCleaner>> {
        let cols = select(train, &self.columns, ctx, &ALL)?;
        let mut fills = Vec::new();
        for name in cols {
            let data = &train.require(&name, "impute")?.data;
            let had_missing = data.missing_count() > 0;
            if data.missing_count() == data.len() {
                return Err(Error::data(format!(
                    "impute: column `{name}` has no values in the training rows; drop it with `data.drop`"
                )));
            }
            let fill = match (self.strategy, data) {
                (ImputeStrategy::Constant, d) => {
                    let v = self.value.as_ref().expect("checked at build");
                    match (d, v) {
                        (ColumnData::Numeric(_), serde_json::Value::Number(n)) => Fill::Num(n.as_f64().unwrap_or(0.0)),
                        (ColumnData::Categorical { .. }, serde_json::Value::String(s)) => Fill::Code(s.clone()),
                        (ColumnData::Categorical { .. }, serde_json::Value::Number(n)) => Fill::Code(n.to_string()),
                        (ColumnData::Boolean(_), serde_json::Value::Bool(b)) => Fill::Bool(*b),
                        (ColumnData::Timestamp(_), serde_json::Value::Number(n)) => Fill::Time(n.as_i64().unwrap_or(0)),
                        (d, v) => {
                            return Err(Error::config(
                                "value",
                                format!("{v} cannot fill column `{name}` of type {:?}", d.column_type()),
                            ));
                        }
                    }
                }
                (s, ColumnData::Numeric(v)) => {
                    let p = sorted(present(v));
                    Fill::Num(match s {
                        ImputeStrategy::Mean => p.iter().sum::<f64>() / p.len() as f64,
                        ImputeStrategy::Mode => data.value_f64(mode_of(data).expect("has values")),
                        _ => quantile(&p, 0.5),
                    })
                }
                (s, ColumnData::Timestamp(v)) => {
                    let p = sorted(v.iter().flatten().map(|&t| t as f64).collect());
                    Fill::Time(match s {
                        ImputeStrategy::Mean => (p.iter().sum::<f64>() / p.len() as f64) as i64,
                        ImputeStrategy::Mode => data.value_f64(mode_of(data).expect("has values")) as i64,
                        _ => quantile(&p, 0.5) as i64,
                    })
                }
                (_, ColumnData::Categorical { .. }) => {
                    Fill::Code(data.value_string(mode_of(data).expect("has values")).expect("present"))
                }
                (_, ColumnData::Boolean(v)) => Fill::Bool(v[mode_of(data).expect("has values")].expect("present")),
            };
            fills.push((name, fill, self.indicator && had_missing));
        }
        Ok(Box::new(FittedImpute { fills }))
    }
}

#[derive(Serialize, Deserialize)]
struct FittedImpute {
    fills: Vec<(String, Fill, bool)>,
}

impl FittedCleaner for FittedImpute {
    fn apply_predict(&self, mut frame: Frame) -> Result<Frame> {
        for (name, fill, indicator) in &self.fills {
            let data = &frame.require(name, "imputed")?.data;
            if *indicator {
                let flags = ColumnData::Boolean((0..data.len()).map(|i| Some(data.is_missing(i))).collect());
                frame.set(&format!("{name}_was_missing"), flags)?;
            }
            let data = &frame.require(name, "imputed")?.data;
            let filled = match (data, fill) {
                (ColumnData::Numeric(v), Fill::Num(x)) => {
                    ColumnData::Numeric(v.iter().map(|&a| if a.is_nan() { *x } else { a }).collect())
                }
                (ColumnData::Timestamp(v), Fill::Time(t)) => {
                    ColumnData::Timestamp(v.iter().map(|a| a.or(Some(*t))).collect())
                }
                (ColumnData::Boolean(v), Fill::Bool(b)) => {
                    ColumnData::Boolean(v.iter().map(|a| a.or(Some(*b))).collect())
                }
                (ColumnData::Categorical { .. }, Fill::Code(s)) => ColumnData::categorical_from(
                    (0..data.len()).map(|i| data.value_string(i).or_else(|| Some(s.clone()))),
                ),
                (d, _) => {
                    return Err(Error::data(format!(
                        "impute: column `{name}` is {:?} here but had another type in the training rows",
                        d.column_type()
                    )));
                }
            };
            frame.set(name, filled)?;
        }
        Ok(frame)
    }
    fn save(&self) -> Result<Vec<u8>> {
        step_to_bytes("impute", self)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClipOutliers {
    #[serde(default = "iqr")]
    method: ClipMethod,
    #[serde(default = "one_point_five")]
    k: f64,
    #[serde(default = "p01")]
    lower: f64,
    #[serde(default = "p99")]
    upper: f64,
    columns: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ClipMethod {
    Iqr,
    Quantile,
}

fn iqr() -> ClipMethod {
    ClipMethod::Iqr
}
fn one_point_five() -> f64 {
    1.5
}
fn p01() -> f64 {
    0.01
}
fn p99() -> f64 {
    0.99
}

impl Cleaner for ClipOutliers {
    fn fit(&self, train: &Frame, ctx: &StepContext) -> Result<Box<dyn FittedCleaner>> {
        let mut bounds = Vec::new();
        for name in select(train, &self.columns, ctx, &[ColumnType::Numeric])? {
            let ColumnData::Numeric(v) = &train.require(&name, "clipped")?.data else {
                unreachable!("selected numeric")
            };
            let p = sorted(present(v));
            if p.is_empty() {
                continue;
            }
            let (lo, hi) = match self.method {
                ClipMethod::Iqr => {
                    let (q1, q3) = (quantile(&p, 0.25), quantile(&p, 0.75));
                    (q1 - self.k * (q3 - q1), q3 + self.k * (q3 - q1))
                }
                ClipMethod::Quantile => (quantile(&p, self.lower), quantile(&p, self.upper)),
            };
            bounds.push((name, lo, hi));
        }
        Ok(Box::new(FittedClip { bounds }))
    }
}

#[derive(Serialize, Deserialize)]
struct FittedClip {
    bounds: Vec<(String, f64, f64)>,
}

impl FittedCleaner for FittedClip {
    fn apply_predict(&self, mut frame: Frame) -> Result<Frame> {
        for (name, lo, hi) in &self.bounds {
            let ColumnData::Numeric(v) = &frame.require(name, "clipped")?.data else {
                return Err(Error::data(format!("clip_outliers: column `{name}` is no longer numeric")));
            };
            let clipped = v.iter().map(|&x| if x.is_nan() { x } else { x.clamp(*lo, *hi) }).collect();
            frame.set(name, ColumnData::Numeric(clipped))?;
        }
        Ok(frame)
    }
    fn save(&self) -> Result<Vec<u8>> {
        step_to_bytes("clip_outliers", self)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ColumnSet {
    columns: Vec<String>,
    #[serde(skip)]
    keep: bool,
}

impl Cleaner for ColumnSet {
    fn fit(&self, train: &Frame, ctx: &StepContext) -> Result<Box<dyn FittedCleaner>> {
        for c in &self.columns {
            train.require(c, if self.keep { "selected" } else { "dropped" })?;
        }
        let remove: Vec<String> = if self.keep {
            train
                .names()
                .into_iter()
                .filter(|n| !self.columns.iter().any(|c| c == n) && !ctx.protected.iter().any(|p| p == n))
                .map(str::to_string)
                .collect()
        } else {
            self.columns.clone()
        };
        Ok(Box::new(FittedColumnSet { remove }))
    }
}

#[derive(Serialize, Deserialize)]
struct FittedColumnSet {
    remove: Vec<String>,
}

impl FittedCleaner for FittedColumnSet {
    fn apply_predict(&self, mut frame: Frame) -> Result<Frame> {
        for c in &self.remove {
            frame.remove(c);
        }
        Ok(frame)
    }
    fn save(&self) -> Result<Vec<u8>> {
        step_to_bytes("drop_columns/select_columns", self)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Filter {
    column: String,
    op: String,
    value: Option<serde_json::Value>,
}

impl Cleaner for Filter {
    fn fit(&self, train: &Frame, _ctx: &StepContext) -> Result<Box<dyn FittedCleaner>> {
        let ops = ["==", "!=", "<", "<=", ">", ">=", "is_missing", "not_missing"];
        if !ops.contains(&self.op.as_str()) {
            return Err(Error::config("op", format!("unknown op \"{}\" (known: {})", self.op, ops.join(" "))));
        }
        let col = train.require(&self.column, "filter")?;
        if let (ColumnData::Categorical { .. }, Some(serde_json::Value::Number(_)) | Some(serde_json::Value::Bool(_))) =
            (&col.data, &self.value)
        {
            return Err(Error::config(
                "value",
                format!("column `{}` is categorical: compare it with a string", self.column),
            ));
        }
        Ok(Box::new(self.clone()))
    }
}

impl Filter {
    fn holds(&self, data: &ColumnData, i: usize) -> bool {
        use std::cmp::Ordering;
        let missing = data.is_missing(i);
        match self.op.as_str() {
            "is_missing" => return missing,
            "not_missing" => return !missing,
            _ if missing => return false,
            _ => {}
        }
        let v = self.value.as_ref().expect("checked at build");
        let ord = match v {
            serde_json::Value::Number(n) => data.value_f64(i).partial_cmp(&n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::Bool(b) => data.value_f64(i).partial_cmp(&f64::from(u8::from(*b))),
            serde_json::Value::String(s) => data.value_string(i).map(|x| x.as_str().cmp(s.as_str())),
            _ => None,
        };
        let Some(ord) = ord else { return false };
        match self.op.as_str() {
            "==" => ord == Ordering::Equal,
            "!=" => ord != Ordering::Equal,
            "<" => ord == Ordering::Less,
            "<=" => ord != Ordering::Greater,
            ">" => ord == Ordering::Greater,
            _ => ord != Ordering::Less,
        }
    }
}

impl FittedCleaner for Filter {
    fn apply_train(&self, frame: Frame) -> Result<Frame> {
        let data = &frame.require(&self.column, "filter")?.data;
        let keep: Vec<usize> = (0..frame.n_rows()).filter(|&i| self.holds(data, i)).collect();
        if keep.is_empty() {
            return Err(Error::data(format!("filter `{} {}` removed every training row", self.column, self.op)));
        }
        Ok(frame.take(&keep))
    }
    fn apply_predict(&self, frame: Frame) -> Result<Frame> {
        Ok(frame)
    }
    fn save(&self) -> Result<Vec<u8>> {
        step_to_bytes("filter", self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use promoml_core::io::{CsvOptions, read_csv_str};
    use serde_json::json;

    fn frame() -> Frame {
        read_csv_str("a,b,c\n1,x,TRUE\n1,x,TRUE\n,y,\n100,,FALSE\n3,x,FALSE\n", "t.csv", &CsvOptions::default())
            .unwrap()
    }

    fn fit(f: Factory, s: serde_json::Value) -> Box<dyn FittedCleaner> {
        f.build(&s).unwrap().fit(&frame(), &StepContext::default()).unwrap()
    }

    #[test]
    fn duplicates_dropped_only_in_training() {
        let c = fit(Factory::DropDuplicates, json!({}));
        assert_eq!(c.apply_train(frame()).unwrap().n_rows(), 4);
        assert_eq!(c.apply_predict(frame()).unwrap().n_rows(), 5);
    }

    #[test]
    fn impute_median_mode_and_indicator() {
        let c = fit(Factory::Impute, json!({"strategy": "median", "indicator": true}));
        let f = c.apply_predict(frame()).unwrap();
        // median of 1, 1, 100, 3 is 2
        assert_eq!(f.column("a").unwrap().data.value_f64(2), 2.0);
        assert_eq!(f.column("b").unwrap().data.value_string(3).as_deref(), Some("x"));
        assert_eq!(
            f.column("a_was_missing").unwrap().data,
            ColumnData::Boolean(vec![Some(false), Some(false), Some(true), Some(false), Some(false)])
        );
        assert_eq!(f.column("c").unwrap().data.missing_count(), 0);
    }

    #[test]
    fn clip_and_filter_and_columns() {
        let c = fit(Factory::ClipOutliers, json!({"method": "quantile", "lower": 0.0, "upper": 0.5}));
        let f = c.apply_predict(frame()).unwrap();
        assert_eq!(f.column("a").unwrap().data.value_f64(3), 2.0);
        let c = fit(Factory::Filter, json!({"column": "a", "op": "<", "value": 50}));
        assert_eq!(c.apply_train(frame()).unwrap().n_rows(), 3);
        assert_eq!(c.apply_predict(frame()).unwrap().n_rows(), 5);
        let c = fit(Factory::DropColumns, json!({"columns": ["b"]}));
        assert_eq!(c.apply_predict(frame()).unwrap().names(), vec!["a", "c"]);
        let e = Factory::Impute.build(&json!({"stratgy": "mean"})).err().unwrap().to_string();
        assert!(e.contains("did you mean `strategy`"), "{e}");
    }

    #[test]
    fn every_cleaner_round_trips_through_save_and_load() {
        let cases = [
            (Factory::DropDuplicates, json!({})),
            (Factory::Impute, json!({"strategy": "mean", "indicator": true})),
            (Factory::Impute, json!({"strategy": "constant", "value": 7, "columns": ["a"]})),
            (Factory::ClipOutliers, json!({"method": "quantile", "lower": 0.1, "upper": 0.6})),
            (Factory::DropColumns, json!({"columns": ["b"]})),
            (Factory::SelectColumns, json!({"columns": ["a"]})),
            (Factory::Filter, json!({"column": "a", "op": ">=", "value": 2})),
        ];
        for (f, s) in cases {
            let fitted = fit(f, s);
            let loaded = f.load(&fitted.save().unwrap()).unwrap();
            // Debug text compares NaN cells too (NaN != NaN under PartialEq).
            let show = |c: &dyn FittedCleaner, train: bool| {
                format!("{:?}", if train { c.apply_train(frame()) } else { c.apply_predict(frame()) }.unwrap())
            };
            assert_eq!(show(&*loaded, false), show(&*fitted, false), "{}", f.kind());
            assert_eq!(show(&*loaded, true), show(&*fitted, true), "{}", f.kind());
            let e = f.load(b"{\"nonsense\": 1").err().unwrap().to_string();
            assert!(e.contains(f.kind()), "{e}");
        }
    }
}
