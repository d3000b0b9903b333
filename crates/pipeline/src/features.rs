//! Built-in feature steps: encodings, scalings and date parts. Each learns from training rows
//! only and transforms training and new rows alike.

use crate::codec::{step_from_bytes, step_to_bytes};
use crate::steps::{parse_settings, present, select};
use promoml_core::io::civil_from_days;
use promoml_core::{
    ColumnData, ColumnType, Error, FeatureExtractor, FittedFeatures, Frame, Registry, Result, SettingDoc, StepContext,
    StepFactory,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Register the built-in feature steps.
pub fn register(r: &mut Registry) {
    for f in
        [Factory::OneHot, Factory::Ordinal, Factory::Standardize, Factory::MinMax, Factory::Log1p, Factory::DateParts]
    {
        r.add_feature(f);
    }
}

/// The built-in feature kinds.
#[derive(Debug, Clone, Copy)]
pub enum Factory {
    /// `one_hot`.
    OneHot,
    /// `ordinal`.
    Ordinal,
    /// `standardize`.
    Standardize,
    /// `min_max`.
    MinMax,
    /// `log1p`.
    Log1p,
    /// `date_parts`.
    DateParts,
}

const COLUMNS: SettingDoc = SettingDoc {
    name: "columns",
    accepts: "list of column names",
    default: "every eligible column",
    doc: "columns to transform",
};

impl StepFactory<dyn FeatureExtractor> for Factory {
    fn kind(&self) -> &str {
        match self {
            Factory::OneHot => "one_hot",
            Factory::Ordinal => "ordinal",
            Factory::Standardize => "standardize",
            Factory::MinMax => "min_max",
            Factory::Log1p => "log1p",
            Factory::DateParts => "date_parts",
        }
    }
    fn description(&self) -> &str {
        match self {
            Factory::OneHot => {
                "one 0/1 column per frequent category; rare and unseen categories share `<col>=__other__`"
            }
            Factory::Ordinal => "categories to integer codes by training frequency (unseen and missing: -1)",
            Factory::Standardize => "numeric columns to zero mean and unit variance (training statistics)",
            Factory::MinMax => "numeric columns to [0, 1] by training minimum and maximum",
            Factory::Log1p => "sign(x)·ln(1 + |x|) for skewed numeric columns (defined for every value)",
            Factory::DateParts => "timestamps to numeric parts: year, month, day, weekday, hour, day of year",
        }
    }
    fn settings(&self) -> Vec<SettingDoc> {
        match self {
            Factory::OneHot => vec![
                SettingDoc {
                    name: "max_levels",
                    accepts: "int in [1, 100000]",
                    default: "20",
                    doc: "most frequent levels kept per column; the rest go to `__other__`",
                },
                SettingDoc {
                    name: "min_frequency",
                    accepts: "int in [1, 1000000000]",
                    default: "1",
                    doc: "levels seen fewer times in training go to `__other__`",
                },
                SettingDoc { doc: "categorical columns to encode", ..COLUMNS },
            ],
            Factory::DateParts => vec![
                SettingDoc {
                    name: "parts",
                    accepts: "list of \"year\" \"month\" \"day\" \"weekday\" \"hour\" \"dayofyear\" \"epoch_days\"",
                    default: "[\"year\", \"month\", \"day\", \"weekday\", \"hour\"]",
                    doc: "parts to extract, as `<col>_<part>`; the timestamp column is replaced",
                },
                SettingDoc { doc: "timestamp columns", ..COLUMNS },
            ],
            Factory::Ordinal => vec![SettingDoc { doc: "categorical columns to encode", ..COLUMNS }],
            _ => vec![SettingDoc { doc: "numeric columns to transform", ..COLUMNS }],
        }
    }
    fn build(&self, settings: &serde_json::Value) -> Result<Box<dyn FeatureExtractor>> {
        Ok(match self {
            Factory::OneHot => {
                let s: OneHot = parse_settings(settings)?;
                crate::limits::count(s.max_levels, 1, 100_000).map_err(|m| Error::config("max_levels", m))?;
                crate::limits::count(s.min_frequency, 1, 1_000_000_000)
                    .map_err(|m| Error::config("min_frequency", m))?;
                Box::new(s)
            }
            Factory::Ordinal => Box::new(Ordinal(parse_settings::<Columns>(settings)?.columns)),
            Factory::Standardize => {
                Box::new(Scale { kind: ScaleKind::Standard, columns: parse_settings::<Columns>(settings)?.columns })
            }
            Factory::MinMax => {
                Box::new(Scale { kind: ScaleKind::MinMax, columns: parse_settings::<Columns>(settings)?.columns })
            }
            Factory::Log1p => {
                Box::new(Scale { kind: ScaleKind::Log1p, columns: parse_settings::<Columns>(settings)?.columns })
            }
            Factory::DateParts => {
                let s: DateParts = parse_settings(settings)?;
                for p in &s.parts {
                    if !PARTS.contains(&p.as_str()) {
                        let hint = promoml_core::did_you_mean(p, PARTS)
                            .map(|x| format!("; did you mean \"{x}\"?"))
                            .unwrap_or_default();
                        return Err(Error::config(
                            "parts",
                            format!("unknown part \"{p}\" (known: {}){hint}", PARTS.join(", ")),
                        ));
                    }
                }
                Box::new(s)
            }
        })
    }
    fn load(&self, bytes: &[u8]) -> Result<Box<dyn FittedFeatures>> {
        let kind = self.kind();
        Ok(match self {
            Factory::OneHot => Box::new(step_from_bytes::<FittedOneHot>(kind, bytes)?),
            Factory::Ordinal => Box::new(step_from_bytes::<FittedOrdinal>(kind, bytes)?),
            Factory::Standardize | Factory::MinMax | Factory::Log1p => {
                Box::new(step_from_bytes::<FittedScale>(kind, bytes)?)
            }
            Factory::DateParts => Box::new(step_from_bytes::<FittedDateParts>(kind, bytes)?),
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Columns {
    columns: Option<Vec<String>>,
}

/// One-hot encoding; also used automatically for categorical columns no step encoded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OneHot {
    /// Columns (default: every categorical column).
    pub columns: Option<Vec<String>>,
    /// Most frequent levels kept per column.
    #[serde(default = "twenty")]
    pub max_levels: usize,
    /// Minimum training count of a kept level.
    #[serde(default = "one")]
    pub min_frequency: usize,
}

fn twenty() -> usize {
    20
}
fn one() -> usize {
    1
}

/// Levels of a categorical column by descending training frequency (ties by name).
fn levels_by_frequency(data: &ColumnData) -> Vec<(String, usize)> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for i in 0..data.len() {
        if let Some(s) = data.value_string(i) {
            *counts.entry(s).or_default() += 1;
        }
    }
    let mut v: Vec<(String, usize)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

impl FeatureExtractor for OneHot {
    fn fit(&self, train: &Frame, ctx: &StepContext) -> Result<Box<dyn FittedFeatures>> {
        let mut plan = Vec::new();
        for name in select(train, &self.columns, ctx, &[ColumnType::Categorical])? {
            let data = &train.require(&name, "one_hot")?.data;
            let all = levels_by_frequency(data);
            let kept: Vec<String> = all
                .iter()
                .filter(|(_, n)| *n >= self.min_frequency)
                .take(self.max_levels)
                .map(|(s, _)| s.clone())
                .collect();
            let other = kept.len() < all.len();
            let missing = data.missing_count() > 0;
            plan.push(OneHotColumn { name, kept, other, missing });
        }
        Ok(Box::new(FittedOneHot(plan)))
    }
}

#[derive(Serialize, Deserialize)]
struct OneHotColumn {
    name: String,
    kept: Vec<String>,
    other: bool,
    missing: bool,
}

#[derive(Serialize, Deserialize)]
struct FittedOneHot(Vec<OneHotColumn>);

impl FittedFeatures for FittedOneHot {
    fn transform(&self, mut frame: Frame) -> Result<Frame> {
        for c in &self.0 {
            let col =
                frame.remove(&c.name).ok_or_else(|| Error::data(format!("one_hot: column `{}` is missing", c.name)))?;
            let n = col.data.len();
            let values: Vec<Option<String>> = (0..n).map(|i| col.data.value_string(i)).collect();
            let index: HashMap<&str, usize> = c.kept.iter().enumerate().map(|(j, s)| (s.as_str(), j)).collect();
            let mut out = vec![vec![0.0; n]; c.kept.len()];
            let mut other = vec![0.0; n];
            let mut missing = vec![0.0; n];
            for (i, v) in values.iter().enumerate() {
                match v {
                    None => missing[i] = 1.0,
                    Some(s) => match index.get(s.as_str()) {
                        Some(&j) => out[j][i] = 1.0,
                        None => other[i] = 1.0,
                    },
                }
            }
            for (level, v) in c.kept.iter().zip(out) {
                frame.set(&format!("{}={level}", c.name), ColumnData::Numeric(v))?;
            }
            if c.other {
                frame.set(&format!("{}=__other__", c.name), ColumnData::Numeric(other))?;
            }
            if c.missing {
                frame.set(&format!("{}=__missing__", c.name), ColumnData::Numeric(missing))?;
            }
        }
        Ok(frame)
    }
    fn save(&self) -> Result<Vec<u8>> {
        step_to_bytes("one_hot", self)
    }
}

struct Ordinal(Option<Vec<String>>);

impl FeatureExtractor for Ordinal {
    fn fit(&self, train: &Frame, ctx: &StepContext) -> Result<Box<dyn FittedFeatures>> {
        let mut maps = Vec::new();
        for name in select(train, &self.0, ctx, &[ColumnType::Categorical])? {
            let levels = levels_by_frequency(&train.require(&name, "ordinal")?.data);
            maps.push((name, levels.into_iter().enumerate().map(|(j, (s, _))| (s, j as f64)).collect()));
        }
        Ok(Box::new(FittedOrdinal(maps)))
    }
}

#[derive(Serialize, Deserialize)]
struct FittedOrdinal(Vec<(String, HashMap<String, f64>)>);

impl FittedFeatures for FittedOrdinal {
    fn transform(&self, mut frame: Frame) -> Result<Frame> {
        for (name, map) in &self.0 {
            let data = &frame.require(name, "ordinal")?.data;
            let codes = (0..data.len())
                .map(|i| data.value_string(i).and_then(|s| map.get(&s).copied()).unwrap_or(-1.0))
                .collect();
            frame.set(name, ColumnData::Numeric(codes))?;
        }
        Ok(frame)
    }
    fn save(&self) -> Result<Vec<u8>> {
        step_to_bytes("ordinal", self)
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum ScaleKind {
    Standard,
    MinMax,
    Log1p,
}

struct Scale {
    kind: ScaleKind,
    columns: Option<Vec<String>>,
}

impl FeatureExtractor for Scale {
    fn fit(&self, train: &Frame, ctx: &StepContext) -> Result<Box<dyn FittedFeatures>> {
        let mut plan = Vec::new();
        for name in select(train, &self.columns, ctx, &[ColumnType::Numeric])? {
            let ColumnData::Numeric(v) = &train.require(&name, "scaled")?.data else {
                unreachable!("selected numeric")
            };
            let p = present(v);
            let (shift, scale) = match self.kind {
                ScaleKind::Standard if !p.is_empty() => {
                    let mean = p.iter().sum::<f64>() / p.len() as f64;
                    let sd = (p.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / p.len() as f64).sqrt();
                    (mean, if sd > 0.0 { sd } else { 1.0 })
                }
                ScaleKind::MinMax if !p.is_empty() => {
                    let lo = p.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    (lo, if hi > lo { hi - lo } else { 1.0 })
                }
                _ => (0.0, 1.0),
            };
            plan.push((name, shift, scale));
        }
        Ok(Box::new(FittedScale { kind: self.kind, plan }))
    }
}

#[derive(Serialize, Deserialize)]
struct FittedScale {
    kind: ScaleKind,
    plan: Vec<(String, f64, f64)>,
}

impl FittedFeatures for FittedScale {
    fn transform(&self, mut frame: Frame) -> Result<Frame> {
        for (name, shift, scale) in &self.plan {
            let ColumnData::Numeric(v) = &frame.require(name, "scaled")?.data else {
                return Err(Error::data(format!("column `{name}` is no longer numeric")));
            };
            let out = v
                .iter()
                .map(|&x| match self.kind {
                    ScaleKind::Log1p => x.signum() * x.abs().ln_1p(),
                    _ => (x - shift) / scale,
                })
                .collect();
            frame.set(name, ColumnData::Numeric(out))?;
        }
        Ok(frame)
    }
    fn save(&self) -> Result<Vec<u8>> {
        step_to_bytes("standardize/min_max/log1p", self)
    }
}

const PARTS: [&str; 7] = ["year", "month", "day", "weekday", "hour", "dayofyear", "epoch_days"];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DateParts {
    columns: Option<Vec<String>>,
    #[serde(default = "default_parts")]
    parts: Vec<String>,
}

fn default_parts() -> Vec<String> {
    ["year", "month", "day", "weekday", "hour"].iter().map(|s| s.to_string()).collect()
}

/// Compute one date part of a timestamp (seconds since the epoch).
pub fn date_part(t: i64, part: &str) -> f64 {
    let days = t.div_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    match part {
        "year" => y as f64,
        "month" => f64::from(m),
        "day" => f64::from(d),
        // 1970-01-01 was a Thursday; Monday = 0.
        "weekday" => ((days + 3).rem_euclid(7)) as f64,
        "hour" => (t.rem_euclid(86_400) / 3600) as f64,
        "dayofyear" => (days - promoml_core::io::days_from_civil(y, 1, 1) + 1) as f64,
        _ => days as f64,
    }
}

impl FeatureExtractor for DateParts {
    fn fit(&self, train: &Frame, ctx: &StepContext) -> Result<Box<dyn FittedFeatures>> {
        let cols = select(train, &self.columns, ctx, &[ColumnType::Timestamp])?;
        Ok(Box::new(FittedDateParts { cols, parts: self.parts.clone() }))
    }
}

#[derive(Serialize, Deserialize)]
struct FittedDateParts {
    cols: Vec<String>,
    parts: Vec<String>,
}

impl FittedFeatures for FittedDateParts {
    fn transform(&self, mut frame: Frame) -> Result<Frame> {
        for name in &self.cols {
            let col =
                frame.remove(name).ok_or_else(|| Error::data(format!("date_parts: column `{name}` is missing")))?;
            let ColumnData::Timestamp(v) = col.data else {
                return Err(Error::data(format!("date_parts: column `{name}` is not a timestamp")));
            };
            for part in &self.parts {
                let out = v.iter().map(|t| t.map_or(f64::NAN, |t| date_part(t, part))).collect();
                frame.set(&format!("{name}_{part}"), ColumnData::Numeric(out))?;
            }
        }
        Ok(frame)
    }
    fn save(&self) -> Result<Vec<u8>> {
        step_to_bytes("date_parts", self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use promoml_core::io::{CsvOptions, read_csv_str};
    use serde_json::json;

    fn train() -> Frame {
        read_csv_str(
            "c,x,d\na,1,2024-03-04\na,2,2024-03-05 13:00:00\nb,3,\nc,,2024-12-31\n",
            "t.csv",
            &CsvOptions::default(),
        )
        .unwrap()
    }

    fn fitted(f: Factory, s: serde_json::Value) -> Box<dyn FittedFeatures> {
        f.build(&s).unwrap().fit(&train(), &StepContext::default()).unwrap()
    }

    #[test]
    fn one_hot_caps_levels_and_handles_unseen() {
        let t = fitted(Factory::OneHot, json!({"max_levels": 2}));
        let test = read_csv_str("c,x,d\nzz,1,2024-01-01\nb,2,\n", "t.csv", &CsvOptions::default()).unwrap();
        let out = t.transform(test).unwrap();
        assert_eq!(out.names(), vec!["x", "d", "c=a", "c=b", "c=__other__"]);
        assert_eq!(out.column("c=__other__").unwrap().data, ColumnData::Numeric(vec![1.0, 0.0]));
        assert_eq!(out.column("c=b").unwrap().data, ColumnData::Numeric(vec![0.0, 1.0]));
    }

    #[test]
    fn scalers_ordinal_dates() {
        let out = fitted(Factory::Standardize, json!({})).transform(train()).unwrap();
        let ColumnData::Numeric(v) = &out.column("x").unwrap().data else { panic!() };
        assert!((v[0] + 1.224_744_871).abs() < 1e-6 && v[3].is_nan());
        let out = fitted(Factory::MinMax, json!({"columns": ["x"]})).transform(train()).unwrap();
        assert_eq!(out.column("x").unwrap().data.value_f64(2), 1.0);
        let out = fitted(Factory::Ordinal, json!({})).transform(train()).unwrap();
        assert_eq!(out.column("c").unwrap().data, ColumnData::Numeric(vec![0.0, 0.0, 1.0, 2.0]));
        let out = fitted(Factory::DateParts, json!({"parts": ["year", "weekday", "hour", "dayofyear"]}))
            .transform(train())
            .unwrap();
        // 2024-03-04 was a Monday; 2024-12-31 is day 366 of a leap year
        assert_eq!(out.column("d_weekday").unwrap().data.value_f64(0), 0.0);
        assert_eq!(out.column("d_hour").unwrap().data.value_f64(1), 13.0);
        assert_eq!(out.column("d_dayofyear").unwrap().data.value_f64(3), 366.0);
        let e = Factory::DateParts.build(&json!({"parts": ["yeer"]})).err().unwrap().to_string();
        assert!(e.contains("did you mean \"year\""), "{e}");
        let e = fitted(Factory::Log1p, json!({"columns": ["x"]})).transform(train()).unwrap();
        assert!((e.column("x").unwrap().data.value_f64(0) - 2f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn every_feature_step_round_trips_through_save_and_load() {
        let cases = [
            (Factory::OneHot, json!({"max_levels": 2})),
            (Factory::Ordinal, json!({})),
            (Factory::Standardize, json!({})),
            (Factory::MinMax, json!({})),
            (Factory::Log1p, json!({})),
            (Factory::DateParts, json!({"parts": ["year", "weekday", "epoch_days"]})),
        ];
        for (f, s) in cases {
            let step = fitted(f, s);
            let loaded = f.load(&step.save().unwrap()).unwrap();
            // Debug text compares NaN cells too (NaN != NaN under PartialEq).
            let show = |t: &dyn FittedFeatures| format!("{:?}", t.transform(train()).unwrap());
            assert_eq!(show(&*loaded), show(&*step), "{}", f.kind());
            let e = f.load(&step.save().unwrap()[..5]).err().unwrap().to_string();
            assert!(e.contains(f.kind()) && e.contains("corrupt"), "{e}");
        }
    }
}
