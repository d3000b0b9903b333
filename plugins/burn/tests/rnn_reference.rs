//! burn's LSTM and GRU forward passes, and promoml's fused passes (`lstm_forward`,
//! `gru_forward`, `lstm_layer_forward`, `gru_layer_forward`: what the networks train with), against an independent NumPy implementation of
//! PyTorch's documented equations (`scripts/rnn_reference.py`, fixture committed beside this
//! test), on the same fixed weights: every output must agree to 1e-5.

use burn::nn::{Gru, Lstm, LstmState};
use burn::tensor::{Tensor, TensorData};
use promoml_burn::reference::{
    Cpu, gru_forward, gru_from_pytorch, gru_layer_forward, gru_layer_supported, lstm_forward, lstm_from_pytorch,
    lstm_layer_forward, lstm_layer_supported,
};
use serde_json::Value;

const TOL: f64 = 1e-5;

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rnn_reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON")
}

fn flat(v: &Value) -> Vec<f32> {
    match v {
        Value::Array(a) => a.iter().flat_map(flat).collect(),
        Value::Number(n) => vec![n.as_f64().expect("number") as f32],
        other => panic!("unexpected {other}"),
    }
}

fn flat64(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(flat64).collect(),
        Value::Number(n) => vec![n.as_f64().expect("number")],
        other => panic!("unexpected {other}"),
    }
}

fn matrix(v: &Value) -> Vec<Vec<f32>> {
    v.as_array().expect("rows").iter().map(flat).collect()
}

fn dims(f: &Value) -> (usize, usize, usize, usize) {
    let u = |k: &str| f[k].as_u64().expect(k) as usize;
    (u("batch"), u("steps"), u("input"), u("hidden"))
}

fn assert_close(what: &str, got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let worst = got.iter().zip(want).map(|(g, w)| (*g as f64 - w).abs()).fold(0.0, f64::max);
    assert!(worst <= TOL, "{what}: largest difference {worst:e} > {TOL:e}");
    println!("{what}: largest difference {worst:e}");
}

/// The fixture's input `x` `[batch, steps, input]`.
fn input(f: &Value) -> Tensor<Cpu, 3> {
    let (b, t, i, _) = dims(f);
    Tensor::from_data(TensorData::new(flat(&f["x"]), [b, t, i]), &Default::default())
}

