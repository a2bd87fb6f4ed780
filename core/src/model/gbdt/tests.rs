use std::sync::OnceLock;

use linfa::Dataset;
use linfa::traits::Predict;
use ndarray::{Array2, array};
use proptest::prelude::*;
use rand_distr::{Distribution, StandardNormal};

use super::model::*;
use super::params::*;
use super::train::*;
use super::*;
use linfa::traits::Fit;
use ndarray::{Array1, ArrayView1};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `n` rows of `nf` standard-normal features and labels from `label(row, rng)`.
fn dataset(
    n: usize,
    nf: usize,
    seed: u64,
    label: impl Fn(&[f32], &mut ChaCha8Rng) -> bool,
) -> (Array2<f32>, Array1<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = Array2::zeros((n, nf));
    let mut y = Array1::zeros(n);
    for r in 0..n {
        let row: Vec<f32> = (0..nf).map(|_| StandardNormal.sample(&mut rng)).collect();
        y[r] = if label(&row, &mut rng) { 1.0 } else { 0.0 };
        x.row_mut(r).assign(&ArrayView1::from(&row));
    }
    (x, y)
}

fn xor(row: &[f32], _: &mut ChaCha8Rng) -> bool {
    row[0] * row[1] > 0.0
}

fn noisy_linear(row: &[f32], rng: &mut ChaCha8Rng) -> bool {
    let logit = 2.5 * row[0] - 2.0 * row[1] + 1.5 * row[2] + row[3];
    rng.random::<f64>() < sigmoid64(f64::from(logit))
}

fn small_params() -> GbdtParams {
    GbdtParams {
        n_rounds: 60,
        learning_rate: 0.2,
        max_depth: 4,
        max_leaves: 15,
        min_samples_leaf: 10,
        ..GbdtParams::default()
    }
}

fn holdout_auc(model: &Gbdt, x: &Array2<f32>, y: &Array1<f32>) -> f64 {
    let p = model.predict_proba(x.view());
    let labels: Vec<bool> = y.iter().map(|&v| v == 1.0).collect();
    auc(p.as_slice().unwrap_or(&[]), &labels)
}

#[test]
fn learns_xor_to_high_auc() {
    let (x, y) = dataset(3000, 5, 1, xor);
    let (xt, yt) = dataset(1000, 5, 2, xor);
    let model = small_params().fit(x.view(), y.view(), None, None).unwrap();
    let a = holdout_auc(&model, &xt, &yt);
    assert!(a > 0.9, "XOR holdout AUC {a}");
    let imp = model.feature_importance();
    assert!(imp[0] > imp[2] && imp[1] > imp[2], "importance {imp:?}");
}

#[test]
fn learns_noisy_linear_to_high_auc() {
    let (x, y) = dataset(3000, 8, 3, noisy_linear);
    let (xt, yt) = dataset(1000, 8, 4, noisy_linear);
    let model = small_params().fit(x.view(), y.view(), None, None).unwrap();
    let a = holdout_auc(&model, &xt, &yt);
    assert!(a > 0.9, "linear holdout AUC {a}");
}

fn sampled_params() -> GbdtParams {
    GbdtParams {
        n_rounds: 25,
        row_subsample: 0.7,
        col_subsample: 0.6,
        seed: 42,
        ..small_params()
    }
}

#[test]
fn same_seed_gives_identical_model_whatever_the_thread_count() {
    let (x, y) = dataset(2000, 6, 5, noisy_linear);
    let fit_in = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            sampled_params()
                .fit(x.view(), y.view(), None, None)
                .unwrap()
        })
    };
    let one = fit_in(1);
    let three = fit_in(3);
    let again = fit_in(3);
    let json = serde_json::to_string(&one).unwrap();
    assert_eq!(json, serde_json::to_string(&three).unwrap());
    assert_eq!(json, serde_json::to_string(&again).unwrap());
    assert_eq!(one, three);
    let other_seed = GbdtParams {
        seed: 43,
        ..sampled_params()
    }
    .fit(x.view(), y.view(), None, None)
    .unwrap();
    assert_ne!(json, serde_json::to_string(&other_seed).unwrap());
}

#[test]
fn training_margins_equal_prediction_margins() {
    let (x, y) = dataset(1500, 4, 6, noisy_linear);
    let params = GbdtParams {
        max_bins: 16,
        ..sampled_params()
    };
    let (model, margins) = params
        .validate()
        .unwrap()
        .train(x.view(), y.view(), None, None)
        .unwrap();
    for (r, &m) in margins.iter().enumerate() {
        let row = x.row(r).to_vec();
        assert_eq!(m.to_bits(), model.predict_margin(&row).to_bits(), "row {r}");
    }
}

