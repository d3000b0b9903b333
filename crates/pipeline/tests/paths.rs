//! Path settings (`data.path`, `data.train`, `data.test`; `[data.events]` reads `data.path`):
//! a path that exists but is not a regular file says so, and a missing relative path shows the
//! path it was resolved to and the pipeline folder it was relative to, located at its key.

use promoml_core::Registry;
use promoml_pipeline::spec::Source;
use promoml_pipeline::{Located, Pipeline, PipelineError};
use std::path::Path;

fn registry() -> Registry {
    let mut r = Registry::new();
    promoml_pipeline::register(&mut r);
    promoml_smartcore::register(&mut r);
    r
}

/// Validate a pipeline at `file` whose `[data]` section is `data`; returns the located error.
fn error_of(file: &Path, data: &str) -> Located {
    let text = format!(
        "[pipeline]\nname = \"paths\"\ntask = \"binary\"\n\n[data]\n{data}\ntarget = \"y\"\n\n[[models]]\nkind = \"smartcore.logistic_regression\"\n"
    );
    let src = Source::from_text(file, text, &[]).unwrap();
    let spec = src.parse().unwrap();
    match Pipeline::from_spec(src, spec, &registry()) {
        Err(PipelineError::Config(l)) => l,
        Err(other) => panic!("expected a configuration error, got {other}"),
        Ok(_) => panic!("a pipeline with `{data}` validated"),
    }
}

#[test]
fn data_path_that_is_a_device_or_folder_is_not_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.toml");
    let e = error_of(&file, "path = \"/dev/zero\"");
    assert_eq!(e.key.as_deref(), Some("data.path"), "{e}");
    assert!(e.message.contains("/dev/zero is not a regular file (a character device)"), "{e}");
    assert!(!e.message.contains("does not exist"), "{e}");
    assert_eq!(e.at.map(|(line, _)| line), Some(6), "{e}");

    let e = error_of(&file, "path = \".\"");
    assert_eq!(e.key.as_deref(), Some("data.path"), "{e}");
    assert!(e.message.contains(". is not a regular file (a directory)"), "{e}");

    std::fs::write(dir.path().join("train.csv"), "x,y\n1,0\n").unwrap();
    let e = error_of(&file, "train = \"train.csv\"\ntest = \"..\"");
    assert_eq!(e.key.as_deref(), Some("data.test"), "{e}");
    assert!(e.message.contains(".. is not a regular file (a directory)"), "{e}");
}

#[test]
fn missing_relative_data_path_shows_resolved_path_and_pipeline_folder() {
    let dir = tempfile::tempdir().unwrap();
    let pipelines = dir.path().join("pipelines");
    std::fs::create_dir(&pipelines).unwrap();
    let file = pipelines.join("p.toml");
    let folder = std::path::absolute(&pipelines).unwrap();

    let e = error_of(&file, "path = \"../x.csv\"");
    assert_eq!(e.key.as_deref(), Some("data.path"), "{e}");
    assert!(e.at.is_some(), "{e}");
    let want = format!(
        "no file ../x.csv (resolved to {}, relative to the pipeline's folder {})",
        std::path::absolute(dir.path()).unwrap().join("x.csv").display(),
        folder.display()
    );
    assert_eq!(e.message, want);

    std::fs::write(pipelines.join("test.csv"), "x,y\n1,0\n").unwrap();
    let e = error_of(&file, "train = \"./data/train.csv\"\ntest = \"test.csv\"");
    assert_eq!(e.key.as_deref(), Some("data.train"), "{e}");
    assert!(e.message.contains(&format!("resolved to {}", folder.join("data/train.csv").display())), "{e}");

    // An absolute path needs no resolving: the message names it as given.
    let missing = dir.path().join("nowhere.csv");
    let e = error_of(&file, &format!("path = \"{}\"", missing.display()));
    assert_eq!(e.message, format!("no file {}", missing.display()), "{e}");
}
