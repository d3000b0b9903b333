//! `[data.events]` on the query engine: an event log of any size to one example per entity, in
//! bounded memory.
//!
//! The log is streamed ([`crate::data::source`]), and DataFusion runs the plan
//!
//! ```sql
//! SELECT entity, time, values.., line FROM events
//! WHERE time >= start AND time <= horizon_end
//! ORDER BY entity, line
//! ```
//!
//! with a memory pool of `[data] memory_limit` bytes: the sort spills sorted runs to disk
//! beyond it and merges them. Each entity's events then arrive together, in log order, and are
//! folded into that entity's summaries, label and sequence before the next entity's arrive, so
//! only the per-entity result (one row and one sequence per entity) is ever held.
//!
//! The fold computes every value exactly as [`crate::sequence::build`] does (the same events, in
//! the same order, through the same arithmetic), so the two give bit-identical tables (tested on
//! the CDNOW log in `tests/events_engine.rs`). Rows come in order of first appearance in the
//! log, as there; the sequences stay in the order the entities were folded, and each row's
//! [`ROW_ID`] points at its sequence.

use crate::data::engine::{Engine, from_datafusion};
use crate::data::source::{self, EventColumns, ParquetEvents, TextEvents};
use crate::limits;
use crate::sequence::{Encoding, EntityTable, EventsPlan, Label, ROW_ID};
use datafusion::arrow::array::{Array, Float64Array, Int64Array, StringArray, UInt64Array};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::StreamExt;
use promoml_core::io::ReadOptions;
use promoml_core::{Column, ColumnData, Error, Frame, Result, Sequences};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

const DAY: i64 = 86_400;

/// An entity table built by the engine, with what reading the log counted.
#[derive(Debug)]
pub struct EngineTable {
    /// The entity table (as [`crate::sequence::build`] makes it).
    pub table: EntityTable,
    /// Events in the log (data lines of a text file, rows of a Parquet file; of a directory, the
    /// rows of the files its event window kept).
    pub events: u64,
    /// Per value column read with `data.on_bad_value = { COLUMN = "missing" }`, how many
    /// unreadable values were taken as missing.
    pub bad_as_missing: BTreeMap<String, usize>,
}

/// Build the entity table of the event log at `path` on the engine, its operators holding at
/// most `memory_limit` bytes. The log is text (gzip or zstd compressed by its extension:
/// `events.csv.gz`, `log.txt.zst`), a Parquet file (by its extension), or a directory of Parquet
/// files, flat or in Hive partitions (`date=2024-01-01/part-0.parquet`) whose partitions outside
/// the event window are never read.
pub fn build_file(
    path: &Path,
    read: &ReadOptions,
    plan: &EventsPlan,
    target: &str,
    memory_limit: usize,
) -> Result<EngineTable> {
    // One partition: the log is parsed on a thread of its own while one sorter, with the
    // whole pool, sorts and spills; its sorted output streams into the fold.
    let engine = Engine::with_partitions(memory_limit, Some(1))?;
    let what = path.display().to_string();
    let plan_copy = plan.clone();
    engine.block_on(async {
        // Bins without `steps` cover the window from `start`, or from the earliest event: find
        // it first (a query of its own, on a fresh source).
        let mut plan = plan.clone();
        let ref_day = plan.cutoff.div_euclid(DAY);
        if let Encoding::Bins { steps: steps @ None, days } = &mut plan.encoding {
            let first = match plan.start {
                Some(s) => s,
                None => {
                    let src = open_source(&engine, path, read, &plan_copy).await?;
                    register(&engine, &src)?;
                    let sql =
                        format!("SELECT min({t}) FROM events WHERE {t} <= {c}", t = source::TIME, c = plan_copy.cutoff);
                    let df = engine.ctx.sql(&sql).await.map_err(|e| from_datafusion(e, &what))?;
                    let batches = df.collect().await.map_err(|e| from_datafusion(e, &what))?;
                    engine.ctx.deregister_table("events").map_err(|e| from_datafusion(e, &what))?;
                    batches
                        .first()
                        .and_then(|b| b.column(0).as_any().downcast_ref::<Int64Array>().cloned())
                        .filter(|a| !a.is_empty() && !a.is_null(0))
                        .map_or(plan_copy.cutoff, |a| a.value(0))
                }
            };
            let back = ((ref_day - first.div_euclid(DAY)) / i64::from(*days)) as usize;
            *steps = Some((back + 1).min(limits::MAX_STEPS));
        }
        let src = open_source(&engine, path, read, &plan).await?;
        register(&engine, &src)?;
        let mut select = vec![source::ENTITY.to_string(), source::TIME.to_string()];
        select.extend((0..src.cols.values.len()).map(source::value_name));
        if src.cols.label.is_some() {
            select.push(source::LABEL.into());
        }
        select.push(source::LINE.into());
        let t = source::TIME;
        let window = match plan.start {
            Some(s) => format!("{t} >= {s} AND {t} <= {}", plan.horizon_end),
            None => format!("{t} <= {}", plan.horizon_end),
        };
        let sql = format!(
            "SELECT {} FROM events WHERE {window} ORDER BY {}, {}",
            select.join(", "),
            source::ENTITY,
            source::LINE
        );
        let df = engine.ctx.sql(&sql).await.map_err(|e| from_datafusion(e, &what))?;
        let mut stream = df.execute_stream().await.map_err(|e| from_datafusion(e, &what))?;
        let mut fold = Fold::new(&plan, &src.cols, &what);
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| from_datafusion(e, &what))?;
            fold.push(&batch)?;
        }
        let table = fold.finish(target)?;
        let bad_as_missing = std::mem::take(&mut *src.counts.bad_as_missing.lock().unwrap_or_else(|p| p.into_inner()));
        Ok(EngineTable { table, events: src.counts.events.load(Ordering::Relaxed), bad_as_missing })
    })
}