#[test]
fn early_stopping_stops_and_keeps_the_best_round() {
    // Labels independent of the features: validation loss soon stops improving.
    let coin = |_: &[f32], rng: &mut ChaCha8Rng| rng.random::<bool>();
    let (x, y) = dataset(1000, 4, 7, coin);
    let (vx, vy) = dataset(500, 4, 8, coin);
    let params = GbdtParams {
        n_rounds: 200,
        early_stopping_rounds: Some(5),
        ..small_params()
    };
    let model = params
        .fit(x.view(), y.view(), None, Some((vx.view(), vy.view())))
        .unwrap();
    let best = model.best_iteration().unwrap();
    assert_eq!(model.n_trees(), best);
    assert!(best < 100, "stopped after {best} rounds");
    assert_eq!(model.valid_logloss().len(), best + 5);
    let kept = &model.valid_logloss()[..best];
    let min = kept.iter().copied().fold(f64::INFINITY, f64::min);
    assert_eq!(kept[best - 1], min);
}

#[test]
fn serde_round_trip_predicts_identically() {
    let (x, y) = dataset(1500, 5, 9, xor);
    let model = sampled_params()
        .fit(x.view(), y.view(), None, None)
        .unwrap();
    let json = serde_json::to_string(&model).unwrap();
    let back: Gbdt = serde_json::from_str(&json).unwrap();
    assert_eq!(back, model);
    let (xt, _) = dataset(300, 5, 10, xor);
    for row in xt.rows() {
        let row = row.to_vec();
        assert_eq!(
            model.predict_margin(&row).to_bits(),
            back.predict_margin(&row).to_bits()
        );
    }
    assert_eq!(
        model.predict_proba(xt.view()),
        back.predict_proba(xt.view())
    );
}

#[test]
fn batch_prediction_equals_row_prediction_for_any_layout() {
    let (x, y) = dataset(700, 5, 16, noisy_linear);
    let model = sampled_params()
        .fit(x.view(), y.view(), None, None)
        .unwrap();
    let by_row: Vec<u32> = x
        .rows()
        .into_iter()
        .map(|r| model.predict_proba_row(&r.to_vec()).to_bits())
        .collect();
    let bits = |p: Array1<f32>| p.iter().map(|p| p.to_bits()).collect::<Vec<u32>>();
    assert_eq!(by_row, bits(model.predict_proba(x.view())));
    let column_major = x.t().as_standard_layout().into_owned();
    assert_eq!(by_row, bits(model.predict_proba(column_major.t())));
    let small = x.slice_axis(ndarray::Axis(0), ndarray::Slice::from(0..10usize));
    assert_eq!(&by_row[..10], &bits(model.predict_proba(small))[..]);
    assert_eq!(model.predict_proba(Array2::zeros((0, 5)).view()).len(), 0);
    let no_columns = model.predict_proba(Array2::zeros((3, 0)).view());
    assert_eq!(no_columns[2], model.predict_proba_row(&[]));
}

#[test]
fn corrupt_artifacts_are_errors() {
    let (x, y) = dataset(500, 3, 11, xor);
    let model = small_params().fit(x.view(), y.view(), None, None).unwrap();
    let mut json: serde_json::Value = serde_json::to_value(&model).unwrap();
    json["trees"][0]["left"][0] = serde_json::json!(0);
    json["trees"][0]["right"][0] = serde_json::json!(999_999);
    let err = serde_json::from_value::<Gbdt>(json)
        .unwrap_err()
        .to_string();
    assert!(err.contains("tree 0"), "{err}");
    let mut json: serde_json::Value = serde_json::to_value(&model).unwrap();
    json["n_features"] = serde_json::json!(1);
    assert!(serde_json::from_value::<Gbdt>(json).is_err());
}

