//! Event logs to examples: one row per entity (customer), built from the entity's events up to
//! a cutoff, with a label from the horizon after it.
//!
//! A `[data.events]` section turns a log of `(entity, time, value columns)` into:
//!
//! - tabular summaries of the input window (recency, frequency, monetary, tenure `T` as in
//!   BG/NBD, recent activity), ordinary numeric columns every model can use;
//! - a behaviour sequence per entity ([`Sequences`]): fixed time bins (per-bin event count and
//!   value sums, most recent bin last) or the last N events with log-scaled time gaps;
//! - the label from the events in `(cutoff, horizon_end]`: any event, the number of events, or
//!   the sum of a column.
//!
//! The input window is `[start, cutoff]`; nothing dated after `cutoff` reaches the summaries or
//! the sequences. Rows are aligned with the sequences through the hidden [`ROW_ID`] column, which
//! survives splits and cleaners and is gathered when the model [`Dataset`](promoml_core::Dataset)
//! is built (see [`crate::prep`]).

use crate::limits;
use promoml_core::io::parse_timestamp;
use promoml_core::{Column, ColumnData, Error, Frame, Result, Sequences};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Hidden column holding each example's row in the [`Sequences`] table. It is never a feature.
pub const ROW_ID: &str = "__sequence_row";

const DAY: i64 = 86_400;

/// `[data.events]` as written in TOML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsSpec {
    /// Column identifying the entity (customer); one example per entity.
    pub entity: String,
    /// Timestamp column of each event.
    pub time: String,
    /// Numeric event columns summarised and binned (e.g. `["dollar_value"]`).
    #[serde(default)]
    pub values: Vec<String>,
    /// First moment of the input window (inclusive); events before it are ignored.
    pub start: Option<String>,
    /// Last moment of the input window (inclusive; a date alone means the end of that day).
    pub cutoff: String,
    /// Last moment of the label window `(cutoff, horizon_end]` (a date alone: end of that day).
    pub horizon_end: String,
    /// `any` (default: did the entity have an event in the horizon), `count`, or `sum`.
    pub label: Option<String>,
    /// For `label = "sum"`: the column summed over the horizon.
    pub label_column: Option<String>,
    /// Sequence encoding: `bins` (default), `last_n`, or `none`.
    pub encoding: Option<String>,
    /// Bin width for `bins`: `day`, `week` (default) or `month` (30 days).
    pub bin: Option<String>,
    /// Bin width in days (instead of `bin`).
    pub bin_days: Option<u32>,
    /// Sequence length: bins (default: enough to cover the input window) or events for
    /// `last_n` (default 20).
    pub steps: Option<usize>,
    /// Windows (days before the cutoff) of the recent-activity summaries (default `[30, 90, 180]`).
    pub recent_days: Option<Vec<u32>>,
    /// Transform of sequence values: `log1p` (default) or `none`.
    pub transform: Option<String>,
    /// Number of period summaries `n_days_period_<i>`: active days in the i-th period of
    /// `period_days` before the cutoff (0 = the most recent). Default 0 (none).
    pub periods: Option<usize>,
    /// Length of a period in days (default 30).
    pub period_days: Option<u32>,
}

/// What the label counts in the horizon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Label {
    /// `true` when the entity has at least one event in the horizon (a boolean target).
    Any,
    /// Number of events in the horizon.
    Count,
    /// Sum of this column over the horizon's events.
    Sum(String),
}

/// How each entity's history becomes a sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Encoding {
    /// No sequences: tabular summaries only.
    None,
    /// Fixed time bins ending at the cutoff: per bin, the event count and each value's sum.
    Bins {
        /// Width of a bin in days.
        days: u32,
        /// Number of bins; `None`: enough to cover the input window.
        steps: Option<usize>,
    },
    /// The last `n` events: log-scaled gap to the previous event, age at the cutoff, values.
    LastN {
        /// Events kept.
        n: usize,
    },
}

/// Most sequence steps a plan read back from a model artifact may ask for per entity (bins or
/// last events): far more than any network of an artifact is trained on, far fewer than would
/// exhaust memory for an event log's entities.
pub const MAX_SAVED_STEPS: usize = 100_000;

/// The validated `[data.events]` section. Times are seconds since 1970-01-01 UTC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventsPlan {
    /// Entity column.
    pub entity: String,
    /// Time column.
    pub time: String,
    /// Value columns.
    pub values: Vec<String>,
    /// Events before this moment are ignored.
    pub start: Option<i64>,
    /// Last moment of the input window, inclusive.
    pub cutoff: i64,
    /// Last moment of the label window, inclusive.
    pub horizon_end: i64,
    /// The label.
    pub label: Label,
    /// The sequence encoding.
    pub encoding: Encoding,
    /// Windows of the recent-activity summaries, in days.
    pub recent_days: Vec<u32>,
    /// Whether sequence values are log1p-transformed.
    pub log1p: bool,
    /// Number of per-period activity summaries.
    pub periods: usize,
    /// Length of those periods in days.
    pub period_days: u32,
}

