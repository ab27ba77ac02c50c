//! Decision tables: the DMN specification's examples under each hit policy, every unary test
//! form, CEL cells, compile problems, a table's own tests, and the three source forms (DMN XML
//! as dmn-js saves it, YAML, CSV) deciding alike.

use concord_workflow::decision::{
    self, dmn, table, Aggregation, CompiledTable, DecisionFormat, DecisionTable, HitPolicy,
    InputClause, OutputClause, Rule,
};
use concord_workflow::problem::Problem;
use serde_json::{json, Map, Value};

fn vars(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn yaml(text: &str) -> CompiledTable {
    match table::parse_yaml(text) {
        Ok(t) => t.compile().expect("compiles"),
        Err(e) => panic!("{e}"),
    }
}

fn decide(t: &CompiledTable, input: Value) -> Value {
    match t.evaluate(&vars(input)) {
        Ok(e) => e.result,
        Err(e) => panic!("{e}"),
    }
}

/// The problem whose message contains `needle`.
fn problem<'a>(problems: &'a [Problem], needle: &str) -> &'a Problem {
    problems
        .iter()
        .find(|p| p.message.contains(needle))
        .unwrap_or_else(|| panic!("no problem mentions {needle:?}: {problems:#?}"))
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> u32 {
    text.lines().position(|l| l.contains(needle)).unwrap() as u32 + 1
}

/// DMN 1.3 specification, 8.2 (hit policy examples): "Applicant Risk Rating", hit policy U.
const APPLICANT_RISK_RATING: &str = r#"
decision: applicant_risk_rating
name: Applicant Risk Rating
hit_policy: unique
inputs:
  - { label: Applicant Age, expression: applicant.age, type: number }
  - { label: Medical History, expression: applicant.medicalHistory, type: string }
outputs:
  - { name: rating, label: Applicant Risk Rating, values: ['"High"', '"Medium"', '"Low"'] }
rules:
  - ['> 60', '"good"', '"Medium"']
  - ['> 60', '"bad"', '"High"']
  - ['[25..60]', '-', '"Medium"']
  - ['< 25', '"good"', '"Low"']
  - ['< 25', '"bad"', '"Medium"']
"#;

#[test]
fn applicant_risk_rating_is_unique() {
    let t = yaml(APPLICANT_RISK_RATING);
    let rate = |age: i64, history: &str| {
        decide(
            &t,
            json!({"applicant": {"age": age, "medicalHistory": history}}),
        )
    };
    assert_eq!(rate(65, "good"), json!("Medium"));
    assert_eq!(rate(65, "bad"), json!("High"));
    assert_eq!(rate(25, "bad"), json!("Medium"));
    assert_eq!(rate(60, "good"), json!("Medium"));
    assert_eq!(rate(20, "good"), json!("Low"));
    assert_eq!(rate(20, "bad"), json!("Medium"));
    // No rule covers an unknown history for the young: nothing matches, the result is null.
    assert_eq!(rate(20, "unknown"), Value::Null);
    let e = t
        .evaluate(&vars(
            json!({"applicant": {"age": 65.0, "medicalHistory": "bad"}}),
        ))
        .unwrap();
    assert_eq!(e.matched.len(), 1);
    assert_eq!(e.matched[0].index, 2);
    assert_eq!(
        e.matched[0].why,
        vec![
            "Applicant Age = 65.0 matches > 60",
            "Medical History = \"bad\" matches \"bad\""
        ]
    );
    assert_eq!(e.inputs["Applicant Age"], json!(65.0));
}

#[test]
fn unique_with_two_matches_is_an_error_naming_both() {
    let t = yaml(
        r#"
decision: overlap
inputs: [amount]
outputs: [band]
rules:
  - ['>= 100', '"big"']
  - { when: ['[50..150]'], then: ['"middle"'], id: middle }
  - ['< 50', '"small"']
"#,
    );
    assert_eq!(decide(&t, json!({"amount": 70})), json!("middle"));
    let err = t.evaluate(&vars(json!({"amount": 120}))).unwrap_err();
    assert_eq!(err.decision, "overlap");
    assert!(
        err.message.contains("rule 1 (rule1) and rule 2 (middle)"),
        "{}",
        err.message
    );
    assert!(err.message.contains("unique"), "{}", err.message);
}

/// DMN 1.3 specification, 8.2: the "Holidays" collect example, as remembered: everyone gets
/// 22 days; 5 extra under 18 or from 60; 5 extra from 30 years of service; 3 extra from 60 or
/// from 30 years of service; 2 extra between 18 and 60 with 15 to 30 years of service.
fn holidays(aggregation: Option<&str>) -> CompiledTable {
    let aggregation = aggregation
        .map(|a| format!("aggregation: {a}\n"))
        .unwrap_or_default();
    yaml(&format!(
        r#"
decision: holidays
hit_policy: collect
{aggregation}inputs:
  - {{ label: Age, expression: age }}
  - {{ label: Years of Service, expression: service }}
outputs: [holidays]
rules:
  - ['-', '-', 22]
  - ['< 18', '-', 5]
  - ['>= 60', '-', 5]
  - ['-', '>= 30', 5]
  - ['>= 60', '-', 3]
  - ['-', '>= 30', 3]
  - ['[18..60)', '[15..30)', 2]
"#
    ))
}

#[test]
fn holidays_collect_lists_and_aggregates_every_match() {
    let list = holidays(None);
    assert_eq!(
        decide(&list, json!({"age": 65, "service": 35})),
        json!([22, 5, 5, 3, 3])
    );
    assert_eq!(decide(&list, json!({"age": 30, "service": 5})), json!([22]));

    // Like Camunda: all matched values, not the distinct ones.
    let sum = holidays(Some("sum"));
    assert_eq!(decide(&sum, json!({"age": 16, "service": 1})), json!(27));
    assert_eq!(decide(&sum, json!({"age": 65, "service": 35})), json!(38));
    assert_eq!(decide(&sum, json!({"age": 30, "service": 20})), json!(24));
    assert_eq!(decide(&sum, json!({"age": 60, "service": 20})), json!(30));

    let count = holidays(Some("count"));
    assert_eq!(decide(&count, json!({"age": 65, "service": 35})), json!(5));
    let min = holidays(Some("min"));
    assert_eq!(decide(&min, json!({"age": 65, "service": 35})), json!(3));
    let max = holidays(Some("max"));
    assert_eq!(decide(&max, json!({"age": 65, "service": 35})), json!(22));
}

#[test]
fn collect_of_nothing_is_an_empty_list_zero_or_null() {
    // The extra days alone, taken as the largest (the spec's way of not adding 5 and 3).
    let extra = |aggregation: &str| {
        yaml(&format!(
            r#"
decision: extra_days
hit_policy: collect
aggregation: {aggregation}
inputs: [age, service]
outputs: [days]
rules:
  - ['< 18', '-', 5]
  - ['>= 60', '-', 5]
  - ['-', '>= 30', 5]
  - ['>= 60', '-', 3]
  - ['-', '>= 30', 3]
  - ['[18..60)', '[15..30)', 2.5]
"#
        ))
    };
    let young = json!({"age": 30, "service": 1});
    assert_eq!(
        decide(&extra("max"), json!({"age": 65, "service": 35})),
        json!(5)
    );
    assert_eq!(decide(&extra("max"), young.clone()), Value::Null);
    assert_eq!(decide(&extra("min"), young.clone()), Value::Null);
    assert_eq!(decide(&extra("sum"), young.clone()), json!(0));
    assert_eq!(decide(&extra("count"), young), json!(0));
    assert_eq!(
        decide(&extra("sum"), json!({"age": 40, "service": 20})),
        json!(2.5)
    );

    let t = yaml(
        r#"
decision: labels
hit_policy: collect
aggregation: sum
inputs: [x]
outputs: [v]
rules:
  - ['> 0', 1]
  - ['> 5', '"many"']
"#,
    );
    assert_eq!(decide(&t, json!({"x": 3})), json!(1));
    let err = t.evaluate(&vars(json!({"x": 9}))).unwrap_err();
    assert!(err.message.contains("rule 2 (rule2)"), "{}", err.message);
    assert!(err.message.contains("sum needs numbers"), "{}", err.message);
}

