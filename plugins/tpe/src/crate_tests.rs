//! Tests of `tpe.crate` (the `tpe` crate behind our trait), reusing the spaces and objectives of
//! `tests.rs`.

use crate::tests::{branin, branin_space, check_in_search_domain, median, mixed_objective, mixed_space, run};
use crate::{CrateTpe, CrateTpeFactory};
use promoml_core::search::RandomSearch;
use promoml_core::{Optimizer, OptimizerFactory, ParamSpec, ParamValue, Params, ParamsExt, Registry, Rng, SearchSpace};
use rand::SeedableRng;

#[test]
fn crate_tpe_proposals_respect_bounds_log_int_categorical_and_conditions() {
    let space = mixed_space();
    let mut opt = CrateTpe::new(5);
    let mut rng = Rng::seed_from_u64(3);
    let mut kernels = std::collections::BTreeSet::new();
    let mut flags = std::collections::BTreeSet::new();
    for _ in 0..80 {
        let p = opt.ask(&space, &mut rng);
        check_in_search_domain(&space, &p);
        kernels.insert(p.str("kernel").unwrap().to_string());
        flags.insert(p.bool("bias").unwrap());
        opt.tell(&p, Some(mixed_objective(&p)));
    }
    assert_eq!(kernels.len(), 3, "every option is proposed: {kernels:?}");
    assert_eq!(flags.len(), 2);
    assert_eq!(opt.told(), 80);
}

#[test]
fn crate_tpe_same_seed_and_tells_give_same_asks_and_copies_continue_alike() {
    let space = mixed_space();
    let asks = |seed: u64| {
        let mut opt = CrateTpe::new(4);
        let mut rng = Rng::seed_from_u64(seed);
        (0..25)
            .map(|_| {
                let p = opt.ask(&space, &mut rng);
                opt.tell(&p, Some(mixed_objective(&p)));
                p
            })
            .collect::<Vec<Params>>()
    };
    assert_eq!(asks(11), asks(11));
    assert_ne!(asks(11), asks(12), "another seed, other trials");
    // A copy (rebuilt from the history) proposes what the original would.
    let mut opt = CrateTpe::new(4);
    let mut rng = Rng::seed_from_u64(5);
    for _ in 0..20 {
        let p = opt.ask(&space, &mut rng);
        opt.tell(&p, Some(mixed_objective(&p)));
    }
    let mut copy = opt.clone();
    let mut rng_copy = rng.clone();
    assert_eq!(opt.ask(&space, &mut rng), copy.ask(&space, &mut rng_copy));
}

#[test]
fn crate_tpe_beats_random_search_on_branin_and_a_mixed_conditional_space() {
    let branin_domain = branin_space();
    let seeds = 0..9u64;
    let random = median(seeds.clone().map(|s| run(&mut RandomSearch, &branin_domain, branin, 60, s)).collect());
    let ours = median(seeds.clone().map(|s| run(&mut CrateTpe::new(10), &branin_domain, branin, 60, s)).collect());
    assert!(ours < random, "median best after 60 trials: tpe.crate {ours} vs random {random}");
    let space = mixed_space();
    let random = median((0..7).map(|s| run(&mut RandomSearch, &space, mixed_objective, 60, s)).collect());
    let ours = median((0..7).map(|s| run(&mut CrateTpe::new(10), &space, mixed_objective, 60, s)).collect());
    assert!(ours < random, "mixed space: tpe.crate {ours} vs random {random}");
}

#[test]
fn crate_tpe_startup_trials_are_random_search_draws() {
    let space = mixed_space();
    let mut ours = CrateTpe::new(8);
    let (mut rng_a, mut rng_b) = (Rng::seed_from_u64(9), Rng::seed_from_u64(9));
    for _ in 0..8 {
        let a = ours.ask(&space, &mut rng_a);
        assert_eq!(a, RandomSearch.ask(&space, &mut rng_b));
        ours.tell(&a, Some(mixed_objective(&a)));
    }
    assert_ne!(ours.ask(&space, &mut rng_a), RandomSearch.ask(&space, &mut rng_b), "trial 9 comes from the model");
}

#[test]
fn crate_tpe_handles_defaults_out_of_range_failures_and_degenerate_spaces() {
    let space = mixed_space();
    let mut opt = CrateTpe::new(3);
    let mut rng = Rng::seed_from_u64(4);
    // The pipeline's first trial is the defaults (never asked); a value outside the searched
    // range is told too, and ignored for that parameter.
    let d = space.defaults();
    opt.tell(&d, Some(mixed_objective(&d)));
    let mut odd = space.defaults();
    odd.insert("depth".into(), ParamValue::Int(90));
    opt.tell(&odd, None);
    for t in 0..20 {
        let p = opt.ask(&space, &mut rng);
        check_in_search_domain(&space, &p);
        let v = [Some(mixed_objective(&p)), None, Some(f64::NAN), Some(f64::NEG_INFINITY)][t % 4];
        opt.tell(&p, v);
    }
    let degenerate = SearchSpace::new(vec![
        ParamSpec::float("a", "", 1.0, 0.0, 2.0).search_float(1.0, 1.0, false),
        ParamSpec::float("la", "", 1.0, 0.1, 2.0).search_float(1.0, 1.0, true),
        ParamSpec::int("b", "", 4, 0, 9).search_int(4, 4, false),
        ParamSpec::int("lb", "", 4, 1, 9).search_int(4, 4, true),
        ParamSpec::choice("c", "", "only", &["only"]).searched(),
        ParamSpec::float("neg_log", "", 0.0, -1.0, 1.0).search_float(-1.0, 1.0, true),
        ParamSpec::float("top", "the high end is a valid told value", 1.0, 0.0, 1.0).search_float(0.0, 1.0, false),
    ]);
    for _ in 0..12 {
        let p = opt.ask(&degenerate, &mut rng);
        check_in_search_domain(&degenerate, &p);
        opt.tell(&p, Some(p.f64("neg_log").unwrap()));
    }
    let mut top = degenerate.defaults();
    top.insert("top".into(), ParamValue::Float(1.0));
    opt.tell(&top, Some(-1.0));
    let p = opt.ask(&degenerate, &mut rng);
    check_in_search_domain(&degenerate, &p);
}

#[test]
fn crate_tpe_is_registered_and_takes_the_startup_trials() {
    let mut r = Registry::new();
    crate::register(&mut r);
    let f = r.optimizer("tpe.crate").unwrap();
    assert_eq!(f.kind(), "tpe.crate");
    assert!(f.description().contains("`tpe` crate"));
    let space = SearchSpace::new(vec![ParamSpec::float("x", "", 0.0, 0.0, 1.0).search_float(0.0, 1.0, false)]);
    let mut a = CrateTpeFactory.build(3);
    let (mut rng, mut rng_r) = (Rng::seed_from_u64(0), Rng::seed_from_u64(0));
    for _ in 0..3 {
        let p = a.ask(&space, &mut rng);
        assert_eq!(p, RandomSearch.ask(&space, &mut rng_r));
        a.tell(&p, Some(p.f64("x").unwrap()));
    }
}