#[test]
fn invalid_inputs_are_errors_naming_the_place() {
    let (mut x, mut y) = dataset(200, 3, 12, xor);
    let p = small_params();
    x[[3, 1]] = f32::NAN;
    match p.fit(x.view(), y.view(), None, None) {
        Err(GbdtError::NonFiniteFeature {
            set: DataSet::Training,
            row: 3,
            column: 1,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    x[[3, 1]] = 0.5;
    y[5] = 2.0;
    match p.fit(x.view(), y.view(), None, None) {
        Err(GbdtError::InvalidLabel { row: 5, value, .. }) => assert_eq!(value, 2.0),
        other => panic!("{other:?}"),
    }
    y[5] = 1.0;
    let short = Array1::from(y.to_vec()[..199].to_vec());
    assert!(matches!(
        p.fit(x.view(), short.view(), None, None),
        Err(GbdtError::LengthMismatch { what: "labels", .. })
    ));
    let w = Array1::from_elem(200, -1.0f32);
    assert!(matches!(
        p.fit(x.view(), y.view(), Some(w.view()), None),
        Err(GbdtError::InvalidWeight { row: 0, .. })
    ));
    let zeros = Array1::zeros(200);
    assert!(matches!(
        p.fit(x.view(), zeros.view(), None, None),
        Err(GbdtError::SingleClass)
    ));
    let narrow = Array2::zeros((10, 2));
    let vy = Array1::zeros(10);
    assert!(matches!(
        p.fit(x.view(), y.view(), None, Some((narrow.view(), vy.view()))),
        Err(GbdtError::FeatureCountMismatch {
            expected: 3,
            found: 2
        })
    ));
    let stopping = GbdtParams {
        early_stopping_rounds: Some(3),
        ..small_params()
    };
    assert!(matches!(
        stopping.fit(x.view(), y.view(), None, None),
        Err(GbdtError::EarlyStoppingWithoutValidation)
    ));
    let empty = Array2::zeros((0, 3));
    assert!(matches!(
        p.fit(empty.view(), Array1::zeros(0).view(), None, None),
        Err(GbdtError::NoRows { .. })
    ));
    for bad in [
        GbdtParams {
            learning_rate: 0.0,
            ..GbdtParams::default()
        },
        GbdtParams {
            max_bins: 1,
            ..GbdtParams::default()
        },
        GbdtParams {
            row_subsample: f64::NAN,
            ..GbdtParams::default()
        },
        GbdtParams {
            early_stopping_rounds: Some(0),
            ..GbdtParams::default()
        },
    ] {
        assert!(matches!(
            bad.validate(),
            Err(GbdtError::InvalidParam { .. })
        ));
    }
}

#[test]
fn weights_shift_the_base_score() {
    let x = array![[0.0f32], [1.0], [2.0], [3.0]];
    let y = array![0.0f32, 0.0, 1.0, 1.0];
    let w = array![1.0f32, 1.0, 3.0, 3.0];
    let p = GbdtParams {
        n_rounds: 1,
        min_samples_leaf: 1,
        min_child_hessian: 0.0,
        ..GbdtParams::default()
    };
    let model = p.fit(x.view(), y.view(), Some(w.view()), None).unwrap();
    assert!((model.base_score() - 3.0f32.ln()).abs() < 1e-6);
}

#[test]
fn heavy_ties_get_their_own_bin() {
    let mut values: Vec<f32> = (0..1000)
        .map(|i| if i < 600 { 0.0 } else { i as f32 })
        .collect();
    let cuts = feature_cuts(&mut values, 16);
    assert!(cuts.len() <= 15);
    assert_eq!(bin_of(&cuts, 0.0), 0);
    assert_eq!(bin_of(&cuts, -0.0), 0);
    assert!(bin_of(&cuts, 600.0) > 0);
    assert!(cuts.windows(2).all(|w| w[0] < w[1]));
    let mut few = vec![1.0f32, 2.0, 2.0, 3.0];
    assert_eq!(feature_cuts(&mut few, 255), vec![1.5, 2.5]);
}

#[test]
fn linfa_traits_fit_and_predict() {
    let (x, y) = dataset(1000, 3, 13, xor);
    let targets = y.mapv(|v| v == 1.0);
    let data = Dataset::new(x.clone(), targets.clone());
    let model: Gbdt = Fit::fit(&small_params(), &data).unwrap();
    let predicted: Array1<bool> = model.predict(&x);
    let agree = predicted
        .iter()
        .zip(&targets)
        .filter(|(a, b)| a == b)
        .count();
    assert!(agree > 900, "{agree} of 1000 agree");
}

#[test]
fn auc_of_known_rankings() {
    assert_eq!(auc(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]), 1.0);
    assert_eq!(auc(&[0.9, 0.8, 0.2, 0.1], &[false, false, true, true]), 0.0);
    assert_eq!(auc(&[0.5, 0.5, 0.5, 0.5], &[false, true, false, true]), 0.5);
    assert_eq!(
        auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]),
        0.75
    );
    assert!(auc(&[0.1, 0.2], &[true, true]).is_nan());
    assert!(auc(&[0.1], &[true, false]).is_nan());
}

fn shared_model() -> &'static Gbdt {
    static MODEL: OnceLock<Gbdt> = OnceLock::new();
    MODEL.get_or_init(|| {
        let (x, y) = dataset(1000, 4, 14, noisy_linear);
        small_params().fit(x.view(), y.view(), None, None).unwrap()
    })
}

proptest! {
    #[test]
    fn probabilities_are_finite_and_inside_the_unit_interval(
        row in proptest::collection::vec(
            prop_oneof![
                any::<f32>(),
                -1e30f32..1e30,
                -5.0f32..5.0,
            ],
            0..6,
        )
    ) {
        let model = shared_model();
        let p = model.predict_proba_row(&row);
        prop_assert!(p.is_finite() && p > 0.0 && p < 1.0, "p = {}", p);
        prop_assert!(model.predict_margin(&row).is_finite());
    }
}
