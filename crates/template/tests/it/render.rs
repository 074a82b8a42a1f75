//! Successful renders: every context variable, params, XComs, variables, macros and filters.

use updraft_template::{needs_connections, needs_variables, needs_xcoms, Renderer};

use crate::fixture::context;

/// Renders each template against the fixture context and compares with the expected output.
fn check(cases: &[(&str, &str)]) {
    let renderer = Renderer::new();
    let ctx = context();
    let mut failures = Vec::new();
    for &(template, expected) in cases {
        match renderer.render(template, &ctx) {
            Ok(actual) if actual == expected => {}
            Ok(actual) => failures.push(format!(
                "{template:?}\n  expected {expected:?}\n  got      {actual:?}"
            )),
            Err(err) => failures.push(format!(
                "{template:?}\n  expected {expected:?}\n  error    {err}"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn dates() {
    check(&[
        ("{{ ds }}", "2026-01-01"),
        ("{{ ds_nodash }}", "20260101"),
        ("{{ ts }}", "2026-01-01T00:00:00+00:00"),
        ("{{ ts_nodash }}", "20260101T000000"),
        ("{{ ts_nodash_with_tz }}", "20260101T000000+0000"),
        ("{{ logical_date }}", "2026-01-01T00:00:00+00:00"),
        ("{{ data_interval_start }}", "2026-01-01T00:00:00+00:00"),
        ("{{ data_interval_end }}", "2026-01-02T00:00:00+00:00"),
        ("{{ logical_date.year }}-{{ logical_date.month }}", "2026-1"),
        (
            "{{ logical_date.strftime('%d/%m/%Y %H:%M') }}",
            "01/01/2026 00:00",
        ),
        (
            "{{ logical_date.strftime('%Y%m%d.%f') }}",
            "20260101.000000",
        ),
        (
            "{{ logical_date.isoformat() }}",
            "2026-01-01T00:00:00+00:00",
        ),
        (
            "{{ logical_date.in_timezone('Europe/Paris') }}",
            "2026-01-01T01:00:00+01:00",
        ),
        (
            "{{ logical_date.add(days=1, hours=2) }}",
            "2026-01-02T02:00:00+00:00",
        ),
        ("{{ logical_date.subtract(weeks=1) | ds }}", "2025-12-25"),
        ("{{ data_interval_end | ds_nodash }}", "20260102"),
        ("{{ data_interval_end | ts }}", "2026-01-02T00:00:00+00:00"),
        ("{{ data_interval_end | ts_nodash }}", "20260102T000000"),
        (
            "{{ data_interval_end | ts_nodash_with_tz }}",
            "20260102T000000+0000",
        ),
        ("{{ data_interval_start < data_interval_end }}", "True"),
    ]);
}

#[test]
fn run_dag_and_task() {
    check(&[
        ("{{ run_id }}", "scheduled__2026-01-01T00:00:00+00:00"),
        (
            "{{ dag_run.run_id }}",
            "scheduled__2026-01-01T00:00:00+00:00",
        ),
        ("{{ dag_run.run_type }}", "scheduled"),
        ("{{ dag_run.logical_date }}", "2026-01-01T00:00:00+00:00"),
        ("{{ dag_run.conf.limit }}", "10"),
        ("{{ dag_run.conf['extra'] }}", "yes"),
        ("{{ dag_run.conf.get('missing', 'fallback') }}", "fallback"),
        ("{{ dag }}", "<DAG: etl>"),
        ("{{ dag.dag_id }}", "etl"),
        (
            "{{ task.task_id }} {{ task.queue }} {{ task.pool }} {{ task.retries }}",
            "load default default_pool 3",
        ),
        ("{{ task.bash_command }}", "echo {{ ds }}"),
        ("{{ task.dependencies | join(',') }}", "extract,transform"),
        ("{{ task_instance_key_str }}", "etl__load__20260101"),
    ]);
}

#[test]
fn task_instance() {
    check(&[
        ("{{ ti.try_number }}", "2"),
        (
            "{{ ti.task_id }} {{ ti.dag_id }} {{ ti.run_id }}",
            "load etl scheduled__2026-01-01T00:00:00+00:00",
        ),
        ("{{ ti.map_index }}", "-1"),
        ("{{ task_instance.try_number }}", "2"),
        (
            "{{ ti }}",
            "<TaskInstance: etl.load scheduled__2026-01-01T00:00:00+00:00 [running]>",
        ),
    ]);
}

#[test]
fn conf_overrides_and_extends_params() {
    check(&[
        ("{{ params.limit }}", "10"),
        ("{{ params.env }}", "prod"),
        ("{{ params.extra }}", "yes"),
        ("{{ params.get('absent', 'd') }}", "d"),
    ]);
}

#[test]
fn xcom_pull() {
    check(&[
        (
            "{{ ti.xcom_pull(task_ids='extract') }}",
            r#"{"path": "/tmp/x", "rows": 42}"#,
        ),
        ("{{ ti.xcom_pull(task_ids='extract')['rows'] }}", "42"),
        ("{{ ti.xcom_pull('transform') }}", "done"),
        (
            "{{ ti.xcom_pull(task_ids='extract', key='return_value').path }}",
            "/tmp/x",
        ),
        (
            "{{ ti.xcom_pull(task_ids='extract', key='row_count') }}",
            "42",
        ),
        (
            "{{ ti.xcom_pull(task_ids=['transform', 'extract'], key='row_count') }}",
            "[None, 42]",
        ),
        (
            "{{ ti.xcom_pull(task_ids=['transform', 'nope']) }}",
            r#"["done", None]"#,
        ),
        ("{{ ti.xcom_pull(task_ids='nope') }}", "None"),
        ("{{ ti.xcom_pull(task_ids='nope') is none }}", "True"),
        ("{{ ti.xcom_pull(task_ids='nope', default='d') }}", "d"),
        (
            "{{ ti.xcom_pull(task_ids='extract', dag_id='etl').rows }}",
            "42",
        ),
        (
            "{{ task_instance.xcom_pull(task_ids='transform') }}",
            "done",
        ),
    ]);
}

#[test]
fn variables() {
    check(&[
        ("{{ var.value.bucket }}", "s3://data"),
        ("{{ var.value['bucket'] }}/x", "s3://data/x"),
        ("{{ var.json.settings.region }}", "eu-west-1"),
        ("{{ var.json.settings.replicas | length }}", "2"),
        ("{{ var.value.get('bucket', 'dflt') }}", "s3://data"),
        ("{{ var.value.get('absent', 'dflt') }}", "dflt"),
        ("{{ var.value.get('absent', default_var='dflt') }}", "dflt"),
        ("{{ var.json.get('absent', {'a': 1}).a }}", "1"),
        ("{{ var.json.get('settings').region }}", "eu-west-1"),
    ]);
}

#[test]
fn connections() {
    check(&[
        ("{{ conn.warehouse.host }}", "db.example"),
        ("{{ conn.warehouse.login }}", "etl"),
        ("{{ conn.warehouse.password }}", "s3cr3t!"),
        ("{{ conn.warehouse.port + 1 }}", "5433"),
        ("{{ conn.warehouse.schema }}", "sales"),
        ("{{ conn.warehouse.conn_type }}", "postgres"),
        ("{{ conn.warehouse.extra_dejson.sslmode }}", "require"),
        ("{{ conn.warehouse.extra_dejson.options.x }}", "1"),
        (
            "{{ conn.warehouse.get_uri() }}",
            "postgres://etl:s3cr3t%21@db.example:5432/sales?sslmode=require",
        ),
        ("{{ conn['warehouse'].host }}", "db.example"),
        ("{{ conn.get('warehouse').login }}", "etl"),
        ("{{ conn.warehouse.description is none }}", "True"),
        ("{{ conn.warehouse }}", "warehouse"),
    ]);
}

#[test]
fn macros() {
    check(&[
        ("{{ macros.ds_add(ds, 5) }}", "2026-01-06"),
        ("{{ macros.ds_add(ds, -1) }}", "2025-12-31"),
        ("{{ macros.ds_add('2024-02-28', 1) }}", "2024-02-29"),
        ("{{ macros.ds_add(ds, 0) }}", "2026-01-01"),
        (
            "{{ macros.ds_format(ds, '%Y-%m-%d', '%d/%m/%y') }}",
            "01/01/26",
        ),
        (
            "{{ macros.ds_format('20260131', '%Y%m%d', '%Y-%m-%d') }}",
            "2026-01-31",
        ),
        (
            "{{ macros.ds_format('2026-01-31 13:45', '%Y-%m-%d %H:%M', '%H%M') }}",
            "1345",
        ),
        (
            "{{ macros.ds_format(logical_date, '%Y-%m-%d', '%b %d') }}",
            "Jan 01",
        ),
    ]);
}

#[test]
fn jinja_and_python_methods() {
    check(&[
        ("plain text, no template", "plain text, no template"),
        (
            "keeps a trailing newline {{ ds }}\n",
            "keeps a trailing newline 2026-01-01\n",
        ),
        ("{% for t in ['a', 'b'] %}{{ t | upper }}{% endfor %}", "AB"),
        ("{{ 'x' if params.limit > 5 else 'y' }}", "x"),
        ("{{ params.env.upper() }}", "PROD"),
        ("{{ ds.replace('-', '/') }}", "2026/01/01"),
        ("{# comment #}done", "done"),
        ("{% if foo is defined %}yes{% else %}no{% endif %}", "no"),
    ]);
}

#[test]
fn text_without_template_syntax_is_returned_unchanged() {
    let renderer = Renderer::new();
    let ctx = context();
    for text in [
        "",
        "echo $HOME",
        "a { b } c",
        "unbalanced }} and {",
        "${ not jinja }",
    ] {
        assert_eq!(renderer.render(text, &ctx).unwrap(), text);
    }
}

#[test]
fn needs_checks() {
    let cases = [
        ("echo {{ ds }}", false, false),
        ("echo xcom_pull var.value.x", false, false),
        ("{{ ti.xcom_pull('a') }}", true, false),
        ("{{ var.value.x }}", false, true),
        ("{{ var['value'].x }}", false, true),
        ("{{ params.vars }} {{ avar }} {{ var_x }}", false, false),
        ("{% set v = var %}{{ v.value.x }}", false, true),
    ];
    for (template, xcoms, variables) in cases {
        assert!(
            !needs_connections(template),
            "needs_connections({template:?})"
        );
        assert_eq!(needs_xcoms(template), xcoms, "needs_xcoms({template:?})");
        assert_eq!(
            needs_variables(template),
            variables,
            "needs_variables({template:?})"
        );
    }
}

#[test]
fn needs_connections_only_for_conn() {
    assert!(needs_connections("{{ conn.db.host }}"));
    assert!(needs_connections("{% set c = conn %}{{ c.db.host }}"));
    assert!(!needs_connections("conn.db.host"));
    assert!(!needs_connections("{{ params.connection }} {{ my_conn }}"));
}

#[test]
fn renderer_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Renderer>();
}

#[test]
fn triggering_asset_events() {
    check(&[
        (
            "{{ triggering_asset_events['s3://raw/orders'][0].source_dag_id }}",
            "ingest",
        ),
        (
            "{% for uri, events in triggering_asset_events.items() %}{{ uri }}={{ events | length }}:{{ events[0].extra.rows }}{% endfor %}",
            "s3://raw/orders=1:7",
        ),
        (
            "{{ (triggering_asset_events.values() | first | first).asset.name }}",
            "orders",
        ),
    ]);
}