/// The event source of `path`: Parquet by its extension or for a directory, text otherwise.
async fn open_source(engine: &Engine, path: &Path, read: &ReadOptions, plan: &EventsPlan) -> Result<Source> {
    if source::is_parquet(path) {
        let p = ParquetEvents::open(&engine.ctx, path, read, plan).await?;
        Ok(Source { cols: p.columns().clone(), counts: p.counts(), stream: Arc::new(p) })
    } else {
        let t = TextEvents::open(path, read, plan)?;
        Ok(Source { cols: t.columns().clone(), counts: t.counts(), stream: Arc::new(t) })
    }
}

/// A registered event source.
struct Source {
    cols: EventColumns,
    counts: Arc<source::ReadCounts>,
    stream: Arc<dyn PartitionStream>,
}

fn register(engine: &Engine, src: &Source) -> Result<()> {
    let table = StreamingTable::try_new(src.stream.schema().clone(), vec![src.stream.clone()])
        .map_err(|e| from_datafusion(e, "events"))?;
    engine.ctx.register_table("events", Arc::new(table)).map_err(|e| from_datafusion(e, "events"))?;
    Ok(())
}

/// The summary columns of an entity table, in order (after the entity, before the target), as
/// [`crate::sequence::build`] makes them.
pub(crate) fn summary_names(plan: &EventsPlan) -> Vec<String> {
    let mut names: Vec<String> = [
        "n_events",
        "n_days",
        "frequency",
        "recency_days",
        "T_days",
        "days_since_last",
        "mean_gap_days",
        "recency_ratio",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for &k in &plan.recent_days {
        names.push(format!("n_events_last_{k}d"));
        names.push(format!("n_days_last_{k}d"));
    }
    for p in 0..plan.periods {
        names.push(format!("n_days_period_{p}"));
    }
    for name in &plan.values {
        for s in ["total", "mean", "max", "first_day", "repeat_mean"] {
            names.push(format!("{name}_{s}"));
        }
        for &k in &plan.recent_days {
            names.push(format!("{name}_last_{k}d"));
        }
    }
    names
}

/// The current entity's key.
#[derive(Debug, Clone, PartialEq)]
enum Key {
    Number(f64),
    Text(String),
}

/// One event of the input window: its time and where its values start in the value store.
#[derive(Debug, Clone, Copy)]
struct Event {
    time: i64,
    at: usize,
}

/// Folds the sorted events into per-entity results.
struct Fold<'a> {
    plan: &'a EventsPlan,
    cols: &'a EventColumns,
    what: &'a str,
    // The entity being folded.
    key: Option<Key>,
    first_line: u64,
    events: Vec<Event>,
    store: Vec<f64>,
    horizon_count: usize,
    horizon_sum: f64,
    // Results, one per entity with an input event, in folding order.
    keys: Vec<Key>,
    first_lines: Vec<u64>,
    names: Vec<String>,
    columns: Vec<Vec<f64>>,
    horizon_counts: Vec<usize>,
    horizon_sums: Vec<f64>,
    /// Sequence steps and channels (0 without sequences).
    steps: usize,
    channels: usize,
    seq: Vec<f32>,
    lengths: Vec<usize>,
    row: Vec<f64>,
}

