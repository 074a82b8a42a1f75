//! What one render may cost: templates that would print, copy or walk billions of items, or
//! write gigabytes, are refused with an error at once (found by fuzzing, `fuzz/`).

use updraft_template::{Renderer, TemplateError, MAX_ITEMS, MAX_RENDERED_BYTES};

use crate::fixture::{assert_refused, assert_renders_as_minijinja, context, refused};

#[test]
fn printing_a_sequence_repeated_billions_of_times_is_refused() {
    // The fuzzer's find: a lazy sequence of 122 billion items, made by one instruction.
    let err = refused("{{ 11*11111111111*['items'] }}");
    assert_eq!(
        err.to_string(),
        "template error at line 1: `{{ 11*11111111111*['items'] }}`: a sequence of 1 items \
         repeated 122222222221 times is too large (at most 1000000 items, nested items and \
         characters included)"
    );
}

/// Found by fuzzing (the third runs' 8 hangs were this kind and the next): `~` writes every
/// item of a sequence repeated millions of times. The constant expression was even evaluated
/// while compiling the template, before fuel or any render bound applied.
#[test]
fn concatenating_a_sequence_repeated_millions_of_times_is_refused() {
    for template in [
        "{{ 10*000 ~ 7321011*['gYaqp'] }}",
        "{{ 'a' ~ ['x'] * 10**10 }}",
        "{% set n = 10**10 %}{{ 'a' ~ ['x'] * n }}",
        // A million items that each hold a million: the repetition counts what it repeats.
        "{{ 'a' ~ [['x'] * 1000000] * 1000000 }}",
        "{{ 'a' ~ ['x' * 1000000] * 1000 }}",
    ] {
        assert_refused(template, "is too large (at most 1000000 items");
    }
}

/// Found by fuzzing: a `for` loop over an empty range repeated a trillion times spun inside one
/// instruction (fuel counts instructions), walking the empty repetitions; so did an `in` test,
/// `|first` and unpacking with `*` into a call.
#[test]
fn an_empty_sequence_repeated_a_trillion_times_is_consumed_at_once() {
    let renderer = Renderer::new();
    let ctx = context();
    for (template, expected) in [
        (
            "{% for i in range(111101<1111-0) * 1111111411111 %}x{% endfor %}!",
            "!",
        ),
        (
            "{% for x in [] * 10**12 %}x{% else %}none{% endfor %}",
            "none",
        ),
        (
            "{% set n = 10**12 %}{% for x in [] * n %}x{% endfor %}!",
            "!",
        ),
        ("{{ 'a' in [] * 10**12 }}", "False"),
        ("{{ 'a' in range(0) * 10**12 }}", "False"),
        ("{{ (([] * 10**12) | first) is undefined }}", "True"),
        ("{{ range(*([] * 10**12), 3) | list }}", "[0, 1, 2]"),
        ("{{ ([] * 10**12) == [] }}", "True"),
    ] {
        let rendered = renderer.render(template, &ctx);
        assert_eq!(rendered.as_deref(), Ok(expected), "{template}");
    }
}

/// Every consumer of a huge repetition, the engine's own included, meets the refusal where the
/// sequence is made.
#[test]
fn a_huge_repetition_is_refused_whatever_consumes_it() {
    for template in [
        "{% for x in ['a'] * 10**12 %}{% endfor %}",
        "{{ 'b' in ['a'] * 10**10 }}",
        "{{ 'b' in range(3) * 10**10 }}",
        "{% macro m() %}{{ varargs | length }}{% endmacro %}{{ m(*(['a'] * 10**10)) }}",
        "{{ (['a'] * 10**10) == ['a'] }}",
        "{{ (['a'] * 10**10)[10**9] }}",
        "{{ (['a'] * 10**10)[1:3] }}",
        "{{ (['a'] * 10**10) | first }}",
        "{{ 10**10 * ['a'] * 1 }}",
        "{{ (['a'] * 1000000) * 2 }}",
        "{% set xs = ['a', 'b'] %}{{ (xs * 10**10) | length }}",
    ] {
        assert_refused(template, "repeated");
    }
}

/// A list that holds the previous one twice, 21 times: four million items when written or
/// walked, made in a few instructions that share them.
const DOUBLED: &str = "{% set ns = namespace(xs=['a']) %}{% for i in range(21) %}\
                       {% set ns.xs = [ns.xs, ns.xs] %}{% endfor %}";