/// DMN 1.3 specification, 8.2: "Routing rules" (the lending example's routing table), hit
/// policies P and O, the outputs' value lists giving the order.
fn routing(policy: &str) -> String {
    format!(
        r#"
decision: routing
name: Routing rules
hit_policy: {policy}
inputs:
  - {{ label: Age, expression: applicant.age, type: number }}
  - {{ label: Risk category, expression: riskCategory, type: string }}
  - {{ label: Debt review, expression: debtReview, type: boolean }}
outputs:
  - {{ name: routing, label: Routing, values: ['"DECLINE"', '"REFER"', '"ACCEPT"'] }}
  - {{ name: reviewLevel, label: Review level, values: ['"LEVEL 2"', '"LEVEL 1"', '"NONE"'] }}
  - {{ name: reason, label: Reason }}
rules:
  - ['-', '-', '-', '"ACCEPT"', '"NONE"', '"Acceptable"']
  - ['< 18', '-', '-', '"DECLINE"', '"NONE"', '"Applicant too young"']
  - ['-', '"HIGH"', '-', '"REFER"', '"LEVEL 1"', '"High risk application"']
  - ['-', '-', true, '"REFER"', '"LEVEL 2"', '"Applicant under debt review"']
"#
    )
}

#[test]
fn routing_rules_priority_and_output_order() {
    let priority = yaml(&routing("priority"));
    let applicant = |age: i64, risk: &str, debt: bool| json!({"applicant": {"age": age}, "riskCategory": risk, "debtReview": debt});
    assert_eq!(
        decide(&priority, applicant(17, "HIGH", true)),
        json!({"routing": "DECLINE", "reviewLevel": "NONE", "reason": "Applicant too young"})
    );
    // Two REFERs: LEVEL 2 comes first in the second output's list.
    let e = priority
        .evaluate(&vars(applicant(30, "HIGH", true)))
        .unwrap();
    assert_eq!(e.result["reason"], json!("Applicant under debt review"));
    assert_eq!(e.chosen, Some(4));
    assert_eq!(
        e.matched.iter().map(|m| m.index).collect::<Vec<_>>(),
        vec![1, 3, 4]
    );
    assert_eq!(
        decide(&priority, applicant(30, "LOW", false))["routing"],
        json!("ACCEPT")
    );

    let ordered = yaml(&routing("output_order"));
    let reasons: Vec<Value> = decide(&ordered, applicant(17, "HIGH", true))
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].clone())
        .collect();
    assert_eq!(
        reasons,
        vec![
            json!("Applicant too young"),
            json!("Applicant under debt review"),
            json!("High risk application"),
            json!("Acceptable")
        ]
    );
}

/// DMN 1.3 specification, 11 (the lending example): "Pre-bureau risk category table", hit
/// policy U, with half-open intervals.
#[test]
fn pre_bureau_risk_category_uses_intervals() {
    let t = yaml(
        r#"
decision: pre_bureau_risk_category
hit_policy: unique
inputs:
  - { label: Existing Customer, expression: existingCustomer, type: boolean }
  - { label: Application Risk Score, expression: score, type: number }
outputs: [category]
rules:
  - [false, '< 100', '"HIGH"']
  - [false, '[100..120)', '"MEDIUM"']
  - [false, '[120..130]', '"LOW"']
  - [false, '> 130', '"VERY LOW"']
  - [true, '< 80', '"DECLINE"']
  - [true, '[80..90)', '"HIGH"']
  - [true, '[90..110]', '"MEDIUM"']
  - [true, '> 110', '"LOW"']
"#,
    );
    let cases = [
        (false, 99.5, "HIGH"),
        (false, 100.0, "MEDIUM"),
        (false, 119.9, "MEDIUM"),
        (false, 120.0, "LOW"),
        (false, 130.0, "LOW"),
        (false, 131.0, "VERY LOW"),
        (true, 79.0, "DECLINE"),
        (true, 80.0, "HIGH"),
        (true, 90.0, "MEDIUM"),
        (true, 110.0, "MEDIUM"),
        (true, 110.5, "LOW"),
    ];
    for (existing, score, category) in cases {
        assert_eq!(
            decide(&t, json!({"existingCustomer": existing, "score": score})),
            json!(category),
            "existing {existing}, score {score}"
        );
    }
}

/// DMN 1.3 specification, 8.2: "Special Discount" (rules as columns in the spec), hit
/// policy A: overlapping rules give the same discount.
fn special_discount(policy: &str, non_us_discount: &str) -> CompiledTable {
    yaml(&format!(
        r#"
decision: special_discount
hit_policy: {policy}
inputs:
  - {{ label: Type of Order, expression: order.type }}
  - {{ label: Customer Location, expression: customer.location }}
  - {{ label: Type of Customer, expression: customer.type }}
outputs: [discount]
rules:
  - ['"Web"', '"US"', '"Wholesaler"', 10]
  - ['"Phone"', '-', '-', 0]
  - ['-', '"Non-US"', '-', {non_us_discount}]
  - ['"Web"', '"US"', '"Retailer"', 5]
"#
    ))
}

fn order(kind: &str, location: &str, customer: &str) -> Value {
    json!({"order": {"type": kind}, "customer": {"location": location, "type": customer}})
}

#[test]
fn special_discount_any_and_first() {
    let any = special_discount("any", "0");
    assert_eq!(decide(&any, order("Web", "US", "Wholesaler")), json!(10));
    assert_eq!(decide(&any, order("Web", "US", "Retailer")), json!(5));
    let e = any
        .evaluate(&vars(order("Phone", "Non-US", "Retailer")))
        .unwrap();
    assert_eq!(e.result, json!(0));
    assert_eq!(e.matched.len(), 2);
    assert_eq!(e.chosen, Some(2));

    // A table whose overlapping rules disagree is an error under any…
    let differing = special_discount("any", "1");
    let err = differing
        .evaluate(&vars(order("Phone", "Non-US", "Retailer")))
        .unwrap_err();
    assert!(
        err.message.contains("rule 2 (rule2) and rule 3 (rule3)"),
        "{}",
        err.message
    );
    assert!(err.message.contains("different outputs"), "{}", err.message);
    // …and takes the first under first.
    let first = special_discount("first", "1");
    let e = first
        .evaluate(&vars(order("Phone", "Non-US", "Retailer")))
        .unwrap();
    assert_eq!(e.result, json!(0));
    assert_eq!(e.chosen, Some(2));
    assert_eq!(decide(&first, order("Web", "Non-US", "Retailer")), json!(1));
}

/// DMN 1.3 specification, 8.2: "Student Financial Package Eligibility", hit policy R (and C).
fn student_package(policy: &str) -> CompiledTable {
    yaml(&format!(
        r#"
decision: student_financial_package
hit_policy: {policy}
inputs:
  - {{ label: Student GPA, expression: gpa }}
  - {{ label: Student Extra-Curricular Activities Count, expression: activities }}
  - {{ label: Student National Honor Society Membership, expression: honorSociety }}
outputs: [eligibility]
rules:
  - ['> 3.5', '>= 4', '"Yes"', '"20% Scholarship"']
  - ['> 3.0', '-', '"Yes"', '"30% Loan"']
  - ['> 3.0', '>= 2', '"No"', '"20% Work-On-Campus"']
  - ['<= 3.0', '-', '-', '"5% Work-On-Campus"']
"#
    ))
}

