//! The embedded query engine (Apache DataFusion): a session with a bounded, spilling memory
//! pool, its own thread pool, and the conversion of its errors back to promoml's.
//!
//! Event logs are scanned, filtered and sorted here ([`crate::data::events`]), and derived
//! columns (`[data] derive`) are evaluated here for any table ([`derive`]).

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, Float64Array, StringArray, TimestampSecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use promoml_core::{Column, ColumnData, Error, Frame, Result};
use std::sync::Arc;

/// Memory the engine's operators may hold before they spill to disk (sorts) when
/// `[data] memory_limit` is not set: 256 MiB. (On a 20M-event log a larger pool was not faster:
/// 512 MiB took 14.4 s and 1.36 GB peak for the data stage, 256 MiB 13.2 s and 1.15 GB.)
pub const DEFAULT_MEMORY_LIMIT: usize = 256 << 20;

/// Smallest `memory_limit` accepted: 16 MiB (below it a sort cannot hold one batch per run).
pub const MIN_MEMORY_LIMIT: usize = 16 << 20;

/// Parse `[data] memory_limit`: bytes as an integer, or text with a unit (`"512MB"`, `"2 GiB"`,
/// `"750k"`; K, M, G and T are powers of 1024 whether written `MB` or `MiB`). The error says what
/// is accepted.
pub fn parse_memory_limit(v: &toml::Value) -> std::result::Result<usize, String> {
    let bytes = match v {
        toml::Value::Integer(n) if *n > 0 => *n as u128,
        toml::Value::String(s) => {
            let t = s.trim();
            let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
            let (num, unit) = t.split_at(split);
            let num: f64 = num.parse().map_err(|_| format!("\"{s}\" is not a size (e.g. \"512MB\", \"2GB\")"))?;
            let mult: u128 = match unit.trim().to_ascii_lowercase().as_str() {
                "" | "b" => 1,
                "k" | "kb" | "kib" => 1 << 10,
                "m" | "mb" | "mib" => 1 << 20,
                "g" | "gb" | "gib" => 1 << 30,
                "t" | "tb" | "tib" => 1 << 40,
                other => return Err(format!("unknown unit \"{other}\" in \"{s}\" (known: B, KB, MB, GB, TB)")),
            };
            (num * mult as f64) as u128
        }
        other => return Err(format!("{other} is not a size: give bytes or text such as \"512MB\"")),
    };
    if bytes < MIN_MEMORY_LIMIT as u128 {
        return Err(format!("{bytes} bytes is below the minimum of {} MiB", MIN_MEMORY_LIMIT >> 20));
    }
    usize::try_from(bytes).map_err(|_| format!("{bytes} bytes is more than this machine can address"))
}

/// A DataFusion session with a fair spilling memory pool of `memory_limit` bytes, and the
/// runtime that executes it.
pub struct Engine {
    /// The session: register tables, run SQL.
    pub ctx: SessionContext,
    runtime: tokio::runtime::Runtime,
}

impl Engine {
    /// A session whose operators hold at most `memory_limit` bytes (sorts spill to the
    /// system's temporary directory beyond it), running on the machine's cores, its plans
    /// cut into as many partitions.
    pub fn new(memory_limit: usize) -> Result<Engine> {
        Engine::with_partitions(memory_limit, None)
    }

    /// [`Engine::new`] with plans of `partitions` partitions (`None`: one per core). One
    /// partition sorts in a single sorter that has the whole pool: no final merge of
    /// partitions, which the pool cannot spill.
    pub fn with_partitions(memory_limit: usize, partitions: Option<usize>) -> Result<Engine> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("promoml-engine")
            .enable_all()
            .build()
            .map_err(|e| Error::data(format!("cannot start the query engine's threads: {e}")))?;
        let env = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(memory_limit)))
            .build_arc()
            .map_err(|e| Error::data(format!("cannot start the query engine: {e}")))?;
        let partitions = partitions.unwrap_or(threads).max(1);
        let mut config = SessionConfig::new().with_target_partitions(partitions).with_batch_size(16_384);
        // Each sorting partition reserves memory for merging its spilled runs: a share of the
        // pool (DataFusion's 10 MB default would not fit a small pool for several partitions).
        let share = memory_limit / (4 * partitions);
        let exec = &mut config.options_mut().execution;
        exec.sort_spill_reservation_bytes = exec.sort_spill_reservation_bytes.min(share);
        exec.sort_in_place_threshold_bytes = exec.sort_in_place_threshold_bytes.min(share);
        Ok(Engine { ctx: SessionContext::new_with_config_rt(config, env), runtime })
    }

    /// Run `f` to completion on the engine's runtime. It runs on a thread of its own, so a
    /// caller that is itself inside an async runtime is not blocked from within.
    pub fn block_on<T: Send>(&self, f: impl std::future::Future<Output = T> + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| self.runtime.block_on(f)).join().unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }
}