#[test]
fn filters_and_methods_refuse_to_walk_a_huge_sequence() {
    for (expression, used) in [
        ("{{ ns.xs | list | length }}", "`list`"),
        ("{{ ns.xs | join(',') }}", "`join`"),
        ("{{ ns.xs | sort | first }}", "`sort`"),
        ("{{ ns.xs | unique | first }}", "`unique`"),
        ("{{ ','.join(ns.xs) }}", "`join`"),
        ("{{ ns.xs.count('a') }}", "`count`"),
        ("{{ ns.xs }}", "printed"),
    ] {
        let template = format!("{DOUBLED}{expression}");
        assert_refused(
            &template,
            &format!(
                "a value holding more than 1000000 items (nested items included) is too large \
                 to be {}",
                if used == "printed" {
                    used.to_owned()
                } else {
                    format!("passed to {used}")
                }
            ),
        );
    }
}

/// Found by fuzzing: an empty sequence repeated ten billion times has no item, but walking it
/// went through every empty repetition (minutes of one core).
#[test]
fn an_empty_sequence_repeated_billions_of_times_is_walked_at_once() {
    let renderer = Renderer::new();
    let ctx = context();
    for (template, expected) in [
        ("{{ ([] * 10**10) | list | length }}", "0"),
        ("{{ [] * 10**10 }}", "[]"),
        ("{{ ([] * 10**10) | join(',') }}!", "!"),
        ("{{ ','.join([] * 10**10) }}!", "!"),
        ("{{ (range(0) * 10**10) | list }}", "[]"),
    ] {
        let rendered = renderer.render(template, &ctx);
        assert_eq!(rendered.as_deref(), Ok(expected), "{template}");
    }
}

#[test]
fn a_repetition_count_that_overflows_is_an_error() {
    // minijinja multiplies the length by the count; with overflow checks (debug builds) that
    // panicked inside the engine.
    let err = refused("{{ (['a', 'b'] * 18446744073709551615) | length }}");
    assert!(matches!(err, TemplateError::Render { .. }), "{err:?}");
}

#[test]
fn rendered_text_beyond_the_bound_is_refused() {
    let err = refused("{% for i in range(100) %}{{ 'x' * 100000 }}{% endfor %}");
    assert_eq!(
        err,
        TemplateError::TooLarge {
            message: format!("the rendered text exceeds {MAX_RENDERED_BYTES} bytes")
        }
    );
}

#[test]
fn a_long_string_is_bounded_by_the_rendered_text() {
    // Refused where it is made (minijinja's own bound is 100 MB a string).
    let err = refused("{{ 'x' * 5000000 }}");
    assert!(
        err.to_string()
            .contains("a string of 1 bytes repeated 5000000 times is too large"),
        "{err}"
    );
    let err = refused("{{ ('ab' * 100000000) | length }}");
    assert!(err.to_string().contains("is too large"), "{err}");
    let printed = Renderer::new()
        .render("{{ 'x' * 2000000 }}", &context())
        .unwrap();
    assert_eq!(printed.len(), 2_000_000);
}

