//! The bounded operators every `*`, `+` and `~` of a template is compiled into (`rewrite`).
//!
//! Each refuses a result beyond the render's bounds, before making it: a string longer than
//! [`MAX_RENDERED_BYTES`], a sequence of more than [`MAX_ITEMS`] items. Otherwise the result
//! is minijinja's own: the operands go to minijinja's operator (an expression of an empty
//! environment; the operators are pure functions of their operands), except where minijinja's
//! definition is short enough to be spelled out exactly here (whole numbers, two strings, `~`
//! of defined values), which keeps the cost of the everyday `loop.index + 1` or `ds ~ 'T'` at
//! a filter call instead of a second evaluation.

use std::fmt::{self, Write as _};
use std::sync::LazyLock;

use minijinja::value::{Rest, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Expression, State, UndefinedBehavior, Value};

use crate::limits::{check_texts, walk_nested, MAX_ITEMS, MAX_RENDERED_BYTES};

/// An operator the renderer bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operator {
    Mul,
    Add,
    Concat,
}

impl Operator {
    const ALL: [Operator; 3] = [Operator::Mul, Operator::Add, Operator::Concat];

    /// The operator as written in a template.
    pub(crate) fn symbol(self) -> char {
        match self {
            Operator::Mul => '*',
            Operator::Add => '+',
            Operator::Concat => '~',
        }
    }

    /// What replaces the operator between its two operands (each then in parentheses).
    pub(crate) fn call(self) -> &'static str {
        match self {
            Operator::Mul => ")|__updraft_mul(",
            Operator::Add => ")|__updraft_add(",
            Operator::Concat => ")|__updraft_concat(",
        }
    }

    fn filter(self) -> &'static str {
        let call = self.call();
        &call[2..call.len() - 1]
    }

    fn expression(self) -> &'static str {
        match self {
            Operator::Mul => "a * b",
            Operator::Add => "a + b",
            Operator::Concat => "a ~ b",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Installs the operators' filters into `env`.
pub(crate) fn install(env: &mut Environment<'static>) {
    env.add_filter(Operator::Mul.filter(), bounded_mul);
    env.add_filter(Operator::Add.filter(), bounded_add);
    env.add_filter(Operator::Concat.filter(), bounded_concat);
}

/// The two operands, taken as they come: a typed argument list would read an undefined
/// operand as missing.
fn operands(operator: Operator, operands: Rest<Value>) -> Result<(Value, Value), Error> {
    let [a, b] = <[Value; 2]>::try_from(operands.0).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("`{}` takes two operands", operator.filter()),
        )
    })?;
    Ok((a, b))
}

fn is_seq(value: &Value) -> bool {
    matches!(value.kind(), ValueKind::Seq | ValueKind::Iterable)
}

/// Two whole numbers as minijinja's arithmetic reads them (it computes in `i128`).
fn whole_numbers(a: &Value, b: &Value) -> Option<(i128, i128)> {
    if !(a.is_integer() && b.is_integer()) {
        return None;
    }
    Some((
        i128::try_from(a.clone()).ok()?,
        i128::try_from(b.clone()).ok()?,
    ))
}

/// A whole number as minijinja stores the result of its arithmetic.
fn whole_number(value: i128) -> Value {
    i64::try_from(value).map_or_else(|_| Value::from(value), Value::from)
}

