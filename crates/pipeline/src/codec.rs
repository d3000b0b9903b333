//! Small encodings shared by the steps, the row readers and the artifact: a fitted step's
//! state as JSON bytes, and CSV field quoting.

use promoml_core::{Error, Result};
use serde::Serialize;

/// JSON bytes of a fitted step's state (for [`FittedCleaner::save`] and
/// [`FittedFeatures::save`]); `kind` names the step in errors.
pub(crate) fn step_to_bytes<T: Serialize>(kind: &str, state: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(state).map_err(|e| Error::data(format!("step `{kind}`: cannot save its fitted state: {e}")))
}

/// Read what [`step_to_bytes`] wrote.
pub(crate) fn step_from_bytes<T: serde::de::DeserializeOwned>(kind: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::data(format!("step `{kind}`: saved fitted state is corrupt or from another version: {e}")))
}

/// A CSV field: quoted (with doubled quotes) when it holds a comma, quote or line end.
pub(crate) fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}
