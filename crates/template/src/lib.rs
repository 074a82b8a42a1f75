//! Jinja templating of task fields (`bash_command`, `env` values, `cwd`) with Airflow's context.
//!
//! A [`Renderer`] owns one configured minijinja environment (strict undefined, Airflow's `ds`/`ts`
//! filters, `macros`, Python-style string and dict methods) and is reused for every render. The
//! caller describes the task instance being rendered in a [`TemplateContext`]; the template sees
//! the names Airflow 3 provides: `ds`, `ds_nodash`, `ts`, `ts_nodash`, `ts_nodash_with_tz`,
//! `logical_date`, `data_interval_start`, `data_interval_end`, `run_id`, `dag_run`, `dag`,
//! `params`, `task`, `ti` / `task_instance` (with `ti.xcom_pull(...)`), `task_instance_key_str`,
//! `var.value.NAME`, `var.json.NAME`, `conn.ID.host` (and `login`, `password`, `port`,
//! `schema`, `conn_type`, `extra_dejson.KEY`, `get_uri()`) and `macros.ds_add` /
//! `macros.ds_format`.
//!
//! Loading variables, connections and XComs costs a database round trip, so
//! [`needs_variables`], [`needs_connections`] and [`needs_xcoms`] tell the caller cheaply
//! whether a template can use them at all.
//!
//! **Architecture Invariant:** this crate does no IO and never panics on a template: every
//! mistake in a template is a [`TemplateError`] whose `Display` is fit for the task's log. A
//! render's cost is bounded: instructions by fuel, the rendered text by [`MAX_RENDERED_BYTES`],
//! values printed or walked whole by [`MAX_ITEMS`] (`limits`), and so are the strings and
//! sequences that `*`, `+` and `~` make, whatever consumes them (`rewrite`, `operators`); all
//! the text a render writes, what macros and blocks capture included, by
//! [`MAX_WRITTEN_BYTES`] (`written`).

mod context;
mod error;
mod identity;
mod limits;
mod macros;
mod operators;
mod rewrite;
mod written;

use std::panic::{catch_unwind, AssertUnwindSafe};

use minijinja::{Environment, UndefinedBehavior};

pub use context::{TemplateConnection, TemplateContext};
pub use error::{Location, TemplateError};
pub use identity::identity_env;
pub use limits::{MAX_ITEMS, MAX_RENDERED_BYTES};
pub use written::MAX_WRITTEN_BYTES;

/// Upper bound on the instructions one render may execute, so that a template such as two nested
/// `range(100000)` loops fails with an error instead of occupying a worker for hours.
const FUEL: u64 = 10_000_000;

/// Renders templates against a [`TemplateContext`]. Build it once and reuse it: it holds the
/// configured minijinja environment. It is `Send + Sync`, so one instance can serve many threads.
pub struct Renderer {
    env: Environment<'static>,
}

impl Renderer {
    /// A renderer with Airflow's defaults: undefined names are errors, trailing newlines are
    /// kept (rendering only substitutes, it never reshapes a script), no HTML escaping.
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        env.set_debug(true);
        env.set_fuel(Some(FUEL));
        limits::install(&mut env);
        operators::install(&mut env);
        written::install(&mut env);
        macros::register(&mut env);
        Renderer { env }
    }

    /// A renderer for texts that show whatever their context has (a notifier's message):
    /// undefined names render as nothing, as in Airflow's notifier templates. The same bounds.
    pub fn lenient() -> Self {
        let mut renderer = Renderer::new();
        renderer
            .env
            .set_undefined_behavior(UndefinedBehavior::Lenient);
        renderer
    }

    /// Renders `template` for the task instance described by `ctx`.
    ///
    /// A string without `{{`, `{%` or `{#` is returned unchanged without invoking the engine.
    pub fn render(&self, template: &str, ctx: &TemplateContext) -> Result<String, TemplateError> {
        if !is_template(template) {
            return Ok(template.to_owned());
        }
        let value = ctx.to_value(
            needs_xcoms(template),
            needs_variables(template),
            needs_connections(template),
        );
        self.render_bounded(template, value)
    }

    /// Renders `template` against any JSON `context` (its keys are the template's names),
    /// within the same bounds as [`Renderer::render`].
    pub fn render_json(
        &self,
        template: &str,
        context: &serde_json::Value,
    ) -> Result<String, TemplateError> {
        if !is_template(template) {
            return Ok(template.to_owned());
        }
        self.render_bounded(template, minijinja::Value::from_serialize(context))
    }

    fn render_bounded(
        &self,
        template: &str,
        value: minijinja::Value,
    ) -> Result<String, TemplateError> {
        let mut output = limits::BoundedOutput::default();
        // What minijinja compiles: the template with its growing operators bounded, on the
        // same lines (so errors name the template's own lines).
        let mut compiled_source = None;
        // minijinja's arithmetic on huge repetition counts can overflow where overflow checks
        // are on (debug builds): that panic is the template's mistake, reported as such.
        let rendered = catch_unwind(AssertUnwindSafe(|| {
            let rewritten = compiled_source.insert(rewrite::rewrite(template)?);
            let source = rewritten.as_ref().map_or(template, |r| r.source.as_str());
            self.env
                .template_from_str(source)
                .and_then(|compiled| compiled.render_captured_to(value, &mut output))
                .map(drop)
        }));
        match rendered {
            Ok(Ok(_)) => String::from_utf8(output.bytes).map_err(|_| TemplateError::Render {
                message: "the rendered text is not UTF-8".to_owned(),
                location: Location::default(),
            }),
            Ok(Err(_)) if output.overflowed => Err(TemplateError::TooLarge {
                message: format!("the rendered text exceeds {MAX_RENDERED_BYTES} bytes"),
            }),
            Ok(Err(err)) => {
                let rewritten = compiled_source.flatten();
                Err(TemplateError::from_minijinja(
                    &err,
                    template,
                    |range| match &rewritten {
                        Some(rewritten) => rewritten.original_range(range),
                        None => Some(range),
                    },
                ))
            }
            Err(_) => Err(TemplateError::Render {
                message: "the template engine failed on this template (a number too large?)"
                    .to_owned(),
                location: Location::default(),
            }),
        }
    }
}

impl Default for Renderer {
    fn default() -> Self {
        Renderer::new()
    }
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer").finish_non_exhaustive()
    }
}

/// Whether `template` contains Jinja syntax at all; strings that do not are rendered as is.
pub fn is_template(template: &str) -> bool {
    template.contains("{{") || template.contains("{%") || template.contains("{#")
}

/// Whether rendering `template` may call `ti.xcom_pull`, i.e. whether the caller must load this
/// run's XComs into [`TemplateContext::xcoms`]. Conservative: a `false` is always right.
pub fn needs_xcoms(template: &str) -> bool {
    is_template(template) && template.contains("xcom_pull")
}

/// Whether rendering `template` may read `var`, i.e. whether the caller must load the variables
/// into [`TemplateContext::variables`]. Conservative: a `false` is always right.
pub fn needs_variables(template: &str) -> bool {
    is_template(template) && contains_identifier(template, "var")
}

/// Whether rendering `template` may read `conn`, i.e. whether the caller must load the
/// connections into [`TemplateContext::connections`]. Conservative: a `false` is always right.
pub fn needs_connections(template: &str) -> bool {
    is_template(template) && contains_identifier(template, "conn")
}

/// Whether `word` occurs in `text` with no identifier character directly before or after it.
fn contains_identifier(text: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word).any(|(start, _)| {
        let before = text[..start].chars().next_back();
        let after = text[start + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}
