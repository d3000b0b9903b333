//! `[data] derive`: columns computed by the query engine from SQL expressions, for a plain
//! table (a derived binary target from an amount) and for an event log's entity table; bad
//! expressions are refused naming their key and the SQL problem.

use promoml_core::{ColumnData, Registry, Task};
use promoml_pipeline::spec::Source;
use promoml_pipeline::{Pipeline, PipelineError, data};
use std::path::Path;

fn registry() -> Registry {
    let mut r = Registry::new();
    promoml_pipeline::register(&mut r);
    promoml_forest::register(&mut r);
    r
}

fn pipeline(dir: &Path, data: &str) -> Result<Pipeline, PipelineError> {
    let text = format!(
        "[pipeline]\nname = \"derive\"\ntask = \"binary\"\n\n[data]\n{data}\n\n[[models]]\nkind = \"forest.random_forest\"\n"
    );
    let path = dir.join("p.toml");
    let src = Source::from_text(&path, text, &[])?;
    let spec = src.parse()?;
    Pipeline::from_spec(src, spec, &registry())
}

/// The error of a pipeline that must be refused.
fn refused(dir: &Path, data: &str) -> PipelineError {
    match pipeline(dir, data) {
        Ok(_) => panic!("accepted:\n{data}"),
        Err(e) => e,
    }
}

/// 40 customers of a coupon test: `trans_after` is what each spent afterwards (0 for most),
/// `revenue` and `cost` two amounts.
fn write_table(dir: &Path) -> std::path::PathBuf {
    let mut text = String::from("id,trans_after,revenue,cost\n");
    for i in 0..40 {
        let after = if i % 3 == 0 { format!("{}.5", i) } else { "0".into() };
        let revenue = if i == 7 { "NA".to_string() } else { format!("{}", 100 + i) };
        text.push_str(&format!("{i},{after},{revenue},{}\n", i * 2));
    }
    let path = dir.join("coupons.csv");
    std::fs::write(&path, text).unwrap();
    path
}

fn values(f: &promoml_core::Frame, name: &str) -> ColumnData {
    f.column(name).unwrap_or_else(|| panic!("no column {name}")).data.clone()
}

#[test]
fn a_derived_binary_target_and_a_derived_amount() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_table(dir.path());
    let p = pipeline(
        dir.path(),
        &format!(
            "path = \"{}\"\ntarget = \"transacted\"\ndrop = [\"trans_after\"]\nsplit = {{ kind = \"modulo\", modulo = 2, remainder = 1 }}\n\
             derive = {{ transacted = \"trans_after > 0\", margin = \"revenue - cost\" }}",
            path.display()
        ),
    )
    .unwrap();
    data::check_header(&p).unwrap();
    let loaded = data::load(&p.data, Task::Binary).unwrap();
    for f in [&loaded.train, &loaded.test] {
        let (id, transacted, margin) = (values(f, "id"), values(f, "transacted"), values(f, "margin"));
        assert!(matches!(transacted, ColumnData::Boolean(_)), "{transacted:?}");
        assert_eq!(f.n_rows(), 20);
        for r in 0..f.n_rows() {
            let i = id.value_f64(r);
            assert_eq!(transacted.value_string(r).as_deref(), Some(if i % 3.0 == 0.0 { "TRUE" } else { "FALSE" }));
            if i == 7.0 {
                assert!(margin.is_missing(r), "a missing revenue gives a missing margin");
            } else {
                assert_eq!(margin.value_f64(r), 100.0 + i - 2.0 * i);
            }
        }
        assert!(f.column("trans_after").is_none(), "dropped after deriving");
    }
}

/// End to end: a whole run whose binary target is derived from an amount (a coupon test's
/// "bought again": `bought = "amount > 0"`), the amount itself dropped (it would leak the label).
#[test]
fn a_run_predicts_a_target_derived_from_an_amount() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("id,visits,tenure,coupon,amount\n");
    for i in 0..300u32 {
        let (visits, tenure) = (i * 37 % 23, i * 11 % 17);
        let buys = visits + tenure / 2 > 14 || i % 13 == 0;
        let amount = if buys { format!("{}.25", 5 + i % 40) } else { "0".into() };
        text.push_str(&format!("{i},{visits},{tenure},{},{amount}\n", ["none", "ten", "twenty"][(i % 3) as usize]));
    }
    let path = dir.path().join("coupon_test.csv");
    std::fs::write(&path, text).unwrap();
    let p = pipeline(
        dir.path(),
        &format!(
            "path = \"{}\"\nid = \"id\"\ntarget = \"bought\"\npositive = \"TRUE\"\ndrop = [\"amount\"]\n\
             derive = {{ bought = \"amount > 0\" }}\nsplit = {{ kind = \"modulo\", modulo = 4, remainder = 0, column = \"id\" }}\n\n\
             [search]\ntrials = 1\ncv_folds = 2",
            path.display()
        ),
    )
    .unwrap();
    data::check_header(&p).unwrap();
    let report = promoml_pipeline::run(&p, &promoml_pipeline::Silent).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!((report.data.train_rows, report.data.test_rows), (225, 75));
    let classes: Vec<&str> = report.data.classes.keys().map(String::as_str).collect();
    assert_eq!(classes, ["FALSE", "TRUE"], "the derived target's classes");
    assert!(report.data.suspected_leaks.is_empty(), "the amount is dropped: {:?}", report.data.suspected_leaks);
    let auc = report.leaderboard[0].test["roc_auc"];
    assert!(auc > 0.75, "test roc_auc {auc}");
}

