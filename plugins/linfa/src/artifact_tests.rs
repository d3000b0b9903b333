//! Artifact round trips: every model that saves reloads with bit-identical predictions, and
//! rejects truncated bytes and bytes of another kind.

use promoml_core::Model;
use promoml_core::testing::{assert_round_trip, blobs, linear};

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
        assert_round_trip(model, ds);
    }
}
