//! Requirements as a process model writes them: the compact text, the structured list, and
//! the messages deploy shows when one is wrong.

use concord_routing::policy::{parse_requirements, Attributes, Requirement, Strategy};
use serde_json::json;

fn texts(requirements: &[Requirement]) -> Vec<String> {
    requirements.iter().map(Requirement::to_string).collect()
}

fn error(text: &str) -> String {
    match parse_requirements(text) {
        Ok(parsed) => panic!("{text:?} parsed as {parsed:?}"),
        Err(message) => message,
    }
}

#[test]
fn the_compact_form_parses_kinds_alternatives_levels_and_preferences() {
    let parsed = parse_requirements(
        "languages: ko; products: billing|payments; level.support >= 2; certifications: hipaa?",
    )
    .expect("parses");
    assert_eq!(
        texts(&parsed),
        [
            "languages: ko",
            "products: billing|payments",
            "level.support >= 2",
            "certifications: hipaa?"
        ]
    );
    let required: Vec<bool> = parsed.iter().map(Requirement::is_required).collect();
    assert_eq!(required, [true, true, true, false]);
    let kinds: Vec<String> = parsed.iter().map(Requirement::kind).collect();
    assert_eq!(
        kinds,
        ["languages", "products", "level.support", "certifications"]
    );

    // The display form reads back as the same requirements.
    let again = parse_requirements(&texts(&parsed).join("; ")).expect("round trip");
    assert_eq!(again, parsed);

    // A comma means both; '?' applies to its own item; spacing and a trailing ';' are fine.
    let parsed = parse_requirements("  languages : ko ,en? ;level.support>=3 ? ;").expect("parses");
    assert_eq!(
        texts(&parsed),
        ["languages: ko", "languages: en?", "level.support >= 3?"]
    );

    assert_eq!(parse_requirements("").expect("empty"), []);
    assert_eq!(parse_requirements(" ; ").expect("blank clauses"), []);
}

#[test]
fn matching_is_case_insensitive_on_both_sides() {
    let parsed = parse_requirements("Languages: KO|Ja; Level.Support >= 2").expect("parses");
    assert_eq!(texts(&parsed), ["languages: KO|Ja", "level.support >= 2"]);
    let person = Attributes::new()
        .with_skill("LANGUAGES", " ja ")
        .with_level("SUPPORT", 2);
    assert!(parsed.iter().all(|r| r.is_met_by(&person)));
    assert!(person.has_skill("languages", "JA"));
    assert_eq!(person.level("Support"), Some(2));
    let junior = Attributes::new()
        .with_skill("languages", "ko")
        .with_level("support", 1);
    assert!(parsed[0].is_met_by(&junior));
    assert!(!parsed[1].is_met_by(&junior));
    assert!(
        !parsed[1].is_met_by(&Attributes::new()),
        "no level is not level 0"
    );
}