/// A moment from TOML text: ISO (`1997-09-30`, `1997-09-30T12:00`) or the data's timestamp
/// format. With `end_of_day`, a date without a time means the last second of that day.
fn moment(text: &str, format: Option<&str>, end_of_day: bool) -> Option<i64> {
    let t = parse_timestamp(text, None).or_else(|| format.and_then(|f| parse_timestamp(text, Some(f))))?;
    let date_only = !text.contains(':');
    Some(if end_of_day && date_only { t + DAY - 1 } else { t })
}

impl EventsPlan {
    /// The plan for scoring new entities (a model artifact): the label counts any event (the
    /// target is not needed), the sequence length is pinned to `steps` (what the models were
    /// trained on), and with `cutoff` (ISO or `timestamp_format` text) the input window moves
    /// to end there, keeping its length (`start` and `horizon_end` move by the same amount).
    /// The error names `what` (e.g. `--cutoff`).
    pub fn for_scoring(
        &self,
        steps: Option<usize>,
        cutoff: Option<&str>,
        timestamp_format: Option<&str>,
        what: &str,
    ) -> Result<EventsPlan> {
        let mut p = self.clone();
        p.label = Label::Any;
        if let (Encoding::Bins { steps: s, .. }, Some(n)) = (&mut p.encoding, steps) {
            *s = Some(n);
        }
        if let Some(text) = cutoff {
            let new = moment(text, timestamp_format, true).ok_or_else(|| {
                Error::data(format!("{what}: \"{text}\" is not a date or time (use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS)"))
            })?;
            let delta = new - p.cutoff;
            p.cutoff = new;
            p.start = p.start.map(|s| s + delta);
            p.horizon_end += delta;
        }
        Ok(p)
    }

    /// Check a plan read back from a model artifact before it builds anything: bins and periods
    /// at least a day long, sequences of a pinned length of 1 to [`MAX_SAVED_STEPS`] steps,
    /// and no more period or recent-activity summaries than the artifact has feature columns
    /// (`features`; each summary is at least one). The error says what does not fit.
    pub fn check_saved(&self, features: usize) -> std::result::Result<(), String> {
        let steps = match self.encoding {
            Encoding::None => 0,
            Encoding::Bins { days: 0, .. } => return Err("sequence bins of 0 days".into()),
            Encoding::Bins { steps: None, .. } => return Err("sequence bins without a pinned length".into()),
            Encoding::Bins { steps: Some(n), .. } | Encoding::LastN { n } => n,
        };
        if steps > MAX_SAVED_STEPS || (steps == 0 && self.encoding != Encoding::None) {
            return Err(format!("sequences of {steps} steps (1 to {MAX_SAVED_STEPS})"));
        }
        if self.period_days == 0 {
            return Err("activity periods of 0 days".into());
        }
        let summaries = self.periods.saturating_add(self.recent_days.len());
        if summaries > features {
            return Err(format!("{summaries} activity summaries for {features} feature columns"));
        }
        Ok(())
    }

