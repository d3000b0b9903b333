//! Artifact round trips: every model that saves reloads with bit-identical predictions, and
//! rejects truncated bytes and bytes of another kind.

use promoml_core::testing::{assert_round_trip, blobs, linear, split};
use promoml_core::{FitContext, Model};

#[test]
fn models_round_trip_bit_identically() {
    let (binary, multi, reg) = (blobs(300, 4, 2, 2.0, 1), blobs(300, 4, 3, 3.0, 2), linear(300, 4, 0.3, 3));
    for (model, ds) in [
        (&crate::LogisticRegression as &dyn Model, &binary),
        (&crate::LogisticRegression, &multi),
        (&crate::Svm::linear(), &binary),
        (&crate::Svm::rbf(), &binary),
        (&crate::Ridge, &reg),
    ] {
        assert_round_trip(model, ds);
    }
}

#[test]
fn models_that_cannot_be_saved_say_why() {
    let (train, _) = split(&blobs(100, 3, 2, 2.0, 1), 0.7);
    for model in [&crate::Knn as &dyn Model, &crate::RandomForest] {
        let fitted = model.fit(&train, &model.space().defaults(), &FitContext::new(1)).unwrap();
        let e = fitted.save().err().unwrap().to_string();
        assert!(e.contains(model.kind()) && e.contains("artifact"), "{e}");
    }
}
