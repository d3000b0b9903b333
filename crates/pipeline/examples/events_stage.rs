//! The data stage of a pipeline, timed: `data::load` (for `[data.events]`: the log streamed
//! through the query engine to one row and one sequence per entity) and the preparation of the
//! training and test datasets, as `promoml run` reports them (`timing.load_s`,
//! `timing.prepare_s`). A bench command, not a test:
//!
//! ```text
//! cargo run --release -p promoml-pipeline --example events_stage -- PIPELINE.toml
//! /usr/bin/time -v target/release/examples/events_stage PIPELINE.toml   # with peak RSS
//! ```
//!
//! The pipeline's models are replaced by one built-in model (only `[data]`, cleaners and
//! features matter here), so any pipeline file works.

use promoml_core::Registry;
use promoml_pipeline::Pipeline;
use promoml_pipeline::data::{self, class_labels};
use promoml_pipeline::prep::{Prepared, TargetEncoding};
use promoml_pipeline::spec::Source;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: events_stage PIPELINE.toml")?;
    let path = std::path::Path::new(&path);
    let mut doc: toml::Table = toml::from_str(&std::fs::read_to_string(path)?)?;
    let model: toml::Table = toml::from_str("kind = \"forest.random_forest\"")?;
    doc.insert("models".into(), toml::Value::Array(vec![toml::Value::Table(model)]));
    doc.remove("ensemble");
    let mut r = Registry::new();
    promoml_pipeline::register(&mut r);
    promoml_forest::register(&mut r);
    let src = Source::from_text(path, toml::to_string(&doc)?, &[])?;
    let spec = src.parse()?;
    let p = Pipeline::from_spec(src, spec, &r)?;

    let t0 = Instant::now();
    let loaded = data::load(&p.data, p.task)?;
    let load_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let y = &loaded.train.require(&p.data.target, "target")?.data;
    let classes = if p.task.is_classification() {
        class_labels(y, p.data.positive.as_deref(), p.task, &p.data.target)?
    } else {
        Vec::new()
    };
    let target = TargetEncoding { column: p.data.target.clone(), task: p.task, classes };
    let (prepared, train, _) = Prepared::fit_with(&p, &target, loaded.train.clone(), loaded.sequences.clone())?;
    let test = prepared.transform(loaded.test.clone(), "test")?;
    let prepare_s = t1.elapsed().as_secs_f64();
    println!(
        "{}: {} training and {} test rows x {} features{}; load {load_s:.2} s, prepare {prepare_s:.2} s, data stage {:.2} s",
        loaded.description,
        train.n_rows(),
        test.n_rows(),
        train.feature_names.len(),
        train.sequences.as_ref().map_or(String::new(), |s| format!(", sequences {:?}", s.data.shape())),
        load_s + prepare_s
    );
    Ok(())
}