    /// Check a spec; errors are `(key under data.events, message)`. `timestamp_format` is the
    /// data's format, also accepted for `start`, `cutoff` and `horizon_end`.
    pub fn from_spec(
        s: &EventsSpec,
        timestamp_format: Option<&str>,
    ) -> std::result::Result<EventsPlan, (String, String)> {
        let err = |k: &str, m: String| Err((k.to_string(), m));
        let count =
            |k: &str, v: usize, min: usize, max: usize| limits::count(v, min, max).map_err(|m| (k.to_string(), m));
        let days_in = |k: &str, v: u32| count(k, v as usize, 1, limits::MAX_DAYS as usize).map(|_| v);
        for (k, v) in [("entity", &s.entity), ("time", &s.time)] {
            if v.trim().is_empty() {
                return err(k, "the column name is empty".into());
            }
        }
        if s.entity == s.time {
            return err("time", format!("`{}` is both the entity and the time column", s.time));
        }
        for v in &s.values {
            if *v == s.entity || *v == s.time {
                return err("values", format!("`{v}` is the entity or time column, not an event value"));
            }
        }
        let when = |k: &str, text: &str, end: bool| {
            moment(text, timestamp_format, end).ok_or_else(|| {
                (k.to_string(), format!("\"{text}\" is not a date or time (use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS)"))
            })
        };
        let start = s.start.as_deref().map(|t| when("start", t, false)).transpose()?;
        let cutoff = when("cutoff", &s.cutoff, true)?;
        let horizon_end = when("horizon_end", &s.horizon_end, true)?;
        if start.is_some_and(|st| st > cutoff) {
            return err("start", format!("{} is after the cutoff {}", s.start.as_deref().unwrap_or(""), s.cutoff));
        }
        if horizon_end <= cutoff {
            return err("horizon_end", format!("{} is not after the cutoff {}", s.horizon_end, s.cutoff));
        }
        let label = match (s.label.as_deref().unwrap_or("any"), &s.label_column) {
            ("any", None) => Label::Any,
            ("count", None) => Label::Count,
            ("sum", Some(c)) => Label::Sum(c.clone()),
            ("sum", None) => return err("label_column", "`label = \"sum\"` needs `label_column`".into()),
            ("any" | "count", Some(_)) => {
                return err("label_column", "`label_column` applies only to `label = \"sum\"`".into());
            }
            (other, _) => return err("label", format!("unknown label \"{other}\" (known: any, count, sum)")),
        };
        if s.bin.is_some() && s.bin_days.is_some() {
            return err("bin_days", "give `bin` or `bin_days`, not both".into());
        }
        let days = match (s.bin.as_deref(), s.bin_days) {
            (_, Some(d)) => days_in("bin_days", d)?,
            (None | Some("week"), None) => 7,
            (Some("day"), None) => 1,
            (Some("month"), None) => 30,
            (Some(other), None) => return err("bin", format!("unknown bin \"{other}\" (known: day, week, month)")),
        };
        if let Some(n) = s.steps {
            count("steps", n, 1, limits::MAX_STEPS)?;
        }
        if let (Some(st), None, "bins") = (start, s.steps, s.encoding.as_deref().unwrap_or("bins")) {
            // The default length covers the window from `start`: bounded like `steps`.
            let bins = (cutoff.div_euclid(DAY) - st.div_euclid(DAY)) / i64::from(days) + 1;
            if bins > limits::MAX_STEPS as i64 {
                return err(
                    "start",
                    format!(
                        "the input window from {} to {} spans {bins} bins of {days} day(s), out of range: allowed at \
                         most {} (set `steps`, a wider `bin` or a later `start`)",
                        s.start.as_deref().unwrap_or(""),
                        s.cutoff,
                        limits::MAX_STEPS
                    ),
                );
            }
        }
        let encoding = match s.encoding.as_deref().unwrap_or("bins") {
            "bins" => Encoding::Bins { days, steps: s.steps },
            "last_n" => Encoding::LastN { n: s.steps.unwrap_or(20) },
            "none" => Encoding::None,
            other => return err("encoding", format!("unknown encoding \"{other}\" (known: bins, last_n, none)")),
        };
        if !matches!(encoding, Encoding::Bins { .. }) && (s.bin.is_some() || s.bin_days.is_some()) {
            return err("bin", "`bin` and `bin_days` apply only to `encoding = \"bins\"`".into());
        }
        let recent_days = s.recent_days.clone().unwrap_or_else(|| vec![30, 90, 180]);
        count("recent_days", recent_days.len(), 0, limits::MAX_WINDOWS)
            .map_err(|(k, m)| (k, format!("{m} windows")))?;
        for &d in &recent_days {
            days_in("recent_days", d)?;
        }
        let log1p = match s.transform.as_deref().unwrap_or("log1p") {
            "log1p" => true,
            "none" => false,
            other => return err("transform", format!("unknown transform \"{other}\" (known: log1p, none)")),
        };
        let period_days = days_in("period_days", s.period_days.unwrap_or(30))?;
        Ok(EventsPlan {
            periods: count("periods", s.periods.unwrap_or(0), 0, limits::MAX_PERIODS)?,
            period_days,
            entity: s.entity.clone(),
            time: s.time.clone(),
            values: s.values.clone(),
            start,
            cutoff,
            horizon_end,
            label,
            encoding,
            recent_days,
            log1p,
        })
    }
}

/// One example per entity: the entity column, the summaries, the target, [`ROW_ID`], and the
/// sequences indexed by [`ROW_ID`].
#[derive(Debug, Clone)]
pub struct EntityTable {
    /// One row per entity with at least one event in the input window, in order of first
    /// appearance in the log.
    pub frame: Frame,
    /// The behaviour sequences (row `i` belongs to the frame row whose [`ROW_ID`] is `i`).
    pub sequences: Option<Sequences>,
}

/// One event of the input window.
#[derive(Debug, Clone, Copy)]
struct Event {
    time: i64,
    /// Index of the event's first value in the flat value store.
    at: usize,
}

#[derive(Default)]
struct History {
    events: Vec<Event>,
    horizon_count: usize,
    horizon_sum: f64,
}

fn column_values(events: &Frame, name: &str, role: &str) -> Result<Vec<f64>> {
    let col = events.require(name, role)?;
    match &col.data {
        ColumnData::Numeric(_) | ColumnData::Boolean(_) => {}
        other => {
            return Err(Error::data(format!(
                "{role} column `{name}` is {:?}; it must be numeric (declare it in `data.types`)",
                other.column_type()
            )));
        }
    }
    let v: Vec<f64> = (0..col.data.len()).map(|i| col.data.value_f64(i)).collect();
    Ok(v)
}

