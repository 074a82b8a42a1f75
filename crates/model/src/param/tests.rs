//! Reading param specs and checking run values against them.

use serde_json::{json, Map, Value};

use super::*;

fn params(v: Value) -> Vec<Param> {
    let Value::Object(map) = v else {
        panic!("test input must be an object")
    };
    let (params, errors) = read_params(&map);
    assert_eq!(errors, vec![], "unexpected spec errors");
    params
}

fn conf(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("test conf must be an object"),
    }
}

#[test]
fn plain_values_are_defaults_of_any_type() {
    let p = params(json!({"limits": {"a": 1}, "table": "users"}));
    assert_eq!(p[1], Param::plain("table", json!("users")));
    assert_eq!(p[0].default, Some(json!({"a": 1})));
    assert!(p[0].types.is_empty());
    let run = resolve(&p, &conf(json!({"table": 5, "extra": true}))).unwrap();
    assert_eq!(
        run,
        conf(json!({"table": 5, "limits": {"a": 1}, "extra": true}))
    );
}

#[test]
fn spec_is_read_with_every_key() {
    let p = params(
        json!({"n": {"type": ["integer", "null"], "default": 3, "description": "how many",
        "title": "N", "minimum": 1, "maximum": 10, "enum": [1, 3, 5]}}),
    );
    let n = &p[0];
    assert_eq!(n.types, vec![ParamType::Integer, ParamType::Null]);
    assert_eq!(n.default, Some(json!(3)));
    assert_eq!(n.description.as_deref(), Some("how many"));
    assert_eq!(n.minimum, Some(1.0));
    assert!(!n.required());
    assert_eq!(
        n.to_api_json()["schema"]["type"],
        json!(["integer", "null"])
    );
    assert_eq!(n.to_api_json()["value"], json!(3));
}

#[test]
fn spec_mistakes_are_reported() {
    let cases = [
        (json!({"type": "integr"}), "`type` must be"),
        (
            json!({"type": "string", "colour": 1}),
            "unknown key `colour`",
        ),
        (
            json!({"type": "integer", "default": "x"}),
            "the default does not fit",
        ),
        (
            json!({"default": 1, "enum": []}),
            "`enum` must be a non-empty list",
        ),
        (
            json!({"default": 1, "minimum": "a"}),
            "`minimum` must be a number",
        ),
    ];
    for (spec, expected) in cases {
        let err = Param::from_entry("p", &spec).unwrap_err();
        assert!(err.contains(expected), "{spec}: {err}");
    }
}

#[test]
fn run_values_are_checked() {
    let p = params(json!({
        "count": {"type": "integer", "default": 2, "minimum": 1, "maximum": 5},
        "ratio": {"type": "number", "default": 0.5},
        "env": {"type": "string", "default": "dev", "enum": ["dev", "prod"]},
        "name": {"type": "string", "default": "ab", "minLength": 2, "maxLength": 4},
        "day": {"type": "string", "format": "date", "default": "2026-01-01"},
        "at": {"type": ["null", "string"], "format": "date-time", "default": null},
        "flag": {"type": "boolean", "default": false},
        "items": {"type": "array", "default": []},
        "opts": {"type": "object", "default": {}},
    }));
    let ok = [
        json!({}),
        json!({"count": 5, "ratio": 3, "env": "prod", "name": "abcd"}),
        json!({"count": 2.0, "day": "2026-02-28", "at": "2026-02-28T10:00:00Z"}),
        json!({"flag": true, "items": [1, "a"], "opts": {"k": null}}),
    ];
    for c in ok {
        assert!(
            resolve(&p, &conf(c.clone())).is_ok(),
            "{c} should be accepted"
        );
    }
    let bad = [
        (
            json!({"count": 0}),
            "count: 0 is less than the minimum of 1",
        ),
        (
            json!({"count": 6}),
            "count: 6 is greater than the maximum of 5",
        ),
        (json!({"count": 1.5}), "count: 1.5 is not of type integer"),
        (json!({"count": "3"}), "count: \"3\" is not of type integer"),
        (json!({"ratio": null}), "ratio: null is not of type number"),
        (
            json!({"env": "test"}),
            "env: \"test\" is not one of [\"dev\", \"prod\"]",
        ),
        (
            json!({"name": "a"}),
            "name: \"a\" is shorter than the minimum length of 2",
        ),
        (
            json!({"name": "abcde"}),
            "is longer than the maximum length of 4",
        ),
        (
            json!({"day": "2026-02-30"}),
            "day: \"2026-02-30\" is not a 'date'",
        ),
        (json!({"at": "yesterday"}), "is not a 'date-time'"),
        (json!({"flag": "yes"}), "is not of type boolean"),
        (json!({"items": {}}), "is not of type array"),
        (json!({"opts": []}), "is not of type object"),
    ];
    for (c, expected) in bad {
        let err = resolve(&p, &conf(c.clone())).unwrap_err().to_string();
        assert!(err.starts_with("Invalid input for param "), "{err}");
        assert!(err.contains(expected), "{c}: {err}");
    }
}

#[test]
fn a_param_without_default_must_be_given_unless_it_accepts_null() {
    let p = params(json!({
        "maybe": {"type": ["string", "null"]},
        "target": {"type": "string", "description": "where to"},
    }));
    assert!(!p[0].required());
    assert!(p[1].required());
    let err = resolve(&p, &Map::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Invalid input for param target: No value passed and Param has no default value"
    );
    let run = resolve(&p, &conf(json!({"target": "x"}))).unwrap();
    assert_eq!(run, conf(json!({"target": "x", "maybe": null})));
}
