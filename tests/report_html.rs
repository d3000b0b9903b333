//! Reports: report.html rendered by headless Chromium with its plots drawn, and the
//! `promoml compare` gate's exit codes.
//!
//! The Chromium test needs Debian's `chromium` (or `PROMOML_CHROMIUM=/path/to/browser`). When
//! `PROMOML_REQUIRE_CHROMIUM=1` (set by `.ci/run`, which installs the package) a missing
//! browser fails the test; otherwise the test checks the file statically and says loudly that
//! the browser check did not run.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn find_chromium() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("PROMOML_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

/// Appended to a copy of report.html (never to the report itself): after layout, record for
/// every `<svg>` its first text (the chart title), how many of its polylines and shapes have
/// a non-empty bounding box, and how many of its texts have a non-zero rendered length.
const PROBE: &str = r#"<script>
const rows = [...document.querySelectorAll('svg')].map(s => {
  const box = e => { const b = e.getBBox(); return b.width > 0 || b.height > 0; };
  const lines = [...s.querySelectorAll('polyline,path')].filter(box).length;
  const shapes = [...s.querySelectorAll('polyline,path,line,rect,circle,polygon')].filter(box).length;
  const texts = [...s.querySelectorAll('text')].filter(t => t.getComputedTextLength() > 0);
  const r = s.getBoundingClientRect();
  const title = texts.length ? texts[0].textContent.trim() : '';
  return [title, lines, shapes, texts.length, Math.round(r.width), Math.round(r.height)].join('|');
});
const out = document.createElement('pre');
out.id = 'probe';
out.textContent = 'PROBE-START\n' + rows.join('\n') + '\nPROBE-END';
document.body.appendChild(out);
const rowHeights = [...document.querySelectorAll('table.lb tr')].map(r => Math.round(r.getBoundingClientRect().height));
const hidden = [...document.querySelectorAll('.wide')].map(d => d.scrollWidth - d.clientWidth);
const lay = document.createElement('pre');
lay.id = 'layout';
lay.textContent = 'LAYOUT ' + [document.documentElement.scrollWidth, window.innerWidth, Math.max(...rowHeights), Math.max(0, ...hidden)].join(' ') + ' END';
document.body.appendChild(lay);
</script>"#;

/// Page width, window width, tallest leaderboard row and the widest hidden overflow of a
/// scrolling table, in CSS pixels, as the probe measured them.
fn parse_layout(dom: &str) -> [i64; 4] {
    let pre = &dom[dom.find("<pre id=\"layout\">").expect("the layout probe in the DOM")..];
    let start = pre.find("LAYOUT ").unwrap() + "LAYOUT ".len();
    let v: Vec<i64> = pre[start..pre.find(" END").unwrap()].split(' ').map(|x| x.parse().unwrap()).collect();
    [v[0], v[1], v[2], v[3]]
}

/// One rendered `<svg>` as measured by [`PROBE`].
#[derive(Debug)]
struct Rendered {
    title: String,
    lines: usize,
    shapes: usize,
    texts: usize,
    width: u32,
    height: u32,
}

/// Open `page` in headless Chromium and return the DOM after load.
fn dump_dom(chromium: &Path, page: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (profile.path().join("dom.html"), profile.path().join("stderr.txt"));
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--window-size=1280,4000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        // Files, not pipes: the DOM is larger than a pipe's buffer.
        .stdout(Stdio::from(std::fs::File::create(&out_path).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&err_path).unwrap()))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium.display()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("{} did not finish rendering {} within 120 s", chromium.display(), page.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let dom = std::fs::read_to_string(&out_path).unwrap_or_default();
    assert!(
        status.success() && dom.contains("<pre id=\"probe\">"),
        "chromium failed on {} (status {status}):\n{}\n{}",
        page.display(),
        std::fs::read_to_string(&err_path).unwrap_or_default(),
        dom.chars().take(2000).collect::<String>()
    );
    dom
}

fn parse_probe(dom: &str) -> Vec<Rendered> {
    // The script's own text also holds the markers: read the <pre> it appended.
    let pre = &dom[dom.find("<pre id=\"probe\">").expect("the probe's <pre> in the DOM")..];
    let start = pre.find("PROBE-START").unwrap() + "PROBE-START".len();
    let end = pre.find("PROBE-END").unwrap();
    pre[start..end]
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            assert_eq!(f.len(), 6, "probe line {l:?}");
            Rendered {
                title: f[0].replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"),
                lines: f[1].parse().unwrap(),
                shapes: f[2].parse().unwrap(),
                texts: f[3].parse().unwrap(),
                width: f[4].parse().unwrap(),
                height: f[5].parse().unwrap(),
            }
        })
        .collect()
}