/// Build the entity table of an event log.
pub fn build(events: &Frame, plan: &EventsPlan, target: &str) -> Result<EntityTable> {
    let entity = events.require(&plan.entity, "events entity")?;
    let time = events.require(&plan.time, "events time")?;
    let ColumnData::Timestamp(times) = &time.data else {
        return Err(Error::data(format!(
            "events time column `{}` is {:?}, not a timestamp: declare it in `data.types` and set `data.timestamp_format`",
            plan.time,
            time.data.column_type()
        )));
    };
    let values: Vec<Vec<f64>> =
        plan.values.iter().map(|v| column_values(events, v, "events value")).collect::<Result<_>>()?;
    let label_values = match &plan.label {
        Label::Sum(c) => Some(column_values(events, c, "events label")?),
        _ => None,
    };
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut keys: Vec<usize> = Vec::new(); // first event row of each entity, for its key
    let mut hist: Vec<History> = Vec::new();
    let mut store: Vec<f64> = Vec::new();
    for i in 0..events.n_rows() {
        let key = entity
            .data
            .value_string(i)
            .ok_or_else(|| Error::data(format!("events entity `{}` is missing in event row {}", plan.entity, i + 1)))?;
        let t = times[i]
            .ok_or_else(|| Error::data(format!("events time `{}` is missing in event row {}", plan.time, i + 1)))?;
        if plan.start.is_some_and(|s| t < s) || t > plan.horizon_end {
            continue;
        }
        let e = *index.entry(key).or_insert_with(|| {
            keys.push(i);
            hist.push(History::default());
            hist.len() - 1
        });
        if t <= plan.cutoff {
            let at = store.len();
            for (v, col) in values.iter().enumerate() {
                let x = col[i];
                if !x.is_finite() {
                    return Err(Error::data(format!(
                        "events value `{}` is missing in event row {}",
                        plan.values[v],
                        i + 1
                    )));
                }
                store.push(x);
            }
            hist[e].events.push(Event { time: t, at });
        } else {
            hist[e].horizon_count += 1;
            if let Some(lv) = &label_values {
                let x = lv[i];
                if !x.is_finite() {
                    return Err(Error::data(format!("events label column is missing in event row {}", i + 1)));
                }
                hist[e].horizon_sum += x;
            }
        }
    }
    // Entities with at least one event in the input window, in order of first appearance.
    let rows: Vec<usize> = (0..hist.len()).filter(|&e| !hist[e].events.is_empty()).collect();
    if rows.is_empty() {
        return Err(Error::data(format!(
            "no entity has an event in the input window (up to the cutoff): check `data.events` dates against the `{}` column",
            plan.time
        )));
    }
    for &e in &rows {
        hist[e].events.sort_by_key(|ev| ev.time);
    }
    let ref_day = plan.cutoff.div_euclid(DAY);
    let day = |t: i64| t.div_euclid(DAY);

    let mut cols: Vec<Column> = Vec::new();
    let entity_col = match entity.data {
        ColumnData::Numeric(_) => ColumnData::Numeric(rows.iter().map(|&e| entity.data.value_f64(keys[e])).collect()),
        _ => ColumnData::categorical_from(rows.iter().map(|&e| entity.data.value_string(keys[e]))),
    };
    cols.push(Column { name: plan.entity.clone(), data: entity_col });
    let mut num = |name: String, f: &dyn Fn(&History) -> f64| {
        cols.push(Column { name, data: ColumnData::Numeric(rows.iter().map(|&e| f(&hist[e])).collect()) });
    };
    let first_day = |h: &History| day(h.events[0].time);
    let last_day = |h: &History| day(h.events[h.events.len() - 1].time);
    let n_days = |h: &History| {
        let mut d: Vec<i64> = h.events.iter().map(|ev| day(ev.time)).collect();
        d.dedup();
        d.len()
    };
    num("n_events".into(), &|h| h.events.len() as f64);
    num("n_days".into(), &|h| n_days(h) as f64);
    num("frequency".into(), &|h| (n_days(h) - 1) as f64);
    num("recency_days".into(), &|h| (last_day(h) - first_day(h)) as f64);
    num("T_days".into(), &|h| (ref_day - first_day(h)) as f64);
    num("days_since_last".into(), &|h| (ref_day - last_day(h)) as f64);
    num("mean_gap_days".into(), &|h| {
        let f = n_days(h) - 1;
        if f == 0 { (ref_day - first_day(h)) as f64 } else { (last_day(h) - first_day(h)) as f64 / f as f64 }
    });
    num("recency_ratio".into(), &|h| {
        let t = ref_day - first_day(h);
        if t == 0 { 1.0 } else { (last_day(h) - first_day(h)) as f64 / t as f64 }
    });
    for &k in &plan.recent_days {
        let since = ref_day - i64::from(k); // days strictly after `since` are within the last k days
        num(format!("n_events_last_{k}d"), &|h| h.events.iter().filter(|ev| day(ev.time) > since).count() as f64);
        num(format!("n_days_last_{k}d"), &|h| {
            let mut d: Vec<i64> = h.events.iter().map(|ev| day(ev.time)).filter(|&d| d > since).collect();
            d.dedup();
            d.len() as f64
        });
    }
    for p in 0..plan.periods {
        let w = i64::from(plan.period_days);
        num(format!("n_days_period_{p}"), &|h| {
            let mut d: Vec<i64> =
                h.events.iter().map(|ev| day(ev.time)).filter(|&d| (ref_day - d) / w == p as i64).collect();
            d.dedup();
            d.len() as f64
        });
    }
    for (v, name) in plan.values.iter().enumerate() {
        let val = |ev: &Event| store[ev.at + v];
        num(format!("{name}_total"), &|h| h.events.iter().map(val).sum());
        num(format!("{name}_mean"), &|h| h.events.iter().map(val).sum::<f64>() / h.events.len() as f64);
        num(format!("{name}_max"), &|h| h.events.iter().map(val).fold(f64::MIN, f64::max));
        num(format!("{name}_first_day"), &|h| {
            let d0 = first_day(h);
            h.events.iter().filter(|ev| day(ev.time) == d0).map(val).sum()
        });
        // Mean per repeat day, as `lifetimes` defines monetary value (0 without repeats).
        num(format!("{name}_repeat_mean"), &|h| {
            let d0 = first_day(h);
            let repeat: f64 = h.events.iter().filter(|ev| day(ev.time) != d0).map(val).sum();
            let days = n_days(h) - 1;
            if days == 0 { 0.0 } else { repeat / days as f64 }
        });
        for &k in &plan.recent_days {
            let since = ref_day - i64::from(k);
            num(format!("{name}_last_{k}d"), &|h| h.events.iter().filter(|ev| day(ev.time) > since).map(val).sum());
        }
    }
    let target_data = match &plan.label {
        Label::Any => ColumnData::Boolean(rows.iter().map(|&e| Some(hist[e].horizon_count > 0)).collect()),
        Label::Count => ColumnData::Numeric(rows.iter().map(|&e| hist[e].horizon_count as f64).collect()),
        Label::Sum(_) => ColumnData::Numeric(rows.iter().map(|&e| hist[e].horizon_sum).collect()),
    };
    if cols.iter().any(|c| c.name == target) {
        return Err(Error::config("data.target", format!("`{target}` is also the name of an events summary column")));
    }
    cols.push(Column { name: target.to_string(), data: target_data });
    cols.push(Column { name: ROW_ID.into(), data: ColumnData::Numeric((0..rows.len()).map(|i| i as f64).collect()) });
    let frame = Frame::new(cols)?;

    let histories: Vec<&History> = rows.iter().map(|&e| &hist[e]).collect();
    let sequences = match &plan.encoding {
        Encoding::None => None,
        Encoding::Bins { days, steps } => Some(bins(&histories, &store, plan, i64::from(*days), *steps)?),
        Encoding::LastN { n } => Some(last_n(&histories, &store, plan, *n)?),
    };
    Ok(EntityTable { frame, sequences })
}