#[test]
fn values_within_the_bounds_still_render() {
    let renderer = Renderer::new();
    let ctx = context();
    let render = |template: &str| renderer.render(template, &ctx).unwrap();
    assert_eq!(render("{{ (['a'] * 3) | join('-') }}"), "a-a-a");
    assert_eq!(
        render("{{ ['a', 'b'] * 2 }}"),
        "[\"a\", \"b\", \"a\", \"b\"]"
    );
    assert_eq!(
        render(&format!("{{{{ (['a'] * {MAX_ITEMS}) | length }}}}")),
        MAX_ITEMS.to_string()
    );
    assert_eq!(render("{{ ','.join(['a', 'b']) }}"), "a,b");
    assert_eq!(render("{{ [3, 1, 2] | sort | list }}"), "[1, 2, 3]");
    assert_eq!(render("{{ 'ab' * 3 }}"), "ababab");
    assert_eq!(render("{{ [1, 2] * 3 }}"), "[1, 2, 1, 2, 1, 2]");
    assert_eq!(render("{{ 2 * [1] }}"), "[1, 1]");
    assert_eq!(render("{{ (range(3) * 2) | list }}"), "[0, 1, 2, 0, 1, 2]");
    assert_eq!(render("{{ ([1] * 0) | list }}"), "[]");
    assert_eq!(render("{{ ['-' * 3] * 2 }}"), "[\"---\", \"---\"]");
    assert_eq!(
        render("{% for x in ['a', 'b'] * 2 %}{{ x }}{{ loop.length }}{% endfor %}"),
        "a4b4a4b4"
    );
    assert_eq!(render("{{ 'b' in ['a', 'b'] * 2 }}"), "True");
    assert_eq!(render("{{ 'x' ~ [1] * 2 }}"), "x[1, 1]");
    assert_eq!(
        render("{{ 6 * 7 }} {{ 2.5 * 2 }} {{ -3 * 4 }} {{ 10 ** 3 * 2 }} {{ 2 * 3 + 1 }}"),
        "42 5.0 -12 2000 7"
    );
    assert_eq!(render("{{ (ti.try_number * 2) }}"), "4");
    assert_eq!(
        render("{{ 1 + 2 }} {{ ti.try_number + 1 }} {{ 1.5 + 1 }}"),
        "3 3 2.5"
    );
    assert_eq!(
        render("{{ ds ~ 'T00:00' }}"),
        format!("{}T00:00", render("{{ ds }}"))
    );
    assert_eq!(render("{{ ti.try_number ~ '' }}"), "2");
    assert_eq!(
        render("{{ macros.ds_add(ds, 7) ~ '/' ~ ds_nodash + '_x' }}"),
        format!(
            "{}/{}_x",
            render("{{ macros.ds_add(ds, 7) }}"),
            render("{{ ds_nodash }}")
        )
    );
    assert_eq!(render("{{ 'a' + 'b' ~ 'c' * 2 }}"), "abcc");
    assert_eq!(
        render("{{ [1] + [2] }} {{ ([1] + [2]) | length }}"),
        "[1, 2] 2"
    );
    assert_eq!(
        render("{% set ns = namespace(xs=[]) %}{% for i in range(3) %}{% set ns.xs = ns.xs + [i] %}{% endfor %}{{ ns.xs }}"),
        "[0, 1, 2]"
    );
    assert_eq!(
        render(&format!(
            "{{{{ ((['a'] * {}) + ['b']) | length }}}}",
            MAX_ITEMS - 1
        )),
        MAX_ITEMS.to_string()
    );
    assert_eq!(
        render(&format!(
            "{{{{ ('x' * {MAX_RENDERED_BYTES} ~ '') | length }}}}"
        )),
        MAX_RENDERED_BYTES.to_string()
    );
    assert_eq!(
        render(&format!(
            "{{{{ ('x' * {} + 'y') | length }}}}",
            MAX_RENDERED_BYTES - 1
        )),
        MAX_RENDERED_BYTES.to_string()
    );
    // The lenient renderer (notifiers' messages) still writes an undefined name as nothing.
    assert_eq!(
        Renderer::lenient()
            .render("{{ missing ~ 'x' }}", &ctx)
            .as_deref(),
        Ok("x")
    );
    assert_eq!(
        render(&format!("{{{{ ([1] * {MAX_ITEMS}) | length }}}}")),
        MAX_ITEMS.to_string()
    );
    // The operator's own mistakes are reported as before.
    let err = refused("{{ 'a' * 'b' }}");
    assert!(
        err.to_string()
            .contains("strings can only be multiplied with integers"),
        "{err}"
    );
    let err = refused("{{ [1] * -1 }}");
    assert!(
        err.to_string()
            .contains("sequences and iterables can only be multiplied with integers"),
        "{err}"
    );
}

/// Every place of a template where an expression may stand has its `*` bounded (the renderer
/// finds them in minijinja's parse, whose statements may change with its version).
#[test]
fn a_repetition_anywhere_in_a_template_is_bounded() {
    let huge = "['a'] * 10**10";
    for template in [
        format!("{{{{ {huge} }}}}"),
        format!("{{% set x = {huge} %}}"),
        format!("{{% set x | join(({huge})|first) %}}a{{% endset %}}"),
        format!("{{% for x in {huge} %}}{{% endfor %}}"),
        format!("{{% for x in [1] if x in {huge} %}}{{% endfor %}}"),
        format!("{{% if {huge} %}}{{% endif %}}"),
        format!("{{% if false %}}{{% elif {huge} %}}{{% endif %}}"),
        format!("{{% with x = {huge} %}}{{% endwith %}}"),
        format!("{{% macro m(x={huge}) %}}{{% endmacro %}}{{{{ m() }}}}"),
        format!("{{% macro m(x) %}}{{% endmacro %}}{{{{ m(x={huge}) }}}}"),
        format!("{{% macro m(x) %}}{{% endmacro %}}{{% call m({huge}) %}}{{% endcall %}}"),
        format!("{{% filter replace('a', {huge}) %}}a{{% endfilter %}}"),
        format!("{{% autoescape {huge} %}}{{% endautoescape %}}"),
        format!("{{{{ 1 if {huge} else 2 }}}}"),
        format!("{{{{ {{'k': {huge}}}['k'] }}}}"),
        format!("{{{{ [{huge}][0] }}}}"),
        format!("{{{{ 'a' is in({huge}) }}}}"),
        format!("{{{{ 'abc'[:({huge})|length] }}}}"),
        format!("{{{{ not {huge} }}}}"),
        format!("{{{{ -({huge}) }}}}"),
        format!("{{{{ ({huge}).x }}}}"),
        format!("{{{{ range(*({huge})) }}}}"),
        format!("{{% block b %}}{{{{ {huge} }}}}{{% endblock %}}"),
        "{{ ['a'] * 10\n** 10 }}".to_owned(),
        "{{ ((['a']) * (10**10)) }}".to_owned(),
    ] {
        let err = refused(&template);
        assert!(
            err.to_string()
                .contains("repeated 10000000000 times is too large"),
            "{template}: {err}"
        );
    }
}

