//! Bounds on sequence repetition (`seq * n`), where a render's huge values are born.
//!
//! minijinja repeats a sequence lazily, in one instruction, and its consumers walk the result
//! inside one instruction too: printing, `~`, a `for` loop, an `in` test, unpacking with `*`,
//! comparing, slicing, filters. Fuel counts instructions, so `['a'] * 10**12` or `[] * 10**12`
//! occupied a worker for hours whichever consumed it (found by fuzzing). minijinja has no hook
//! on its operators, and it even evaluates a constant product while compiling
//! (`{{ 'a' ~ ['x'] * 10**10 }}` wrote every item before the render began). So every `*` of a
//! template is compiled as a call of the `__updraft_mul` filter, which refuses a repetition
//! too large for [`MAX_ITEMS`] and otherwise hands both operands to minijinja's own `*`: one
//! point that covers every consumer, and the operator's meaning stays minijinja's.
//!
//! The rewrite is done on the template's text, with the spans of minijinja's own parse
//! (`unstable_machinery`), so that the template still compiles and renders through the
//! ordinary `Template` path (fuel, the bounded output, debug info): `a * b` becomes
//! `(a)|__updraft_mul(b)`, on the same lines.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::LazyLock;

use minijinja::machinery::ast::{BinOpKind, CallArg, Expr, Stmt};
use minijinja::machinery::{parse, WhitespaceConfig};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Rest, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Expression, Value};

use crate::limits::MAX_ITEMS;

/// The filter every `*` of a template is compiled into.
pub(crate) const MUL_FILTER: &str = "__updraft_mul";

/// What replaces the `*` between the two operands (each then in parentheses).
const MUL_CALL: &str = ")|__updraft_mul(";

/// Installs [`MUL_FILTER`] into `env`.
pub(crate) fn install(env: &mut Environment<'static>) {
    env.add_filter(MUL_FILTER, bounded_mul);
}

/// A template's text with every multiplication made a call of [`MUL_FILTER`], line for line.
pub(crate) struct Rewritten {
    pub source: String,
    /// The template's byte offset of each byte of `source`, and of its end.
    origin: Vec<usize>,
}

impl Rewritten {
    /// The template's range of a range of `source` (an expression named in an error).
    pub fn original_range(&self, range: Range<usize>) -> Option<Range<usize>> {
        Some(*self.origin.get(range.start)?..*self.origin.get(range.end)?)
    }
}

/// `template` rewritten, or `None` when it has no `*` or does not parse (minijinja then
/// reports the syntax error itself).
pub(crate) fn rewrite(template: &str) -> Result<Option<Rewritten>, Error> {
    if !template.contains('*') {
        return Ok(None);
    }
    // The environment's syntax is the default one; `SyntaxConfig` is a unit struct unless
    // minijinja's `custom_syntax` is on, which another crate of a build may turn on.
    #[allow(clippy::default_constructed_unit_structs)]
    let Ok(ast) = parse(
        template,
        "<string>",
        SyntaxConfig::default(),
        WhitespaceConfig::default(),
    ) else {
        return Ok(None);
    };
    let mut products = Vec::new();
    visit_stmt(&ast, &mut products);
    if products.is_empty() {
        return Ok(None);
    }
    let mut opens: BTreeMap<usize, usize> = BTreeMap::new();
    let mut closes: BTreeMap<usize, usize> = BTreeMap::new();
    let mut stars = BTreeSet::new();
    for (left, right) in products {
        let star = operator_offset(template, left.1, right.0).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                "a multiplication of this template could not be bounded (please report it)",
            )
        })?;
        *opens.entry(left.0).or_default() += 1;
        *closes.entry(right.1).or_default() += 1;
        stars.insert(star);
    }
    let mut source = String::with_capacity(template.len() + stars.len() * 20);
    let mut origin = Vec::with_capacity(source.capacity() + 1);
    let mut push = |text: &str, offset: usize| {
        source.push_str(text);
        origin.extend(std::iter::repeat_n(offset, text.len()));
    };
    for (offset, c) in template.char_indices() {
        // The parenthesis closing an inner product comes before the `*` or the `)` of the
        // product it is the left operand of; nothing opens where something closes.
        for _ in 0..closes.get(&offset).copied().unwrap_or(0) {
            push(")", offset);
        }
        for _ in 0..opens.get(&offset).copied().unwrap_or(0) {
            push("(", offset);
        }
        if stars.contains(&offset) {
            push(MUL_CALL, offset);
        } else {
            push(c.encode_utf8(&mut [0; 4]), offset);
        }
    }
    for _ in 0..closes.get(&template.len()).copied().unwrap_or(0) {
        push(")", template.len());
    }
    origin.push(template.len());
    Ok(Some(Rewritten { source, origin }))
}