fn squash(x: f64, log1p: bool) -> f32 {
    (if log1p { x.signum() * x.abs().ln_1p() } else { x }) as f32
}

/// An error when sequences of `rows` × `steps` × `channels` would hold more than
/// [`limits::MAX_SEQUENCE_VALUES`] values, checked before they are allocated.
fn check_size(rows: usize, steps: usize, channels: usize) -> Result<()> {
    let values = rows.checked_mul(steps).and_then(|v| v.checked_mul(channels));
    if values.is_none_or(|v| v > limits::MAX_SEQUENCE_VALUES) {
        return Err(Error::config(
            "data.events.steps",
            format!(
                "sequences of {rows} entities x {steps} steps x {channels} channels would hold more than {} values: \
                 set fewer `steps` (or a wider `bin`)",
                limits::MAX_SEQUENCE_VALUES
            ),
        ));
    }
    Ok(())
}

/// Time bins ending at the cutoff day: bin 0 holds the last `width` days up to the cutoff. Each
/// row runs from the bin of its first event (oldest, step 0) to the cutoff's bin (last valid step).
/// Without `steps`, the bins cover the window from `start` (or the first event), at most
/// [`limits::MAX_STEPS`] of them.
fn bins(hist: &[&History], store: &[f64], plan: &EventsPlan, width: i64, steps: Option<usize>) -> Result<Sequences> {
    let ref_day = plan.cutoff.div_euclid(DAY);
    let back = |t: i64| ((ref_day - t.div_euclid(DAY)) / width) as usize;
    let steps = steps.unwrap_or_else(|| {
        let first = plan.start.unwrap_or_else(|| hist.iter().map(|h| h.events[0].time).min().unwrap_or(plan.cutoff));
        (back(first) + 1).min(limits::MAX_STEPS)
    });
    let nv = plan.values.len();
    check_size(hist.len(), steps, 1 + nv)?;
    let mut channels = vec!["count".to_string()];
    channels.extend(plan.values.iter().map(|v| format!("{v}_sum")));
    let mut data = ndarray::Array3::<f32>::zeros((hist.len(), steps, 1 + nv));
    let mut lengths = Vec::with_capacity(hist.len());
    let mut acc = vec![0.0f64; steps * (1 + nv)];
    for (r, h) in hist.iter().enumerate() {
        acc.iter_mut().for_each(|a| *a = 0.0);
        let len = back(h.events[0].time).min(steps - 1) + 1;
        for ev in &h.events {
            let b = back(ev.time);
            if b >= len {
                continue; // older than the sequence reaches
            }
            let s = len - 1 - b;
            acc[s * (1 + nv)] += 1.0;
            for v in 0..nv {
                acc[s * (1 + nv) + 1 + v] += store[ev.at + v];
            }
        }
        for s in 0..len {
            for c in 0..=nv {
                data[[r, s, c]] = squash(acc[s * (1 + nv) + c], plan.log1p);
            }
        }
        lengths.push(len);
    }
    Ok(Sequences { data, lengths, channels })
}