#[test]
fn student_financial_package_rule_order_and_collect() {
    for policy in ["rule_order", "collect"] {
        let t = student_package(policy);
        assert_eq!(
            decide(
                &t,
                json!({"gpa": 3.6, "activities": 4, "honorSociety": "Yes"})
            ),
            json!(["20% Scholarship", "30% Loan"])
        );
        assert_eq!(
            decide(
                &t,
                json!({"gpa": 3.2, "activities": 2, "honorSociety": "No"})
            ),
            json!(["20% Work-On-Campus"])
        );
        assert_eq!(
            decide(
                &t,
                json!({"gpa": 3, "activities": 9, "honorSociety": "Yes"})
            ),
            json!(["5% Work-On-Campus"])
        );
        assert_eq!(
            decide(
                &t,
                json!({"gpa": 3.2, "activities": 1, "honorSociety": "No"})
            ),
            json!([])
        );
    }
}

/// A one-input table with `cell` as its only rule: whether `input` matches it (`variables`
/// beside).
fn cell_matches(cell: &str, input: Value, variables: Value) -> bool {
    let table = DecisionTable {
        id: "cell".into(),
        name: None,
        hit_policy: HitPolicy::First,
        aggregation: None,
        inputs: vec![InputClause {
            id: "in".into(),
            label: Some("X".into()),
            expression: "x".into(),
            type_ref: None,
        }],
        outputs: vec![OutputClause {
            id: "out".into(),
            name: "hit".into(),
            label: None,
            type_ref: None,
            values: vec![],
        }],
        rules: vec![Rule {
            id: "r".into(),
            description: None,
            inputs: vec![cell.into()],
            outputs: vec!["true".into()],
        }],
        tests: vec![],
    };
    let compiled = table.compile().unwrap_or_else(|e| panic!("{cell:?}: {e}"));
    let mut vars = vars(variables);
    vars.insert("x".into(), input);
    match compiled.evaluate(&vars) {
        Ok(e) => e.result == json!(true),
        Err(e) => panic!("{cell:?}: {e}"),
    }
}

