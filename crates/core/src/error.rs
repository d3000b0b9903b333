//! One error type for every library crate of promoml.
//!
//! Each variant says *what* was wrong and *where* (file, row, column, key), so the binary can
//! print it as is. Libraries return [`Result`]; only the binary uses `anyhow`.

use std::path::PathBuf;

/// Everything that can go wrong in promoml's libraries.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A data file is malformed at a known place.
    #[error("{path}:{line}: column `{column}`: {message}")]
    DataAt {
        /// The data file.
        path: String,
        /// 1-based line of the file (the header is line 1).
        line: usize,
        /// Column name.
        column: String,
        /// What was wrong.
        message: String,
    },
    /// Data is unusable as a whole (empty file, all-missing column, one class only, ...).
    #[error("{0}")]
    Data(String),
    /// A configuration value is invalid; `key` is its dotted path in the pipeline.
    #[error("`{key}`: {message}")]
    Config {
        /// Dotted key, for example `models[0].params.n_trees`.
        key: String,
        /// What was wrong and what was expected.
        message: String,
    },
    /// A model failed to fit or predict.
    #[error("model `{model}`: {message}")]
    Model {
        /// The model kind.
        model: String,
        /// What went wrong.
        message: String,
    },
    /// The run's time budget ran out.
    #[error("time budget exhausted: {0}")]
    Budget(String),
    /// The user interrupted the run (SIGINT or SIGTERM).
    #[error("interrupted {0}")]
    Interrupted(String),
}

/// Result alias used across promoml's libraries.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A [`Error::Data`] from anything printable.
    pub fn data(msg: impl Into<String>) -> Self {
        Error::Data(msg.into())
    }
    /// A [`Error::Config`] for `key`.
    pub fn config(key: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Config { key: key.into(), message: msg.into() }
    }
    /// A [`Error::Model`] for the model kind `model`.
    pub fn model(model: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Model { model: model.into(), message: msg.into() }
    }
}

/// Returns early with an [`Error::Data`] built like `format!`.
#[macro_export]
macro_rules! bail_data {
    ($($arg:tt)*) => { return Err($crate::Error::Data(format!($($arg)*))) };
}

/// The closest candidate to `word` by edit distance, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let candidates: Vec<&'a str> = candidates.into_iter().collect();
    if let Some(same) = candidates.iter().find(|c| c.eq_ignore_ascii_case(word)) {
        return Some(same);
    }
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(word.len().min(c.len()) / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}