/// The last `n` events of each row, oldest first: ln(1 + days since the previous event, 0 for
/// the first), ln(1 + days from the event to the end of the input window), and the event's values.
fn last_n(hist: &[&History], store: &[f64], plan: &EventsPlan, n: usize) -> Result<Sequences> {
    let nv = plan.values.len();
    check_size(hist.len(), n, 2 + nv)?;
    let mut channels = vec!["log_gap_days".to_string(), "log_age_days".to_string()];
    channels.extend(plan.values.iter().cloned());
    let mut data = ndarray::Array3::<f32>::zeros((hist.len(), n, 2 + nv));
    let mut lengths = Vec::with_capacity(hist.len());
    let days = |dt: i64| (dt.max(0) as f64 / DAY as f64).ln_1p() as f32;
    for (r, h) in hist.iter().enumerate() {
        let skip = h.events.len().saturating_sub(n);
        for (s, i) in (skip..h.events.len()).enumerate() {
            let ev = h.events[i];
            data[[r, s, 0]] = if i == 0 { 0.0 } else { days(ev.time - h.events[i - 1].time) };
            data[[r, s, 1]] = days(plan.cutoff + 1 - ev.time);
            for v in 0..nv {
                data[[r, s, 2 + v]] = squash(store[ev.at + v], plan.log1p);
            }
        }
        lengths.push(h.events.len() - skip);
    }
    Ok(Sequences { data, lengths, channels })
}

#[cfg(test)]
mod tests {
    use super::*;
    use promoml_core::io::days_from_civil;

    fn ts(y: i64, m: u32, d: u32) -> i64 {
        days_from_civil(y, m, d) * DAY
    }

    fn spec(extra: &str) -> EventsSpec {
        let text = format!(
            "entity = \"id\"\ntime = \"t\"\nvalues = [\"spend\"]\nstart = \"1997-01-01\"\ncutoff = \"1997-09-30\"\nhorizon_end = \"1998-06-30\"\n{extra}"
        );
        toml::from_str(&text).unwrap()
    }

    fn plan(extra: &str) -> EventsPlan {
        EventsPlan::from_spec(&spec(extra), None).unwrap()
    }

    fn log(rows: &[(f64, i64, f64)]) -> Frame {
        Frame::new(vec![
            Column { name: "id".into(), data: ColumnData::Numeric(rows.iter().map(|r| r.0).collect()) },
            Column { name: "t".into(), data: ColumnData::Timestamp(rows.iter().map(|r| Some(r.1)).collect()) },
            Column { name: "spend".into(), data: ColumnData::Numeric(rows.iter().map(|r| r.2).collect()) },
        ])
        .unwrap()
    }

    /// Entity 1: two events on Jan 1 and one on Mar 1, one in the horizon. Entity 2: one event on
    /// the cutoff day. Entity 3: horizon events only (no example). Entity 4: one event before
    /// `start` (ignored) and one in the window. Entity 5: one event after `horizon_end`.
    fn hand_made() -> Frame {
        log(&[
            (1.0, ts(1997, 1, 1), 10.0),
            (2.0, ts(1997, 9, 30) + DAY - 1, 3.0),
            (1.0, ts(1997, 1, 1), 5.0),
            (3.0, ts(1997, 10, 1), 8.0),
            (1.0, ts(1997, 3, 1), 20.0),
            (4.0, ts(1996, 12, 31), 100.0),
            (4.0, ts(1997, 2, 1), 1.0),
            (1.0, ts(1997, 10, 5), 7.0),
            (1.0, ts(1998, 6, 30), 4.0),
            (5.0, ts(1997, 5, 1), 2.0),
            (5.0, ts(1998, 7, 1), 50.0),
            (3.0, ts(1997, 11, 1), 9.0),
        ])
    }

    fn col(f: &Frame, name: &str) -> Vec<f64> {
        let c = &f.column(name).unwrap_or_else(|| panic!("no column {name}")).data;
        (0..c.len()).map(|i| c.value_f64(i)).collect()
    }