impl<'a> Fold<'a> {
    fn new(plan: &'a EventsPlan, cols: &'a EventColumns, what: &'a str) -> Fold<'a> {
        let names = summary_names(plan);
        let nv = plan.values.len();
        let (steps, channels) = match plan.encoding {
            Encoding::None => (0, 0),
            Encoding::Bins { steps, .. } => (steps.expect("bins' length is known before the fold"), 1 + nv),
            Encoding::LastN { n } => (n, 2 + nv),
        };
        Fold {
            plan,
            cols,
            what,
            key: None,
            first_line: 0,
            events: Vec::new(),
            store: Vec::new(),
            horizon_count: 0,
            horizon_sum: 0.0,
            keys: Vec::new(),
            first_lines: Vec::new(),
            columns: vec![Vec::new(); names.len()],
            names,
            horizon_counts: Vec::new(),
            horizon_sums: Vec::new(),
            steps,
            channels,
            seq: Vec::new(),
            lengths: Vec::new(),
            row: Vec::new(),
        }
    }

    /// Fold a batch of events sorted by entity, then line.
    fn push(&mut self, b: &RecordBatch) -> Result<()> {
        let nv = self.cols.values.len();
        let f64s = |i: usize| b.column(i).as_any().downcast_ref::<Float64Array>().expect("canonical Float64");
        let entity_num = b.column(0).as_any().downcast_ref::<Float64Array>();
        let entity_text = b.column(0).as_any().downcast_ref::<StringArray>();
        let time = b.column(1).as_any().downcast_ref::<Int64Array>().expect("canonical Int64");
        let values: Vec<&Float64Array> = (0..nv).map(|v| f64s(2 + v)).collect();
        let label = match (&self.plan.label, self.cols.label_in_values) {
            (Label::Sum(_), Some(v)) => Some(values[v]),
            (Label::Sum(_), None) => Some(f64s(2 + nv)),
            _ => None,
        };
        let lines = b.column(b.num_columns() - 1).as_any().downcast_ref::<UInt64Array>().expect("canonical UInt64");
        for i in 0..b.num_rows() {
            let same = match (&self.key, entity_num, entity_text) {
                (Some(Key::Number(k)), Some(a), _) => *k == a.value(i),
                (Some(Key::Text(k)), _, Some(a)) => k == a.value(i),
                _ => false,
            };
            if !same {
                self.finish_entity()?;
                self.key = Some(match (entity_num, entity_text) {
                    (Some(a), _) => Key::Number(a.value(i)),
                    (_, Some(a)) => Key::Text(a.value(i).to_string()),
                    _ => unreachable!("the canonical entity is Float64 or Utf8"),
                });
                self.first_line = lines.value(i);
            }
            let t = time.value(i);
            let line = lines.value(i) as usize;
            if t <= self.plan.cutoff {
                let at = self.store.len();
                for (v, col) in values.iter().enumerate() {
                    let x = col.value(i);
                    if !x.is_finite() {
                        return Err(self.missing(line, &self.plan.values[v], "events value"));
                    }
                    self.store.push(x);
                }
                self.events.push(Event { time: t, at });
            } else {
                self.horizon_count += 1;
                if let Some(lv) = label {
                    let x = lv.value(i);
                    if !x.is_finite() {
                        let c = match &self.plan.label {
                            Label::Sum(c) => c.clone(),
                            _ => unreachable!("a label column only for sums"),
                        };
                        return Err(self.missing(line, &c, "events label"));
                    }
                    self.horizon_sum += x;
                }
            }
        }
        Ok(())
    }

    fn missing(&self, line: usize, column: &str, role: &str) -> Error {
        Error::DataAt {
            path: self.what.to_string(),
            line,
            column: column.into(),
            message: format!("the {role} is missing"),
        }
    }

    /// Close the current entity: its summaries, label and sequence (nothing when it has no
    /// event in the input window).
    fn finish_entity(&mut self) -> Result<()> {
        let Some(key) = self.key.take() else { return Ok(()) };
        let (hc, hs) = (std::mem::take(&mut self.horizon_count), std::mem::take(&mut self.horizon_sum));
        if self.events.is_empty() {
            return Ok(());
        }
        // Stable: events of the same moment stay in log order, as in `sequence::build`.
        self.events.sort_by_key(|ev| ev.time);
        self.keys.push(key);
        self.first_lines.push(self.first_line);
        self.horizon_counts.push(hc);
        self.horizon_sums.push(hs);
        let mut row = std::mem::take(&mut self.row);
        row.clear();
        summaries(&self.events, &self.store, self.plan, &mut row);
        for (c, x) in self.columns.iter_mut().zip(&row) {
            c.push(*x);
        }
        self.row = row;
        if self.steps > 0 {
            let rows = self.lengths.len() + 1;
            let values = rows.checked_mul(self.steps).and_then(|v| v.checked_mul(self.channels));
            if values.is_none_or(|v| v > limits::MAX_SEQUENCE_VALUES) {
                return Err(Error::config(
                    "data.events.steps",
                    format!(
                        "sequences of more than {} entities x {} steps x {} channels would hold more than {} values: \
                         set fewer `steps` (or a wider `bin`)",
                        rows - 1,
                        self.steps,
                        self.channels,
                        limits::MAX_SEQUENCE_VALUES
                    ),
                ));
            }
            let start = self.seq.len();
            self.seq.resize(start + self.steps * self.channels, 0.0);
            let out = &mut self.seq[start..];
            let len = match self.plan.encoding {
                Encoding::Bins { days, .. } => {
                    bins(&self.events, &self.store, self.plan, i64::from(days), self.steps, out)
                }
                Encoding::LastN { n } => last_n(&self.events, &self.store, self.plan, n, out),
                Encoding::None => unreachable!("no steps without sequences"),
            };
            self.lengths.push(len);
        }
        self.events.clear();
        self.store.clear();
        Ok(())
    }

    /// The entity table: rows in order of first appearance, sequences in folding order.
    fn finish(mut self, target: &str) -> Result<EntityTable> {
        self.finish_entity()?;
        let n = self.keys.len();
        if n == 0 {
            return Err(Error::data(format!(
                "no entity has an event in the input window (up to the cutoff): check `data.events` dates against the `{}` column",
                self.plan.time
            )));
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| self.first_lines[i]);
        let mut cols = Vec::with_capacity(self.columns.len() + 3);
        let entity = if self.cols.entity_numeric {
            ColumnData::Numeric(
                order
                    .iter()
                    .map(|&i| match &self.keys[i] {
                        Key::Number(x) => *x,
                        Key::Text(_) => unreachable!("numeric entity"),
                    })
                    .collect(),
            )
        } else {
            ColumnData::categorical_from(order.iter().map(|&i| match &self.keys[i] {
                Key::Text(s) => Some(s.as_str()),
                Key::Number(_) => unreachable!("text entity"),
            }))
        };
        cols.push(Column { name: self.plan.entity.clone(), data: entity });
        for (name, values) in self.names.iter().zip(std::mem::take(&mut self.columns)) {
            cols.push(Column {
                name: name.clone(),
                data: ColumnData::Numeric(order.iter().map(|&i| values[i]).collect()),
            });
        }
        let target_data = match &self.plan.label {
            Label::Any => ColumnData::Boolean(order.iter().map(|&i| Some(self.horizon_counts[i] > 0)).collect()),
            Label::Count => ColumnData::Numeric(order.iter().map(|&i| self.horizon_counts[i] as f64).collect()),
            Label::Sum(_) => ColumnData::Numeric(order.iter().map(|&i| self.horizon_sums[i]).collect()),
        };
        if cols.iter().any(|c| c.name == target) {
            return Err(Error::config(
                "data.target",
                format!("`{target}` is also the name of an events summary column"),
            ));
        }
        cols.push(Column { name: target.to_string(), data: target_data });
        cols.push(Column { name: ROW_ID.into(), data: ColumnData::Numeric(order.iter().map(|&i| i as f64).collect()) });
        let frame = Frame::new(cols)?;
        let sequences = match &self.plan.encoding {
            Encoding::None => None,
            encoding => {
                let mut channels: Vec<String> = match encoding {
                    Encoding::Bins { .. } => vec!["count".into()],
                    _ => vec!["log_gap_days".into(), "log_age_days".into()],
                };
                channels.extend(self.plan.values.iter().map(|v| match encoding {
                    Encoding::Bins { .. } => format!("{v}_sum"),
                    _ => v.clone(),
                }));
                let data =
                    ndarray::Array3::from_shape_vec((n, self.steps, self.channels), std::mem::take(&mut self.seq))
                        .map_err(|e| Error::data(format!("sequences: {e}")))?;
                Some(Sequences { data, lengths: std::mem::take(&mut self.lengths), channels })
            }
        };
        Ok(EntityTable { frame, sequences })
    }
}

/// The summaries of one entity's input events (sorted by time), in the column order of
/// [`Fold::new`], computed as [`crate::sequence::build`] computes them.
fn summaries(events: &[Event], store: &[f64], plan: &EventsPlan, out: &mut Vec<f64>) {
    let ref_day = plan.cutoff.div_euclid(DAY);
    let day = |t: i64| t.div_euclid(DAY);
    let first_day = day(events[0].time);
    let last_day = day(events[events.len() - 1].time);
    let n_days = {
        let mut d: Vec<i64> = events.iter().map(|ev| day(ev.time)).collect();
        d.dedup();
        d.len()
    };
    out.push(events.len() as f64);
    out.push(n_days as f64);
    out.push((n_days - 1) as f64);
    out.push((last_day - first_day) as f64);
    out.push((ref_day - first_day) as f64);
    out.push((ref_day - last_day) as f64);
    out.push({
        let f = n_days - 1;
        if f == 0 { (ref_day - first_day) as f64 } else { (last_day - first_day) as f64 / f as f64 }
    });
    out.push({
        let t = ref_day - first_day;
        if t == 0 { 1.0 } else { (last_day - first_day) as f64 / t as f64 }
    });
    for &k in &plan.recent_days {
        let since = ref_day - i64::from(k);
        out.push(events.iter().filter(|ev| day(ev.time) > since).count() as f64);
        let mut d: Vec<i64> = events.iter().map(|ev| day(ev.time)).filter(|&d| d > since).collect();
        d.dedup();
        out.push(d.len() as f64);
    }
    for p in 0..plan.periods {
        let w = i64::from(plan.period_days);
        let mut d: Vec<i64> = events.iter().map(|ev| day(ev.time)).filter(|&d| (ref_day - d) / w == p as i64).collect();
        d.dedup();
        out.push(d.len() as f64);
    }
    for v in 0..plan.values.len() {
        let val = |ev: &Event| store[ev.at + v];
        out.push(events.iter().map(val).sum());
        out.push(events.iter().map(val).sum::<f64>() / events.len() as f64);
        out.push(events.iter().map(val).fold(f64::MIN, f64::max));
        out.push(events.iter().filter(|ev| day(ev.time) == first_day).map(val).sum());
        let repeat: f64 = events.iter().filter(|ev| day(ev.time) != first_day).map(val).sum();
        let days = n_days - 1;
        out.push(if days == 0 { 0.0 } else { repeat / days as f64 });
        for &k in &plan.recent_days {
            let since = ref_day - i64::from(k);
            out.push(events.iter().filter(|ev| day(ev.time) > since).map(val).sum());
        }
    }
}

fn squash(x: f64, log1p: bool) -> f32 {
    (if log1p { x.signum() * x.abs().ln_1p() } else { x }) as f32
}

/// One entity's time bins (see [`crate::sequence`]) into `out` (`steps` x channels, zeroed);
/// returns the sequence's length.
fn bins(events: &[Event], store: &[f64], plan: &EventsPlan, width: i64, steps: usize, out: &mut [f32]) -> usize {
    let ref_day = plan.cutoff.div_euclid(DAY);
    let back = |t: i64| ((ref_day - t.div_euclid(DAY)) / width) as usize;
    let nv = plan.values.len();
    let mut acc = vec![0.0f64; steps * (1 + nv)];
    let len = back(events[0].time).min(steps - 1) + 1;
    for ev in events {
        let b = back(ev.time);
        if b >= len {
            continue;
        }
        let s = len - 1 - b;
        acc[s * (1 + nv)] += 1.0;
        for v in 0..nv {
            acc[s * (1 + nv) + 1 + v] += store[ev.at + v];
        }
    }
    for s in 0..len {
        for c in 0..=nv {
            out[s * (1 + nv) + c] = squash(acc[s * (1 + nv) + c], plan.log1p);
        }
    }
    len
}

/// One entity's last `n` events (see [`crate::sequence`]) into `out`; returns the length.
fn last_n(events: &[Event], store: &[f64], plan: &EventsPlan, n: usize, out: &mut [f32]) -> usize {
    let nv = plan.values.len();
    let days = |dt: i64| (dt.max(0) as f64 / DAY as f64).ln_1p() as f32;
    let skip = events.len().saturating_sub(n);
    for (s, i) in (skip..events.len()).enumerate() {
        let ev = events[i];
        let o = s * (2 + nv);
        out[o] = if i == 0 { 0.0 } else { days(ev.time - events[i - 1].time) };
        out[o + 1] = days(plan.cutoff + 1 - ev.time);
        for v in 0..nv {
            out[o + 2 + v] = squash(store[ev.at + v], plan.log1p);
        }
    }
    events.len() - skip
}
