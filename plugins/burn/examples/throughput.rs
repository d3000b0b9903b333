//! Training throughput (sequences per second) of the burn LSTM on CDNOW-shaped sequences,
//! built here straight from the raw purchase log `../shared/data/raw/CDNOW_master.txt`:
//! one sequence per customer of 39 weekly steps (1997-01-01 .. 1997-09-30, the calibration
//! period) × 2 channels (purchases, spend), starting at the customer's first purchase week and
//! zero-padded after; tabular RFM summaries of the same window; label "buys again in the
//! holdout" (1997-10-01 .. 1998-06-30). Training customers are those with `id % 5 != 4`.
//!
//! ```text
//! cargo run --release -p promoml-burn --example throughput [-- --epochs 3 --models lstm,gru,transformer --batch 128]
//! ```
//!
//! Prints one line per model: rows, epochs, seconds, sequences/second (training only, from the
//! fit's own log), and the test customers' ROC-AUC after those few epochs (a sanity check, not
//! a tuned figure). `scripts`-free: the PyTorch counterpart is `examples/torch_lstm_throughput.py`.

use ndarray::{Array2, Array3};
use promoml_burn::BurnModel;
use promoml_core::{Dataset, FitContext, FittedModel, Metric, Model, ParamValue, Params, Sequences};
use std::collections::BTreeMap;
use std::time::Instant;

const WEEKS: usize = 39;

/// Days since 1970-01-01 of a `YYYYMMDD` date.
fn days(ymd: u32) -> i64 {
    let (y, m, d) = ((ymd / 10_000) as i64, ((ymd / 100) % 100) as i64, (ymd % 100) as i64);
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

struct Customer {
    weekly: [[f32; 2]; WEEKS],
    first_week: usize,
    purchases: usize,
    spend: f64,
    last_day: i64,
    first_day: i64,
    repeat: bool,
}

fn load() -> (Dataset, Dataset) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/raw/CDNOW_master.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (start, cutoff, end) = (days(19970101), days(19970930), days(19980630));
    let mut customers: BTreeMap<u32, Customer> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 {
            continue;
        }
        let (id, date, spend): (u32, u32, f64) = (f[0].parse().unwrap(), f[1].parse().unwrap(), f[3].parse().unwrap());
        let day = days(date);
        let c = customers.entry(id).or_insert(Customer {
            weekly: [[0.0; 2]; WEEKS],
            first_week: WEEKS,
            purchases: 0,
            spend: 0.0,
            last_day: i64::MIN,
            first_day: i64::MAX,
            repeat: false,
        });
        if day <= cutoff {
            let w = (((day - start) / 7) as usize).min(WEEKS - 1);
            c.weekly[w][0] += 1.0;
            c.weekly[w][1] += spend as f32;
            c.first_week = c.first_week.min(w);
            c.purchases += 1;
            c.spend += spend;
            c.last_day = c.last_day.max(day);
            c.first_day = c.first_day.min(day);
        } else if day <= end {
            c.repeat = true;
        }
    }
    let build = |test: bool| {
        let rows: Vec<&Customer> =
            customers.iter().filter(|(id, c)| (**id % 5 == 4) == test && c.purchases > 0).map(|(_, c)| c).collect();
        let n = rows.len();
        let mut data = Array3::<f32>::zeros((n, WEEKS, 2));
        let mut lengths = Vec::with_capacity(n);
        let mut x = Array2::<f64>::zeros((n, 4));
        let mut y = Vec::with_capacity(n);
        for (i, c) in rows.iter().enumerate() {
            let len = WEEKS - c.first_week;
            for t in 0..len {
                data[[i, t, 0]] = c.weekly[c.first_week + t][0];
                data[[i, t, 1]] = c.weekly[c.first_week + t][1];
            }
            lengths.push(len);
            x[[i, 0]] = (cutoff - c.last_day) as f64; // recency
            x[[i, 1]] = c.purchases as f64; // frequency
            x[[i, 2]] = c.spend / c.purchases as f64; // monetary
            x[[i, 3]] = (cutoff - c.first_day) as f64; // tenure
            y.push(f64::from(u8::from(c.repeat)));
        }
        let mut d = Dataset::from_x(x, ["recency", "frequency", "monetary", "tenure"].map(String::from).to_vec());
        d.y = Some(y);
        d.classes = vec!["no".into(), "yes".into()];
        d.sequences = Some(Sequences { data, lengths, channels: vec!["purchases".into(), "spend".into()] });
        d
    };
    (build(false), build(true))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: &str| {
        args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned()).unwrap_or_else(|| default.into())
    };
    let epochs: i64 = arg("--epochs", "3").parse().expect("--epochs N");
    let models = arg("--models", "lstm");
    let device = arg("--device", "cpu");
    let batch: i64 = arg("--batch", "128").parse().expect("--batch N");
    let t0 = Instant::now();
    let (train, test) = load();
    println!(
        "CDNOW: {} training and {} test customers, {} weekly steps x 2 channels + 4 RFM features (built in {:.2} s)",
        train.n_rows(),
        test.n_rows(),
        WEEKS,
        t0.elapsed().as_secs_f64()
    );
    for kind in models.split(',') {
        let model = match kind {
            "lstm" => BurnModel::lstm(),
            "gru" => BurnModel::gru(),
            "transformer" => BurnModel::transformer(),
            other => panic!("unknown model {other}"),
        };
        let given: Params = [
            ("hidden_size", ParamValue::Int(32)),
            ("layers", ParamValue::Int(1)),
            ("head_layers", ParamValue::Int(1)),
            ("batch_size", ParamValue::Int(batch)),
            ("epochs", ParamValue::Int(epochs)),
            ("valid_fraction", ParamValue::Float(0.0)),
            ("dropout", ParamValue::Float(0.0)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let p = model.space().resolve(&given, "throughput").unwrap();
        let ctx = FitContext { device: promoml_core::Device::parse(&device).expect("--device"), ..FitContext::new(42) };
        let t = Instant::now();
        let fitted = model.fit_net(&train, &p, &ctx).unwrap_or_else(|e| panic!("{e}"));
        let fit_s = t.elapsed().as_secs_f64();
        let pred = fitted.predict(&test).unwrap();
        let auc = Metric::RocAuc.score(test.y.as_ref().unwrap(), &pred).unwrap();
        let log = fitted.log();
        println!(
            "burn.{kind:12} device {device:6} hidden 32 batch {batch}: {} rows x {} epochs in {fit_s:.1} s -> {:.0} sequences/s \
             (training loop), test roc_auc {auc:.4} after {} epochs",
            train.n_rows(),
            log.epochs,
            log.rows_per_second,
            log.epochs
        );
    }
}
