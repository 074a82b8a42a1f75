//! What one render may cost: templates that would print, copy or walk billions of items, or
//! write gigabytes, are refused with an error at once (found by fuzzing, `fuzz/`).

use updraft_template::{Renderer, TemplateError, MAX_ITEMS, MAX_RENDERED_BYTES};

use crate::fixture::context;

fn refused(template: &str) -> TemplateError {
    match Renderer::new().render(template, &context()) {
        Ok(text) => panic!("{template:?} rendered {} bytes", text.len()),
        Err(err) => err,
    }
}

#[test]
fn printing_a_sequence_repeated_billions_of_times_is_refused() {
    // The fuzzer's find: a lazy sequence of 122 billion items, made by one instruction.
    let err = refused("{{ 11*11111111111*['items'] }}");
    assert_eq!(
        err.to_string(),
        "template error at line 1: `{{ 11*11111111111*['items'] }}`: a value of 122222222221 \
         items is too large to be printed (at most 1000000)"
    );
}

#[test]
fn filters_and_methods_refuse_to_walk_a_huge_sequence() {
    for (template, used) in [
        ("{{ (['a'] * 10**10) | list | length }}", "`list`"),
        ("{{ (['a'] * 10**10) | join(',') }}", "`join`"),
        ("{{ (['a', 'b'] * 10**10) | sort | first }}", "`sort`"),
        ("{{ (['a'] * 10**10) | unique | first }}", "`unique`"),
        ("{{ ','.join(['a'] * 10**10) }}", "`join`"),
        ("{{ (['a'] * 10**10).count('a') }}", "`count`"),
    ] {
        let err = refused(template);
        assert!(
            matches!(err, TemplateError::Render { .. }),
            "{template}: {err:?}"
        );
        assert!(
            err.to_string()
                .contains(&format!("items is too large to be passed to {used}")),
            "{template}: {err}"
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
    let err = refused("{{ 'x' * 5000000 }}");
    assert!(matches!(err, TemplateError::TooLarge { .. }), "{err:?}");
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
}
