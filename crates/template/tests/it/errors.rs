//! Failed renders: each mistake is a `TemplateError` whose message names the culprit and line.

use updraft_template::{Renderer, TemplateError};

use crate::fixture::context;

/// Renders each template and compares the error's `Display` with the expected message.
fn check(cases: &[(&str, &str)]) {
    let renderer = Renderer::new();
    let ctx = context();
    let mut failures = Vec::new();
    for &(template, expected) in cases {
        match renderer.render(template, &ctx) {
            Err(err) if err.to_string() == expected => {}
            Err(err) => failures.push(format!(
                "{template:?}\n  expected {expected}\n  got      {err}"
            )),
            Ok(output) => failures.push(format!(
                "{template:?}\n  expected {expected}\n  rendered {output:?}"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn strict_undefined() {
    check(&[
        (
            "echo {{ foo }}",
            "undefined template variable `foo` at line 1: `echo {{ foo }}`",
        ),
        (
            "set -e\n  echo {{ params.missing }}\n",
            "undefined template variable `params.missing` at line 2: `echo {{ params.missing }}`",
        ),
        (
            "{{ foo.bar }}",
            "undefined template variable `foo.bar` at line 1: `{{ foo.bar }}`",
        ),
        (
            "{% if nope %}x{% endif %}",
            "undefined template variable `nope` at line 1: `{% if nope %}x{% endif %}`",
        ),
        (
            "{{ prev_ds }}",
            "undefined template variable `prev_ds` at line 1: `{{ prev_ds }}`",
        ),
    ]);
}

#[test]
fn syntax() {
    check(&[
        ("echo {{ ds", "template syntax error at line 1: `echo {{ ds`: unexpected end of input, expected end of variable block"),
        ("{% for %}", "template syntax error at line 1: `{% for %}`: unexpected end of block, expected in"),
        ("a\nb\n{% if x %}", "template syntax error at line 3: `{% if x %}`: unexpected end of input, expected end of block"),
    ]);
}

#[test]
fn variables() {
    check(&[
        ("{{ var.value.nope }}", "variable `nope` does not exist at line 1: `{{ var.value.nope }}`"),
        ("{{ var.json.nope }}", "variable `nope` does not exist at line 1: `{{ var.json.nope }}`"),
        ("{{ var.value.get('nope') }}", "variable `nope` does not exist at line 1: `{{ var.value.get('nope') }}`"),
        (
            "{{ var.json.not_json }}",
            "variable `not_json` is not valid JSON (key must be a string at line 1 column 2) at line 1: `{{ var.json.not_json }}`",
        ),
    ]);
}

#[test]
fn xcom_pull_arguments() {
    check(&[
        (
            "{{ ti.xcom_pull(task_ids=1) }}",
            "template error at line 1: `{{ ti.xcom_pull(task_ids=1) }}`: xcom_pull task_ids must be a task id or a list of task ids, not number",
        ),
        (
            "{{ ti.xcom_pull(task_ids='a', colour='red') }}",
            "template error at line 1: `{{ ti.xcom_pull(task_ids='a', colour='red') }}`: unknown keyword argument 'colour'",
        ),
        (
            "{{ ti.xcom_pull(task_ids='a', dag_id='other') }}",
            "template error at line 1: `{{ ti.xcom_pull(task_ids='a', dag_id='other') }}`: xcom_pull can only pull XComs of the current DAG run",
        ),
    ]);
}

#[test]
fn macros_and_filters() {
    check(&[
        (
            "{{ macros.ds_add('01/02/2026', 1) }}",
            "template error at line 1: `{{ macros.ds_add('01/02/2026', 1) }}`: expected a date like 2026-01-31, got `01/02/2026`",
        ),
        (
            "{{ macros.ds_format('2026-01-01', '%d/%m/%Y', '%Y') }}",
            "template error at line 1: `{{ macros.ds_format('2026-01-01', '%d/%m/%Y', '%Y') }}`: ds_format: `2026-01-01` does not match format `%d/%m/%Y`",
        ),
        (
            "{{ logical_date.strftime('%Q') }}",
            "template error at line 1: `{{ logical_date.strftime('%Q') }}`: invalid date format `%Q`",
        ),
        (
            "{{ ds | ts }}",
            "template error at line 1: `{{ ds | ts }}`: expected a datetime such as logical_date, got string",
        ),
    ]);
}

#[test]
fn runaway_template_is_stopped() {
    let template =
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
    let err = Renderer::new().render(template, &context()).unwrap_err();
    assert!(matches!(err, TemplateError::Render { .. }), "{err:?}");
    assert!(err.to_string().contains("ran out of fuel"), "{err}");
}

#[test]
fn error_variants_carry_structured_details() {
    let renderer = Renderer::new();
    let ctx = context();
    let err = renderer
        .render("x\n{{ var.value.nope }}", &ctx)
        .unwrap_err();
    assert_eq!(err.location().line, Some(2));
    assert!(matches!(err, TemplateError::VariableNotFound { ref name, .. } if name == "nope"));
    let err = renderer.render("{{ nope }}", &ctx).unwrap_err();
    assert!(matches!(err, TemplateError::Undefined { ref name, .. } if name == "nope"));
    for template in ["{{ conn.nope.host }}", "{{ conn.get('nope') }}"] {
        let err = renderer.render(template, &ctx).unwrap_err();
        assert!(
            matches!(err, TemplateError::ConnectionNotFound { ref conn_id, .. } if conn_id == "nope"),
            "{template}: {err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("connection `nope` is not defined at line 1: `{template}`")
        );
    }
    let err = renderer.render("{{", &ctx).unwrap_err();
    assert!(matches!(err, TemplateError::Syntax { .. }));
}

#[test]
fn hostile_templates_do_not_panic() {
    let renderer = Renderer::new();
    let ctx = context();
    let templates = [
        "{{",
        "{%",
        "{#",
        "}}{{",
        "{{ ' }}",
        "{{ 1/0 }}",
        "{{ '\u{e9}' * 99999999999 }}",
        "{{ ti.xcom_pull(None, None) }}",
        "{{ macros.ds_add(ds, 9999999999999) }}",
        "{{ logical_date.add(days=9223372036854775807) }}",
        "{{ logical_date.strftime('%') }}",
        "{{ macros.ds_format(ds, '%', '%') }}",
        "{{ logical_date.in_timezone('Mars/Olympus') }}",
        "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
        "{{ [[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]] }}",
        "\u{1F600}{{ nope }}\u{1F600}",
        "{{ var.value }}{{ var }}",
    ];
    for template in templates {
        let _ = renderer.render(template, &ctx);
    }
    let deep = format!("{{{{ {}", "(".repeat(10_000));
    let _ = renderer.render(&deep, &ctx);
}
