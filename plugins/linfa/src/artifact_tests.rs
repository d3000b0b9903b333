//! Artifact round trips: every model that saves reloads with bit-identical predictions, and
//! rejects truncated bytes and bytes of another kind.

use promoml_core::testing::{blobs, linear, split};
use promoml_core::{Dataset, FitContext, Model, Predictions};

fn bits(p: &Predictions) -> Vec<u64> {
    match p {
        Predictions::Proba(a) => a.iter().map(|v| v.to_bits()).collect(),
        Predictions::Values(v) => v.iter().map(|v| v.to_bits()).collect(),
    }
}

fn round_trip(model: &dyn Model, ds: &Dataset) {
    let (train, test) = split(ds, 0.7);
    let fitted = model.fit(&train, &model.space().defaults(), &FitContext::new(3)).unwrap();
    let bytes = fitted.save().unwrap();
    let loaded = model.load(&bytes).unwrap();
    assert_eq!(bits(&fitted.predict(&test).unwrap()), bits(&loaded.predict(&test).unwrap()), "{}", model.kind());
    assert_eq!(loaded.save().unwrap(), bytes, "{}", model.kind());
    for cut in [0, bytes.len() / 2, bytes.len() - 1] {
        let e = model.load(&bytes[..cut]).err().unwrap().to_string();
        assert!(e.contains("truncated") && e.contains(model.kind()), "{}: {e}", model.kind());
    }
}

#[test]
fn models_round_trip_bit_identically() {
    let (binary, multi, reg) = (blobs(300, 4, 2, 2.0, 1), blobs(300, 4, 3, 3.0, 2), linear(300, 4, 0.3, 3));
    for (model, ds) in [
        (&crate::LogisticRegression as &dyn Model, &binary),
        (&crate::LogisticRegression, &multi),
        (&crate::DecisionTree, &binary),
        (&crate::DecisionTree, &multi),
        (&crate::ElasticNet, &reg),
    ] {
        round_trip(model, ds);
    }
}