#[test]
fn demo_report_html_renders_its_plots_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_pipeline(&root().join("pipelines/demo.toml"), dir.path(), &["search.trials=2", "data.rows=1500"]);
    let html_path = dir.path().join("report.html");
    let html = std::fs::read_to_string(&html_path).expect("the demo pipeline writes report.html");
    assert!(dir.path().join("report.md").is_file());

    // Static checks: self-contained, one inline SVG per plot.
    for bad in ["<script", "<link", "<img", "<iframe", "src=", "href=", "@import", "url("] {
        assert!(!html.contains(bad), "report.html is not self-contained: it contains {bad}");
    }
    let candidates = r["leaderboard"].as_array().unwrap().len() + r["failures"].as_array().unwrap().len();
    assert!(r.get("curves").is_some(), "a binary report carries test curves");
    let importance = r["feature_importance"]["features"].as_array().expect("permutation importance is on by default");
    assert!(!importance.is_empty());
    // ROC, precision-recall, calibration, one optimisation history per candidate, permutation
    // importance (plus the ensemble chart when the report has one, and the SHAP summary when
    // the final model explains exactly).
    let expected = 3 + candidates + 1 + usize::from(r.get("ensemble").is_some()) + usize::from(r.get("shap").is_some());
    assert_eq!(html.matches("<svg").count(), expected, "inline SVGs in report.html");

    // Parameters at 4 significant digits in the page (whole in report.json), and no cell that
    // repeats the model's name as its kind.
    for e in r["leaderboard"].as_array().unwrap() {
        for (k, v) in e["params"].as_object().unwrap() {
            if let Some(x) = v.as_f64().filter(|_| v.is_f64()) {
                let shown = promoml_report::html::short_param(v);
                assert!(html.contains(&format!("{k}={shown}")), "{k}={shown} not in report.html");
                let mantissa: String = shown.split('e').next().unwrap().chars().filter(char::is_ascii_digit).collect();
                assert!(mantissa.trim_start_matches('0').len() <= 4, "{k}={x} shown as {shown}");
            }
        }
        let (name, kind) = (e["name"].as_str().unwrap(), e["kind"].as_str().unwrap());
        if name == kind {
            assert!(!html.contains(&format!("<code class=\"muted\">{kind}</code>")), "{kind} shown twice");
        }
    }

    let Some(chromium) = find_chromium() else {
        let required = std::env::var("PROMOML_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "PROMOML_REQUIRE_CHROMIUM=1 but no chromium on PATH (install Debian's `chromium`, or set PROMOML_CHROMIUM)"
        );
        eprintln!(
            "WARNING: report.html was NOT rendered in a browser: no chromium on PATH. \
             Install Debian's `chromium` (.ci/run does) to run this check."
        );
        return;
    };
    let probe_page = dir.path().join("probe.html");
    std::fs::write(&probe_page, html.replace("</body>", &format!("{PROBE}</body>"))).unwrap();
    let dom = dump_dom(&chromium, &probe_page);
    let rendered = parse_probe(&dom);
    // The report reads at a glance in a 1280 px window: nothing wider than the window, no table
    // hiding columns behind a scrollbar, compact leaderboard rows (parameters fold away).
    let [page_w, window_w, row_h, hidden] = parse_layout(&dom);
    assert!(page_w <= window_w, "the page is {page_w} px wide in a {window_w} px window");
    assert_eq!(hidden, 0, "a table hides {hidden} px behind a horizontal scrollbar");
    assert!(row_h <= 60, "a leaderboard row is {row_h} px tall");
    assert_eq!(rendered.len(), expected, "{rendered:#?}");
    for s in &rendered {
        assert!(s.width >= 400 && s.height >= 150, "plot drawn too small: {s:?}");
        assert!(s.shapes >= 5 && s.texts >= 5, "plot has no visible axes, marks or labels: {s:?}");
    }
    let by_title = |t: &str| {
        rendered.iter().find(|s| s.title == t).unwrap_or_else(|| panic!("no plot titled {t:?} in {rendered:#?}"))
    };
    // Curve, reference line and the legend's sample line at least.
    for t in ["ROC curve (test)", "Precision–recall curve (test)", "Calibration (test)"] {
        assert!(by_title(t).lines >= 3, "{:?}", by_title(t));
    }
    for e in r["leaderboard"].as_array().unwrap() {
        // The kind only when it is not the name already.
        let (name, kind) = (e["name"].as_str().unwrap(), e["kind"].as_str().unwrap());
        let title = if name == kind { name.to_string() } else { format!("{name} ({kind})") };
        // Trial markers (circles) and the best-so-far line.
        assert!(by_title(&title).lines >= 1, "{:?}", by_title(&title));
    }
    // One bar (a shape) per feature shown, besides the axes.
    let bars = importance.len().min(promoml_report::html::MAX_IMPORTANCE_BARS);
    let imp = by_title("Permutation feature importance (test)");
    assert!(imp.shapes >= bars, "{imp:?}");
    if r.get("shap").is_some() {
        // A dot (a shape) per bin drawn at least.
        let shap = by_title("SHAP summary (test)");
        assert!(shap.shapes >= r["shap"]["features"].as_array().unwrap().len(), "{shap:?}");
    }
}