/// `a * b` as minijinja computes it, refused when it repeats a sequence into more than
/// [`MAX_ITEMS`] items, counting what the repeated items hold (a list of a million lists of a
/// million items is a trillion items to write), or a string past [`MAX_RENDERED_BYTES`]
/// (minijinja's own bound is 100 MB, which a list literal of a few such strings multiplies).
/// A repetition of an empty sequence is empty however large the count, and made so at once:
/// minijinja would walk every empty repetition.
fn bounded_mul(state: &State, args: Rest<Value>) -> Result<Value, Error> {
    let (a, b) = operands(Operator::Mul, args)?;
    if let Some(product) = whole_numbers(&a, &b).and_then(|(a, b)| a.checked_mul(b)) {
        return Ok(whole_number(product));
    }
    let repeated_string = a
        .as_str()
        .map(|s| (s, &b))
        .or_else(|| b.as_str().map(|s| (s, &a)));
    if let Some((s, count)) = repeated_string {
        let count = count.as_usize().unwrap_or(0);
        if s.len()
            .checked_mul(count)
            .is_none_or(|len| len > MAX_RENDERED_BYTES)
        {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "a string of {} bytes repeated {count} times is too large (at most \
                     {MAX_RENDERED_BYTES} bytes)",
                    s.len()
                ),
            ));
        }
        return minijinja_operator(Operator::Mul, state, &a, &b);
    }
    let repetition = if is_seq(&a) {
        Some((&a, &b))
    } else if is_seq(&b) {
        Some((&b, &a))
    } else {
        None
    };
    // minijinja reports a count that is not an integer, or a sequence of unknown length.
    let Some((seq, count, len)) = repetition
        .and_then(|(seq, count)| Some((seq, count.as_usize()?, seq.len()?)))
        .filter(|(_, count, _)| *count > 0)
    else {
        return minijinja_operator(Operator::Mul, state, &a, &b);
    };
    if len == 0 {
        return minijinja_operator(Operator::Mul, state, seq, &Value::from(0));
    }
    let too_large = || {
        Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "a sequence of {len} items repeated {count} times is too large (at most \
                 {MAX_ITEMS} items, nested items and characters included)"
            ),
        )
    };
    if len.checked_mul(count).is_none_or(|items| items > MAX_ITEMS) {
        return Err(too_large());
    }
    if !holds_at_most(seq, MAX_ITEMS / count)? {
        return Err(too_large());
    }
    minijinja_operator(Operator::Mul, state, &a, &b)
}

/// `a + b` as minijinja computes it, refused when it makes a string longer than
/// [`MAX_RENDERED_BYTES`] or a sequence of more than [`MAX_ITEMS`] items. minijinja joins two
/// sequences lazily, and copies the whole chain once it is 33 joins deep: a list doubled by `+`
/// in a loop is 2³³ items there. What the joined items hold is not counted here (that would
/// walk both operands at every `+`, making the common `ns.xs + [x]` loop quadratic); nesting
/// is bounded where it is printed or walked, as it is for a list literal (`limits`).
fn bounded_add(state: &State, args: Rest<Value>) -> Result<Value, Error> {
    let (a, b) = operands(Operator::Add, args)?;
    if let Some(sum) = whole_numbers(&a, &b).and_then(|(a, b)| a.checked_add(b)) {
        return Ok(whole_number(sum));
    }
    if a.kind() == ValueKind::String && b.kind() == ValueKind::String {
        if let (Some(left), Some(right)) = (a.as_str(), b.as_str()) {
            check_string_length(left.len().saturating_add(right.len()), "+")?;
            return Ok(Value::from([left, right].concat()));
        }
    }
    if is_seq(&a) && is_seq(&b) {
        let (Some(left), Some(right)) = (a.len(), b.len()) else {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "cannot join a sequence of unknown length with `+` (make it a list first: \
                 `|list`)",
            ));
        };
        let items = left.saturating_add(right);
        if items > MAX_ITEMS {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "sequences of {left} and {right} items joined with `+` are too large (at \
                     most {MAX_ITEMS} items)"
                ),
            ));
        }
    }
    minijinja_operator(Operator::Add, state, &a, &b)
}

