//! Shared helpers of the built-in cleaners and feature steps.

use crate::spec::with_suggestion;
use promoml_core::{ColumnType, Error, Frame, Result, StepContext};
use serde::de::DeserializeOwned;

/// Deserialize a step's settings; an unknown key becomes a config error on that key.
pub fn parse_settings<T: DeserializeOwned>(v: &serde_json::Value) -> Result<T> {
    serde_json::from_value(v.clone()).map_err(|e| {
        let msg = with_suggestion(&e.to_string());
        let key = msg.split('`').nth(1).filter(|_| msg.contains("unknown field")).unwrap_or("").to_string();
        Error::config(key, msg)
    })
}

/// The columns a step works on: the ones listed (which must exist and have an allowed type),
/// or every non-protected column of an allowed type.
pub fn select(
    frame: &Frame,
    listed: &Option<Vec<String>>,
    ctx: &StepContext,
    allowed: &[ColumnType],
) -> Result<Vec<String>> {
    let ok_type = |t: ColumnType| allowed.contains(&t);
    match listed {
        Some(cols) => {
            for c in cols {
                let col = frame.require(c, "listed")?;
                let t = col.data.column_type();
                if !ok_type(t) {
                    return Err(Error::config(
                        "columns",
                        format!(
                            "column `{c}` is {t:?}; this step takes {}",
                            allowed.iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join(" or ")
                        ),
                    ));
                }
                if ctx.protected.contains(c) {
                    return Err(Error::config("columns", format!("column `{c}` is the target, treatment or id")));
                }
            }
            Ok(cols.clone())
        }
        None => Ok(frame
            .columns()
            .iter()
            .filter(|c| ok_type(c.data.column_type()) && !ctx.protected.contains(&c.name))
            .map(|c| c.name.clone())
            .collect()),
    }
}

/// Finite, non-missing values of a numeric column.
pub fn present(values: &[f64]) -> Vec<f64> {
    values.iter().copied().filter(|v| !v.is_nan()).collect()
}

/// The `q` quantile (0..=1) of sorted values, with linear interpolation (NumPy's default).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Sort floats ascending (NaN-free input).
pub fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}
