//! The router as the server uses it: train on history, store, load, route or fall back, and
//! evaluate against the baselines.

use concord_routing::{
    evaluate, examples_from_history, generate, read_fortunes, EvalOptions, Example, Featurizer,
    Router, RoutingError, Sample, TaskOutcome, TrainOptions,
};
use serde_json::{json, Map, Value};

mod policy;

fn variables(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn history_examples(n: usize, seed: u64) -> Vec<Example> {
    examples_from_history(&generate(n, seed))
}

#[test]
fn the_same_sample_gives_the_same_vector_and_cjk_text_gives_features() {
    let featurizer = Featurizer::default();
    let sample = Sample::new("Refund my invoice, please!").with_variables(variables(
        json!({"plan": "Pro", "vip": true, "amount": 250}),
    ));
    let a = featurizer.features(&sample);
    let b = featurizer.features(&sample.clone());
    assert_eq!(a, b);
    assert!(
        a.indices.windows(2).all(|w| w[0] < w[1]),
        "indices ascending"
    );
    let norm: f64 = a.values.iter().map(|v| v * v).sum();
    assert!((norm - 1.0).abs() < 1e-9, "unit length");
    let tokens = featurizer.tokens(&sample);
    for expected in [
        "w:refund",
        "b:my invoice",
        "c: re",
        "v:plan=pro",
        "v:vip=true",
        "v:amount~1e2",
    ] {
        assert!(
            tokens.iter().any(|t| t == expected),
            "{expected} in {tokens:?}"
        );
    }

    for text in ["결제가두번되었어요", "請求書が二重に届きました", "退款"] {
        let tokens = featurizer.tokens(&Sample::new(text));
        assert!(
            tokens.iter().any(|t| t.starts_with("c:")),
            "{text}: {tokens:?}"
        );
        assert!(!featurizer.features(&Sample::new(text)).is_empty());
    }
    // Korean written with and without spaces shares most of its features.
    let spaced = featurizer.features(&Sample::new("결제가 두 번 되었어요"));
    let unspaced = featurizer.features(&Sample::new("결제가두번되었어요"));
    let shared = spaced
        .indices
        .iter()
        .filter(|i| unspaced.indices.binary_search(i).is_ok())
        .count();
    assert!(
        shared * 3 > spaced.len(),
        "{shared} of {} shared",
        spaced.len()
    );
}

#[test]
fn a_token_hashes_to_the_same_bucket_in_every_version() {
    // Stored models depend on these: changing them requires a new model format.
    let featurizer = Featurizer::default();
    assert_eq!(featurizer.index("w:refund"), 194_371);
    assert_eq!(featurizer.index("c:환불"), 10_877);
    assert_eq!(
        Featurizer::new(1 << 10).map(|f| f.index("w:refund")),
        Ok(835)
    );
    assert!(Featurizer::new(1000).is_err(), "not a power of two");
}

#[test]
fn a_router_survives_its_bytes_and_predicts_the_same() {
    let examples = history_examples(600, 7);
    let router = Router::train(&examples, &TrainOptions::default()).expect("trains");
    let bytes = router.to_bytes().expect("serialises");
    assert_eq!(bytes[0], concord_routing::model::FORMAT);
    let loaded = Router::from_bytes(&bytes).expect("loads");
    assert_eq!(loaded, router);
    assert_eq!(loaded.trained_on(), 600);
    assert_eq!(loaded.labels().len(), 8);
    for e in examples.iter().take(50) {
        let p = router.predict(&e.sample).expect("predicts");
        assert_eq!(loaded.predict(&e.sample), Ok(p.clone()));
        assert!((0.0..=1.0).contains(&p.confidence));
        assert_eq!(p.ranked.len(), 3);
        assert_eq!(p.ranked[0], (p.label.clone(), p.confidence));
        assert!(p.ranked.windows(2).all(|w| w[0].1 >= w[1].1));
    }

    let mut wrong_format = bytes.clone();
    wrong_format[0] = 99;
    assert_eq!(
        Router::from_bytes(&wrong_format),
        Err(RoutingError::UnsupportedFormat {
            found: 99,
            expected: 1
        })
    );
    assert!(matches!(
        Router::from_bytes(&bytes[..bytes.len() / 2]),
        Err(RoutingError::CorruptModel(_))
    ));
    assert!(matches!(
        Router::from_bytes(&[]),
        Err(RoutingError::CorruptModel(_))
    ));
}

#[test]
fn the_learned_router_beats_both_baselines_on_the_generated_history() {
    let examples = history_examples(5_000, 42);
    let report = evaluate(&examples, &EvalOptions::default()).expect("evaluates");
    assert_eq!(report.train + report.test, 5_000);
    assert!(
        report.corrections_in_train > 300,
        "about 10% reassigned: {}",
        report.corrections_in_train
    );
    assert!(
        report.model.accuracy > report.keyword_rules.accuracy + 0.03
            && report.model.accuracy > report.majority.accuracy + 0.3,
        "accuracy {} vs rules {} and majority {}",
        report.model.accuracy,
        report.keyword_rules.accuracy,
        report.majority.accuracy
    );
    assert!(
        report.model.macro_f1 > report.keyword_rules.macro_f1 + 0.03
            && report.model.macro_f1 > report.majority.macro_f1 + 0.3,
        "macro-F1 {} vs rules {} and majority {}",
        report.model.macro_f1,
        report.keyword_rules.macro_f1,
        report.majority.macro_f1
    );
    assert!(
        report.calibration_error < 0.1,
        "calibration {}",
        report.calibration_error
    );
    let total: usize = report.model.confusion.iter().flatten().sum();
    assert_eq!(total, report.test);
    let markdown = report.to_markdown();
    assert!(markdown.contains("| learned router |") && markdown.contains("korea-desk"));
    let json = serde_json::to_string(&report).expect("json");
    assert!(json.contains("\"macro_f1\""));
}

#[test]
fn the_threshold_decides_between_the_model_and_the_fallback() {
    let examples = history_examples(1_500, 3);
    let options = EvalOptions {
        threshold: 1.0,
        sweep: vec![0.0],
        ..EvalOptions::default()
    };
    let report = evaluate(&examples, &options).expect("evaluates");
    let above_all = &report.routing;
    // No softmax over eight labels reaches exactly 1.0 with L2-regularised weights.
    assert_eq!(above_all.by_model, 0);
    assert_eq!(above_all.by_fallback, report.test);
    assert_eq!(above_all.model_accuracy, None);
    assert_eq!(above_all.combined_accuracy, report.keyword_rules.accuracy);
    let zero = &report.sweep[0];
    assert_eq!((zero.by_model, zero.by_fallback), (report.test, 0));
    assert_eq!(zero.combined_accuracy, report.model.accuracy);
    assert_eq!(zero.fallback_accuracy, None);
}

#[test]
fn a_reassigned_task_is_labelled_by_who_completed_it() {
    let record = |first: Option<&str>, done: &str| TaskOutcome {
        text: "my parcel is late".into(),
        variables: Map::new(),
        first_assigned: first.map(str::to_owned),
        completed_by: done.into(),
    };
    let examples = examples_from_history(&[
        record(Some("billing"), "shipping"),
        record(Some("shipping"), "shipping"),
        record(None, "shipping"),
    ]);
    assert!(examples.iter().all(|e| e.label == "shipping"));
    let corrected: Vec<bool> = examples.iter().map(|e| e.corrected).collect();
    assert_eq!(corrected, [true, false, false]);

    let history = generate(2_000, 11);
    let reassigned = history.iter().filter(|t| t.is_correction()).count();
    assert!(
        (120..=280).contains(&reassigned),
        "{reassigned} of 2000 reassigned"
    );
    assert!(history
        .iter()
        .filter(|t| t.is_correction())
        .all(|t| t.first_assigned.as_deref() != Some(t.completed_by.as_str())));
}

#[test]
fn the_generator_is_its_seed() {
    assert_eq!(generate(200, 1), generate(200, 1));
    assert_ne!(generate(200, 1), generate(200, 2));
    let history = generate(3_000, 5);
    let count = |label: &str| history.iter().filter(|t| t.completed_by == label).count();
    assert!(count("support") > 3 * count("security"), "imbalanced");
    let hangul = |t: &&TaskOutcome| {
        t.text
            .chars()
            .any(|c| ('\u{AC00}'..='\u{D7AF}').contains(&c))
    };
    let kana = |t: &&TaskOutcome| {
        t.text
            .chars()
            .any(|c| ('\u{3040}'..='\u{30FF}').contains(&c))
    };
    assert!(history.iter().filter(hangul).count() > 100);
    assert!(history.iter().filter(kana).count() > 80);
}

#[test]
fn fortune_files_are_a_labelled_corpus() {
    let computers = "A computer lets you make more mistakes faster than any invention.\n%\n\
        The program crashed because the compiler had a bug in the kernel.\n%\n\
        There are two hard things in software: cache invalidation and naming.\n%\n\
        Unix is user friendly, it is just picky about its friends and the compiler.\n%\n\
        Debugging a kernel program is twice as hard as writing the software.\n%\n\
        To err is human, to really foul things up you need a computer program.\n%\n";
    let food = "An apple a day keeps the doctor away, and a pie keeps the baker busy.\n%\n\
        Never trust a cook who does not taste the soup or the bread.\n%\r\n\
        \r\n%\n\
        Life is uncertain: eat dessert first, then the cake and the pie.\n%\n\
        Cheese and wine and bread make a fine dinner for the cook.\n%\n\
        The soup of the day is the cook's secret and the baker's bread.\n%\n\
        Too many cooks spoil the soup, but a good dessert saves the dinner.";
    let files = vec![
        ("computers".to_string(), computers.to_string()),
        ("food".to_string(), food.to_string()),
    ];
    let examples = read_fortunes(&files);
    assert_eq!(
        examples.len(),
        12,
        "blank entries are skipped, the last needs no %"
    );
    assert_eq!(examples[6].label, "food");
    assert!(examples[7].sample.text.starts_with("Never trust"));
    assert!(!examples[7].sample.text.contains('\r'));

    let options = EvalOptions {
        test_fraction: 0.34,
        ..EvalOptions::default()
    };
    let report = evaluate(&examples, &options).expect("evaluates");
    assert_eq!((report.train, report.test), (8, 4));
    assert_eq!(report.labels, ["computers", "food"]);
    assert!(report.model.accuracy >= 0.75, "{}", report.to_markdown());
}

#[test]
fn bad_input_is_a_clear_error() {
    let options = TrainOptions::default();
    assert_eq!(Router::train(&[], &options), Err(RoutingError::NoExamples));
    let one_label = [
        Example::new(Sample::new("printer jam"), "support"),
        Example::new(Sample::new("screen broken"), "support"),
    ];
    assert_eq!(
        Router::train(&one_label, &options),
        Err(RoutingError::SingleLabel {
            label: "support".into()
        })
    );
    let empty_text = [
        Example::new(Sample::new(""), "support"),
        Example::new(Sample::new("  ?! "), "billing"),
    ];
    let err = Router::train(&empty_text, &options).expect_err("empty text");
    assert_eq!(
        err,
        RoutingError::EmptySample {
            what: "every example".into()
        }
    );
    assert!(err.to_string().contains("every example has no features"));
    // One blank task among many is skipped and counted, not fatal to a retrain.
    let mut with_blank = history_examples(200, 4);
    with_blank.push(Example::new(Sample::new("--"), "billing"));
    let router = Router::train(&with_blank, &options).expect("trains");
    assert_eq!((router.trained_on(), router.skipped()), (200, 1));
    // What remains after skipping must still have two labels.
    let one_usable = [
        Example::new(Sample::new("printer jam"), "support"),
        Example::new(Sample::new("?!"), "billing"),
    ];
    assert_eq!(
        Router::train(&one_usable, &options),
        Err(RoutingError::SingleLabel {
            label: "support".into()
        })
    );
    let no_label = [
        Example::new(Sample::new("printer jam"), "support"),
        Example::new(Sample::new("refund"), " "),
    ];
    assert_eq!(
        Router::train(&no_label, &options),
        Err(RoutingError::EmptyLabel { index: 1 })
    );
    let bad_options = TrainOptions {
        max_features: 0,
        ..options
    };
    assert!(matches!(
        Router::train(&history_examples(50, 1), &bad_options),
        Err(RoutingError::InvalidOption(_))
    ));

    let router = Router::train(&history_examples(300, 2), &options).expect("trains");
    assert_eq!(
        router.predict(&Sample::new("")),
        Err(RoutingError::EmptySample {
            what: "the sample".into()
        })
    );
    // Variables alone are enough to route on.
    let by_variables = Sample::new("").with_variables(variables(json!({"locale": "ko"})));
    assert!(router.predict(&by_variables).is_ok());

    assert_eq!(
        evaluate(&[], &EvalOptions::default()).err(),
        Some(RoutingError::NoExamples)
    );
    let singletons = [
        Example::new(Sample::new("printer jam"), "support"),
        Example::new(Sample::new("refund"), "billing"),
    ];
    assert_eq!(
        evaluate(&singletons, &EvalOptions::default()).err(),
        Some(RoutingError::EmptyTestSplit)
    );
    let bad_threshold = EvalOptions {
        threshold: 1.5,
        ..EvalOptions::default()
    };
    assert!(matches!(
        evaluate(&history_examples(50, 1), &bad_threshold),
        Err(RoutingError::InvalidOption(_))
    ));
}