/// The byte offset of the `*` between two operands ending at `left_end` and starting at
/// `right_start`: only white space and the operands' parentheses may surround it.
fn operator_offset(template: &str, left_end: usize, right_start: usize) -> Option<usize> {
    let gap = template.get(left_end..right_start)?;
    let mut stars = gap.match_indices('*');
    let (star, _) = stars.next()?;
    let rest_is_grouping = gap
        .chars()
        .all(|c| c == '*' || c == '(' || c == ')' || c.is_whitespace());
    (stars.next().is_none() && rest_is_grouping).then_some(left_end + star)
}

/// The byte range (start, end) of an expression's text.
type Extent = (usize, usize);

/// The text extents of the two operands of a product.
type Operands = (Extent, Extent);

fn visit_stmts(stmts: &[Stmt<'_>], products: &mut Vec<Operands>) {
    for stmt in stmts {
        visit_stmt(stmt, products);
    }
}

/// Collects the products of `stmt` into `products`.
fn visit_stmt(stmt: &Stmt<'_>, products: &mut Vec<Operands>) {
    let expr = |e: &Expr<'_>, products: &mut Vec<Operands>| {
        visit_expr(e, products);
    };
    match stmt {
        Stmt::Template(s) => visit_stmts(&s.children, products),
        Stmt::EmitExpr(s) => expr(&s.expr, products),
        Stmt::EmitRaw(_) => {}
        Stmt::ForLoop(s) => {
            expr(&s.target, products);
            expr(&s.iter, products);
            if let Some(filter) = &s.filter_expr {
                expr(filter, products);
            }
            visit_stmts(&s.body, products);
            visit_stmts(&s.else_body, products);
        }
        Stmt::IfCond(s) => {
            expr(&s.expr, products);
            visit_stmts(&s.true_body, products);
            visit_stmts(&s.false_body, products);
        }
        Stmt::WithBlock(s) => {
            for (target, value) in &s.assignments {
                expr(target, products);
                expr(value, products);
            }
            visit_stmts(&s.body, products);
        }
        Stmt::Set(s) => {
            expr(&s.target, products);
            expr(&s.expr, products);
        }
        Stmt::SetBlock(s) => {
            expr(&s.target, products);
            if let Some(filter) = &s.filter {
                expr(filter, products);
            }
            visit_stmts(&s.body, products);
        }
        Stmt::AutoEscape(s) => {
            expr(&s.enabled, products);
            visit_stmts(&s.body, products);
        }
        Stmt::FilterBlock(s) => {
            expr(&s.filter, products);
            visit_stmts(&s.body, products);
        }
        Stmt::Block(s) => visit_stmts(&s.body, products),
        Stmt::Import(s) => {
            expr(&s.expr, products);
            expr(&s.name, products);
        }
        Stmt::FromImport(s) => {
            expr(&s.expr, products);
            for (name, alias) in &s.names {
                expr(name, products);
                if let Some(alias) = alias {
                    expr(alias, products);
                }
            }
        }
        Stmt::Extends(s) => expr(&s.name, products),
        Stmt::Include(s) => expr(&s.name, products),
        Stmt::Macro(s) => {
            s.args.iter().for_each(|e| expr(e, products));
            s.defaults.iter().for_each(|e| expr(e, products));
            visit_stmts(&s.body, products);
        }
        Stmt::CallBlock(s) => {
            expr(&s.call.expr, products);
            visit_args(&s.call.args, products);
            s.macro_decl.args.iter().for_each(|e| expr(e, products));
            s.macro_decl.defaults.iter().for_each(|e| expr(e, products));
            visit_stmts(&s.macro_decl.body, products);
        }
        Stmt::Do(s) => {
            expr(&s.call.expr, products);
            visit_args(&s.call.args, products);
        }
        // `continue` and `break` (when minijinja's `loop_controls` is on) hold no expression.
        #[allow(unreachable_patterns)]
        _ => {}
    }
}

