//! Errors of loading and running a pipeline, with the place in the TOML file when known.

use std::fmt;

/// A pipeline error: a configuration problem (exit code 2) or a failure while running
/// (exit code 1).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The TOML is malformed or names something unknown or invalid.
    #[error("{0}")]
    Config(Located),
    /// Data or models failed while running.
    #[error(transparent)]
    Run(#[from] promoml_core::Error),
}

impl PipelineError {
    /// The process exit code the CLI uses for this error (130 for an interrupted run, as a
    /// shell reports SIGINT).
    pub fn exit_code(&self) -> u8 {
        match self {
            PipelineError::Config(_) => 2,
            PipelineError::Run(promoml_core::Error::Interrupted(_)) => 130,
            PipelineError::Run(_) => 1,
        }
    }
}

/// A message tied to a place in a pipeline file.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    /// The pipeline file.
    pub file: String,
    /// 1-based line and column, when the place is known.
    pub at: Option<(usize, usize)>,
    /// Dotted key, e.g. `models[0].params.n_trees`, when known.
    pub key: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some((l, c)) = self.at {
            write!(f, ":{l}:{c}")?;
        }
        write!(f, ": ")?;
        if let Some(k) = &self.key {
            write!(f, "`{k}`: ")?;
        }
        write!(f, "{}", self.message)
    }
}

/// Result alias of this crate.
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;
