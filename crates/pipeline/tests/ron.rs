//! RON pipeline files (issue 20, item 2): the same validation and "did you mean" suggestions
//! as TOML, errors located at the line and column of the `.ron` file (or naming the `--set`
//! argument), and conversion both ways.

use promoml_core::Registry;
use promoml_pipeline::spec::{Format, Source};
use promoml_pipeline::{Pipeline, PipelineError};
use std::path::Path;

fn registry() -> Registry {
    let mut r = Registry::new();
    promoml_pipeline::register(&mut r);
    promoml_forest::register(&mut r);
    promoml_smartcore::register(&mut r);
    r
}

const RON: &str = r#"// a RON pipeline
(
    pipeline: (name: "ron-test", task: "binary", seed: 3),
    data: (
        source: "synthetic.promotion",
        rows: 1000,
        target: "purchase",
        drop: ["true_effect", "spend"],
    ),
    clean: [(kind: "impute", strategy: "median")],
    models: [
        (kind: "forest.random_forest", params: (n_trees: 20)),
        (kind: "smartcore.logistic_regression", search: (alpha: (float: (0.01, 10.0), log: true))),
    ],
    search: (trials: 3, cv_folds: 3),
    report: (formats: ["json"]),
)
"#;

const TOML: &str = r#"[pipeline]
name = "ron-test"
task = "binary"
seed = 3

[data]
source = "synthetic.promotion"
rows = 1000
target = "purchase"
drop = ["true_effect", "spend"]

[[clean]]
kind = "impute"
strategy = "median"

[[models]]
kind = "forest.random_forest"
params = { n_trees = 20 }

[[models]]
kind = "smartcore.logistic_regression"
search = { alpha = { float = [0.01, 10.0], log = true } }

[search]
trials = 3
cv_folds = 3

[report]
formats = ["json"]
"#;

fn validate(name: &str, text: &str, set: &[&str]) -> Result<Pipeline, PipelineError> {
    let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
    let src = Source::from_text(Path::new(name), text.to_string(), &set)?;
    let spec = src.parse()?;
    Pipeline::from_spec(src, spec, &registry())
}

fn refused(text: &str, set: &[&str]) -> String {
    match validate("p.ron", text, set) {
        Ok(_) => panic!("accepted: {set:?}\n{text}"),
        Err(e) => {
            assert_eq!(e.exit_code(), 2, "{e}");
            e.to_string()
        }
    }
}

/// `p.ron:LINE:COL` of the first `needle` in `text` (after `skip` of them), as an editor counts.
fn at(text: &str, needle: &str, skip: usize) -> String {
    let pos = text.match_indices(needle).nth(skip).unwrap_or_else(|| panic!("no {needle}")).0;
    let before = &text[..pos];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(pos, |p| pos - p - 1) + 1;
    format!("p.ron:{line}:{col}")
}

#[test]
fn a_ron_pipeline_is_the_same_pipeline_as_its_toml_twin() {
    let ron = validate("p.ron", RON, &[]).unwrap();
    let toml = validate("p.toml", TOML, &[]).unwrap();
    assert_eq!(ron.source.format, Format::Ron);
    let table = |t: &str| toml::from_str::<toml::Table>(t).unwrap();
    assert_eq!(table(&ron.source.text), table(&toml.source.text));
    assert_eq!((ron.name.as_str(), ron.seed, ron.candidates.len()), ("ron-test", 3, 2));
    assert_eq!(
        ron.candidates.iter().map(|c| format!("{:?}", c.space)).collect::<Vec<_>>(),
        toml.candidates.iter().map(|c| format!("{:?}", c.space)).collect::<Vec<_>>()
    );
}

#[test]
fn a_ron_typo_gets_a_located_did_you_mean() {
    // An unknown field (serde), at the key's line and column in the .ron file.
    let text = RON.replace("cv_folds: 3", "cv_fold: 3");
    let e = refused(&text, &[]);
    assert!(e.starts_with(&format!("{}: unknown field `cv_fold`", at(&text, "cv_fold", 0))), "{e}");
    assert!(e.contains("did you mean `cv_folds`?"), "{e}");
    // An unknown model kind (the registry), named by its key.
    let text = RON.replace("forest.random_forest", "forest.random_forst");
    let e = refused(&text, &[]);
    assert!(e.starts_with(&format!("{}: `models[0].kind`:", at(&text, "kind", 1))), "{e}");
    assert!(e.contains("did you mean `forest.random_forest`?"), "{e}");
    // A search range naming a parameter the model does not have.
    let text = RON.replace("search: (alpha:", "search: (alpa:");
    let e = refused(&text, &[]);
    assert!(e.starts_with(&format!("{}: `models[1].search.alpa`:", at(&text, "alpa", 0))), "{e}");
    assert!(e.contains("did you mean `alpha`?"), "{e}");
    // A value out of range, at its key.
    let text = RON.replace("trials: 3", "trials: 0");
    let e = refused(&text, &[]);
    assert!(e.starts_with(&format!("{}: `search.trials`:", at(&text, "trials", 0))), "{e}");
    // An unknown task, with its suggestion.
    let text = RON.replace("\"binary\"", "\"binry\"");
    let e = refused(&text, &[]);
    assert!(e.starts_with(&format!("{}: `pipeline.task`:", at(&text, "task", 0))), "{e}");
    assert!(e.contains("did you mean \"binary\"?"), "{e}");
}

