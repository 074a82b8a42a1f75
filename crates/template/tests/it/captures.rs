//! What minijinja captures in memory (a macro's text, a `{% set %}` or `{% filter %}` block's,
//! a recursive loop's) is bounded with all the text a render writes: it is held outside the
//! rendered text's bound until the capture ends.

use updraft_template::MAX_WRITTEN_BYTES;

use crate::fixture::{assert_refused, assert_renders_as_minijinja};

/// Text of a kilobyte, written a million times by two nested loops: a gigabyte.
fn kilobyte() -> String {
    "x".repeat(1000)
}

#[test]
fn text_captured_by_macros_and_blocks_is_bounded() {
    let text = kilobyte();
    let million = |body: &str| {
        format!(
            "{{% for i in range(1000) %}}{{% for j in range(1000) %}}{body}\
             {{% endfor %}}{{% endfor %}}"
        )
    };
    let printed = million("{{ big }}");
    let literal = million(&text);
    let big = "{% set big = 'x' * 4000000 %}";
    for template in [
        // A macro printing a 4 MiB string in a loop: 400 GB before it returned.
        format!("{big}{{% macro m() %}}{printed}{{% endmacro %}}{{{{ m() | length }}}}"),
        format!("{big}{{% set y %}}{printed}{{% endset %}}{{{{ y | length }}}}"),
        format!("{big}{{% filter length %}}{printed}{{% endfilter %}}"),
        // The template's own text, in a capturing body, counts as it is written.
        format!("{{% macro m() %}}{literal}{{% endmacro %}}{{{{ m() | length }}}}"),
        format!(
            "{{% macro m() %}}{}{{% endmacro %}}{{{{ m() | length }}}}",
            million(&format!("{{% raw %}}{text}{{% endraw %}}"))
        ),
        format!(
            "{{% macro m() %}}{{{{ caller() }}}}{{% endmacro %}}\
             {{% call m() %}}{literal}{{% endcall %}}"
        ),
        format!(
            "{{% for n in [[1]] recursive %}}{{% if n is number %}}{literal}\
             {{% else %}}{{{{ loop(n) | length }}}}{{% endif %}}{{% endfor %}}"
        ),
    ] {
        assert_refused(
            &template,
            &format!(
                "the text this template writes, with what its macros and `{{% set %}}` and \
                 `{{% filter %}}` blocks capture, exceeds {MAX_WRITTEN_BYTES} bytes"
            ),
        );
    }
}

/// Capturing bodies render as minijinja renders them, the white space their tags trim
/// included (the renderer weighs their text by a call it adds after each piece).
#[test]
fn captured_text_renders_as_minijinja_does() {
    let ctx = serde_json::json!({ "xs": [1, 2], "big": "x".repeat(2_000_000) });
    assert_renders_as_minijinja(
        &[
            "{% macro m(a) -%}\n  a {{ a }}  {%- raw -%}  <{{r}}>  {%- endraw -%}   b  \
             {# c #} d\n  {%- endmacro %}[{{ m(1) }}]",
            "{% set x -%}  t  {%- endset %}[{{ x }}]",
            "{% for i in [1, [2, [3]]] recursive %}({{ i if i is number else loop(i) }})\
             {% endfor %}",
            "{% set y | upper %} a {% raw -%}  b  {%- endraw %} c {%- raw %} d {% endraw +%} e \
             {% endset %}[{{ y }}]",
            "{% macro m() %}\n t {#- c -#} u\n {%- if true -%}\n   v\n {%- endif %}\n\
             {% endmacro -%}\n[{{ m() }}]\n",
            "{% macro m(a) %}\n  {%- for x in a %} <{{ x }}{{ caller(x) }}> {% raw %} {{ }} \
             {% endraw -%}\n     y {% endfor -%}\n{% endmacro %}{% call(x) m(xs) %}  c{{ x }}  \
             {% endcall %}",
            "{% filter upper %} q {{ 1 }} {%+ if true %} w {% endif %}{% endfilter %}",
            "{% autoescape true %}{% set x %}<{{ '<&>' }}>{% endset %}{% endautoescape %}\
             {{ x }}",
            // Captures of a few MiB, within the bound.
            "{% macro m() %}{{ big }}{{ big }}{% endmacro %}{{ m() | length }}",
            "{% set y %}{% for x in xs %}{{ big }}{% endfor %}{% endset %}\
             {{ y | length }}",
        ],
        &ctx,
    );
}