#[test]
fn derived_columns_of_an_event_log_use_the_entity_table() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.txt");
    let mut text = String::from("customer_id date spend\n");
    for k in 1..=30u32 {
        for e in 0..(k % 4 + 1) {
            text.push_str(&format!("{k} 1997{:02}{:02} {}\n", 1 + (k + e) % 8, 1 + e, k + e));
        }
        if k % 3 == 0 {
            text.push_str(&format!("{k} 19971015 5\n"));
        }
    }
    std::fs::write(&log, text).unwrap();
    let p = pipeline(
        dir.path(),
        &format!(
            "path = \"{}\"\ndelimiter = \"whitespace\"\ntimestamp_format = \"%Y%m%d\"\ntarget = \"y\"\n\
             positive = \"TRUE\"\nsplit = {{ kind = \"modulo\", modulo = 2, remainder = 1 }}\nderive = {{ big_spender = \"spend_total >= 40\" }}\n\n\
             [data.events]\nentity = \"customer_id\"\ntime = \"date\"\nvalues = [\"spend\"]\ncutoff = \"1997-09-30\"\n\
             horizon_end = \"1998-06-30\"",
            log.display()
        ),
    )
    .unwrap();
    let loaded = data::load(&p.data, Task::Binary).unwrap();
    let f = &loaded.train;
    let (total, big) = (values(f, "spend_total"), values(f, "big_spender"));
    assert_eq!(f.n_rows() + loaded.test.n_rows(), 30);
    for i in 0..f.n_rows() {
        assert_eq!(big.value_string(i).as_deref() == Some("TRUE"), total.value_f64(i) >= 40.0, "row {i}");
    }
    assert!((0..f.n_rows()).any(|i| big.value_string(i).as_deref() == Some("TRUE")));
}

#[test]
fn bad_expressions_name_their_key_and_the_sql_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_table(dir.path());
    let base = format!(
        "path = \"{}\"\ntarget = \"transacted\"\nsplit = {{ kind = \"modulo\", modulo = 2, remainder = 1 }}",
        path.display()
    );
    // Syntax: refused when the pipeline is validated, at the key's line.
    let e = refused(dir.path(), &format!("{base}\nderive = {{ transacted = \"trans_after >\" }}"));
    let msg = e.to_string();
    assert_eq!(e.exit_code(), 2, "{msg}");
    assert!(msg.contains("data.derive.transacted") && msg.contains("trans_after >"), "{msg}");
    let e = refused(dir.path(), &format!("{base}\nderive = {{ transacted = \"a > 0, b\" }}"));
    assert!(e.to_string().contains("one expression per column"), "{e}");
    // An unknown column: refused when the table is read, naming the key and the column.
    let p = pipeline(dir.path(), &format!("{base}\nderive = {{ transacted = \"trans_afterr > 0\" }}")).unwrap();
    let msg = match data::load(&p.data, Task::Binary) {
        Ok(_) => panic!("an unknown column was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(msg.contains("`data.derive.transacted`") && msg.contains("trans_afterr"), "{msg}");
    // An aggregate is not a column.
    let p = pipeline(dir.path(), &format!("{base}\nderive = {{ transacted = \"sum(trans_after) > 0\" }}")).unwrap();
    let msg = match data::load(&p.data, Task::Binary) {
        Ok(_) => panic!("an aggregate was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(msg.contains("`data.derive.transacted`"), "{msg}");
}

#[test]
fn memory_limit_takes_sizes_and_refuses_nonsense() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_table(dir.path());
    let base = format!(
        "path = \"{}\"\ntarget = \"trans_after\"\nsplit = {{ kind = \"modulo\", modulo = 2, remainder = 1 }}",
        path.display()
    );
    for (text, bytes) in [("\"2GB\"", 2usize << 30), ("\"512 MiB\"", 512 << 20), ("100000000", 100_000_000)] {
        let p = pipeline(dir.path(), &format!("{base}\nmemory_limit = {text}")).unwrap();
        assert_eq!(p.data.memory_limit, bytes, "{text}");
    }
    let p = pipeline(dir.path(), &base).unwrap();
    assert_eq!(p.data.memory_limit, promoml_pipeline::data::engine::DEFAULT_MEMORY_LIMIT);
    for bad in ["\"lots\"", "\"5 parsecs\"", "1000", "true"] {
        let e = refused(dir.path(), &format!("{base}\nmemory_limit = {bad}")).to_string();
        assert!(e.contains("data.memory_limit"), "{bad}: {e}");
    }
}