fn write_json(path: &Path, v: &serde_json::Value) {
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

#[test]
fn compare_exit_codes_on_baseline_reports() {
    let dir = tempfile::tempdir().unwrap();
    let base_path = root().join("reports/baselines/online-shoppers.json");
    let base = base_path.to_str().unwrap();
    let base_v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&base_path).unwrap()).unwrap();

    // Identical: exit 0, a Markdown diff on stdout.
    let o = promoml(&["compare", base, base]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("**PASS**") && out.contains("### Candidates"), "{out}");

    // An injected 0.01 AUC drop: exit 1, the regression named on stderr.
    let mut drop = base_v.clone();
    drop["test"]["roc_auc"] = serde_json::json!(base_v["test"]["roc_auc"].as_f64().unwrap() - 0.01);
    let drop_path = dir.path().join("drop.json");
    write_json(&drop_path, &drop);
    let o = promoml(&["compare", base, drop_path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("test roc_auc"), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("**FAIL**"));
    // ... but passes under a looser tolerance.
    assert_eq!(promoml(&["compare", base, drop_path.to_str().unwrap(), "--max-drop", "0.02"]).status.code(), Some(0));

    // A candidate gone from the leaderboard: exit 1.
    let mut lost = base_v.clone();
    let gone = lost["leaderboard"].as_array_mut().unwrap().pop().unwrap();
    let lost_path = dir.path().join("lost.json");
    write_json(&lost_path, &lost);
    let o = promoml(&["compare", base, lost_path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let name = gone["name"].as_str().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("candidate `{name}` is missing")));

    // Unreadable input: exit 2 naming the file.
    let o = promoml(&["compare", base, "/nonexistent/report.json"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot read the current report /nonexistent/report.json"), "{err}");
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{ not json").unwrap();
    let o = promoml(&["compare", junk.to_str().unwrap(), base]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a promoml report"));
}

#[test]
fn compare_treats_a_rising_loss_as_worse() {
    let dir = tempfile::tempdir().unwrap();
    let report = |rmse: f64| {
        serde_json::json!({
            "schema_version": 1, "promoml_version": "0.1.0", "pipeline": "reg", "task": "regression",
            "seed": 1, "metric": "rmse", "higher_is_better": false, "final_model": "m",
            "test": {"rmse": rmse, "r2": 0.5},
            "leaderboard": [{"name": "m", "kind": "k.m", "params": {}, "cv": {"rmse": rmse}, "cv_std": 0.1,
                             "test": {"rmse": rmse}, "fit_s": 0.1, "n_trials": 1}],
            "trials": [], "failures": [], "data": {"source": "s", "train_rows": 1, "test_rows": 1,
            "dropped_train_rows": 0, "columns": 1, "missing_cells": 0, "features": 1, "classes": {}},
            "timing": {"total_s": 1.0, "load_s": 0.0, "prepare_s": 0.0, "search_s": 1.0, "refit_s": 0.0}
        })
    };
    let paths: Vec<PathBuf> = [10.0, 10.01, 9.0]
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let p = dir.path().join(format!("r{i}.json"));
            write_json(&p, &report(v));
            p
        })
        .collect();
    let s = |p: &PathBuf| p.to_str().unwrap().to_string();
    assert_eq!(promoml(&["compare", &s(&paths[0]), &s(&paths[1])]).status.code(), Some(1), "rmse up 0.01");
    assert_eq!(promoml(&["compare", &s(&paths[0]), &s(&paths[2])]).status.code(), Some(0), "rmse down");
}