/// The extent covering every argument.
fn visit_args(args: &[CallArg<'_>], products: &mut Vec<Operands>) -> Option<Extent> {
    args.iter()
        .map(|arg| match arg {
            CallArg::Pos(expr)
            | CallArg::Kwarg(_, expr)
            | CallArg::PosSplat(expr)
            | CallArg::KwargSplat(expr) => visit_expr(expr, products),
        })
        .reduce(cover)
}

fn cover(a: Extent, b: Extent) -> Extent {
    (a.0.min(b.0), a.1.max(b.1))
}

/// Collects the products of `expr` into `products`, and returns the extent of its text. A
/// node's span does not always cover its text (a filter's starts at its `|`, not at the
/// value filtered), so an extent is the union of the spans below it.
fn visit_expr(expr: &Expr<'_>, products: &mut Vec<Operands>) -> Extent {
    let span = expr.span();
    let mut extent = (span.start_offset as usize, span.end_offset as usize);
    let mut sub = |e: &Expr<'_>, products: &mut Vec<Operands>| {
        extent = cover(extent, visit_expr(e, products));
    };
    match expr {
        Expr::Var(_) | Expr::Const(_) => {}
        Expr::Slice(e) => {
            sub(&e.expr, products);
            for part in [&e.start, &e.stop, &e.step].into_iter().flatten() {
                sub(part, products);
            }
        }
        Expr::UnaryOp(e) => sub(&e.expr, products),
        Expr::BinOp(e) => {
            let left = visit_expr(&e.left, products);
            let right = visit_expr(&e.right, products);
            if matches!(e.op, BinOpKind::Mul) {
                products.push((left, right));
            }
            extent = cover(extent, cover(left, right));
        }
        Expr::Compare(e) => {
            sub(&e.expr, products);
            for op in &e.ops {
                sub(&op.expr, products);
            }
        }
        Expr::IfExpr(e) => {
            sub(&e.test_expr, products);
            sub(&e.true_expr, products);
            if let Some(false_expr) = &e.false_expr {
                sub(false_expr, products);
            }
        }
        Expr::Filter(e) => {
            if let Some(value) = &e.expr {
                sub(value, products);
            }
            if let Some(args) = visit_args(&e.args, products) {
                extent = cover(extent, args);
            }
        }
        Expr::Test(e) => {
            sub(&e.expr, products);
            if let Some(args) = visit_args(&e.args, products) {
                extent = cover(extent, args);
            }
        }
        Expr::GetAttr(e) => sub(&e.expr, products),
        Expr::GetItem(e) => {
            sub(&e.expr, products);
            sub(&e.subscript_expr, products);
        }
        Expr::Call(e) => {
            sub(&e.expr, products);
            if let Some(args) = visit_args(&e.args, products) {
                extent = cover(extent, args);
            }
        }
        Expr::List(e) => e.items.iter().for_each(|item| sub(item, products)),
        Expr::Map(e) => {
            e.keys.iter().for_each(|key| sub(key, products));
            e.values.iter().for_each(|value| sub(value, products));
        }
    }
    extent
}

/// `a * b` as minijinja computes it, refused when it repeats a sequence into more than
/// [`MAX_ITEMS`] items, counting what the repeated items hold (a list of a million lists of a
/// million items is a trillion items to write). A repetition of an empty sequence is empty
/// however large the count, and made so at once: minijinja would walk every empty repetition.
fn bounded_mul(operands: Rest<Value>) -> Result<Value, Error> {
    // Taken as they come: a typed argument list would read an undefined operand as missing.
    let [a, b] = <[Value; 2]>::try_from(operands.0).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("`{MUL_FILTER}` multiplies two operands"),
        )
    })?;
    let is_seq = |v: &Value| matches!(v.kind(), ValueKind::Seq | ValueKind::Iterable);
    let repetition = if a.kind() == ValueKind::String || b.kind() == ValueKind::String {
        None
    } else if is_seq(&a) {
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
        return product(&a, &b);
    };
    if len == 0 {
        return product(seq, &Value::from(0));
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
    product(&a, &b)
}

/// Whether `seq` holds at most `limit` items, counting the items of the sequences and maps in
/// it and the characters of its strings; stops counting past `limit`, so costs at most that.
fn holds_at_most(seq: &Value, limit: usize) -> Result<bool, Error> {
    let mut counted = 0usize;
    let mut pending = vec![seq.clone()];
    while let Some(value) = pending.pop() {
        let is_map = value.kind() == ValueKind::Map;
        for item in value.try_iter()? {
            let held = if is_map {
                let inner = value.get_item(&item)?;
                vec![item, inner]
            } else {
                vec![item]
            };
            for held in held {
                // A string counts its characters (bytes, at no cost), any other item one.
                counted = counted.saturating_add(held.as_str().map_or(1, |s| s.len().max(1)));
                // A sized container is walked in turn; an unsized one (a one-shot iterator)
                // must not be consumed here, and nothing repeats it.
                let container = matches!(
                    held.kind(),
                    ValueKind::Seq | ValueKind::Iterable | ValueKind::Map
                );
                if container && held.len().is_some() {
                    pending.push(held);
                }
            }
            if counted > limit {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// minijinja's own `*`, evaluated by an expression of an empty environment (the operator is a
/// pure function of its operands); its errors lose the expression's location, so that the
/// template's is reported.
fn product(a: &Value, b: &Value) -> Result<Value, Error> {
    static ENV: LazyLock<Environment<'static>> = LazyLock::new(Environment::empty);
    static MUL: LazyLock<Result<Expression<'static, 'static>, Error>> =
        LazyLock::new(|| ENV.compile_expression("a * b"));
    let expression = MUL
        .as_ref()
        .map_err(|err| Error::new(err.kind(), "the product could not be computed"))?;
    expression
        .eval(minijinja::context! { a => a, b => b })
        .map_err(|err| match err.detail() {
            Some(detail) => Error::new(err.kind(), detail.to_owned()),
            None => Error::from(err.kind()),
        })
}
