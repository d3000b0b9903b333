//! Rows given as JSON objects (a scoring request) to a typed [`Frame`], with the column types
//! a model artifact was trained on. Values are read like the cells of an input file: a number
//! or a numeric string in a numeric column, any scalar in a categorical one, `null` or a
//! missing marker for a missing value. Errors name the row (`rows[i]`, 0-based), the column
//! and the value.

use promoml_core::io::{MISSING_MARKERS, parse_timestamp};
use promoml_core::{Column, ColumnData, ColumnType, Error, Frame, Result};
use serde_json::Value;
use std::collections::BTreeMap;

/// How request rows are read: the columns a model needs, their types, and what means missing.
pub(crate) struct RowSchema<'a> {
    /// Columns every row must have.
    pub columns: &'a [String],
    /// The id column, copied to the answer when rows have it.
    pub id: Option<&'a str>,
    /// Declared or trained types; a column without one is numeric when every value is a number.
    pub types: &'a BTreeMap<String, ColumnType>,
    /// Extra missing markers besides [`MISSING_MARKERS`].
    pub missing: &'a [String],
    /// Timestamp format of the training file.
    pub timestamp_format: Option<&'a str>,
}

/// The frame of `rows` (JSON objects) and, when the rows carry the id column, each row's id
/// as given. Keys other than the model's columns and the id are ignored.
pub(crate) fn frame_from_json(rows: &[Value], schema: &RowSchema<'_>) -> Result<(Frame, Option<Vec<Value>>)> {
    let mut objects = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let o = r.as_object().ok_or_else(|| {
            Error::data(format!("rows[{i}]: expected an object of column values, got {}", kind_of(r)))
        })?;
        let absent: Vec<String> =
            schema.columns.iter().filter(|c| !o.contains_key(c.as_str())).map(|c| format!("`{c}`")).collect();
        if !absent.is_empty() {
            return Err(Error::data(format!(
                "rows[{i}]: missing column{} {} that the model needs (it was trained on: {})",
                if absent.len() > 1 { "s" } else { "" },
                absent.join(", "),
                schema.columns.join(", ")
            )));
        }
        objects.push(o);
    }
    let mut columns = Vec::with_capacity(schema.columns.len());
    for c in schema.columns {
        let cells: Vec<&Value> = objects.iter().map(|o| &o[c.as_str()]).collect();
        columns.push(Column { name: c.clone(), data: column(c, &cells, schema)? });
    }
    let ids = schema.id.filter(|id| !schema.columns.iter().any(|c| c == id)).and_then(|id| {
        objects.iter().all(|o| o.contains_key(id)).then(|| objects.iter().map(|o| o[id].clone()).collect())
    });
    Ok((Frame::new(columns)?, ids))
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The cell as text, as it would appear in a file (`None` for null and missing markers).
fn text(v: &Value, schema: &RowSchema<'_>) -> Option<String> {
    let s = match v {
        Value::Null => return None,
        Value::String(s) => s.trim().to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(_) | Value::Object(_) => return Some(String::new()),
    };
    let missing = MISSING_MARKERS.contains(&s.as_str()) || schema.missing.iter().any(|m| m == &s);
    (!missing).then_some(s)
}

fn column(name: &str, cells: &[&Value], schema: &RowSchema<'_>) -> Result<ColumnData> {
    let bad = |i: usize, v: &Value, what: String| Error::data(format!("rows[{i}]: column `{name}`: {v} {what}"));
    for (i, v) in cells.iter().enumerate() {
        if v.is_array() || v.is_object() {
            return Err(bad(i, v, "is not a single value".into()));
        }
    }
    let kind = schema.types.get(name).copied().unwrap_or_else(|| {
        if cells.iter().all(|v| v.is_number() || v.is_null()) { ColumnType::Numeric } else { ColumnType::Categorical }
    });
    Ok(match kind {
        ColumnType::Numeric => {
            let mut out = Vec::with_capacity(cells.len());
            for (i, v) in cells.iter().enumerate() {
                let x = match v {
                    Value::Number(n) => n.as_f64(),
                    _ => match text(v, schema) {
                        None => Some(f64::NAN),
                        Some(s) => s.parse::<f64>().ok(),
                    },
                };
                match x {
                    Some(x) if !x.is_infinite() => out.push(x),
                    Some(_) => return Err(bad(i, v, "is not a finite number".into())),
                    None => return Err(bad(i, v, "is not a number (column is numeric)".into())),
                }
            }
            ColumnData::Numeric(out)
        }
        ColumnType::Categorical => ColumnData::categorical_from(cells.iter().map(|v| text(v, schema))),
        ColumnType::Boolean => {
            let mut out = Vec::with_capacity(cells.len());
            for (i, v) in cells.iter().enumerate() {
                out.push(match (v, text(v, schema)) {
                    (Value::Bool(b), _) => Some(*b),
                    (_, None) => None,
                    (_, Some(s)) => {
                        Some(parse_bool(&s).ok_or_else(|| {
                            bad(i, v, "is not a boolean (expected true/false, TRUE/FALSE, 1/0)".into())
                        })?)
                    }
                });
            }
            ColumnData::Boolean(out)
        }
        ColumnType::Timestamp => {
            let mut out = Vec::with_capacity(cells.len());
            for (i, v) in cells.iter().enumerate() {
                out.push(match text(v, schema) {
                    None => None,
                    Some(s) => Some(parse_timestamp(&s, schema.timestamp_format).ok_or_else(|| {
                        bad(
                            i,
                            v,
                            format!(
                                "is not a timestamp (format {})",
                                schema.timestamp_format.unwrap_or("YYYY-MM-DD[ HH:MM:SS]")
                            ),
                        )
                    })?),
                });
            }
            ColumnData::Timestamp(out)
        }
    })
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "TRUE" | "True" | "true" | "1" => Some(true),
        "FALSE" | "False" | "false" | "0" => Some(false),
        _ => None,
    }
}

