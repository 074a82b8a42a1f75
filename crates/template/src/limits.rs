//! Bounds on what one render may cost beyond minijinja's fuel (which counts instructions, not
//! the work inside one instruction): the size of the rendered text, and the number of items of
//! a value that is printed, walked whole by a filter or method, or written as text by a
//! builtin filter, test or `debug()`. `[x] * 10**11` is a lazy
//! sequence of a hundred billion items that costs one instruction to make; printing it or
//! passing it to `|list` would occupy a worker for hours and exhaust its memory.

use std::io;

use minijinja::value::{Rest, ValueKind};
use minijinja::{filters, functions, tests, Environment, Error, ErrorKind, Output, State, Value};

use crate::written;

/// The most bytes one render may produce: far above any command line or environment value.
pub const MAX_RENDERED_BYTES: usize = 4 * 1024 * 1024;

/// The most items (or characters, for a string) of a value that a render prints, or that a
/// filter or method walks whole.
pub const MAX_ITEMS: usize = 1_000_000;

/// Installs the bounds into `env`: a formatter that refuses to print huge sequences and maps,
/// the builtin filters that walk their whole input refusing huge ones, and the Python-style
/// methods doing the same for their receiver and arguments.
pub(crate) fn install(env: &mut Environment<'static>) {
    env.set_formatter(|out: &mut Output, state: &State, value: &Value| {
        // A string is written at once, so the bound on the rendered text is enough for it
        // where it is printed; a capture is bounded by what the render writes in all.
        if value.kind() == ValueKind::String {
            written::count_printed(state, value)?;
            return minijinja::escape_formatter(out, state, value);
        }
        let value = bounded(value, "printed")?;
        written::count_printed(state, &value)?;
        minijinja::escape_formatter(out, state, &value)
    });
    for (name, original) in walking_filters() {
        env.add_filter(
            name,
            move |state: &State, args: Rest<Value>| -> Result<Value, Error> {
                let args = args
                    .iter()
                    .map(|arg| bounded(arg, name))
                    .collect::<Result<Vec<_>, _>>()?;
                original.call(state, &args)
            },
        );
    }
    for (name, original) in text_filters() {
        env.add_filter(
            name,
            move |state: &State, args: Rest<Value>| -> Result<Value, Error> {
                check_texts(&args, name)?;
                original.call(state, &args)
            },
        );
    }
    for (name, original) in text_tests() {
        env.add_test(
            name,
            move |state: &State, args: Rest<Value>| -> Result<bool, Error> {
                check_texts(&args, name)?;
                Ok(original.call(state, &args)?.is_true())
            },
        );
    }
    env.add_function(
        "debug",
        |state: &State, args: Rest<Value>| -> Result<String, Error> {
            if args.is_empty() {
                // Without arguments it writes every name the template sees.
                let seen = state.known_variables();
                let values: Vec<Value> = seen.iter().filter_map(|n| state.lookup(n)).collect();
                check_texts(&values, "debug")?;
            } else {
                check_texts(&args, "debug")?;
            }
            Ok(functions::debug(state, args))
        },
    );
    env.set_unknown_method_callback(
        |state: &State, value: &Value, method: &str, args: &[Value]| {
            let value = bounded(value, method)?;
            let args = args
                .iter()
                .map(|arg| bounded(arg, method))
                .collect::<Result<Vec<_>, _>>()?;
            minijinja_contrib::pycompat::unknown_method_callback(state, &value, method, &args)
        },
    );
}

/// `value` checked by [`check_items`], and a lazy sequence of known length made a list. A
/// sequence repeated `n` times walks its `n` repetitions even when they are empty: `[] *
/// 10**10` has no item, yet listing or printing it spun for minutes (found by fuzzing). A
/// lazy sequence is therefore taken only as far as the length it reports, nothing when that is
/// zero; one that yields more than it reports (a repetition count whose product overflowed)
/// is an error.
fn bounded(value: &Value, used: &str) -> Result<Value, Error> {
    check_items(value, used)?;
    if value.kind() != ValueKind::Iterable {
        return Ok(value.clone());
    }
    let Some(length) = value.len() else {
        return Ok(value.clone());
    };
    if length == 0 {
        return Ok(Value::from(Vec::<Value>::new()));
    }
    let items: Vec<Value> = value.try_iter()?.take(length + 1).collect();
    if items.len() > length {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "a sequence yields more than the {length} items it reports (a repetition \
                 count too large?)"
            ),
        ));
    }
    Ok(Value::from(items))
}

