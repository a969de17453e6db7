//! The executor: walks the AST against an event.

use super::funcs::{self, Func};
use super::limits::{Bound, Fuel, MAX_OUTPUT, check_len};
use super::parse::{Arg, Cmd, Control, FieldRef, List, Node, NumLit, Pipe, Program};
use super::types::get_member;
use super::value::{IntKind, Obj, Value};
use crate::event::Event;

/// An execution error: the message and the source span it concerns.
#[derive(Debug)]
pub(crate) struct ExecError {
    pub(crate) span: (usize, usize),
    pub(crate) message: String,
}

pub(crate) type XResult<T> = Result<T, ExecError>;

enum Flow {
    Normal,
    Break,
    Continue,
}

/// Maximum nesting of `{{template}}` calls (Go allows 100000 on its growable stacks; a
/// template that recurses must stop before the thread's stack does).
const MAX_DEPTH: usize = 48;

/// How many arguments are evaluated without a heap allocation.
const INLINE_ARGS: usize = 4;

struct State<'t, 'x> {
    prog: &'t Program,
    out: &'x mut String,
    /// Where this render's output starts in `out`.
    start: usize,
    fuel: &'x mut Fuel,
    frame: Vec<Value<'t>>,
    root: Value<'t>,
    depth: usize,
    /// Recursion of lists and pipelines, over all template calls.
    nest: usize,
}

/// Maximum recursion of the evaluator (lists, pipelines and template calls together).
const MAX_NEST: usize = 256;

/// Renders `prog` against `event` into `out`, spending from `fuel`.
pub(crate) fn execute<'t>(
    prog: &'t Program,
    event: Event<'t>,
    out: &mut String,
    fuel: &mut Fuel,
) -> XResult<()> {
    let root = Value::Obj {
        obj: Obj::Event(event),
        ptr: true,
        addr: false,
    };
    let start = out.len();
    let mut st = State {
        prog,
        out,
        start,
        fuel,
        frame: Vec::new(),
        root: root.clone(),
        depth: 0,
        nest: 0,
    };
    if prog.nslots > 1 {
        // Slot 0 is `$`: the event, whatever variables the template declares.
        st.frame = vec![Value::Missing; prog.nslots];
        st.frame[0] = root.clone();
    }
    st.walk_list(&root, &prog.list).map(|_| ())
}

fn err<T>(span: (usize, usize), message: impl Into<String>) -> XResult<T> {
    Err(ExecError {
        span,
        message: message.into(),
    })
}

/// A bound reached at `span`.
#[cold]
fn bound<T>(span: (usize, usize), b: Bound) -> XResult<T> {
    err(span, b.to_string())
}

/// The step budget used up at `span`.
#[cold]
fn out_of_fuel<T>(span: (usize, usize)) -> XResult<T> {
    err(span, super::limits::out_of_steps())
}

