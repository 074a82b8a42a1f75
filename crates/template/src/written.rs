//! The bound on all the text one render writes, what minijinja captures included.
//!
//! A macro's text, a `{% set %}` block's, a `{% filter %}` block's and a recursive loop's
//! (`loop(...)`) are written into strings minijinja holds until the capture ends, outside the
//! rendered text's bound: a macro printing a 4 MiB string in a loop of 100,000 built 400 GB
//! before it returned. Nothing in minijinja's API sees the size of a capture, so the render
//! counts what it writes instead: every value the formatter prints (captured or not), and the
//! template's own text inside a capturing body, which the rewrite (`rewrite`) follows with a
//! call of the `__updraft_written` filter weighing it. Text printed outside any capture is
//! counted too, as the formatter cannot tell where it writes; it is at most
//! [`MAX_RENDERED_BYTES`], far below the bound.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

use minijinja::value::Object;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State, Value};

use crate::limits::MAX_RENDERED_BYTES;

/// The most bytes one render may write in all: its text and the text its macros, `{% set %}`
/// and `{% filter %}` blocks and recursive loops capture. A value printed through a capture
/// is written (and counted) once by the capture and again where the captured text is printed,
/// hence a multiple of [`MAX_RENDERED_BYTES`].
pub const MAX_WRITTEN_BYTES: usize = 8 * MAX_RENDERED_BYTES;

/// The filter the rewrite calls after a piece of the template's text inside a capturing body.
pub(crate) const FILTER: &str = "__updraft_written";

/// The per-render count, kept in the render's temps (shared with the macros it calls, which
/// minijinja evaluates in states of their own).
const TEMP: &str = "__updraft_written";

/// The worst growth of a text by escaping (`'` becomes `&#x27;`, a control character
/// `\u0000`): what an `{% autoescape %}` block writes is counted as that much at most.
const MAX_ESCAPED_GROWTH: usize = 6;

#[derive(Debug, Default)]
struct Written(AtomicUsize);

impl Object for Written {}

/// Installs the filter that weighs the template's text in capturing bodies.
pub(crate) fn install(env: &mut Environment<'static>) {
    env.add_filter(
        FILTER,
        |state: &State, bytes: usize| -> Result<Value, Error> {
            count(state, bytes)?;
            Ok(Value::from(""))
        },
    );
}

/// Counts the text the formatter is about to write for `value`, refusing it past
/// [`MAX_WRITTEN_BYTES`]. Measured without keeping it: a string by its length, any other
/// value by writing it into a sink that stops past what the bound has left.
pub(crate) fn count_printed(state: &State, value: &Value) -> Result<(), Error> {
    let written = state.get_or_set_temp_object(TEMP, Written::default);
    let left = MAX_WRITTEN_BYTES.saturating_sub(written.0.load(Ordering::Relaxed));
    let growth = if state.auto_escape() == AutoEscape::None || value.is_safe() {
        1
    } else {
        MAX_ESCAPED_GROWTH
    };
    let len = match value.as_str() {
        Some(text) => text.len(),
        None => {
            let mut sink = Measure {
                len: 0,
                limit: left,
            };
            if fmt::write(&mut sink, format_args!("{value}")).is_err() {
                return Err(too_much());
            }
            sink.len
        }
    };
    add(&written, len.saturating_mul(growth))
}

fn count(state: &State, bytes: usize) -> Result<(), Error> {
    add(&state.get_or_set_temp_object(TEMP, Written::default), bytes)
}

fn add(written: &Written, bytes: usize) -> Result<(), Error> {
    let total = written.0.load(Ordering::Relaxed).saturating_add(bytes);
    if total > MAX_WRITTEN_BYTES {
        return Err(too_much());
    }
    written.0.store(total, Ordering::Relaxed);
    Ok(())
}

fn too_much() -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!(
            "the text this template writes, with what its macros and `{{% set %}}` and \
             `{{% filter %}}` blocks capture, exceeds {MAX_WRITTEN_BYTES} bytes"
        ),
    )
}

/// Counts the length of what is written into it, failing past `limit`.
struct Measure {
    len: usize,
    limit: usize,
}

impl fmt::Write for Measure {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.len = self.len.saturating_add(s.len());
        if self.len > self.limit {
            return Err(fmt::Error);
        }
        Ok(())
    }
}