/// The builtin filters that copy, sort or walk every item of their input (the lazy ones,
/// `first` and `length`, are left as they are).
fn walking_filters() -> [(&'static str, Value); 24] {
    [
        ("batch", Value::from_function(filters::batch)),
        ("dictsort", Value::from_function(filters::dictsort)),
        ("groupby", Value::from_function(filters::groupby)),
        ("items", Value::from_function(filters::items)),
        ("join", Value::from_function(filters::join)),
        ("last", Value::from_function(filters::last)),
        ("lines", Value::from_function(filters::lines)),
        ("list", Value::from_function(filters::list)),
        ("map", Value::from_function(filters::map)),
        ("max", Value::from_function(filters::max)),
        ("min", Value::from_function(filters::min)),
        ("pprint", Value::from_function(filters::pprint)),
        ("reject", Value::from_function(filters::reject)),
        ("rejectattr", Value::from_function(filters::rejectattr)),
        ("reverse", Value::from_function(filters::reverse)),
        ("select", Value::from_function(filters::select)),
        ("selectattr", Value::from_function(filters::selectattr)),
        ("slice", Value::from_function(filters::slice)),
        ("sort", Value::from_function(filters::sort)),
        ("string", Value::from_function(filters::string)),
        ("sum", Value::from_function(filters::sum)),
        ("tojson", Value::from_function(filters::tojson)),
        ("unique", Value::from_function(filters::unique)),
        ("split", Value::from_function(filters::split)),
    ]
}

/// The builtin filters that write a value whole as text, their input or an argument they take
/// as a string (the filters that walk their input are `walking_filters`).
fn text_filters() -> [(&'static str, Value); 11] {
    [
        ("capitalize", Value::from_function(filters::capitalize)),
        ("e", Value::from_function(filters::escape)),
        ("escape", Value::from_function(filters::escape)),
        ("format", Value::from_function(filters::format)),
        ("indent", Value::from_function(filters::indent)),
        ("lower", Value::from_function(filters::lower)),
        ("replace", Value::from_function(filters::replace)),
        ("safe", Value::from_function(filters::safe)),
        ("title", Value::from_function(filters::title)),
        ("trim", Value::from_function(filters::trim)),
        ("upper", Value::from_function(filters::upper)),
    ]
}

/// The builtin tests that write their operands whole as text.
fn text_tests() -> [(&'static str, Value); 2] {
    [
        ("startingwith", Value::from_function(tests::is_startingwith)),
        ("endingwith", Value::from_function(tests::is_endingwith)),
    ]
}

/// Refuses the values of `values` that are not strings and hold too much to be written as
/// text by `used` ([`check_items`]): a list holding the previous one twice at every level
/// (`[ns.xs, ns.xs]` in a loop) is 2⁶⁴ items to write, and a namespace assigned into itself
/// (`{% set ns.x = ns %}`) is written until the stack overflows, which aborts the process. A
/// string is its own text, bounded where it is made.
pub(crate) fn check_texts(values: &[Value], used: &str) -> Result<(), Error> {
    values
        .iter()
        .filter(|value| value.kind() != ValueKind::String)
        .try_for_each(|value| check_items(value, used))
}

/// Refuses a sequence, map or string of more than [`MAX_ITEMS`] items about to be `used`, and
/// a sequence or map holding more than that, or more than [`MAX_RENDERED_BYTES`] of text, at
/// any depth: a list that holds itself twice at every level (`[ns.xs, ns.xs]` in a loop)
/// costs nothing to make, since its items are shared, but writing or walking it visits every
/// copy. Stops counting past the bounds, so costs at most that.
fn check_items(value: &Value, used: &str) -> Result<(), Error> {
    let kind = value.kind();
    let sized = matches!(
        kind,
        ValueKind::Seq | ValueKind::Iterable | ValueKind::Map | ValueKind::String
    );
    match value.len() {
        Some(items) if sized && items > MAX_ITEMS => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "a value of {items} items is too large to be {} (at most {MAX_ITEMS})",
                    describe_use(used)
                ),
            ))
        }
        Some(_) if kind != ValueKind::String && sized => {}
        _ => return Ok(()),
    }
    let (mut items, mut bytes) = (0usize, 0usize);
    let within = walk_nested(value, |item| {
        items += 1;
        bytes = bytes.saturating_add(item.as_str().map_or(0, str::len));
        items <= MAX_ITEMS && bytes <= MAX_RENDERED_BYTES
    })?;
    if within {
        return Ok(());
    }
    let held = if items > MAX_ITEMS {
        format!("more than {MAX_ITEMS} items (nested items included)")
    } else {
        format!("more than {MAX_RENDERED_BYTES} bytes of text")
    };
    Err(Error::new(
        ErrorKind::InvalidOperation,
        format!(
            "a value holding {held} is too large to be {}",
            describe_use(used)
        ),
    ))
}

/// Visits every item `value` holds, at any depth (a map's keys and values), until `visit`
/// returns `false`; whether it never did. A sized container is walked in turn; an unsized one
/// (a one-shot iterator) must not be consumed here.
pub(crate) fn walk_nested(
    value: &Value,
    mut visit: impl FnMut(&Value) -> bool,
) -> Result<bool, Error> {
    let mut pending = vec![value.clone()];
    while let Some(value) = pending.pop() {
        let is_map = value.kind() == ValueKind::Map;
        for item in value.try_iter()? {
            let inner = if is_map {
                Some(value.get_item(&item)?)
            } else {
                None
            };
            for held in std::iter::once(item).chain(inner) {
                if !visit(&held) {
                    return Ok(false);
                }
                let container = matches!(
                    held.kind(),
                    ValueKind::Seq | ValueKind::Iterable | ValueKind::Map
                );
                if container && held.len().is_some() {
                    pending.push(held);
                }
            }
        }
    }
    Ok(true)
}

fn describe_use(used: &str) -> String {
    if used == "printed" {
        used.to_owned()
    } else {
        format!("passed to `{used}`")
    }
}

/// The rendered text, refusing to grow past [`MAX_RENDERED_BYTES`].
#[derive(Default)]
pub(crate) struct BoundedOutput {
    pub bytes: Vec<u8>,
    pub overflowed: bool,
}

impl io::Write for BoundedOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_RENDERED_BYTES {
            self.overflowed = true;
            return Err(io::Error::other("the rendered text is too large"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
