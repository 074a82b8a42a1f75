//! The rewrite that makes a template's growing operators bounded: `*` (repetition), `+` and
//! `~` (concatenation), where a render's huge values are born.
//!
//! minijinja repeats a sequence lazily, in one instruction, and its consumers walk the result
//! inside one instruction too: printing, `~`, a `for` loop, an `in` test, unpacking with `*`,
//! comparing, slicing, filters. Fuel counts instructions, so `['a'] * 10**12` or `[] * 10**12`
//! occupied a worker for hours whichever consumed it (found by fuzzing). Doubling a string or
//! a list with `~` or `+` in a loop (`{% set ns.s = ns.s ~ ns.s %}`) takes all the memory of
//! the process in a few dozen instructions. minijinja has no hook on its operators, and it
//! even evaluates a constant expression while compiling (`{{ 'a' ~ ['x'] * 10**10 }}` wrote
//! every item before the render began). So every `*`, `+` and `~` of a template is compiled
//! as a call of a filter of `operators`, which refuses a result beyond the render's bounds and
//! otherwise computes minijinja's own result: one point that covers every consumer, and the
//! operators' meaning stays minijinja's.
//!
//! The rewrite is done on the template's text, with the spans of minijinja's own parse
//! (`unstable_machinery`), so that the template still compiles and renders through the
//! ordinary `Template` path (fuel, the bounded output, debug info): `a * b` becomes
//! `(a)|__updraft_mul(b)`, `a + b` `(a)|__updraft_add(b)`, `a ~ b` `(a)|__updraft_concat(b)`,
//! on the same lines.
//!
//! The same rewrite weighs the template's own text where minijinja captures it (a macro's
//! body, a `{% set %}` or `{% filter %}` block's, a recursive loop's): each piece is followed
//! by `{{ N|__updraft_written }}`, which counts its `N` bytes towards the render's bound on
//! all it writes (`written`) and prints nothing.

use std::collections::BTreeMap;
use std::ops::Range;

use minijinja::machinery::ast::{BinOpKind, CallArg, Expr, Stmt};
use minijinja::machinery::{parse, WhitespaceConfig};
use minijinja::syntax::SyntaxConfig;
use minijinja::{Error, ErrorKind};

use crate::operators::Operator;
use crate::written;

/// A template's text with every bounded operator made a call of its filter, line for line.
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

/// What the rewrite changes in a template: its operations, and the probes (the offset where
/// each goes, and its text) that weigh its text inside capturing bodies.
struct Found<'t> {
    template: &'t str,
    operations: Vec<Operation>,
    probes: Vec<(usize, String)>,
}

/// `template` rewritten, or `None` when it has no bounded operator nor captured text, or
/// does not parse (minijinja then reports the syntax error itself).
pub(crate) fn rewrite(template: &str) -> Result<Option<Rewritten>, Error> {
    if !template.contains(['*', '+', '~']) && !template.contains("{%") {
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
    let mut found = Found {
        template,
        operations: Vec::new(),
        probes: Vec::new(),
    };
    visit_stmt(&ast, &mut found, false);
    let Found {
        operations, probes, ..
    } = found;
    if operations.is_empty() && probes.is_empty() {
        return Ok(None);
    }
    let mut opens: BTreeMap<usize, usize> = BTreeMap::new();
    let mut closes: BTreeMap<usize, usize> = BTreeMap::new();
    let mut operators = BTreeMap::new();
    for (operator, left, right) in operations {
        let offset =
            operator_offset(template, operator.symbol(), left.1, right.0).ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!(
                        "a `{}` of this template could not be bounded (please report it)",
                        operator.symbol()
                    ),
                )
            })?;
        *opens.entry(left.0).or_default() += 1;
        *closes.entry(right.1).or_default() += 1;
        operators.insert(offset, operator);
    }
    let mut source = String::with_capacity(template.len() + operators.len() * 24);
    let mut origin = Vec::with_capacity(source.capacity() + 1);
    let mut push = |text: &str, offset: usize| {
        source.push_str(text);
        origin.extend(std::iter::repeat_n(offset, text.len()));
    };
    let mut probes_at: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (offset, probe) in probes {
        probes_at.entry(offset).or_default().push(probe);
    }
    for (offset, c) in template.char_indices() {
        // A probe stands between text and a tag, never where an operation's parentheses do.
        for probe in probes_at.get(&offset).into_iter().flatten() {
            push(probe, offset);
        }
        // The parenthesis closing an inner operation comes before the operator or the `)` of
        // the operation it is the left operand of; nothing opens where something closes.
        for _ in 0..closes.get(&offset).copied().unwrap_or(0) {
            push(")", offset);
        }
        for _ in 0..opens.get(&offset).copied().unwrap_or(0) {
            push("(", offset);
        }
        if let Some(operator) = operators.get(&offset) {
            push(operator.call(), offset);
        } else {
            push(c.encode_utf8(&mut [0; 4]), offset);
        }
    }
    for probe in probes_at.get(&template.len()).into_iter().flatten() {
        push(probe, template.len());
    }
    for _ in 0..closes.get(&template.len()).copied().unwrap_or(0) {
        push(")", template.len());
    }
    origin.push(template.len());
    Ok(Some(Rewritten { source, origin }))
}