/// A DataFusion error as a promoml error: a promoml error raised inside the engine (a bad value
/// in a log, with its file, line and column) comes back as it was; anything else is a data
/// error prefixed with `what`.
pub fn from_datafusion(e: DataFusionError, what: &str) -> Error {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = cur {
        if let Some(p) = err.downcast_ref::<Error>() {
            return match p {
                Error::DataAt { path, line, column, message } => {
                    Error::DataAt { path: path.clone(), line: *line, column: column.clone(), message: message.clone() }
                }
                Error::Config { key, message } => Error::config(key.clone(), message.clone()),
                other => Error::data(other.to_string()),
            };
        }
        cur = err.source();
    }
    Error::data(format!("{what}: {}", e.find_root()))
}

/// Check that `expr` is one SQL expression (its columns are checked when the table is read);
/// the error is the parser's.
pub fn check_expression(expr: &str) -> std::result::Result<(), String> {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    if expr.trim().is_empty() {
        return Err("the SQL expression is empty".into());
    }
    let mut parser = Parser::new(&GenericDialect {}).try_with_sql(expr).map_err(|e| format!("`{expr}`: {e}"))?;
    parser.parse_expr().map_err(|e| format!("`{expr}`: {e}"))?;
    match parser.peek_token().token {
        datafusion::sql::sqlparser::tokenizer::Token::EOF => Ok(()),
        t => Err(format!("`{expr}`: unexpected `{t}` after the expression (one expression per column)")),
    }
}