/// Event rows (JSON objects) as CSV text with a header, so that an event log given in a request
/// is read exactly like an event-log file: the union of the rows' keys as columns.
pub(crate) fn events_csv(rows: &[Value]) -> Result<String> {
    let mut names: Vec<&str> = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let o =
            r.as_object().ok_or_else(|| Error::data(format!("events[{i}]: expected an object, got {}", kind_of(r))))?;
        for k in o.keys() {
            if !names.contains(&k.as_str()) {
                names.push(k);
            }
        }
    }
    let field = |v: Option<&Value>| -> String {
        let s = match v {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        };
        crate::codec::quote(&s)
    };
    let mut out = names.iter().map(|n| crate::codec::quote(n)).collect::<Vec<_>>().join(",");
    out.push('\n');
    for r in rows {
        let o = r.as_object().expect("checked above");
        out.push_str(&names.iter().map(|n| field(o.get(*n))).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema<'a>(cols: &'a [String], types: &'a BTreeMap<String, ColumnType>) -> RowSchema<'a> {
        RowSchema { columns: cols, id: Some("id"), types, missing: &[], timestamp_format: None }
    }

    #[test]
    fn json_rows_become_typed_columns() {
        let cols = vec!["a".to_string(), "c".to_string()];
        let types =
            BTreeMap::from([("a".to_string(), ColumnType::Numeric), ("c".to_string(), ColumnType::Categorical)]);
        let rows = vec![
            json!({"id": 7, "a": 1.5, "c": "x"}),
            json!({"id": "b", "a": "2", "c": 3, "zz": 1}),
            json!({"a": null, "c": "NA"}),
        ];
        let (f, ids) = frame_from_json(&rows, &schema(&cols, &types)).unwrap();
        assert!(ids.is_none(), "one row has no id");
        let a = &f.column("a").unwrap().data;
        assert_eq!((a.value_f64(0), a.value_f64(1)), (1.5, 2.0));
        assert!(a.value_f64(2).is_nan());
        let c = &f.column("c").unwrap().data;
        assert_eq!(c.value_string(1).as_deref(), Some("3"));
        assert!(c.is_missing(2));
        let (_, ids) = frame_from_json(&rows[..2], &schema(&cols, &types)).unwrap();
        assert_eq!(ids.unwrap(), vec![json!(7), json!("b")]);
    }

    #[test]
    fn bad_rows_are_located() {
        let cols = vec!["a".to_string(), "c".to_string()];
        let types = BTreeMap::from([("a".to_string(), ColumnType::Numeric)]);
        let s = schema(&cols, &types);
        let e = frame_from_json(&[json!({"a": 1, "c": "x"}), json!({"a": "zz", "c": "x"})], &s).unwrap_err();
        assert_eq!(e.to_string(), "rows[1]: column `a`: \"zz\" is not a number (column is numeric)");
        let e = frame_from_json(&[json!({"a": 1})], &s).unwrap_err().to_string();
        assert!(e.starts_with("rows[0]: missing column `c` that the model needs"), "{e}");
        let e = frame_from_json(&[json!([1, 2])], &s).unwrap_err().to_string();
        assert!(e.starts_with("rows[0]: expected an object"), "{e}");
    }

    #[test]
    fn events_become_csv() {
        let t = events_csv(&[json!({"u": 1, "t": "2024-01-01"}), json!({"t": "2024-01-02", "v": "a,b"})]).unwrap();
        assert_eq!(t, "t,u,v\n2024-01-01,1,\n2024-01-02,,\"a,b\"\n");
    }
}