#[test]
fn ron_syntax_errors_and_values_without_a_toml_equivalent_are_located() {
    // A missing comma: the `ron` crate's message, at the next key.
    let text = RON.replace("rows: 1000,", "rows: 1000");
    let e = refused(&text, &[]);
    assert!(e.starts_with(&format!("{}: ", at(&text, "target", 0))), "{e}");
    let text = RON.replace("task: \"binary\"", "task: Binary");
    let e = refused(&text, &[]);
    assert!(e.starts_with(&format!("{}: ", at(&text, "Binary", 0))) && e.contains("write \"Binary\""), "{e}");
    let text = RON.replace("seed: 3", "seed: 3, seed: 4");
    let e = refused(&text, &[]);
    assert!(e.starts_with(&format!("{}: duplicate key `seed`", at(&text, "seed", 1))), "{e}");
}

#[test]
fn set_overrides_work_on_ron_pipelines_and_their_errors_name_the_argument() {
    let p = validate("p.ron", RON, &["search.trials=7", "models[0].params.n_trees=50", "data.rows=900"]).unwrap();
    assert_eq!(p.candidates[0].trials, 7);
    let e = refused(RON, &["search.trails=3"]);
    assert!(e.starts_with("--set search.trails=3: "), "{e}");
    assert!(e.contains("did you mean `trials`?"), "{e}");
    // An error at a key the file wrote is still located in the .ron file when overrides exist.
    let text = RON.replace("cv_folds: 3", "cv_fold: 3");
    let e = refused(&text, &["search.trials=7"]);
    assert!(e.starts_with(&format!("{}: unknown field `cv_fold`", at(&text, "cv_fold", 0))), "{e}");
    let e = refused(RON, &["search.cv_folds=1"]);
    assert!(e.starts_with("--set search.cv_folds=1: `search.cv_folds`:"), "{e}");
}

#[test]
fn emit_converts_between_toml_and_ron() {
    let from_toml = validate("p.toml", TOML, &[]).unwrap().source.emit(Format::Ron).unwrap();
    let back = validate("q.ron", &from_toml, &[]).unwrap();
    let table = |t: &str| toml::from_str::<toml::Table>(t).unwrap();
    assert_eq!(table(&back.source.text), table(TOML));
    // The emitted text is RON as the `ron` crate reads it.
    ron::from_str::<ron::Value>(&from_toml).unwrap();
    let to_toml = validate("p.ron", RON, &[]).unwrap().source.emit(Format::Toml).unwrap();
    assert_eq!(table(&to_toml), table(TOML));
    // Overrides are part of what is emitted.
    let set = validate("p.ron", RON, &["search.trials=9"]).unwrap().source.emit(Format::Ron).unwrap();
    assert!(set.contains("trials: 9"), "{set}");
}

/// A pipeline generated from Rust structs with the `ron` crate is a valid pipeline file.
#[test]
fn ron_written_by_serde_structs_is_a_valid_pipeline() {
    #[derive(serde::Serialize)]
    struct Pipeline {
        pipeline: Header,
        data: Data,
        models: Vec<Model>,
        search: Search,
    }
    #[derive(serde::Serialize)]
    struct Header {
        name: String,
        task: String,
        seed: Option<u64>,
        description: Option<String>,
    }
    #[derive(serde::Serialize)]
    struct Data {
        source: String,
        rows: usize,
        target: String,
        drop: Vec<String>,
    }
    #[derive(serde::Serialize)]
    struct Model {
        kind: String,
        params: std::collections::BTreeMap<String, f64>,
    }
    #[derive(serde::Serialize)]
    struct Search {
        optimizer: String,
        trials: usize,
    }
    let generated = Pipeline {
        pipeline: Header { name: "generated".into(), task: "binary".into(), seed: Some(5), description: None },
        data: Data {
            source: "synthetic.promotion".into(),
            rows: 500,
            target: "purchase".into(),
            drop: vec!["true_effect".into(), "spend".into()],
        },
        models: vec![Model { kind: "forest.random_forest".into(), params: [("sample_fraction".into(), 0.8)].into() }],
        search: Search { optimizer: "random".into(), trials: 2 },
    };
    let text = ron::ser::to_string_pretty(&generated, ron::ser::PrettyConfig::default()).unwrap();
    let p = validate("generated.ron", &text, &[]).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!((p.name.as_str(), p.seed, p.candidates[0].trials), ("generated", 5, 2));
}