#[test]
fn an_undefined_name_in_a_product_is_named_as_written() {
    let err = refused("{{ 3 * missing.attr * 2 }}");
    assert!(
        matches!(&err, TemplateError::Undefined { name, .. } if name == "missing.attr"),
        "{err:?}"
    );
    // The rewritten template keeps the template's lines.
    let err = refused("line one\n{{ [1] *\n  nothing.attr }}");
    assert_eq!(
        err.to_string(),
        "undefined template variable `nothing.attr` at line 3: `nothing.attr }}`"
    );
}

/// Values that double in a loop: a few dozen instructions (fuel does not see them) made a
/// string or a list of 2⁶⁴ items and took all the memory of the process rendering it (a
/// worker, every task on it lost). Each is refused where it would pass the bounds.
#[test]
fn values_doubled_in_a_loop_are_refused() {
    let doubling = |init: &str, step: &str, tail: &str| {
        format!(
            "{{% set ns = namespace(v={init}) %}}{{% for i in range(64) %}}\
             {{% set ns.v = {step} %}}{{% endfor %}}{tail}"
        )
    };
    for (template, expected) in [
        (
            doubling("'x'", "ns.v ~ ns.v", "{{ ns.v | length }}"),
            "the text made by `~` is too large (more than 4194304 bytes)",
        ),
        (
            doubling("'x'", "ns.v + ns.v", "{{ ns.v | length }}"),
            "the text made by `+` is too large (more than 4194304 bytes)",
        ),
        (
            doubling("['x']", "ns.v + ns.v", "{{ ns.v | length }}"),
            "sequences of 524288 and 524288 items joined with `+` are too large",
        ),
        (
            doubling("range(3)", "ns.v + ns.v", "{{ ns.v | length }}"),
            "joined with `+` are too large",
        ),
        // The list shares its items, so it is cheap to make; writing it is not.
        (
            doubling("['x']", "[ns.v, ns.v]", "{{ 'a' ~ ns.v }}"),
            "a value holding more than 1000000 items (nested items included) is too large \
             to be passed to `~`",
        ),
        (
            doubling("['x']", "[ns.v, ns.v]", "{{ ns.v }}"),
            "a value holding more than 1000000 items (nested items included) is too large \
             to be printed",
        ),
        (
            doubling("['x']", "ns.v + [ns.v]", "{{ ns.v | tojson | length }}"),
            "a value holding more than 1000000 items (nested items included) is too large \
             to be passed to `tojson`",
        ),
        (
            doubling(
                "{}",
                "{'a': ns.v, 'b': ns.v}",
                "{{ ns.v | string | length }}",
            ),
            "is too large to be passed to `string`",
        ),
        // A macro's output is captured in memory, beyond the rendered text's bound.
        (
            doubling(
                "['x']",
                "[ns.v, ns.v]",
                "{% macro m(v) %}{{ v }}{% endmacro %}{{ m(ns.v) | length }}",
            ),
            "is too large to be printed",
        ),
        // Shared strings: a thousand references to one 4 MiB string, joined into 4 GB.
        (
            "{% set ns = namespace(xs=[]) %}{% set big = 'x' * 4000000 %}\
             {% for i in range(1000) %}{% set ns.xs = ns.xs + [big] %}{% endfor %}\
             {{ ns.xs | join | length }}"
                .to_owned(),
            "a value holding more than 4194304 bytes of text is too large to be passed to \
             `join`",
        ),
    ] {
        assert_refused(&template, expected);
    }
}

