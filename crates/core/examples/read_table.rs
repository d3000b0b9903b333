//! Bench command: read one data table (CSV, compressed CSV or Parquet) the way a pipeline's
//! `[data] path` is read, and print its shape and the seconds it took. Peak memory is measured
//! from outside (`/usr/bin/time -v`): `scripts/table_bench.sh`, figures in
//! `reports/benchmarks/events.md` ("Plain tables").
//!
//!     cargo run --release -p promoml-core --example read_table -- TABLE.csv[.gz]

use promoml_core::io::{ReadOptions, read_file};

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: read_table TABLE");
        std::process::exit(2);
    };
    let start = std::time::Instant::now();
    match read_file(std::path::Path::new(&path), &ReadOptions::default()) {
        Ok(frame) => {
            let secs = start.elapsed().as_secs_f64();
            let types: Vec<String> =
                frame.columns().iter().map(|c| format!("{:?}", c.data.column_type()).to_lowercase()).collect();
            println!(
                "{path}: {} rows x {} columns in {secs:.2} s ({})",
                frame.n_rows(),
                frame.n_cols(),
                types.join(",")
            );
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