/// `a ~ b` as minijinja computes it (the two values written one after the other), refused
/// when the text would be longer than [`MAX_RENDERED_BYTES`]: written into a bounded buffer,
/// so that a value whose text is huge (a list that holds itself twice at every level, made
/// by `[ns.xs, ns.xs]` in a loop) costs no more than the bound.
fn bounded_concat(state: &State, args: Rest<Value>) -> Result<Value, Error> {
    let (a, b) = operands(Operator::Concat, args)?;
    // minijinja's undefined checks depend on the environment's behaviour: its own operator
    // decides.
    if a.is_undefined() || b.is_undefined() {
        return minijinja_operator(Operator::Concat, state, &a, &b);
    }
    // Writing stops at the bound on its length, but a value holding itself would overflow
    // the stack before that.
    check_texts(&[a.clone(), b.clone()], "~")?;
    let known = a.as_str().map(str::len).unwrap_or(0) + b.as_str().map(str::len).unwrap_or(0);
    check_string_length(known, "~")?;
    let mut text = BoundedText {
        text: String::with_capacity(known),
        overflowed: false,
    };
    match write!(text, "{a}{b}") {
        Ok(()) => Ok(Value::from(text.text)),
        Err(_) if text.overflowed => Err(too_long("~")),
        // A value whose text fails to write: minijinja reports it.
        Err(_) => minijinja_operator(Operator::Concat, state, &a, &b),
    }
}

fn check_string_length(len: usize, operator: &str) -> Result<(), Error> {
    if len > MAX_RENDERED_BYTES {
        return Err(too_long(operator));
    }
    Ok(())
}

fn too_long(operator: &str) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!(
            "the text made by `{operator}` is too large (more than {MAX_RENDERED_BYTES} bytes)"
        ),
    )
}

/// Text that refuses to grow past [`MAX_RENDERED_BYTES`].
struct BoundedText {
    text: String,
    overflowed: bool,
}

impl fmt::Write for BoundedText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.text.len() + s.len() > MAX_RENDERED_BYTES {
            self.overflowed = true;
            return Err(fmt::Error);
        }
        self.text.push_str(s);
        Ok(())
    }
}

/// Whether `seq` holds at most `limit` items, counting the items of the sequences and maps in
/// it and the characters of its strings; stops counting past `limit`, so costs at most that.
fn holds_at_most(seq: &Value, limit: usize) -> Result<bool, Error> {
    let mut counted = 0usize;
    walk_nested(seq, |held| {
        // A string counts its characters (bytes, at no cost), any other item one.
        counted = counted.saturating_add(held.as_str().map_or(1, |s| s.len().max(1)));
        counted <= limit
    })
}

/// The environments minijinja's operators are evaluated in, one for each way of treating
/// undefined values (`~` refuses an undefined operand where the render's environment would).
static ENVIRONMENTS: LazyLock<[Environment<'static>; 4]> = LazyLock::new(|| {
    [
        UndefinedBehavior::Lenient,
        UndefinedBehavior::Chainable,
        UndefinedBehavior::SemiStrict,
        UndefinedBehavior::Strict,
    ]
    .map(|behavior| {
        let mut env = Environment::empty();
        env.set_undefined_behavior(behavior);
        env
    })
});

type Compiled = Result<Expression<'static, 'static>, Error>;

static EXPRESSIONS: LazyLock<[[Compiled; 3]; 4]> = LazyLock::new(|| {
    std::array::from_fn(|env| {
        Operator::ALL.map(|operator| ENVIRONMENTS[env].compile_expression(operator.expression()))
    })
});

/// minijinja's own `operator` on `a` and `b`, as the render's environment treats undefined
/// values; its errors lose the expression's location, so that the template's is reported.
fn minijinja_operator(
    operator: Operator,
    state: &State,
    a: &Value,
    b: &Value,
) -> Result<Value, Error> {
    let env = match state.undefined_behavior() {
        UndefinedBehavior::Lenient => 0,
        UndefinedBehavior::Chainable => 1,
        UndefinedBehavior::SemiStrict => 2,
        _ => 3,
    };
    let expression = EXPRESSIONS[env][operator.index()]
        .as_ref()
        .map_err(|err| Error::new(err.kind(), "the operation could not be computed"))?;
    expression
        .eval(minijinja::context! { a => a, b => b })
        .map_err(|err| match err.detail() {
            Some(detail) => Error::new(err.kind(), detail.to_owned()),
            None => Error::from(err.kind()),
        })
}