#[test]
fn a_wrong_requirement_is_refused_with_a_message_that_points_at_it() {
    const LEVEL_FORM: &str = "a level is written \"level.name >= n\", e.g. \"level.support >= 2\"";
    assert_eq!(
        error("products billing"),
        "requirement 1 (\"products billing\"): expected \"kind: value\" (e.g. \"languages: ko\") \
         or \"level.name >= n\" (e.g. \"level.support >= 2\")"
    );
    assert_eq!(
        error("languages: ko; ; products billing"),
        "requirement 3 (\"products billing\"): expected \"kind: value\" (e.g. \"languages: ko\") \
         or \"level.name >= n\" (e.g. \"level.support >= 2\")"
    );
    assert_eq!(
        error("languages:"),
        "requirement 1 (\"languages:\"): \"languages\" needs a value after the colon"
    );
    assert_eq!(
        error("languages: ko; products: a||b"),
        "requirement 2 (\"products: a||b\"): \"a||b\" has an empty alternative around '|'"
    );
    assert_eq!(
        error("languages: ko,, en"),
        "requirement 1 (\"languages: ko,, en\"): \"languages\" has an empty value"
    );
    assert_eq!(
        error("languages: ko?|ja"),
        "requirement 1 (\"languages: ko?|ja\"): a '?' marks a whole item as preferred and goes \
         at its end"
    );
    assert_eq!(
        error("lang uages: ko"),
        "requirement 1 (\"lang uages: ko\"): \"lang uages\" is not a kind (use letters, digits, \
         '_' and '-')"
    );
    assert_eq!(
        error("level.support > 2"),
        format!("requirement 1 (\"level.support > 2\"): {LEVEL_FORM}")
    );
    assert_eq!(
        error("level: 2"),
        format!("requirement 1 (\"level: 2\"): {LEVEL_FORM}")
    );
    assert_eq!(
        error("level. >= 2"),
        format!("requirement 1 (\"level. >= 2\"): {LEVEL_FORM}")
    );
    assert_eq!(
        error("level.support >= two"),
        format!(
            "requirement 1 (\"level.support >= two\"): \"two\" is not a whole number; {LEVEL_FORM}"
        )
    );

    assert_eq!(
        Requirement::skill("products", ["billing; payments"])
            .err()
            .as_deref(),
        Some("the value \"billing; payments\" may not contain ';'")
    );
    assert_eq!(
        Requirement::skill("products", Vec::<String>::new())
            .err()
            .as_deref(),
        Some("\"products\" needs at least one value")
    );
}

#[test]
fn yaml_models_may_write_requirements_as_a_list_of_strings_and_maps() {
    let listed: Strategy = serde_json::from_value(json!({
        "strategy": "skills",
        "requirements": [
            "languages: ko; products: billing|payments",
            {"kind": "certifications", "any_of": ["HIPAA", "soc2"], "required": false},
            {"level": "support", "at_least": 2}
        ]
    }))
    .expect("parses");
    let Strategy::Skills { requirements } = &listed else {
        panic!("{listed:?}");
    };
    assert_eq!(
        texts(requirements),
        [
            "languages: ko",
            "products: billing|payments",
            "certifications: HIPAA|soc2?",
            "level.support >= 2"
        ]
    );

    // The compact string works in the same place, and serialising gives the list of maps.
    let compact: Strategy = serde_json::from_value(json!({
        "strategy": "skills",
        "requirements": "languages: ko; products: billing|payments; certifications: HIPAA|soc2?; level.support >= 2"
    }))
    .expect("parses");
    assert_eq!(compact, listed);
    let written = serde_json::to_value(&compact).expect("serialises");
    assert_eq!(
        written["requirements"][2],
        json!({"kind": "certifications", "any_of": ["HIPAA", "soc2"], "required": false})
    );
    assert_eq!(
        written["requirements"][3],
        json!({"level": "support", "at_least": 2, "required": true})
    );
    let back: Strategy = serde_json::from_value(written).expect("reads back");
    assert_eq!(back, compact);

    let refused = |value: serde_json::Value| -> String {
        match serde_json::from_value::<Strategy>(
            json!({"strategy": "skills", "requirements": value}),
        ) {
            Ok(parsed) => panic!("accepted {parsed:?}"),
            Err(e) => e.to_string(),
        }
    };
    assert!(refused(json!("languages ko")).contains("requirement 1 (\"languages ko\")"));
    assert!(refused(json!([{"kind": "languages", "anyof": ["ko"]}]))
        .contains("unknown requirement field \"anyof\""));
    assert!(
        refused(json!([{"kind": "languages", "any_of": ["ko"], "at_least": 2}]))
            .contains("a requirement is {kind, any_of} or {level, at_least}")
    );
    assert!(refused(json!([{"level": "support level", "at_least": 2}]))
        .contains("\"support level\" is not a level name"));
    assert!(refused(json!([{"kind": "languages", "any_of": []}]))
        .contains("\"languages\" needs at least one value"));

    // A single requirement is one clause, not several.
    let one: Requirement = serde_json::from_value(json!("languages: ko?")).expect("one clause");
    assert!(!one.is_required());
    let several = serde_json::from_value::<Requirement>(json!("languages: ko; products: billing"));
    assert!(several.is_err_and(|e| e.to_string().contains("exactly one requirement")));
}