    #[test]
    fn labels_and_summaries_on_a_hand_made_log() {
        let t = build(&hand_made(), &plan(""), "y").unwrap();
        let f = &t.frame;
        assert_eq!(col(f, "id"), vec![1.0, 2.0, 4.0, 5.0], "entity 3 has no event before the cutoff");
        assert_eq!(col(f, "y"), vec![1.0, 0.0, 0.0, 0.0]);
        assert_eq!(col(f, "n_events"), vec![3.0, 1.0, 1.0, 1.0]);
        assert_eq!(col(f, "n_days"), vec![2.0, 1.0, 1.0, 1.0]);
        assert_eq!(col(f, "frequency"), vec![1.0, 0.0, 0.0, 0.0]);
        assert_eq!(col(f, "recency_days"), vec![59.0, 0.0, 0.0, 0.0]);
        assert_eq!(col(f, "T_days"), vec![272.0, 0.0, 241.0, 152.0]);
        assert_eq!(col(f, "days_since_last"), vec![213.0, 0.0, 241.0, 152.0]);
        assert_eq!(col(f, "spend_total"), vec![35.0, 3.0, 1.0, 2.0], "entity 4's event before start is ignored");
        assert_eq!(col(f, "spend_mean"), vec![35.0 / 3.0, 3.0, 1.0, 2.0]);
        assert_eq!(col(f, "spend_first_day"), vec![15.0, 3.0, 1.0, 2.0]);
        assert_eq!(col(f, "spend_repeat_mean"), vec![20.0, 0.0, 0.0, 0.0]);
        assert_eq!(col(f, "n_events_last_30d"), vec![0.0, 1.0, 0.0, 0.0]);
        assert_eq!(col(f, "n_events_last_180d"), vec![0.0, 1.0, 0.0, 1.0]);
        assert_eq!(col(f, ROW_ID), vec![0.0, 1.0, 2.0, 3.0]);

        let count = build(&hand_made(), &plan("label = \"count\""), "y").unwrap();
        assert_eq!(col(&count.frame, "y"), vec![2.0, 0.0, 0.0, 0.0], "horizon_end is inclusive, after it is not");
        let sum = build(&hand_made(), &plan("label = \"sum\"\nlabel_column = \"spend\""), "y").unwrap();
        assert_eq!(col(&sum.frame, "y"), vec![11.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn the_cutoff_day_is_an_input_and_the_next_second_is_a_label() {
        let p = plan("");
        let at = |t: i64| {
            let b = build(&log(&[(1.0, ts(1997, 1, 1), 1.0), (1.0, t, 5.0)]), &p, "y").unwrap();
            (col(&b.frame, "n_events")[0], col(&b.frame, "y")[0])
        };
        assert_eq!(at(ts(1997, 9, 30)), (2.0, 0.0));
        assert_eq!(at(ts(1997, 9, 30) + DAY - 1), (2.0, 0.0));
        assert_eq!(at(ts(1997, 10, 1)), (1.0, 1.0));
        let exact = EventsPlan::from_spec(&spec("").clone_with_cutoff("1997-09-30T12:00:00"), None).unwrap();
        assert_eq!(exact.cutoff, ts(1997, 9, 30) + 12 * 3600);
        let b = build(&log(&[(1.0, ts(1997, 9, 30) + 12 * 3600 + 1, 1.0), (1.0, ts(1997, 1, 1), 1.0)]), &exact, "y");
        assert_eq!(col(&b.unwrap().frame, "y"), vec![1.0]);
    }

    impl EventsSpec {
        fn clone_with_cutoff(&self, cutoff: &str) -> EventsSpec {
            EventsSpec { cutoff: cutoff.into(), ..self.clone() }
        }
    }

    /// A pseudo-random log of 60 entities over 1996-12..1998-08.
    fn random_log(seed: u64) -> Vec<(f64, i64, f64)> {
        let mut z = seed;
        let mut next = move || {
            z = z.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            z >> 33
        };
        (0..600)
            .map(|_| {
                let id = (next() % 60) as f64;
                let t = ts(1996, 12, 1) + (next() % 640) as i64 * DAY + (next() % DAY as u64) as i64;
                (id, t, (next() % 10_000) as f64 / 100.0)
            })
            .collect()
    }

    #[test]
    fn nothing_after_the_cutoff_reaches_the_inputs() {
        let cutoff = ts(1997, 9, 30) + DAY - 1;
        for extra in ["", "encoding = \"last_n\"\nsteps = 5", "bin = \"day\"", "periods = 4\nrecent_days = [7, 400]"] {
            let p = plan(extra);
            let rows = random_log(7);
            let base = build(&log(&rows), &p, "y").unwrap();
            // Change every later event (value, time within and beyond the horizon), add later
            // events for known and unknown entities, and shuffle the log.
            let mut changed: Vec<(f64, i64, f64)> = rows
                .iter()
                .map(|&(id, t, v)| if t > cutoff { (id, t + 3 * DAY, v * 7.0 + 1.0) } else { (id, t, v) })
                .collect();
            changed.extend((0..200).map(|i| ((i % 80) as f64, cutoff + 1 + i * 3600, 99.0)));
            changed.reverse();
            let after = build(&log(&changed), &p, "y").unwrap();
            let inputs = |f: &Frame| {
                let mut f = f.clone();
                f.remove("y");
                f
            };
            // Same entities in the same order up to the order of first appearance.
            let order = |f: &Frame| col(f, "id");
            let (a, b) = (inputs(&base.frame), inputs(&after.frame));
            let idx: Vec<usize> =
                order(&a).iter().map(|id| order(&b).iter().position(|x| x == id).expect("same entities")).collect();
            let b_rows = b.take(&idx);
            for c in a.columns() {
                if c.name != ROW_ID {
                    assert_eq!(c.data, b_rows.column(&c.name).unwrap().data, "{extra}: column {}", c.name);
                }
            }
            let (sa, sb) = (base.sequences.unwrap(), after.sequences.unwrap());
            assert_eq!(sa.channels, sb.channels);
            let sb_rows = sb.data.select(ndarray::Axis(0), &idx);
            assert_eq!(sa.data, sb_rows, "{extra}: sequences differ");
            assert_eq!(sa.lengths, idx.iter().map(|&i| sb.lengths[i]).collect::<Vec<_>>());
            // The labels did see the changes.
            assert_ne!(col(&base.frame, "y").len(), 0);
        }
    }

    #[test]
    fn weekly_bins_end_at_the_cutoff_most_recent_last() {
        let p = plan("transform = \"none\"");
        let t = build(&hand_made(), &p, "y").unwrap();
        let s = t.sequences.unwrap();
        assert_eq!(s.channels, vec!["count", "spend_sum"]);
        // 1997-01-01 .. 1997-09-30 is 273 days: 39 weeks.
        assert_eq!(s.data.shape(), &[4, 39, 2]);
        // Entity 1 (first event 272 days before the cutoff day: bin 38): full length.
        assert_eq!(s.lengths, vec![39, 1, 35, 22]);
        assert_eq!((s.data[[0, 0, 0]], s.data[[0, 0, 1]]), (2.0, 15.0));
        // Mar 1 is 213 days before the cutoff: bin 30, step 38 - 30 = 8.
        assert_eq!((s.data[[0, 8, 0]], s.data[[0, 8, 1]]), (1.0, 20.0));
        assert_eq!((0..39).map(|k| s.data[[0, k, 0]]).sum::<f32>(), 3.0);
        // Entity 2: its one event is in the last bin, which is its only step.
        assert_eq!((s.data[[1, 0, 0]], s.data[[1, 0, 1]]), (1.0, 3.0));
        let padding: f32 = (1..39).map(|k| s.data[[1, k, 0]].abs() + s.data[[1, k, 1]].abs()).sum();
        assert_eq!(padding, 0.0, "padding after the length is zero");
        // log1p by default.
        let logged = build(&hand_made(), &plan(""), "y").unwrap().sequences.unwrap();
        assert_eq!(logged.data[[0, 0, 1]], (15.0f64).ln_1p() as f32);
        // Fewer steps than the window: the oldest events fall off the sequence only.
        let short = build(&hand_made(), &plan("steps = 10"), "y").unwrap();
        assert_eq!(short.sequences.unwrap().lengths, vec![10, 1, 10, 10]);
        assert_eq!(col(&short.frame, "n_events")[0], 3.0);
    }

    #[test]
    fn last_n_events_with_log_gaps() {
        let t = build(&hand_made(), &plan("encoding = \"last_n\"\nsteps = 2\ntransform = \"none\""), "y").unwrap();
        let s = t.sequences.unwrap();
        assert_eq!(s.channels, vec!["log_gap_days", "log_age_days", "spend"]);
        assert_eq!(s.lengths, vec![2, 1, 1, 1]);
        // Entity 1's last two events: Jan 1 (gap 0 to the other Jan 1 event) and Mar 1 (59 days).
        assert_eq!(s.data[[0, 0, 0]], 0.0);
        assert_eq!(s.data[[0, 1, 0]], (59.0f64).ln_1p() as f32);
        assert_eq!(s.data[[0, 1, 1]], (214.0f64).ln_1p() as f32, "Mar 1 is 214 days before the window's end");
        assert_eq!(s.data[[0, 1, 2]], 20.0);
        assert_eq!(s.data[[1, 0, 1]], (1.0f64 / 86_400.0).ln_1p() as f32, "last second of the cutoff day");
    }

    #[test]
    fn bad_settings_name_their_key() {
        let bad = |extra: &str, cutoff: Option<&str>| {
            let mut s = spec(extra);
            if let Some(c) = cutoff {
                s.cutoff = c.into();
            }
            EventsPlan::from_spec(&s, None).unwrap_err()
        };
        assert_eq!(bad("", Some("1999-01-01")).0, "horizon_end");
        assert_eq!(bad("", Some("30.09.1997")).0, "cutoff");
        assert_eq!(bad("label = \"sum\"", None).0, "label_column");
        assert_eq!(bad("label = \"mean\"", None).0, "label");
        assert_eq!(bad("encoding = \"last_n\"\nbin = \"week\"", None).0, "bin");
        assert_eq!(bad("bin = \"fortnight\"", None).0, "bin");
        assert_eq!(bad("steps = 0", None).0, "steps");
        let with_format = EventsPlan::from_spec(&spec("").clone_with_cutoff("19970930"), Some("%Y%m%d")).unwrap();
        assert_eq!(with_format.cutoff, ts(1997, 9, 30) + DAY - 1);
    }

    #[test]
    fn bad_logs_fail_with_the_row() {
        let mut f = hand_made();
        f.set("t", ColumnData::Numeric(vec![0.0; 12])).unwrap();
        assert!(build(&f, &plan(""), "y").unwrap_err().to_string().contains("not a timestamp"));
        let e = build(&hand_made(), &plan(""), "n_events").unwrap_err().to_string();
        assert!(e.contains("also the name of an events summary"), "{e}");
        let late = log(&[(1.0, ts(1998, 1, 1), 1.0)]);
        assert!(build(&late, &plan(""), "y").unwrap_err().to_string().contains("no entity has an event"));
        let mut missing = hand_made();
        let mut v = col(&missing, "spend");
        v[4] = f64::NAN;
        missing.set("spend", ColumnData::Numeric(v)).unwrap();
        let e = build(&missing, &plan(""), "y").unwrap_err().to_string();
        assert!(e.contains("event row 5"), "{e}");
    }
}
