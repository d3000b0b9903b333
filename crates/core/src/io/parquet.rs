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

/// The column names of a Parquet file, from its footer only (no row is read).
pub fn parquet_columns(path: &Path) -> Result<Vec<String>> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let reader =
        SerializedFileReader::new(file).map_err(|e| Error::data(format!("{name}: not a Parquet file: {e}")))?;
    let schema = reader.metadata().file_metadata().schema_descr();
    Ok(schema.columns().iter().map(|c| c.name().to_string()).collect())
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

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    use std::sync::Arc;

    /// Write a small file with a double (one null), a string (one null), a boolean and an
    /// integer code column.
    fn write(path: &Path) {
        let schema = Arc::new(
            parse_message_type(
                "message t { optional double x; optional binary c (UTF8); required boolean b; required int64 code; }",
            )
            .unwrap(),
        );
        let mut w =
            SerializedFileWriter::new(std::fs::File::create(path).unwrap(), schema, Default::default()).unwrap();
        let mut rg = w.next_row_group().unwrap();
        let mut i = 0;
        while let Some(mut col) = rg.next_column().unwrap() {
            match i {
                0 => {
                    col.typed::<DoubleType>().write_batch(&[1.5, -2.0], Some(&[1, 0, 1]), None).unwrap();
                }
                1 => {
                    let v = [ByteArray::from("a"), ByteArray::from("b")];
                    col.typed::<ByteArrayType>().write_batch(&v, Some(&[1, 1, 0]), None).unwrap();
                }
                2 => {
                    col.typed::<BoolType>().write_batch(&[true, false, true], None, None).unwrap();
                }
                _ => {
                    col.typed::<Int64Type>().write_batch(&[7, 8, 7], None, None).unwrap();
                }
            }
            col.close().unwrap();
            i += 1;
        }
        rg.close().unwrap();
        w.close().unwrap();
    }

    #[test]
    fn reads_types_missing_values_and_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        write(&path);
        let mut types = BTreeMap::new();
        types.insert("code".to_string(), ColumnType::Categorical);
        let f = read_parquet(&path, &types).unwrap();
        assert_eq!(f.names(), vec!["x", "c", "b", "code"]);
        let ColumnData::Numeric(x) = &f.column("x").unwrap().data else { panic!("x numeric") };
        assert_eq!((x[0], x[2]), (1.5, -2.0));
        assert!(x[1].is_nan(), "null kept as missing");
        assert_eq!(f.column("c").unwrap().data.value_string(1).as_deref(), Some("b"));
        assert!(f.column("c").unwrap().data.is_missing(2));
        assert_eq!(f.column("b").unwrap().data, ColumnData::Boolean(vec![Some(true), Some(false), Some(true)]));
        assert_eq!(f.column("code").unwrap().data.column_type(), ColumnType::Categorical);
        assert_eq!(f.column("code").unwrap().data.value_string(2).as_deref(), Some("7"));
        // Through the extension-dispatching reader too, and a clear error for a non-Parquet file.
        let g = crate::io::read_file(&path, &crate::io::ReadOptions::default()).unwrap();
        assert_eq!(g.n_rows(), 3);
        let bad = dir.path().join("bad.parquet");
        std::fs::write(&bad, "not parquet").unwrap();
        assert!(read_parquet(&bad, &BTreeMap::new()).unwrap_err().to_string().contains("not a Parquet file"));
    }
}