impl<'t> State<'t, '_> {
    /// Spends `steps` of the render's budget.
    #[inline]
    fn charge(&mut self, span: (usize, usize), steps: u64) -> XResult<()> {
        if self.fuel.try_spend(steps) {
            Ok(())
        } else {
            out_of_fuel(span)
        }
    }

    /// Whether this render's output is larger than [`MAX_OUTPUT`].
    #[inline]
    fn output_too_large(&self) -> bool {
        self.out.len() - self.start > MAX_OUTPUT
    }

    /// Prints `v` as an action's result.
    fn print(&mut self, v: &Value<'t>, pipe: &Pipe) -> XResult<()> {
        match v.print_template(self.out) {
            Ok(()) if !self.output_too_large() => Ok(()),
            Ok(()) => bound(pipe_span(pipe), Bound::Size),
            Err(b) => bound(pipe_span(pipe), b),
        }
    }

    fn get_var(&self, slot: usize) -> Value<'t> {
        if slot == 0 && self.frame.is_empty() {
            return self.root.clone();
        }
        if slot == 0 {
            return self
                .frame
                .first()
                .cloned()
                .unwrap_or_else(|| self.root.clone());
        }
        self.frame.get(slot).cloned().unwrap_or(Value::Missing)
    }

    fn set_var(&mut self, slot: usize, v: Value<'t>) {
        if self.frame.is_empty() {
            // Only `$` exists; materialise the frame on first write.
            self.frame = vec![Value::Missing; self.prog.nslots.max(1)];
            if let Some(f) = self.frame.first_mut() {
                *f = self.root.clone();
            }
        }
        if let Some(s) = self.frame.get_mut(slot) {
            *s = v;
        }
    }

    fn walk_list(&mut self, dot: &Value<'t>, list: &'t List) -> XResult<Flow> {
        if self.nest >= MAX_NEST {
            return err((0, 0), format!("template nesting deeper than {MAX_NEST}"));
        }
        self.nest += 1;
        let r = self.walk_list_inner(dot, list);
        self.nest -= 1;
        r
    }

    fn walk_list_inner(&mut self, dot: &Value<'t>, list: &'t List) -> XResult<Flow> {
        // One step per node, paid for the whole list at once (a `range` pays it per iteration).
        self.charge((0, 0), list.len() as u64)?;
        let mut flow = Flow::Normal;
        for node in list {
            flow = self.walk(dot, node)?;
            if !matches!(flow, Flow::Normal) {
                break;
            }
        }
        // Text adds at most the list's own text per pass: checked once per list, however the
        // pass ends (a `{{continue}}` too).
        if self.output_too_large() {
            return bound((0, 0), Bound::Size);
        }
        Ok(flow)
    }

    fn walk(&mut self, dot: &Value<'t>, node: &'t Node) -> XResult<Flow> {
        match node {
            Node::Text(t) => self.out.push_str(t),
            Node::Print(d, pipe) => {
                if let Value::Obj {
                    obj: Obj::Event(e), ..
                } = dot
                {
                    match d.value(*e) {
                        Value::Str(s) => {
                            self.out.push_str(s);
                            if self.output_too_large() {
                                return bound(pipe_span(pipe), Bound::Size);
                            }
                        }
                        v => self.print(&v, pipe)?,
                    }
                } else {
                    let v = self.eval_pipeline(dot, pipe)?;
                    self.print(&v, pipe)?;
                }
            }
            Node::Action(pipe) => {
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    self.print(&v, pipe)?;
                }
            }
            Node::If(c) => {
                let v = self.eval_pipeline(dot, &c.pipe)?;
                let list = if v.truth() { &c.list } else { &c.else_list };
                return self.walk_list(dot, list);
            }
            Node::With(c) => {
                let v = self.eval_pipeline(dot, &c.pipe)?;
                return if v.truth() {
                    self.walk_list(&v, &c.list)
                } else {
                    self.walk_list(dot, &c.else_list)
                };
            }
            Node::Range(c) => return self.walk_range(dot, c),
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
            Node::Template { name, pipe, pos } => {
                let span = (*pos, *pos);
                let Some(def) = self.prog.defines.get(name.as_ref()) else {
                    return err(span, format!("no such template {name:?}"));
                };
                let arg = match pipe {
                    Some(p) => self.eval_pipeline(dot, p)?,
                    None => Value::Nil,
                };
                self.charge(span, 1)?;
                if self.depth >= MAX_DEPTH {
                    return err(
                        span,
                        format!("exceeded maximum template depth ({MAX_DEPTH})"),
                    );
                }
                let mut frame = vec![Value::Missing; def.nslots.max(1)];
                frame[0] = arg.clone();
                let saved = std::mem::replace(&mut self.frame, frame);
                let saved_root = std::mem::replace(&mut self.root, arg.clone());
                self.depth += 1;
                let r = self.walk_list(&arg, &def.list);
                self.depth -= 1;
                self.frame = saved;
                self.root = saved_root;
                r?;
            }
        }
        Ok(Flow::Normal)
    }

    fn walk_range(&mut self, dot: &Value<'t>, c: &'t Control) -> XResult<Flow> {
        let val = self.eval_pipeline_value(dot, &c.pipe)?;
        let decl = &c.pipe.decl;
        let span = c.pipe.cmds.first().map_or((0, 0), |c| c.span);
        let body = |st: &mut Self, key: Value<'t>, elem: Value<'t>| -> XResult<bool> {
            st.charge(span, 1)?;
            match decl.len() {
                0 => {}
                1 => st.set_var(decl[0], elem.clone()),
                _ => {
                    st.set_var(decl[0], key);
                    st.set_var(decl[1], elem.clone());
                }
            }
            match st.walk_list(&elem, &c.list)? {
                Flow::Break => Ok(false),
                _ => Ok(true),
            }
        };
        let mut any = false;
        match &val {
            Value::StrMap(m) => {
                if let Some(m) = m {
                    for (k, v) in m.iter() {
                        any = true;
                        if !body(self, Value::Str(k), Value::Str(v))? {
                            break;
                        }
                    }
                }
            }
            Value::Dict(d) => {
                // A copy (the body may change the dict), paid for as it is made.
                self.charge(span, val.weight())?;
                let entries: Vec<(String, Value<'t>)> = d
                    .borrow()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                for (k, v) in entries {
                    any = true;
                    if !body(self, Value::string(k), v)? {
                        break;
                    }
                }
            }
            Value::List(..) | Value::Slice(_) => {
                // Element by element: a list does not change, and nothing is copied.
                let mut i = 0;
                while let Some(v) = val.list_item(i) {
                    any = true;
                    if !body(self, Value::Int(i as i64, IntKind::Int), v)? {
                        break;
                    }
                    i += 1;
                }
            }
            Value::Missing | Value::Nil => {}
            other => {
                let mut s = String::new();
                super::value::fmt_v(other, &mut s, 0).or_else(|b| bound(span, b))?;
                return err(span, format!("range can't iterate over {s}"));
            }
        }
        if !any {
            return self.walk_list(dot, &c.else_list);
        }
        Ok(Flow::Normal)
    }

    /// A pipeline's value, with its variables declared or assigned.
    fn eval_pipeline(&mut self, dot: &Value<'t>, pipe: &'t Pipe) -> XResult<Value<'t>> {
        let v = self.eval_pipeline_value(dot, pipe)?;
        for slot in &pipe.decl {
            self.set_var(*slot, v.clone());
        }
        Ok(v)
    }

    fn eval_pipeline_value(&mut self, dot: &Value<'t>, pipe: &'t Pipe) -> XResult<Value<'t>> {
        if self.nest >= MAX_NEST {
            let span = pipe.cmds.first().map_or((0, 0), |c| c.span);
            return err(span, format!("template nesting deeper than {MAX_NEST}"));
        }
        self.nest += 1;
        let r = self.eval_pipeline_inner(dot, pipe);
        self.nest -= 1;
        r
    }

    fn eval_pipeline_inner(&mut self, dot: &Value<'t>, pipe: &'t Pipe) -> XResult<Value<'t>> {
        let mut last: Option<Value<'t>> = None;
        for cmd in &pipe.cmds {
            let v = self.eval_command(dot, cmd, last.take())?;
            last = Some(v);
        }
        Ok(last.unwrap_or(Value::Missing))
    }

    fn eval_command(
        &mut self,
        dot: &Value<'t>,
        cmd: &'t Cmd,
        fin: Option<Value<'t>>,
    ) -> XResult<Value<'t>> {
        let Some(first) = cmd.args.first() else {
            return err(cmd.span, "empty command");
        };
        self.charge(cmd.span, 1)?;
        let rest = &cmd.args[1..];
        match first {
            Arg::Field(chain, span) => self.eval_chain(dot, dot.clone(), chain, rest, fin, *span),
            Arg::Direct(d, chain, span) => match dot {
                Value::Obj {
                    obj: Obj::Event(e), ..
                } if rest.is_empty() && fin.is_none() => Ok(d.value(*e)),
                _ => self.eval_chain(dot, dot.clone(), chain, rest, fin, *span),
            },
            Arg::Var(slot, chain, span) => {
                let v = self.get_var(*slot);
                if chain.is_empty() {
                    self.not_a_function(rest, &fin, cmd.span)?;
                    return Ok(v);
                }
                self.eval_chain(dot, v, chain, rest, fin, *span)
            }
            Arg::Chain(base, chain, span) => {
                let b = self.eval_arg(dot, base)?;
                self.eval_chain(dot, b, chain, rest, fin, *span)
            }
            Arg::Func(f, span) => self.eval_call(dot, f, rest, fin, *span),
            Arg::Pipe(p) => {
                self.not_a_function(rest, &fin, cmd.span)?;
                self.eval_pipeline_value(dot, p)
            }
            other => {
                self.not_a_function(rest, &fin, cmd.span)?;
                self.eval_arg(dot, other)
            }
        }
    }

    fn not_a_function(
        &self,
        rest: &[Arg],
        fin: &Option<Value<'t>>,
        span: (usize, usize),
    ) -> XResult<()> {
        if !rest.is_empty() || fin.is_some() {
            return err(span, "can't give argument to non-function");
        }
        Ok(())
    }

    /// Evaluates an operand as an argument.
    fn eval_arg(&mut self, dot: &Value<'t>, arg: &'t Arg) -> XResult<Value<'t>> {
        Ok(match arg {
            Arg::Dot => dot.clone(),
            Arg::Nil => Value::Nil,
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Num(n) => num_value(n),
            Arg::Str(s) => Value::Str(s),
            Arg::Direct(d, chain, span) => match dot {
                Value::Obj {
                    obj: Obj::Event(e), ..
                } => d.value(*e),
                _ => self.eval_chain(dot, dot.clone(), chain, &[], None, *span)?,
            },
            Arg::Field(chain, span) => {
                self.eval_chain(dot, dot.clone(), chain, &[], None, *span)?
            }
            Arg::Var(slot, chain, span) => {
                let v = self.get_var(*slot);
                if chain.is_empty() {
                    v
                } else {
                    self.eval_chain(dot, v, chain, &[], None, *span)?
                }
            }
            Arg::Chain(base, chain, span) => {
                let b = self.eval_arg(dot, base)?;
                self.eval_chain(dot, b, chain, &[], None, *span)?
            }
            Arg::Pipe(p) => self.eval_pipeline_value(dot, p)?,
            Arg::Func(f, span) => self.eval_call(dot, f, &[], None, *span)?,
        })
    }

    fn eval_chain(
        &mut self,
        dot: &Value<'t>,
        mut recv: Value<'t>,
        chain: &'t [FieldRef],
        args: &'t [Arg],
        fin: Option<Value<'t>>,
        span: (usize, usize),
    ) -> XResult<Value<'t>> {
        let n = chain.len();
        for (i, f) in chain.iter().enumerate() {
            let last = i + 1 == n;
            let has_args = last && (!args.is_empty() || fin.is_some());
            recv = if has_args {
                let mut argv = Vec::with_capacity(args.len() + 1);
                for a in args {
                    argv.push(self.eval_arg(dot, a)?);
                }
                if let Some(v) = fin.clone() {
                    argv.push(v);
                }
                // A method call (`.FirstTimestamp.Format $layout`): paid like a function's.
                let given: u64 = argv.iter().map(Value::scan_weight).sum();
                self.charge(span, 1 + given)?;
                let result = field(&recv, f, &argv, true, span)?;
                if let Some(s) = result.as_str() {
                    check_len(s).or_else(|b| bound(span, b))?;
                }
                self.charge(span, result.weight())?;
                result
            } else {
                field(&recv, f, &[], false, span)?
            };
        }
        Ok(recv)
    }

    fn eval_call(
        &mut self,
        dot: &Value<'t>,
        f: &'t funcs::FuncRef,
        args: &'t [Arg],
        fin: Option<Value<'t>>,
        span: (usize, usize),
    ) -> XResult<Value<'t>> {
        // and/or short-circuit and return the deciding operand.
        if matches!(f.func, Func::And | Func::Or) {
            let want = f.func == Func::Or;
            let mut v = Value::Missing;
            for a in args {
                v = self.eval_arg(dot, a)?;
                if v.truth() == want {
                    return Ok(v);
                }
            }
            if let Some(x) = fin {
                v = x;
            }
            return Ok(v);
        }
        let total = args.len() + usize::from(fin.is_some());
        // Checked when the template loads where it can be; here whatever the path (Go checks
        // it here).
        funcs::check_arity(f.func, total).map_err(|message| ExecError { span, message })?;
        let wrap = |e: String| ExecError {
            span,
            message: format!("error calling {}: {e}", funcs::name(f.func)),
        };
        // A function pays for the strings it is given (it may scan, hash or copy them); one
        // that walks a list or a dict pays per element itself.
        let result = if total <= INLINE_ARGS {
            let mut buf: [Value<'t>; INLINE_ARGS] =
                [Value::Nil, Value::Nil, Value::Nil, Value::Nil];
            for (slot, a) in buf.iter_mut().zip(args) {
                *slot = self.eval_arg(dot, a)?;
            }
            if let Some(x) = fin {
                buf[args.len()] = x;
            }
            if funcs::reads_strings(f.func) {
                let given: u64 = buf[..total].iter().map(Value::scan_weight).sum();
                self.charge(span, given)?;
            }
            funcs::call(f, &mut buf[..total], self.fuel).map_err(wrap)?
        } else {
            let mut argv = Vec::with_capacity(total);
            for a in args {
                argv.push(self.eval_arg(dot, a)?);
            }
            if let Some(x) = fin {
                argv.push(x);
            }
            if funcs::reads_strings(f.func) {
                let given: u64 = argv.iter().map(Value::scan_weight).sum();
                self.charge(span, given)?;
            }
            funcs::call(f, &mut argv, self.fuel).map_err(wrap)?
        };
        // What the result holds is paid for, and no string may outgrow the output bound.
        if let Some(s) = result.as_str() {
            check_len(s).or_else(|b| bound(span, b))?;
        }
        self.charge(span, 1 + result.weight())?;
        Ok(result)
    }
}