/// The columns a (checked) SQL expression reads, in first-use order: its identifiers, as the
/// engine resolves them (an unquoted name lowercased, a quoted one as written; `t.col` is
/// `col`). Function names are not columns.
pub fn expression_columns(expr: &str) -> std::result::Result<Vec<String>, String> {
    use datafusion::sql::sqlparser::ast::{Expr, Ident, visit_expressions};
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    let parsed = Parser::new(&GenericDialect {})
        .try_with_sql(expr)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| format!("`{expr}`: {e}"))?;
    let name = |i: &Ident| if i.quote_style.is_some() { i.value.clone() } else { i.value.to_lowercase() };
    let mut columns: Vec<String> = Vec::new();
    let _ = visit_expressions(&parsed, |e| {
        let found = match e {
            Expr::Identifier(i) => Some(name(i)),
            Expr::CompoundIdentifier(parts) => parts.last().map(name),
            _ => None,
        };
        if let Some(c) = found
            && !columns.contains(&c)
        {
            columns.push(c);
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    Ok(columns)
}

/// Quote a column name for SQL (`"name"`, with `"` doubled).
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Columns of a frame as one Arrow record batch: numbers as `Float64` (NaN as null), booleans,
/// text and timestamps (seconds), every column nullable.
pub(crate) fn to_batch<'a>(columns: impl IntoIterator<Item = &'a Column>) -> Result<RecordBatch> {
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for c in columns {
        let (ty, a): (DataType, ArrayRef) = match &c.data {
            ColumnData::Numeric(v) => {
                (DataType::Float64, Arc::new(v.iter().map(|x| (!x.is_nan()).then_some(*x)).collect::<Float64Array>()))
            }
            ColumnData::Boolean(v) => (DataType::Boolean, Arc::new(v.iter().copied().collect::<BooleanArray>())),
            ColumnData::Categorical { levels, codes } => (
                DataType::Utf8,
                Arc::new(codes.iter().map(|c| c.map(|c| levels[c as usize].as_str())).collect::<StringArray>()),
            ),
            ColumnData::Timestamp(v) => (
                DataType::Timestamp(TimeUnit::Second, None),
                Arc::new(v.iter().copied().collect::<TimestampSecondArray>()),
            ),
        };
        fields.push(Field::new(&c.name, ty, true));
        arrays.push(a);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|e| Error::data(e.to_string()))
}

/// An Arrow column as promoml column data: booleans stay booleans, numbers become `Numeric`
/// (null as NaN), text becomes categorical, timestamps and dates become seconds.
fn from_array(a: &ArrayRef, key: &str) -> Result<ColumnData> {
    use datafusion::arrow::compute::cast;
    let bad = |e: datafusion::arrow::error::ArrowError| Error::config(key, e.to_string());
    Ok(match a.data_type() {
        DataType::Boolean => {
            let b = a.as_any().downcast_ref::<BooleanArray>().expect("boolean array");
            ColumnData::Boolean(b.iter().collect())
        }
        t if t.is_numeric() => {
            let f = cast(a, &DataType::Float64).map_err(bad)?;
            let f = f.as_any().downcast_ref::<Float64Array>().expect("cast to Float64");
            ColumnData::Numeric(f.iter().map(|x| x.unwrap_or(f64::NAN)).collect())
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let s = cast(a, &DataType::Utf8).map_err(bad)?;
            let s = s.as_any().downcast_ref::<StringArray>().expect("cast to Utf8");
            ColumnData::categorical_from(s.iter())
        }
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => {
            let s = cast(a, &DataType::Timestamp(TimeUnit::Second, None)).map_err(bad)?;
            let s = s.as_any().downcast_ref::<TimestampSecondArray>().expect("cast to seconds");
            ColumnData::Timestamp(s.iter().collect())
        }
        DataType::Null => ColumnData::Numeric(vec![f64::NAN; a.len()]),
        other => {
            return Err(Error::config(
                key,
                format!("the expression gives {other}; a derived column must be a number, a boolean, text or a time"),
            ));
        }
    })
}

/// Evaluate `[data] derive` on `frame`: each `(name, SQL expression)` becomes a column (a new
/// one, or replacing the column of that name), computed by the engine from the frame's columns
/// as they were before any derivation. Errors name the key (`data.derive.NAME`) and the SQL
/// problem.
pub fn derive(frame: Frame, derive: &[(String, String)], memory_limit: usize) -> Result<Frame> {
    if derive.is_empty() {
        return Ok(frame);
    }
    let engine = Engine::new(memory_limit)?;
    let batch = to_batch(frame.columns())?;
    let key = |name: &str| format!("data.derive.{name}");
    let rows = frame.n_rows();
    let mut out = frame;
    engine.block_on(async {
        engine
            .ctx
            .register_batch("data", batch)
            .map_err(|e| Error::data(format!("cannot hand the table to the engine: {e}")))?;
        for (name, expr) in derive {
            let problem = |e: DataFusionError| Error::config(key(name), format!("`{expr}`: {}", e.find_root()));
            let sql = format!("SELECT ({expr}) AS {} FROM data", quote(name));
            let df = engine.ctx.sql(&sql).await.map_err(problem)?;
            let batches = df.collect().await.map_err(problem)?;
            let arrays: Vec<ArrayRef> = batches.iter().map(|b| b.column(0).clone()).collect();
            let refs: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
            let column = if refs.is_empty() {
                return Err(Error::config(key(name), format!("`{expr}` gave no rows")));
            } else {
                datafusion::arrow::compute::concat(&refs).map_err(|e| Error::config(key(name), e.to_string()))?
            };
            if column.len() != rows {
                return Err(Error::config(
                    key(name),
                    format!("`{expr}` gave {} values for {rows} rows (an aggregate?)", column.len()),
                ));
            }
            let data = from_array(&column, &key(name))?;
            out.set(name, data).map_err(|e| Error::config(key(name), e.to_string()))?;
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expression_columns_are_the_identifiers_as_the_engine_resolves_them() {
        let cols = |e: &str| expression_columns(e).unwrap();
        assert_eq!(cols("revenue - cost"), ["revenue", "cost"]);
        assert_eq!(cols("CASE WHEN Amount > 0 THEN round(amount * 1.2) ELSE NULL END"), ["amount"]);
        assert_eq!(cols("coalesce(\"Gross Sales\", 0) + data.tax"), ["Gross Sales", "tax"]);
        assert_eq!(cols("trans_after > 0 AND region IN ('N', 'S')"), ["trans_after", "region"]);
        assert!(cols("1 + 2").is_empty());
        assert!(expression_columns("a +").is_err());
    }
}
