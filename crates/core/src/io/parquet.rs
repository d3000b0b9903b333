//! Parquet input through the `parquet` crate's row API (no Arrow needed).

use crate::{Column, ColumnData, ColumnType, Error, Frame, Result};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use std::collections::BTreeMap;
use std::path::Path;

enum Cell {
    Missing,
    Num(f64),
    Bool(bool),
    Text(String),
    Time(i64),
}

/// Read a Parquet file. Numbers become numeric columns, strings categorical, booleans boolean,
/// dates and timestamps timestamp; `types` may re-declare a column (e.g. an integer code as
/// categorical).
pub fn read_parquet(path: &Path, types: &BTreeMap<String, ColumnType>) -> Result<Frame> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let reader =
        SerializedFileReader::new(file).map_err(|e| Error::data(format!("{name}: not a Parquet file: {e}")))?;
    let schema = reader.metadata().file_metadata().schema_descr();
    let names: Vec<String> = schema.columns().iter().map(|c| c.name().to_string()).collect();
    let mut cells: Vec<Vec<Cell>> = names.iter().map(|_| Vec::new()).collect();
    let rows = reader.get_row_iter(None).map_err(|e| Error::data(format!("{name}: {e}")))?;
    for (r, row) in rows.enumerate() {
        let row = row.map_err(|e| Error::data(format!("{name}: row {}: {e}", r + 1)))?;
        for (j, (col, field)) in row.get_column_iter().enumerate() {
            let cell = match field {
                Field::Null => Cell::Missing,
                Field::Bool(b) => Cell::Bool(*b),
                Field::Byte(x) => Cell::Num(f64::from(*x)),
                Field::Short(x) => Cell::Num(f64::from(*x)),
                Field::Int(x) => Cell::Num(f64::from(*x)),
                Field::Long(x) => Cell::Num(*x as f64),
                Field::UByte(x) => Cell::Num(f64::from(*x)),
                Field::UShort(x) => Cell::Num(f64::from(*x)),
                Field::UInt(x) => Cell::Num(f64::from(*x)),
                Field::ULong(x) => Cell::Num(*x as f64),
                Field::Float(x) => Cell::Num(f64::from(*x)),
                Field::Double(x) => Cell::Num(*x),
                Field::Str(s) => Cell::Text(s.clone()),
                Field::Date(d) => Cell::Time(i64::from(*d) * 86_400),
                Field::TimestampMillis(t) => Cell::Time(t.div_euclid(1000)),
                Field::TimestampMicros(t) => Cell::Time(t.div_euclid(1_000_000)),
                other => {
                    return Err(Error::DataAt {
                        path: name,
                        line: r + 1,
                        column: col.clone(),
                        message: format!("unsupported Parquet value {other}"),
                    });
                }
            };
            if let Cell::Num(x) = cell
                && x.is_infinite()
            {
                return Err(Error::DataAt {
                    path: name,
                    line: r + 1,
                    column: col.clone(),
                    message: "infinite value".into(),
                });
            }
            cells[j].push(if matches!(cell, Cell::Num(x) if x.is_nan()) { Cell::Missing } else { cell });
        }
    }
    if cells.first().is_none_or(Vec::is_empty) {
        return Err(Error::data(format!("{name}: the file has no rows")));
    }
    let mut columns = Vec::new();
    for (col, values) in names.into_iter().zip(cells) {
        let natural = values.iter().find_map(|c| match c {
            Cell::Missing => None,
            Cell::Num(_) => Some(ColumnType::Numeric),
            Cell::Bool(_) => Some(ColumnType::Boolean),
            Cell::Text(_) => Some(ColumnType::Categorical),
            Cell::Time(_) => Some(ColumnType::Timestamp),
        });
        let kind = types.get(&col).copied().or(natural).unwrap_or(ColumnType::Numeric);
        let as_text = |c: &Cell| match c {
            Cell::Missing => None,
            Cell::Num(x) => Some(crate::frame::format_number(*x)),
            Cell::Bool(b) => Some(b.to_string()),
            Cell::Text(s) => Some(s.clone()),
            Cell::Time(t) => Some(t.to_string()),
        };
        let mismatch = |i: usize| Error::DataAt {
            path: name.clone(),
            line: i + 1,
            column: col.clone(),
            message: format!("value does not fit the column's type {kind:?}"),
        };
        let data = match kind {
            ColumnType::Categorical => ColumnData::categorical_from(values.iter().map(as_text)),
            ColumnType::Numeric => ColumnData::Numeric(
                values
                    .iter()
                    .enumerate()
                    .map(|(i, c)| match c {
                        Cell::Missing => Ok(f64::NAN),
                        Cell::Num(x) => Ok(*x),
                        Cell::Bool(b) => Ok(f64::from(u8::from(*b))),
                        Cell::Time(t) => Ok(*t as f64),
                        Cell::Text(s) => {
                            s.trim().parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(|| mismatch(i))
                        }
                    })
                    .collect::<Result<_>>()?,
            ),
            ColumnType::Boolean => ColumnData::Boolean(
                values
                    .iter()
                    .enumerate()
                    .map(|(i, c)| match c {
                        Cell::Missing => Ok(None),
                        Cell::Bool(b) => Ok(Some(*b)),
                        Cell::Num(x) if *x == 0.0 || *x == 1.0 => Ok(Some(*x == 1.0)),
                        _ => Err(mismatch(i)),
                    })
                    .collect::<Result<_>>()?,
            ),
            ColumnType::Timestamp => ColumnData::Timestamp(
                values
                    .iter()
                    .enumerate()
                    .map(|(i, c)| match c {
                        Cell::Missing => Ok(None),
                        Cell::Time(t) => Ok(Some(*t)),
                        Cell::Num(x) => Ok(Some(*x as i64)),
                        Cell::Text(s) => super::parse_timestamp(s, None).map(Some).ok_or_else(|| mismatch(i)),
                        Cell::Bool(_) => Err(mismatch(i)),
                    })
                    .collect::<Result<_>>()?,
            ),
        };
        columns.push(Column { name: col, data });
    }
    Frame::new(columns)
}