/// A list holding the previous one twice at every level is 2⁶⁴ items that a builtin filter,
/// test or `debug()` taking it as text wrote whole; a namespace assigned into itself was
/// written until the stack overflowed, aborting the process (a worker, every task on it lost).
#[test]
fn values_too_large_to_write_are_refused_as_text() {
    let doubled = "{% set ns = namespace(v=['x']) %}{% for i in range(64) %}\
                   {% set ns.v = [ns.v, ns.v] %}{% endfor %}";
    let holding_itself = "{% set ns = namespace() %}{% set ns.v = ns %}";
    let written = [
        ("{{ ns.v | upper | length }}", "upper"),
        ("{{ ns.v | lower | length }}", "lower"),
        ("{{ ns.v | title | length }}", "title"),
        ("{{ ns.v | capitalize | length }}", "capitalize"),
        ("{{ ns.v | trim | length }}", "trim"),
        ("{{ ns.v | indent | length }}", "indent"),
        ("{{ ns.v | safe | length }}", "safe"),
        ("{{ ns.v | e | length }}", "e"),
        ("{{ ns.v | escape | length }}", "escape"),
        ("{{ 'a' | replace('a', ns.v) | length }}", "replace"),
        ("{{ '%s' | format(ns.v) | length }}", "format"),
        ("{{ ns.v is startingwith('a') }}", "startingwith"),
        ("{{ 'a' is endingwith(ns.v) }}", "endingwith"),
        ("{{ debug(ns.v) | length }}", "debug"),
        ("{{ debug() | length }}", "debug"),
        ("{{ ns.v ~ 'a' }}", "~"),
    ];
    // Each refusal walks a million items, slow in a debug build: the namespace holding
    // itself goes through a few of the ways only.
    let cases = written
        .iter()
        .map(|case| (doubled, case))
        .chain([0, 11, 14, 15].map(|i| (holding_itself, &written[i])));
    for (setup, (expression, used)) in cases {
        let template = format!("{setup}{expression}");
        assert_refused(&template, &format!("is too large to be passed to `{used}`"));
    }
}

/// The rewritten operators give minijinja's own results and errors: the same templates
/// rendered by a plain minijinja environment with the renderer's settings.
#[test]
fn bounded_operators_render_as_minijinja_does() {
    let ctx = serde_json::json!({
        "n": 5, "f": 2.5, "s": "abc", "xs": [1, 2], "d": {"k": "v"}, "big": 9223372036854775807_i64,
        "ds": "2026-12-07", "neg": -0.0,
    });
    assert_renders_as_minijinja(
        &[
        "{{ 1 + 2 }} {{ n + 1 }} {{ n + n }} {{ f + 1 }} {{ f + f }} {{ n + f }} {{ neg + neg }}",
        "{{ big + big }} {{ big + 1 }} {{ -big - 2 + -big }} {{ big * big }} {{ big * 3 }}",
        "{{ 340282366920938463463374607431768211455 + 1 }}",
        "{{ true + 1 }} {{ true + true }} {{ n * true }} {{ 2 * 3 * 4 }} {{ 7 * 0.5 }}",
        "{{ 'a' + 'b' }} {{ s + s }} {{ s * 2 }} {{ 2 * s }} {{ xs + xs }} {{ xs + [3] }}",
        "{{ (range(2) + [5]) | list }} {{ ([] + []) | length }} {{ (xs + xs) | sum }}",
        "{{ n ~ '' }} {{ ds ~ 'T00:00' }} {{ f ~ s }} {{ xs ~ d }} {{ none ~ true }}",
        "{{ 'a' ~ ('b' if false) }}|{{ s ~ s|upper ~ 1 + 2 }}|{{ -n ~ 'x' }}",
        "{% for x in xs %}{{ loop.index + 1 }}{{ loop.index0 * 2 }}{{ x ~ ',' }}{% endfor %}",
        "{% set t = 'a' %}{% set t = t ~ 'b' + 'c' %}{{ t }} {{ (s ~ s)[1:] }} {{ 'x' ~ xs[0] }}",
        "{{ 'a' + 1 }}",
        "{{ xs + 1 }}",
        "{{ 1 + none }}",
        "{{ d + d }}",
        "{{ missing + 1 }}",
        "{{ 'a' ~ missing }}",
        "{{ s * 'b' }}",
        "{{ big * big * big * big * big * big }}",
        // The filters and tests that write a value as text, bounded, write it as before.
        "{{ xs | upper }} {{ d | title }} {{ s | replace('b', xs) }} {{ '%s-%s' | format(n, d) }}",
        "{{ xs | safe }} {{ xs | e }} {{ xs | trim }} {{ d | indent }} {{ s | capitalize }}",
        "{{ xs is startingwith('[1') }} {{ s is endingwith('c') }} {{ debug(xs) }}",
        ],
        &ctx,
    );
}