#[test]
fn every_unary_test_form() {
    let yes = |cell: &str, input: Value| {
        assert!(
            cell_matches(cell, input.clone(), json!({})),
            "{cell} should match {input}"
        )
    };
    let no = |cell: &str, input: Value| {
        assert!(
            !cell_matches(cell, input.clone(), json!({})),
            "{cell} should not match {input}"
        )
    };

    // Any value.
    for cell in ["", "-", "  -  "] {
        yes(cell, json!(null));
        yes(cell, json!("anything"));
    }
    // Literals: numbers numerically, strings, booleans, null.
    yes("1", json!(1.0));
    yes("1.0", json!(1));
    yes("-2.5", json!(-2.5));
    yes("1e3", json!(1000));
    no("1", json!("1"));
    yes("\"gold\"", json!("gold"));
    no("\"gold\"", json!("Gold"));
    yes(r#""say \"hi\"""#, json!("say \"hi\""));
    yes("true", json!(true));
    no("true", json!(false));
    no("true", json!("true"));
    yes("null", json!(null));
    no("null", json!(0));
    // Lists: any one.
    yes(r#""gold","silver""#, json!("silver"));
    no(r#""gold","silver""#, json!("bronze"));
    yes("1, 2, >= 10", json!(12));
    // Comparisons.
    yes("< 10", json!(9.99));
    no("< 10", json!(10));
    yes("<= 10", json!(10));
    yes("> -1", json!(0));
    no("> 10", json!(10));
    yes(">= 10", json!(10));
    yes(r#"< "m""#, json!("apple"));
    // Intervals, every kind of end.
    yes("[1..10]", json!(1));
    yes("[1..10]", json!(10));
    no("(1..10)", json!(1));
    no("(1..10)", json!(10));
    yes("(1..10)", json!(5));
    no("]1..10[", json!(1));
    no("]1..10[", json!(10));
    yes("[1..10)", json!(1));
    no("[1..10)", json!(10));
    yes("(1..10]", json!(10));
    yes("]1..10]", json!(10));
    no("[1..10[", json!(10));
    yes("[-5..-1]", json!(-3));
    // not(list).
    no(r#"not("gold","silver")"#, json!("gold"));
    yes(r#"not("gold","silver")"#, json!("bronze"));
    yes("not(< 5)", json!(5));
    yes("not( [1..3] , 7 )", json!(4));
    no("not([1..3], 7)", json!(7));
    // Dates and date-times, against input strings that parse as such.
    yes(r#"date("2024-01-31")"#, json!("2024-01-31"));
    no(r#"date("2024-01-31")"#, json!("2024-02-01"));
    yes(r#">= date("2024-01-01")"#, json!("2024-06-30"));
    yes(
        r#"[date("2024-01-01")..date("2024-12-31")]"#,
        json!("2024-12-31"),
    );
    no(
        r#"[date("2024-01-01")..date("2024-12-31")]"#,
        json!("2025-01-01"),
    );
    no(r#"date("2024-01-31")"#, json!("not a date"));
    yes(
        r#"date and time("2024-01-31T10:00:00")"#,
        json!("2024-01-31T10:00:00"),
    );
    yes(
        r#"date and time("2024-01-31T10:00:00Z")"#,
        json!("2024-01-31T12:00:00+02:00"),
    );
    yes(
        r#"< date and time("2024-01-31T10:00:00")"#,
        json!("2024-01-31T09:59:59.5"),
    );
    yes(r#"@"2024-01-31""#, json!("2024-01-31"));
    // Different types simply do not match.
    no("< 10", json!("5"));
    no(r#""5""#, json!(5));
    no("[1..10]", json!(null));
    no(r#"date("2024-01-31")"#, json!(20240131));
    no("> true", json!(true));
}

#[test]
fn endpoints_may_be_variables() {
    let env = json!({"limit": 100, "customer": {"tier": "gold", "max": 500}, "names": ["a"]});
    assert!(cell_matches("limit", json!(100.0), env.clone()));
    assert!(cell_matches(">= limit", json!(150), env.clone()));
    assert!(!cell_matches("< limit", json!(150), env.clone()));
    assert!(cell_matches("customer.tier", json!("gold"), env.clone()));
    assert!(cell_matches(
        "[limit..customer.max]",
        json!(500),
        env.clone()
    ));
    assert!(!cell_matches(
        "(limit..customer.max)",
        json!(500),
        env.clone()
    ));
    assert!(cell_matches(r#"not(limit, "x")"#, json!(7), env.clone()));
    assert!(cell_matches("names", json!(["a"]), env.clone()));
    // A name that is not set is an error, not a silent miss: it is usually a string missing
    // its quotes.
    let t = yaml(
        r#"
decision: tiers
inputs: [tier]
outputs: [discount]
rules:
  - [gold, 0.1]
"#,
    );
    let err = t.evaluate(&vars(json!({"tier": "gold"}))).unwrap_err();
    assert!(err.message.contains("rule 1 (rule1)"), "{}", err.message);
    assert!(
        err.message.contains("variable gold is not set"),
        "{}",
        err.message
    );
}

#[test]
fn an_input_left_out_is_null_and_only_any_or_null_match_it() {
    let t = yaml(
        r#"
decision: route
hit_policy: first
inputs: [amount, customer.tier]
outputs: [queue]
rules:
  - ['> 100', '-', '"big"']
  - ['-', '"gold"', '"gold"']
  - ['null', '-', '"no amount"']
  - ['-', '-', '"other"']
"#,
    );
    let d = t.evaluate(&vars(json!({}))).unwrap();
    assert_eq!(d.result, json!("no amount"));
    let d = t
        .evaluate(&vars(json!({"amount": 5, "customer": {}})))
        .unwrap();
    assert_eq!(d.result, json!("other"));
    let d = t
        .evaluate(&vars(json!({"amount": 5, "customer": {"tier": "gold"}})))
        .unwrap();
    assert_eq!(d.result, json!("gold"));
    // A field asked of a value that is not an object is an error, not a silent null.
    let err = t
        .evaluate(&vars(json!({"amount": 5, "customer": "gold"})))
        .unwrap_err();
    assert!(err.message.contains("customer.tier"), "{}", err.message);
}

#[test]
fn cel_cells_use_question_mark_for_the_input() {
    let env = json!({"limit": 10});
    // A boolean decides.
    assert!(cell_matches("? > 5", json!(6), json!({})));
    assert!(!cell_matches("? > 5", json!(5), json!({})));
    assert!(cell_matches("? > 5.5", json!(6), json!({})));
    assert!(cell_matches("size(?) > 2", json!("abc"), json!({})));
    assert!(cell_matches(r#"? in ["a", "b"]"#, json!("b"), json!({})));
    assert!(cell_matches("? > limit", json!(11), env.clone()));
    assert!(!cell_matches("? > limit", json!(10), env.clone()));
    assert!(cell_matches("?.startsWith('ab')", json!("abc"), json!({})));
    // `?` inside a string is text; CEL's own `a ? b : c` keeps its meaning.
    assert!(cell_matches(r#"? == "why?""#, json!("why?"), json!({})));
    assert!(cell_matches("? > 5 ? true : false", json!(6), json!({})));
    assert!(!cell_matches("? > 5 ? true : false", json!(1), json!({})));
    // A condition on other variables, without `?`.
    assert!(cell_matches("limit == 10", json!("whatever"), env.clone()));
    // Any other value is compared with the input.
    assert!(cell_matches("'gold'", json!("gold"), json!({})));
    assert!(cell_matches("limit * 2", json!(20), env.clone()));
    assert!(cell_matches("[1, 2]", json!([1, 2]), json!({})));
    assert!(!cell_matches("limit * 2", json!(21), env));
    // A CEL error names the rule, the column and the cell.
    let t = yaml(
        r#"
decision: cel_error
inputs: [{ label: Amount, expression: amount }]
outputs: [ok]
rules:
  - ['? > 5', true]
"#,
    );
    let err = t.evaluate(&vars(json!({"amount": "text"}))).unwrap_err();
    assert!(
        err.message
            .contains(r#"rule 1 (rule1), input "Amount": "? > 5""#),
        "{}",
        err.message
    );
}

#[test]
fn outputs_are_cel_expressions() {
    let t = yaml(
        r#"
decision: quote
hit_policy: first
inputs: [amount]
outputs: [total, note]
rules:
  - ['> 100', 'double(amount) * 0.9', '"discounted " + string(amount)']
  - ['-', amount, '']
"#,
    );
    assert_eq!(
        decide(&t, json!({"amount": 200})),
        json!({"total": 180.0, "note": "discounted 200"})
    );
    assert_eq!(
        decide(&t, json!({"amount": 50})),
        json!({"total": 50, "note": null})
    );
}

#[test]
fn inputs_are_cel_expressions_and_failures_are_errors() {
    let t = yaml(
        r#"
decision: computed
hit_policy: first
inputs:
  - { label: Total, expression: 'items.map(i, i.price).sum()' }
  - customer.tier
outputs: [band]
rules:
  - ['>= 100', '-', '"big"']
  - ['-', '"gold"', '"gold"']
  - ['-', '-', '"small"']
"#,
    );
    let err = t
        .evaluate(&vars(json!({"items": [], "customer": {"tier": "x"}})))
        .unwrap_err();
    // `sum` is no CEL function: the input fails, naming its label and expression.
    assert!(err.message.contains("input \"Total\""), "{}", err.message);

    let t = yaml(
        r#"
decision: computed
hit_policy: first
inputs:
  - { label: Count, expression: 'size(items)' }
  - customer.tier
outputs: [band]
rules:
  - ['>= 3', '-', '"big"']
  - ['-', '"gold"', '"gold"']
  - ['-', '-', '"small"']
"#,
    );
    assert_eq!(
        decide(&t, json!({"items": [1, 2, 3], "customer": {"tier": "x"}})),
        json!("big")
    );
    assert_eq!(
        decide(&t, json!({"items": [], "customer": {"tier": "gold"}})),
        json!("gold")
    );
    // A field the variables do not have is null; a field of something that is not an object
    // is an error naming the input.
    assert_eq!(
        decide(&t, json!({"items": [], "customer": {}})),
        json!("small")
    );
    let err = t
        .evaluate(&vars(json!({"items": [], "customer": "gold"})))
        .unwrap_err();
    assert!(
        err.message.contains("input \"customer.tier\""),
        "{}",
        err.message
    );
    let err = t.evaluate(&vars(json!({"customer": {}}))).unwrap_err();
    assert!(err.message.contains("input \"Count\""), "{}", err.message);
}

#[test]
fn oversized_input_is_an_error_not_a_panic() {
    let t = yaml(
        r#"
decision: deep
inputs: ['size(data) > 0']
outputs: [ok]
rules:
  - [true, true]
"#,
    );
    let mut deep = json!(1);
    for _ in 0..40 {
        deep = json!([deep]);
    }
    let err = t.evaluate(&vars(json!({"data": deep}))).unwrap_err();
    assert!(err.message.contains("deeper"), "{}", err.message);
}

#[test]
fn compile_problems_name_rule_and_column() {
    let text = r#"
decision: broken
hit_policy: first
aggregation: sum
inputs:
  - { label: Amount, expression: amount }
  - tier
outputs: [discount]
rules:
  - ['>= 10', '"gold"', 0.1]
  - ['[1..', '"gold"', 0.2]
  - { when: ['> 1'], then: [0.3] }
  - ['-', 'date("2024-02-30")', 0.4]
  - ['-', '-', '0.5 +']
  - ['-', '-']
"#;
    let problems = table::parse_yaml(text).unwrap_err().0;
    let bad_cell = problem(&problems, "rule 2 (rule2), input \"Amount\"");
    assert_eq!(bad_cell.element.as_deref(), Some("rule2"));
    assert_eq!(bad_cell.line, Some(line_of(text, "'[1..'")));
    assert!(bad_cell
        .message
        .contains("neither a simple unary test nor a CEL expression"));

    let count = problem(&problems, "rule 3 (rule3) has 1 input cell(s)");
    assert_eq!(count.element.as_deref(), Some("rule3"));
    assert_eq!(count.line, Some(line_of(text, "when: ['> 1']")));

    let date = problem(&problems, "rule 4 (rule4), input \"tier\"");
    assert!(date.message.contains("is not a date"), "{}", date.message);

    let output = problem(&problems, "rule 5 (rule5), output \"discount\"");
    assert_eq!(output.element.as_deref(), Some("rule5"));

    let row = problem(&problems, "rule 6 has 2 cells");
    assert_eq!(row.line, Some(line_of(text, "['-', '-']")));

    let aggregation = problem(&problems, "aggregation sum needs hit policy collect");
    assert_eq!(aggregation.element.as_deref(), Some("broken"));
    assert_eq!(problems.len(), 6, "{problems:#?}");
}

#[test]
fn compile_problems_of_the_table_itself() {
    let base = || DecisionTable {
        id: "t".into(),
        name: None,
        hit_policy: HitPolicy::Priority,
        aggregation: None,
        inputs: vec![InputClause {
            id: "in".into(),
            label: None,
            expression: "x".into(),
            type_ref: None,
        }],
        outputs: vec![OutputClause {
            id: "out".into(),
            name: "y".into(),
            label: None,
            type_ref: None,
            values: vec![],
        }],
        rules: vec![Rule {
            id: "r".into(),
            description: None,
            inputs: vec!["-".into()],
            outputs: vec!["1".into()],
        }],
        tests: vec![],
    };
    let problems = base().compile().unwrap_err().0;
    let p = problem(
        &problems,
        "hit policy priority ranks rules by the outputs' value lists",
    );
    assert_eq!(p.element.as_deref(), Some("t"));

    let mut t = base();
    t.hit_policy = HitPolicy::Collect;
    t.aggregation = Some(Aggregation::Sum);
    t.outputs.push(OutputClause {
        id: "out2".into(),
        name: "y".into(),
        label: None,
        type_ref: None,
        values: vec![],
    });
    t.rules[0].outputs.push("2".into());
    t.inputs[0].expression = "x +".into();
    let problems = t.compile().unwrap_err().0;
    problem(&problems, "needs exactly one output; the table has 2");
    assert_eq!(
        problem(&problems, "two outputs have that name")
            .element
            .as_deref(),
        Some("out2")
    );
    assert_eq!(
        problem(&problems, "input 1 \"x +\"").element.as_deref(),
        Some("in")
    );

    let mut t = base();
    t.hit_policy = HitPolicy::Priority;
    t.outputs[0].values = vec![json!(2), json!(3)];
    let problems = t.compile().unwrap_err().0;
    problem(
        &problems,
        "rule 1 (r), output \"y\": 1 is not one of the output's values",
    );

    let mut t = base();
    t.outputs.clear();
    t.rules[0].outputs.clear();
    problem(
        &t.compile().unwrap_err().0,
        "a decision table needs at least one output",
    );
}

#[test]
fn explain_reads_like_a_sentence() {
    let t = yaml(
        r#"
decision: discount
name: Customer discount
hit_policy: first
inputs:
  - tier
  - { label: amount, expression: order.amount }
outputs: [discount]
rules:
  - ['"bronze"', '-', 0]
  - { when: ['"gold","silver"', '>= 1000'], then: [0.1], description: gold customers, id: r2 }
  - ['-', '-', 0.01]
"#,
    );
    let e = t
        .evaluate(&vars(json!({"tier": "gold", "order": {"amount": 1200}})))
        .unwrap();
    assert_eq!(e.result, json!(0.1));
    assert_eq!(
        e.explain(),
        vec![
            "hit policy: first",
            r#"rule 2 (r2) "gold customers": tier = "gold" matches "gold","silver"; amount = 1200 matches >= 1000"#,
            "rule 3 (rule3): matches any input",
            "chosen: rule 2 (r2)",
            "result: 0.1",
        ]
    );
    let sum = holidays(Some("sum"));
    let e = sum
        .evaluate(&vars(json!({"age": 30, "service": 1})))
        .unwrap();
    assert_eq!(e.explain()[0], "hit policy: collect (sum)");
    assert_eq!(e.explain().last().unwrap(), "result: 22");
    let none = t
        .evaluate(&vars(json!({"tier": "x", "order": {"amount": 1}})))
        .unwrap();
    assert_eq!(none.matched.len(), 1);
    let risk = yaml(APPLICANT_RISK_RATING);
    let e = risk
        .evaluate(&vars(
            json!({"applicant": {"age": 20, "medicalHistory": "?"}}),
        ))
        .unwrap();
    assert_eq!(
        e.explain(),
        vec!["hit policy: unique", "no rule matched", "result: null"]
    );
}

const TESTED: &str = r#"
decision: discount
name: Customer discount
hit_policy: first
inputs:
  - customer.tier
  - { label: Amount, expression: amount, type: number }
outputs:
  - discount
  - { name: reason, label: Reason, values: ['"big"', '"small"', '"gold"'] }
rules:
  - ['"gold","silver"', '>= 1000', '0.1', '"big"']
  - { when: ['"gold"', '-'], then: ['0.05', '"gold"'], description: Gold customers, id: gold_any }
tests:
  - name: gold big
    input: { customer: { tier: gold }, amount: 1200 }
    expect: { discount: 0.1, reason: big }
  - name: gold small
    input: { customer: { tier: gold }, amount: 10 }
    expect: { discount: 0.05, reason: gold }
  - name: bronze
    input: { customer: { tier: bronze }, amount: 10 }
    expect: null
"#;

#[test]
fn run_tests_pass_and_fail() {
    let t = yaml(TESTED);
    assert_eq!(t.table().tests.len(), 3);
    assert_eq!(t.run_tests(), vec![]);

    let wrong = TESTED.replace(
        "expect: { discount: 0.05, reason: gold }",
        "expect: { discount: 0.5, reason: gold }",
    );
    let failures = yaml(&wrong).run_tests();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].case, 2);
    assert_eq!(failures[0].name.as_deref(), Some("gold small"));
    assert_eq!(
        failures[0].expected,
        json!({"discount": 0.5, "reason": "gold"})
    );
    assert_eq!(failures[0].got, json!({"discount": 0.05, "reason": "gold"}));

    // An error is a failure too, its text as what the table gave.
    let failing = TESTED.replace(
        "input: { customer: { tier: bronze }, amount: 10 }",
        "input: { customer: bronze, amount: 10 }",
    );
    let failures = yaml(&failing).run_tests();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].case, 3);
    let got = failures[0].got.as_str().unwrap();
    assert!(got.contains("input \"customer.tier\""), "{got}");

    // One output: the value or {name: value}; lists element by element; numbers numerically.
    let one = yaml(
        r#"
decision: one
hit_policy: rule_order
inputs: [x]
outputs: [y]
rules:
  - ['> 0', 1]
  - ['> 1', 2.0]
tests:
  - { input: { x: 5 }, expect: [1.0, 2] }
  - { input: { x: 5 }, expect: [{ y: 1 }, { y: 2 }] }
  - { input: { x: 1 }, expect: [1] }
  - { input: { x: 1 }, expect: [2] }
  - { input: { x: 1 }, expect: 1 }
"#,
    );
    let failures = one.run_tests();
    assert_eq!(
        failures.iter().map(|f| f.case).collect::<Vec<_>>(),
        vec![4, 5]
    );
    let single = yaml(
        r#"
decision: single
inputs: [x]
outputs: [y]
rules:
  - ['-', 'x * 2']
tests:
  - { input: { x: 2 }, expect: 4.0 }
  - { input: { x: 2 }, expect: { y: 4 } }
  - { input: { x: 2 }, expect: { z: 4 } }
"#,
    );
    assert_eq!(
        single
            .run_tests()
            .iter()
            .map(|f| f.case)
            .collect::<Vec<_>>(),
        vec![3]
    );
}

/// Routing rules as dmn-js 17 (Camunda Modeler 5) saves them: DMN 1.3 namespaces, generated
/// ids, the diagram, an input data element and an annotation.
const ROUTING_DMN: &str = r##"<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" xmlns:dmndi="https://www.omg.org/spec/DMN/20191111/DMNDI/" xmlns:dc="http://www.omg.org/spec/DMN/20180521/DC/" xmlns:di="http://www.omg.org/spec/DMN/20180521/DI/" xmlns:modeler="http://camunda.org/schema/modeler/1.0" id="Definitions_0kv8f2x" name="DRD" namespace="http://camunda.org/schema/1.0/dmn" exporter="Camunda Modeler" exporterVersion="5.31.0" modeler:executionPlatform="Camunda Cloud" modeler:executionPlatformVersion="8.6.0">
  <decision id="routing" name="Routing rules">
    <informationRequirement id="InformationRequirement_1u7k9rj">
      <requiredInput href="#InputData_applicant" />
    </informationRequirement>
    <decisionTable id="DecisionTable_1qs1x8c" hitPolicy="PRIORITY">
      <input id="Input_1" label="Age">
        <inputExpression id="InputExpression_1" typeRef="number">
          <text>applicant.age</text>
        </inputExpression>
      </input>
      <input id="InputClause_0d3rmxb" label="Risk category">
        <inputExpression id="LiteralExpression_0vhv9k5" typeRef="string">
          <text>riskCategory</text>
        </inputExpression>
        <inputValues id="UnaryTests_1d9lp0k">
          <text>"LOW","MEDIUM","HIGH"</text>
        </inputValues>
      </input>
      <input id="InputClause_1qj5ld4" label="Debt review">
        <inputExpression id="LiteralExpression_1m3vb2f" typeRef="boolean">
          <text>debtReview</text>
        </inputExpression>
      </input>
      <output id="Output_1" label="Routing" name="routing" typeRef="string">
        <outputValues id="UnaryTests_0ucc2k0">
          <text>"DECLINE","REFER","ACCEPT"</text>
        </outputValues>
      </output>
      <output id="OutputClause_1hb5k8t" label="Review level" name="reviewLevel" typeRef="string">
        <outputValues id="UnaryTests_1mdk9a9">
          <text>"LEVEL 2","LEVEL 1","NONE"</text>
        </outputValues>
      </output>
      <output id="OutputClause_0e0dcsx" label="Reason" name="reason" typeRef="string" />
      <rule id="DecisionRule_0u4a3ce">
        <description>Everyone else</description>
        <inputEntry id="UnaryTests_0kh3q0c">
          <text>-</text>
        </inputEntry>
        <inputEntry id="UnaryTests_1x1fd7s">
          <text></text>
        </inputEntry>
        <inputEntry id="UnaryTests_0anx4m2">
          <text>-</text>
        </inputEntry>
        <outputEntry id="LiteralExpression_0n9gq3k">
          <text>"ACCEPT"</text>
        </outputEntry>
        <outputEntry id="LiteralExpression_1a8b2q3">
          <text>"NONE"</text>
        </outputEntry>
        <outputEntry id="LiteralExpression_0wq9k2m">
          <text>"Acceptable"</text>
        </outputEntry>
      </rule>
      <rule id="DecisionRule_1c9u2kk">
        <inputEntry id="UnaryTests_1hy0k0s">
          <text>&lt; 18</text>
        </inputEntry>
        <inputEntry id="UnaryTests_0ym2a2l">
          <text>-</text>
        </inputEntry>
        <inputEntry id="UnaryTests_1b7nq6h">
          <text>-</text>
        </inputEntry>
        <outputEntry id="LiteralExpression_1l2kq5v">
          <text>"DECLINE"</text>
        </outputEntry>
        <outputEntry id="LiteralExpression_0s0d0gi">
          <text>"NONE"</text>
        </outputEntry>
        <outputEntry id="LiteralExpression_0yq1m4c">
          <text>"Applicant too young"</text>
        </outputEntry>
      </rule>
      <rule id="DecisionRule_0x8sk3t">
        <inputEntry id="UnaryTests_0xqv9k3">
          <text>-</text>
        </inputEntry>
        <inputEntry id="UnaryTests_19h3d0p">
          <text>"HIGH"</text>
        </inputEntry>
        <inputEntry id="UnaryTests_1d8v1h4">
          <text>-</text>
        </inputEntry>
        <outputEntry id="LiteralExpression_1e4k2f7">
          <text>"REFER"</text>
        </outputEntry>
        <outputEntry id="LiteralExpression_0m1b8h9">
          <text>"LEVEL 1"</text>
        </outputEntry>
        <outputEntry id="LiteralExpression_1b3q9z0">
          <text>"High risk application"</text>
        </outputEntry>
      </rule>
      <rule id="DecisionRule_1m6z0k5">
        <inputEntry id="UnaryTests_1q5v3m2">
          <text>-</text>
        </inputEntry>
        <inputEntry id="UnaryTests_0i1n3k6">
          <text>-</text>
        </inputEntry>
        <inputEntry id="UnaryTests_1s8d4c0">
          <text>true</text>
        </inputEntry>
        <outputEntry id="LiteralExpression_0c2n8w1">
          <text>"REFER"</text>
        </outputEntry>
        <outputEntry id="LiteralExpression_1r0x7v2">
          <text>"LEVEL 2"</text>
        </outputEntry>
        <outputEntry id="LiteralExpression_0g3k9d8">
          <text>"Applicant under debt review"</text>
        </outputEntry>
      </rule>
    </decisionTable>
  </decision>
  <inputData id="InputData_applicant" name="Applicant" />
  <textAnnotation id="TextAnnotation_1">
    <text>From the DMN specification's lending example</text>
  </textAnnotation>
  <association id="Association_1">
    <sourceRef href="#routing" />
    <targetRef href="#TextAnnotation_1" />
  </association>
  <dmndi:DMNDI>
    <dmndi:DMNDiagram id="DMNDiagram_0r6w0s2">
      <dmndi:DMNShape id="DMNShape_1y4p2k9" dmnElementRef="routing">
        <dc:Bounds height="80" width="180" x="160" y="100" />
      </dmndi:DMNShape>
      <dmndi:DMNShape id="DMNShape_0b7t1xq" dmnElementRef="InputData_applicant">
        <dc:Bounds height="45" width="125" x="187" y="258" />
      </dmndi:DMNShape>
      <dmndi:DMNEdge id="DMNEdge_1l0z7w4" dmnElementRef="InformationRequirement_1u7k9rj">
        <di:waypoint x="250" y="258" />
        <di:waypoint x="250" y="200" />
        <di:waypoint x="250" y="180" />
      </dmndi:DMNEdge>
      <dmndi:DMNShape id="DMNShape_0z9k1rt" dmnElementRef="TextAnnotation_1">
        <dc:Bounds height="45" width="200" x="400" y="100" />
      </dmndi:DMNShape>
    </dmndi:DMNDiagram>
  </dmndi:DMNDI>
</definitions>
"##;

#[test]
fn dmn_from_dmn_js_decides_like_its_yaml_twin() {
    assert_eq!(DecisionFormat::guess(ROUTING_DMN), DecisionFormat::Dmn);
    let tables = decision::parse(ROUTING_DMN, DecisionFormat::Dmn).unwrap();
    assert_eq!(tables.len(), 1);
    let t = &tables[0];
    assert_eq!(t.id, "routing");
    assert_eq!(t.name.as_deref(), Some("Routing rules"));
    assert_eq!(t.hit_policy, HitPolicy::Priority);
    assert_eq!(t.inputs[0].label.as_deref(), Some("Age"));
    assert_eq!(t.inputs[0].expression, "applicant.age");
    assert_eq!(t.inputs[0].type_ref.as_deref(), Some("number"));
    assert_eq!(
        t.outputs[1].values,
        vec![json!("LEVEL 2"), json!("LEVEL 1"), json!("NONE")]
    );
    assert_eq!(t.rules[0].id, "DecisionRule_0u4a3ce");
    assert_eq!(t.rules[0].description.as_deref(), Some("Everyone else"));
    assert_eq!(t.rules[1].inputs[0], "< 18");

    let from_dmn = t.compile().unwrap();
    let from_yaml = yaml(&routing("priority"));
    for age in [15, 18, 40] {
        for risk in ["LOW", "HIGH"] {
            for debt in [false, true] {
                let input = vars(
                    json!({"applicant": {"age": age}, "riskCategory": risk, "debtReview": debt}),
                );
                let a = from_dmn.evaluate(&input).unwrap();
                let b = from_yaml.evaluate(&input).unwrap();
                assert_eq!(a.result, b.result, "{input:?}");
                assert_eq!(
                    a.matched.iter().map(|m| m.index).collect::<Vec<_>>(),
                    b.matched.iter().map(|m| m.index).collect::<Vec<_>>()
                );
            }
        }
    }
}

/// A DMN file holding `body` in `namespace`.
fn dmn_file(namespace: &str, body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="{namespace}" xmlns:camunda="http://camunda.org/schema/1.0/dmn" id="defs" name="DRD" namespace="http://camunda.org/schema/1.0/dmn">
{body}
</definitions>
"#
    )
}

const SIMPLE_DECISION: &str = r#"  <decision id="tier" name="Tier">
    <decisionTable id="dt" hitPolicy="COLLECT" aggregation="SUM">
      <input id="i1" label="Points">
        <inputExpression id="ie1" typeRef="number"><text>points</text></inputExpression>
      </input>
      <output id="o1" name="bonus" typeRef="number" />
      <rule id="r1">
        <inputEntry id="e1"><text>&gt;= 10</text></inputEntry>
        <outputEntry id="x1"><text>5</text></outputEntry>
      </rule>
      <rule id="r2">
        <inputEntry id="e2"><text>&gt;= 100</text></inputEntry>
        <outputEntry id="x2"><text>50</text></outputEntry>
      </rule>
    </decisionTable>
  </decision>"#;

#[test]
fn dmn_reads_every_model_namespace() {
    for ns in dmn::DMN_NAMESPACES {
        let tables =
            dmn::parse(&dmn_file(ns, SIMPLE_DECISION)).unwrap_or_else(|e| panic!("{ns}: {e}"));
        assert_eq!(tables[0].aggregation, Some(Aggregation::Sum));
        let t = tables[0].compile().unwrap();
        assert_eq!(decide(&t, json!({"points": 150})), json!(55), "{ns}");
    }
    let other = dmn_file(
        "http://www.omg.org/spec/BPMN/20100524/MODEL",
        SIMPLE_DECISION,
    );
    let problems = dmn::parse(&other).unwrap_err().0;
    assert!(problems[0].message.contains("not DMN"), "{problems:?}");
}

#[test]
fn dmn_refuses_what_it_cannot_run_with_element_and_line() {
    let text = dmn_file(
        "https://www.omg.org/spec/DMN/20191111/MODEL/",
        r##"  <decision id="total" name="Total">
    <variable id="v1" name="total" typeRef="number" />
    <literalExpression id="le1">
      <text>price * quantity</text>
    </literalExpression>
  </decision>
  <decision id="shipping" name="Shipping">
    <informationRequirement id="ir1">
      <requiredDecision href="#total" />
    </informationRequirement>
    <decisionTable id="dt2">
      <input id="si1" label="Total">
        <inputExpression id="sie1" typeRef="number"><text>total</text></inputExpression>
      </input>
      <output id="so1" name="cost" />
      <rule id="sr1">
        <inputEntry id="se1"><text>&lt; 100</text></inputEntry>
        <outputEntry id="sx1"><text>5</text></outputEntry>
      </rule>
    </decisionTable>
  </decision>
  <businessKnowledgeModel id="bkm1" name="Rates" />
  <decision id="scripted" name="Scripted">
    <decisionTable id="dt3">
      <input id="ji1" label="X" camunda:inputVariable="value">
        <inputExpression id="jie1" typeRef="number" expressionLanguage="javascript"><text>x</text></inputExpression>
      </input>
      <output id="jo1" name="y" />
      <rule id="jr1">
        <inputEntry id="je1"><text>&gt;&gt; 1</text></inputEntry>
        <outputEntry id="jx1"><text>1</text></outputEntry>
      </rule>
    </decisionTable>
  </decision>"##,
    );
    let problems = dmn::parse(&text).unwrap_err().0;
    let literal = problem(&problems, "literalExpression");
    assert_eq!(literal.element.as_deref(), Some("total"));
    assert_eq!(literal.line, Some(line_of(&text, "<literalExpression")));
    let required = problem(&problems, "requires decision total");
    assert_eq!(required.element.as_deref(), Some("shipping"));
    assert_eq!(required.line, Some(line_of(&text, "<requiredDecision")));
    let bkm = problem(&problems, "business knowledge models are not supported");
    assert_eq!(bkm.element.as_deref(), Some("bkm1"));
    assert_eq!(bkm.line, Some(line_of(&text, "<businessKnowledgeModel")));
    let variable = problem(&problems, "inputVariable");
    assert_eq!(variable.element.as_deref(), Some("ji1"));
    let language = problem(&problems, "expression language \"javascript\"");
    assert_eq!(language.element.as_deref(), Some("jie1"));
    assert_eq!(
        language.line,
        Some(line_of(&text, "expressionLanguage=\"javascript\""))
    );
    let cell = problem(&problems, "rule 1 (jr1), input \"X\"");
    assert_eq!(cell.element.as_deref(), Some("jr1"));
    assert_eq!(cell.line, Some(line_of(&text, "<rule id=\"jr1\">")));
    assert_eq!(problems.len(), 6, "{problems:#?}");
}

const SHIPPING_CSV: &str = "# decision: shipping,,,,\r
# name: Shipping cost\r
\"# hit_policy: first\",,,,\r
in: order.country as Country,in: order.weight as Weight,out: cost,out: note,description\r
\"\"\"DE\"\",\"\"AT\"\"\",< 5,4.9,\"\"\"small, cheap\"\"\",\"German-speaking, light\"\r
\"\"\"DE\"\",\"\"AT\"\"\",-,9.9,\"\"\"heavy\"\"\",\r
,,,,\r
-,-,19.9,\"\"\"far\"\"\",\"Everywhere else,\r
by ship\"\r
";

#[test]
fn csv_with_quoted_fields() {
    assert_eq!(DecisionFormat::guess(SHIPPING_CSV), DecisionFormat::Csv);
    let t = table::parse_csv(SHIPPING_CSV).unwrap();
    assert_eq!(t.id, "shipping");
    assert_eq!(t.name.as_deref(), Some("Shipping cost"));
    assert_eq!(t.hit_policy, HitPolicy::First);
    assert_eq!(t.inputs[0].expression, "order.country");
    assert_eq!(t.inputs[0].label.as_deref(), Some("Country"));
    assert_eq!(t.outputs[1].name, "note");
    assert_eq!(t.rules[0].inputs, vec![r#""DE","AT""#, "< 5"]);
    assert_eq!(
        t.rules[0].description.as_deref(),
        Some("German-speaking, light")
    );
    assert_eq!(t.rules[1].description, None);
    assert_eq!(t.rules.len(), 3);
    let t = t.compile().unwrap();
    assert_eq!(
        decide(&t, json!({"order": {"country": "AT", "weight": 2}})),
        json!({"cost": 4.9, "note": "small, cheap"})
    );
    assert_eq!(
        decide(&t, json!({"order": {"country": "DE", "weight": 20}})),
        json!({"cost": 9.9, "note": "heavy"})
    );
    assert_eq!(
        decide(&t, json!({"order": {"country": "FR", "weight": 1}})),
        json!({"cost": 19.9, "note": "far"})
    );
    assert_eq!(
        t.table().rules[2].description.as_deref(),
        Some("Everywhere else,\r\nby ship")
    );
}

#[test]
fn csv_problems_carry_their_lines() {
    let text = "# decision: broken\n# hit_polcy: first\nin: x,out: y,colour,\n1,2,,\n\"[1..\",2,,\n\"\"\"two\nlines\"\"\",3,,\n\"3 +\",4,,,,\n5\n";
    let problems = table::parse_csv(text).unwrap_err().0;
    assert_eq!(problem(&problems, "\"hit_polcy\"").line, Some(2));
    assert_eq!(problem(&problems, "\"colour\"").line, Some(3));
    let bad = problem(&problems, "rule 2 (rule2), input \"x\"");
    assert_eq!(bad.line, Some(5));
    // Rule 3's quoted cell spans two lines; rule 4 starts after them.
    let after = problem(&problems, "rule 4 (rule4), input \"x\"");
    assert_eq!(after.line, Some(8));
    let short = problem(&problems, "rule 5 has 1 cells; the header has 4 columns");
    assert_eq!(short.line, Some(9));
    assert_eq!(problems.len(), 5, "{problems:#?}");

    let unclosed = table::parse_csv("# decision: t\nin: x,out: y\n\"1,2\n")
        .unwrap_err()
        .0;
    assert_eq!(unclosed[0].line, Some(3));

    let priority = "# decision: p\n# hit_policy: priority\n# values.y: \"b\",\"a\"\nin: x,out: y\n-,\"\"\"a\"\"\"\n-,\"\"\"b\"\"\"\n";
    let t = table::parse_csv(priority).unwrap().compile().unwrap();
    assert_eq!(decide(&t, json!({"x": 1})), json!("b"));
}

#[test]
fn yaml_table_may_hold_its_rules_as_csv() {
    let text = r#"
decision: discount
hit_policy: first
outputs:
  - discount
  - { name: reason, values: ['"big"', '"gold"'] }
table: |
  in: customer.tier as Tier,in: amount,out: discount,out: reason,id
  """gold"",""silver""",>= 1000,0.1,"""big""",big
  """gold""",-,0.05,"""gold""",gold_any
tests:
  - input: { customer: { tier: gold }, amount: 1200 }
    expect: { discount: 0.1, reason: big }
  - input: { customer: { tier: gold }, amount: 5 }
    expect: { discount: 0.05, reason: gold }
"#;
    let t = table::parse_yaml(text).unwrap();
    assert_eq!(t.inputs[0].label.as_deref(), Some("Tier"));
    assert_eq!(t.outputs[1].values, vec![json!("big"), json!("gold")]);
    assert_eq!(t.rules[1].id, "gold_any");
    assert_eq!(t.compile().unwrap().run_tests(), vec![]);

    let bad = text.replace(",0.05,", ",0.05 +,");
    let problems = table::parse_yaml(&bad).unwrap_err().0;
    let p = problem(&problems, "rule 2 (gold_any), output \"discount\"");
    assert_eq!(p.line, Some(line_of(&bad, "0.05 +")));

    let mismatched = text.replace("  - discount\n", "  - rebate\n");
    let problems = table::parse_yaml(&mismatched).unwrap_err().0;
    problem(
        &problems,
        "output \"rebate\" does not match the header's \"discount\"",
    );
}

#[test]
fn yaml_refuses_unknown_keys_with_their_line() {
    let text = "decision: d\ninputs: [x]\noutputs: [y]\nhit-policy: first\nrules:\n  - ['-', 1]\n";
    let problems = table::parse_yaml(text).unwrap_err().0;
    let p = problem(&problems, "unknown key \"hit-policy\"");
    assert_eq!(p.line, Some(4));
    assert_eq!(problems.len(), 1, "{problems:#?}");

    let text = "decision: d\ninputs: [x]\noutputs: [y]\nrules:\n  - { when: ['-'], then: [1], colour: red }\n";
    let problems = table::parse_yaml(text).unwrap_err().0;
    assert_eq!(problem(&problems, "unknown key \"colour\"").line, Some(5));

    let problems = table::parse_yaml("decision: 'a b'\ninputs: []\noutputs: [y]\nrules: []\n")
        .unwrap_err()
        .0;
    problem(&problems, "may hold only letters");
    let problems = table::parse_yaml("name: x\noutputs: [y]\nrules: []\n")
        .unwrap_err()
        .0;
    problem(&problems, "needs `decision: <id>`");
}

#[test]
fn formats_are_guessed() {
    assert_eq!(DecisionFormat::guess(TESTED), DecisionFormat::Yaml);
    assert_eq!(
        DecisionFormat::guess("# a comment\nname: a, b\ndecision: x\n"),
        DecisionFormat::Yaml
    );
    assert_eq!(
        DecisionFormat::guess("\u{feff}  <?xml version=\"1.0\"?><definitions/>"),
        DecisionFormat::Dmn
    );
    assert_eq!(
        DecisionFormat::guess("# decision: x\nin: a,out: b\n-,1\n"),
        DecisionFormat::Csv
    );
    assert_eq!(
        DecisionFormat::guess("{decision: x, outputs: [y], rules: []}"),
        DecisionFormat::Yaml
    );
    assert_eq!(DecisionFormat::Csv.as_str(), "csv");
}

#[test]
fn a_compiled_table_is_shared_across_threads() {
    fn shareable<T: Send + Sync + Clone + 'static>(_: &T) {}
    let t = yaml(&routing("output_order"));
    shareable(&t);
    let handles: Vec<_> = (0..2)
        .map(|n| {
            let t = t.clone();
            std::thread::spawn(move || {
                let input = vars(json!({"applicant": {"age": 17 + n}, "riskCategory": "HIGH", "debtReview": false}));
                t.evaluate(&input).map(|e| e.result.as_array().map(Vec::len))
            })
        })
        .collect();
    let sizes: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    assert_eq!(sizes, vec![Some(3), Some(2)]);
}

/// The parsers take sources from the network: mutated tables (bit flips, cuts, splices and
/// repeated ranges of the example files) are refused or decide, and never panic.
#[test]
fn mutated_sources_are_refused_or_decide_and_never_panic() {
    let examples = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../bots/workflows/examples/decisions"
    );
    let mut seeds = Vec::new();
    for name in ["expense-approval", "ticket-priority", "leave-days"] {
        for (ext, format) in [("dmn", DecisionFormat::Dmn), ("yaml", DecisionFormat::Yaml)] {
            let text = std::fs::read_to_string(format!("{examples}/{name}.{ext}")).unwrap();
            seeds.push((text.into_bytes(), format));
        }
    }
    seeds.push((
        b"# decision: c\n# hit_policy: collect\nin: amount,out: x,description\n\"[1..5]\",1,\"a, \"\"b\"\"\"\n-,2,\n"
            .to_vec(),
        DecisionFormat::Csv,
    ));
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: usize| {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (x >> 33) as usize % n.max(1)
    };
    let inputs = [
        json!({"amount": 250, "category": "travel", "customer": {"plan": "enterprise"}, "severity": 3, "age": 40, "years": 20}),
        json!({"amount": "x", "customer": 5}),
        json!({}),
    ];
    for round in 0..3000 {
        let (seed, format) = &seeds[round % seeds.len()];
        let mut bytes = seed.clone();
        for _ in 0..1 + next(4) {
            let len = bytes.len();
            match next(4) {
                0 if len > 0 => {
                    let i = next(len);
                    bytes[i] ^= 1 << next(8);
                }
                1 if len > 0 => bytes.truncate(next(len)),
                2 if len > 1 => {
                    let (a, b) = (next(len), next(len));
                    let (a, b) = (a.min(b), a.max(b));
                    let piece = bytes[a..b].to_vec();
                    let at = next(bytes.len());
                    bytes.splice(at..at, piece);
                }
                _ => {
                    let token: &[u8] = [
                        &b"\""[..],
                        b"..",
                        b"[",
                        b"not(",
                        b"?",
                        b",",
                        b"\n",
                        b"-",
                        b"${",
                    ][next(9)];
                    let at = next(len + 1).min(len);
                    bytes.splice(at..at, token.iter().copied());
                }
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        let Ok(tables) = decision::parse(&text, *format) else {
            continue;
        };
        for table in tables {
            let Ok(compiled) = table.compile() else {
                continue;
            };
            for input in &inputs {
                let _ = compiled.evaluate(input.as_object().unwrap());
            }
            let _ = compiled.run_tests();
        }
    }
}