fn values<const D: usize>(t: Tensor<Cpu, D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

/// An LSTM pass: `(module, x, initial state) -> (output, final state)`.
type LstmPass = fn(&Lstm<Cpu>, Tensor<Cpu, 3>, Option<LstmState<Cpu, 2>>) -> (Tensor<Cpu, 3>, LstmState<Cpu, 2>);

/// `pass` on the fixture's LSTM weights and inputs, against PyTorch's outputs (and, for the
/// zero state, against burn's own pass).
fn check_lstm(name: &str, pass: LstmPass) {
    let f = fixture();
    let (b, _, _, h) = dims(&f);
    let device = Default::default();
    let w = &f["lstm"];
    let lstm = lstm_from_pytorch::<Cpu>(
        &matrix(&w["weight_ih"]),
        &matrix(&w["weight_hh"]),
        &flat(&w["bias_ih"]),
        &flat(&w["bias_hh"]),
        &device,
    );
    let x = input(&f);
    let h0 = Tensor::<Cpu, 2>::from_data(TensorData::new(flat(&f["h0"]), [b, h]), &device);
    let c0 = Tensor::<Cpu, 2>::from_data(TensorData::new(flat(&f["c0"]), [b, h]), &device);

    let (out, state) = pass(&lstm, x.clone(), Some(LstmState::new(c0, h0)));
    assert_close(&format!("{name} output"), &values(out), &flat64(&w["output"]));
    assert_close(&format!("{name} h_n"), &values(state.hidden), &flat64(&w["h_n"]));
    assert_close(&format!("{name} c_n"), &values(state.cell), &flat64(&w["c_n"]));

    let out0 = values(pass(&lstm, x.clone(), None).0);
    assert_close(&format!("{name} output, zero state"), &out0, &flat64(&w["output_zero_state"]));
    let burn_out: Vec<f64> = values(lstm.forward(x, None).0).into_iter().map(f64::from).collect();
    assert_close(&format!("{name} against burn's pass"), &out0, &burn_out);
}

#[test]
fn lstm_matches_the_pytorch_equations() {
    check_lstm("lstm", |m, x, s| m.forward(x, s));
}

/// The fused pass the networks train with (`lstm_forward`: per step one input and one hidden
/// matmul for all four gates) on the same weights and inputs.
#[test]
fn fused_lstm_matches_the_pytorch_equations() {
    check_lstm("fused lstm", lstm_forward);
}

/// The whole-layer pass the networks train with on the CPU (`lstm_layer_forward`: one operation
/// for the sequence, zero initial state) on the same weights and inputs.
#[test]
fn whole_layer_lstm_matches_the_pytorch_equations() {
    let f = fixture();
    let device = Default::default();
    let w = &f["lstm"];
    let lstm = lstm_from_pytorch::<Cpu>(
        &matrix(&w["weight_ih"]),
        &matrix(&w["weight_hh"]),
        &flat(&w["bias_ih"]),
        &flat(&w["bias_hh"]),
        &device,
    );
    assert!(lstm_layer_supported(&lstm), "the CPU backend runs the whole-layer pass");
    let out = values(lstm_layer_forward(&lstm, input(&f)));
    assert_close("whole-layer lstm output, zero state", &out, &flat64(&w["output_zero_state"]));
}

/// A GRU pass: `(module, x, initial state) -> output`.
type GruPass = fn(&Gru<Cpu>, Tensor<Cpu, 3>, Option<Tensor<Cpu, 2>>) -> Tensor<Cpu, 3>;

/// `pass` on the fixture's GRU weights and inputs, against PyTorch's outputs (and, for the zero
/// state, against burn's own pass).
fn check_gru(name: &str, pass: GruPass) {
    let f = fixture();
    let (b, t, _, h) = dims(&f);
    let device = Default::default();
    let w = &f["gru"];
    let gru = gru_from_pytorch::<Cpu>(
        &matrix(&w["weight_ih"]),
        &matrix(&w["weight_hh"]),
        &flat(&w["bias_ih"]),
        &flat(&w["bias_hh"]),
        &device,
    );
    let x = input(&f);
    let h0 = Tensor::<Cpu, 2>::from_data(TensorData::new(flat(&f["h0"]), [b, h]), &device);

    let out = values(pass(&gru, x.clone(), Some(h0)));
    assert_close(&format!("{name} output"), &out, &flat64(&w["output"]));
    let last: Vec<f32> = (0..b).flat_map(|r| out[(r * t + t - 1) * h..(r * t + t) * h].to_vec()).collect();
    assert_close(&format!("{name} h_n"), &last, &flat64(&w["h_n"]));

    let out0 = values(pass(&gru, x.clone(), None));
    assert_close(&format!("{name} output, zero state"), &out0, &flat64(&w["output_zero_state"]));
    let burn_out: Vec<f64> = values(gru.forward(x, None)).into_iter().map(f64::from).collect();
    assert_close(&format!("{name} against burn's pass"), &out0, &burn_out);
}

#[test]
fn gru_matches_the_pytorch_equations() {
    check_gru("gru", |m, x, s| m.forward(x, s));
}

/// The fused GRU pass (per step one input and one hidden matmul for all three gates) on the
/// same weights and inputs.
#[test]
fn fused_gru_matches_the_pytorch_equations() {
    check_gru("fused gru", gru_forward);
}

/// The whole-layer GRU pass the networks train with on the CPU (`gru_layer_forward`, zero
/// initial state) on the same weights and inputs.
#[test]
fn whole_layer_gru_matches_the_pytorch_equations() {
    let f = fixture();
    let device = Default::default();
    let w = &f["gru"];
    let gru = gru_from_pytorch::<Cpu>(
        &matrix(&w["weight_ih"]),
        &matrix(&w["weight_hh"]),
        &flat(&w["bias_ih"]),
        &flat(&w["bias_hh"]),
        &device,
    );
    assert!(gru_layer_supported(&gru), "the CPU backend runs the whole-layer pass");
    let out = values(gru_layer_forward(&gru, input(&f)));
    assert_close("whole-layer gru output, zero state", &out, &flat64(&w["output_zero_state"]));
}
