//! promoml-pipeline: from a TOML (or RON) file to a report.
//!
//! [`spec`] parses the file (unknown keys rejected, positions kept; [`ron_file`] turns a RON file
//! into the same TOML document), [`Pipeline`] validates it
//! against a [`Registry`], and [`run`] executes it: load and split the data, fit cleaners and
//! features on training rows only, search each candidate with K-fold cross-validation, refit the
//! best trial on all training rows and score it once on the test rows.

pub mod anomaly;
pub mod artifact;
mod budget;
pub mod clean;
mod codec;
pub mod cv;
pub mod data;
pub mod ensemble;
pub mod error;
pub mod explain;
pub mod features;
pub mod fitted;
pub mod importance;
pub mod limits;
pub mod locate;
pub mod observe;
pub mod options;
pub mod plan;
pub mod prep;
pub mod ron_file;
mod rows;
pub mod run;
pub mod search;
pub mod search_shared;
pub mod sequence;
pub mod spec;
mod steps;
pub mod study;
pub mod tasks;
pub mod uplift;

pub use error::{Located, PipelineError, Result};
pub use observe::{Observer, Silent};
pub use options::{RunOptions, SharedOptions, WorkSummary};
pub use plan::Pipeline;
pub use run::{run, run_with, work};

use promoml_core::Registry;
use std::path::Path;

/// Register the built-in cleaners, feature steps and the random-search optimiser.
pub fn register(r: &mut Registry) {
    clean::register(r);
    features::register(r);
    r.add_optimizer(promoml_core::search::RandomSearchFactory);
}

/// Write the report in the requested formats (`report.json` always; `md`, `html`) into `dir`.
pub fn write_report(
    report: &promoml_report::Report,
    formats: &[String],
    dir: &Path,
) -> promoml_core::Result<Vec<std::path::PathBuf>> {
    let io = |path: &Path, e: std::io::Error| promoml_core::Error::Io { path: path.to_path_buf(), source: e };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut written = Vec::new();
    let json = dir.join("report.json");
    std::fs::write(&json, report.to_json()).map_err(|e| io(&json, e))?;
    written.push(json);
    for (name, content) in &report.files {
        let path = dir.join(name);
        std::fs::write(&path, content).map_err(|e| io(&path, e))?;
        written.push(path);
    }
    if formats.iter().any(|f| f == "md") {
        let md = dir.join("report.md");
        std::fs::write(&md, report.to_markdown()).map_err(|e| io(&md, e))?;
        written.push(md);
    }
    if formats.iter().any(|f| f == "html") {
        let html = dir.join("report.html");
        let page = report.to_html().map_err(|e| promoml_core::Error::data(e.to_string()))?;
        std::fs::write(&html, page).map_err(|e| io(&html, e))?;
        written.push(html);
    }
    Ok(written)
}