/// The byte offset of the operator `symbol` between two operands ending at `left_end` and
/// starting at `right_start`: only white space and the operands' parentheses may surround it
/// (a second symbol would be `**`, which is another operator).
fn operator_offset(
    template: &str,
    symbol: char,
    left_end: usize,
    right_start: usize,
) -> Option<usize> {
    let gap = template.get(left_end..right_start)?;
    let mut symbols = gap.match_indices(symbol);
    let (found, _) = symbols.next()?;
    let rest_is_grouping = gap
        .chars()
        .all(|c| c == symbol || c == '(' || c == ')' || c.is_whitespace());
    (symbols.next().is_none() && rest_is_grouping).then_some(left_end + found)
}

/// The byte range (start, end) of an expression's text.
type Extent = (usize, usize);

/// A bounded operator and the text extents of its two operands.
type Operation = (Operator, Extent, Extent);

fn visit_stmts(stmts: &[Stmt<'_>], found: &mut Found<'_>, captured: bool) {
    for stmt in stmts {
        visit_stmt(stmt, found, captured);
    }
}

/// Collects the operations of `stmt`, and the probes of its text when it is `captured` (or
/// captures its body), into `found`.
fn visit_stmt(stmt: &Stmt<'_>, found: &mut Found<'_>, captured: bool) {
    let expr = |e: &Expr<'_>, found: &mut Found<'_>| {
        visit_expr(e, &mut found.operations);
    };
    match stmt {
        Stmt::Template(s) => visit_stmts(&s.children, found, captured),
        Stmt::EmitExpr(s) => expr(&s.expr, found),
        Stmt::EmitRaw(s) if captured => {
            let probe = probe(found.template, s.span().end_offset as usize, s.raw.len());
            found.probes.push(probe);
        }
        Stmt::EmitRaw(_) => {}
        Stmt::ForLoop(s) => {
            expr(&s.target, found);
            expr(&s.iter, found);
            if let Some(filter) = &s.filter_expr {
                expr(filter, found);
            }
            // `loop(...)` runs the loop again, capturing what it writes.
            let captured = captured || s.recursive;
            visit_stmts(&s.body, found, captured);
            visit_stmts(&s.else_body, found, captured);
        }
        Stmt::IfCond(s) => {
            expr(&s.expr, found);
            visit_stmts(&s.true_body, found, captured);
            visit_stmts(&s.false_body, found, captured);
        }
        Stmt::WithBlock(s) => {
            for (target, value) in &s.assignments {
                expr(target, found);
                expr(value, found);
            }
            visit_stmts(&s.body, found, captured);
        }
        Stmt::Set(s) => {
            expr(&s.target, found);
            expr(&s.expr, found);
        }
        Stmt::SetBlock(s) => {
            expr(&s.target, found);
            if let Some(filter) = &s.filter {
                expr(filter, found);
            }
            visit_stmts(&s.body, found, true);
        }
        Stmt::AutoEscape(s) => {
            expr(&s.enabled, found);
            visit_stmts(&s.body, found, captured);
        }
        Stmt::FilterBlock(s) => {
            expr(&s.filter, found);
            visit_stmts(&s.body, found, true);
        }
        Stmt::Block(s) => visit_stmts(&s.body, found, captured),
        Stmt::Import(s) => {
            expr(&s.expr, found);
            expr(&s.name, found);
        }
        Stmt::FromImport(s) => {
            expr(&s.expr, found);
            for (name, alias) in &s.names {
                expr(name, found);
                if let Some(alias) = alias {
                    expr(alias, found);
                }
            }
        }
        Stmt::Extends(s) => expr(&s.name, found),
        Stmt::Include(s) => expr(&s.name, found),
        Stmt::Macro(s) => {
            s.args.iter().for_each(|e| expr(e, found));
            s.defaults.iter().for_each(|e| expr(e, found));
            visit_stmts(&s.body, found, true);
        }
        Stmt::CallBlock(s) => {
            expr(&s.call.expr, found);
            visit_args(&s.call.args, &mut found.operations);
            s.macro_decl.args.iter().for_each(|e| expr(e, found));
            s.macro_decl.defaults.iter().for_each(|e| expr(e, found));
            visit_stmts(&s.macro_decl.body, found, true);
        }
        Stmt::Do(s) => {
            expr(&s.call.expr, found);
            visit_args(&s.call.args, &mut found.operations);
        }
        // `continue` and `break` (when minijinja's `loop_controls` is on) hold no expression.
        #[allow(unreachable_patterns)]
        _ => {}
    }
}

/// The probe weighing a piece of text of `len` bytes that ends at `end`: placed right after
/// it, before the tag that follows (white space a `{%-` trims stays between them, trimmed
/// still). The text of a `{% raw %}` block ends at its `{% endraw %}`, so its probe goes
/// after that tag, trimming what follows if the tag did.
fn probe(template: &str, end: usize, len: usize) -> (usize, String) {
    let weigh = |trim: &str| format!("{{{{ {len}|{} {trim}}}}}", written::FILTER);
    let rest = template.get(end..).unwrap_or_default();
    let tag = rest
        .strip_prefix("{%")
        .map(|tag| tag.trim_start_matches(['-', '+']).trim_start())
        .filter(|tag| tag.starts_with("endraw"));
    match tag.and_then(|tag| tag.find("%}").map(|close| (tag, close))) {
        Some((tag, close)) => {
            let after = end + (rest.len() - tag.len()) + close + 2;
            let trim = if tag[..close].ends_with('-') { "-" } else { "" };
            (after, weigh(trim))
        }
        None => (end, weigh("")),
    }
}

/// The extent covering every argument.
fn visit_args(args: &[CallArg<'_>], operations: &mut Vec<Operation>) -> Option<Extent> {
    args.iter()
        .map(|arg| match arg {
            CallArg::Pos(expr)
            | CallArg::Kwarg(_, expr)
            | CallArg::PosSplat(expr)
            | CallArg::KwargSplat(expr) => visit_expr(expr, operations),
        })
        .reduce(cover)
}

fn cover(a: Extent, b: Extent) -> Extent {
    (a.0.min(b.0), a.1.max(b.1))
}

/// Collects the operations of `expr` into `operations`, and returns the extent of its text. A
/// node's span does not always cover its text (a filter's starts at its `|`, not at the
/// value filtered), so an extent is the union of the spans below it.
fn visit_expr(expr: &Expr<'_>, operations: &mut Vec<Operation>) -> Extent {
    let span = expr.span();
    let mut extent = (span.start_offset as usize, span.end_offset as usize);
    let mut sub = |e: &Expr<'_>, operations: &mut Vec<Operation>| {
        extent = cover(extent, visit_expr(e, operations));
    };
    match expr {
        Expr::Var(_) | Expr::Const(_) => {}
        Expr::Slice(e) => {
            sub(&e.expr, operations);
            for part in [&e.start, &e.stop, &e.step].into_iter().flatten() {
                sub(part, operations);
            }
        }
        Expr::UnaryOp(e) => sub(&e.expr, operations),
        Expr::BinOp(e) => {
            let left = visit_expr(&e.left, operations);
            let right = visit_expr(&e.right, operations);
            let operator = match e.op {
                BinOpKind::Mul => Some(Operator::Mul),
                BinOpKind::Add => Some(Operator::Add),
                BinOpKind::Concat => Some(Operator::Concat),
                _ => None,
            };
            if let Some(operator) = operator {
                operations.push((operator, left, right));
            }
            extent = cover(extent, cover(left, right));
        }
        Expr::Compare(e) => {
            sub(&e.expr, operations);
            for op in &e.ops {
                sub(&op.expr, operations);
            }
        }
        Expr::IfExpr(e) => {
            sub(&e.test_expr, operations);
            sub(&e.true_expr, operations);
            if let Some(false_expr) = &e.false_expr {
                sub(false_expr, operations);
            }
        }
        Expr::Filter(e) => {
            if let Some(value) = &e.expr {
                sub(value, operations);
            }
            if let Some(args) = visit_args(&e.args, operations) {
                extent = cover(extent, args);
            }
        }
        Expr::Test(e) => {
            sub(&e.expr, operations);
            if let Some(args) = visit_args(&e.args, operations) {
                extent = cover(extent, args);
            }
        }
        Expr::GetAttr(e) => sub(&e.expr, operations),
        Expr::GetItem(e) => {
            sub(&e.expr, operations);
            sub(&e.subscript_expr, operations);
        }
        Expr::Call(e) => {
            sub(&e.expr, operations);
            if let Some(args) = visit_args(&e.args, operations) {
                extent = cover(extent, args);
            }
        }
        Expr::List(e) => e.items.iter().for_each(|item| sub(item, operations)),
        Expr::Map(e) => {
            e.keys.iter().for_each(|key| sub(key, operations));
            e.values.iter().for_each(|value| sub(value, operations));
        }
    }
    extent
}