/// Where a pipeline is in the source.
fn pipe_span(pipe: &Pipe) -> (usize, usize) {
    pipe.cmds.first().map_or((0, 0), |c| c.span)
}

/// An untyped number constant as Go's `idealConstant` types it.
pub(crate) fn num_value<'t>(n: &NumLit) -> Value<'t> {
    if n.float_text
        && let Some(f) = n.float
    {
        return Value::Float(f);
    }
    match (n.int, n.float) {
        (Some(i), _) => Value::Int(i, IntKind::Int),
        (None, Some(f)) => Value::Float(f),
        _ => Value::Int(0, IntKind::Int),
    }
}

/// `recv.name` (with method arguments when `has_args`).
fn field<'t>(
    recv: &Value<'t>,
    f: &FieldRef,
    args: &[Value<'t>],
    has_args: bool,
    span: (usize, usize),
) -> XResult<Value<'t>> {
    match recv {
        Value::StrMap(m) => {
            if has_args {
                return err(
                    span,
                    format!("{} is not a method but has arguments", f.name),
                );
            }
            Ok(m.and_then(|m| m.get(f.name.as_ref()))
                .map_or(Value::Missing, |s| Value::Str(s.as_str())))
        }
        Value::Dict(d) => {
            if has_args {
                return err(
                    span,
                    format!("{} is not a method but has arguments", f.name),
                );
            }
            Ok(d.borrow()
                .get(f.name.as_ref())
                .cloned()
                .unwrap_or(Value::Missing))
        }
        Value::Missing => Ok(Value::Missing),
        Value::Nil => err(
            span,
            format!("nil pointer evaluating interface {{}}.{}", f.name),
        ),
        Value::NilPtr(t) => err(span, format!("nil pointer evaluating {t}.{}", f.name)),
        Value::Obj { .. } | Value::Time(..) => {
            let found = match f.member {
                Some(m) => {
                    if let Some(want) = super::types::method_arity(m)
                        && args.len() != want
                    {
                        return err(
                            span,
                            format!(
                                "wrong number of args for {}: want {want} got {}",
                                f.name,
                                args.len()
                            ),
                        );
                    }
                    get_member(recv, m, args).map_err(|message| ExecError { span, message })?
                }
                None => None,
            };
            match found {
                Some(v) => {
                    if has_args && f.member.and_then(super::types::method_arity).is_none() {
                        return err(
                            span,
                            format!("{} has arguments but cannot be invoked as function", f.name),
                        );
                    }
                    Ok(v)
                }
                None => err(
                    span,
                    format!(
                        "can't evaluate field {} in type {}",
                        f.name,
                        recv.type_name()
                    ),
                ),
            }
        }
        other => err(
            span,
            format!(
                "can't evaluate field {} in type {}",
                f.name,
                other.type_name()
            ),
        ),
    }
}
