//! The parser: Go's `text/template/parse` grammar into an AST, with functions resolved,
//! variables bound to frame slots and field chains checked against the event's Go types.

use std::collections::HashMap;

use super::funcs::{self, FuncRef};
use super::lex::{self, Kind, Token};
use super::types::{Direct, Member, Ty, direct_of, method_arity, static_member};

/// A list of nodes.
pub(crate) type List = Vec<Node>;

/// A template node.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(Box<str>),
    Action(Pipe),
    /// `{{ .Field }}` of the event with a precomputed accessor (the pipe is the general form).
    Print(Direct, Pipe),
    If(Box<Control>),
    With(Box<Control>),
    Range(Box<Control>),
    Template {
        name: Box<str>,
        pipe: Option<Pipe>,
        pos: usize,
    },
    Break,
    Continue,
}

/// `if`, `with`, `range`.
#[derive(Debug, Clone)]
pub(crate) struct Control {
    pub(crate) pipe: Pipe,
    pub(crate) list: List,
    pub(crate) else_list: List,
}

/// A pipeline, with its declared or assigned variables.
#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    pub(crate) decl: Vec<usize>,
    pub(crate) assign: bool,
    pub(crate) cmds: Vec<Cmd>,
}

/// A command: operands, the first of which may be a function.
#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    pub(crate) args: Vec<Arg>,
    /// Byte range of the command in the source.
    pub(crate) span: (usize, usize),
}

/// A number literal; Go keeps every interpretation that fits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NumLit {
    pub(crate) int: Option<i64>,
    pub(crate) float: Option<f64>,
    /// The literal is written as a float (`.`, `e`, `p`), so it is a float64 when untyped.
    pub(crate) float_text: bool,
}

/// One field name in a chain, with its member resolved at parse time.
#[derive(Debug, Clone)]
pub(crate) struct FieldRef {
    pub(crate) name: Box<str>,
    pub(crate) member: Option<Member>,
}

/// An operand.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Dot,
    Nil,
    Bool(bool),
    Num(NumLit),
    Str(Box<str>),
    /// `.A.B` relative to dot.
    Field(Box<[FieldRef]>, (usize, usize)),
    /// `.A.B` where dot is statically the event, with its precomputed accessor.
    Direct(Direct, Box<[FieldRef]>, (usize, usize)),
    /// `$x.A.B` (slot 0 is `$`).
    Var(usize, Box<[FieldRef]>, (usize, usize)),
    /// `(pipe).A.B`.
    Chain(Box<Arg>, Box<[FieldRef]>, (usize, usize)),
    Pipe(Box<Pipe>),
    Func(FuncRef, (usize, usize)),
}

/// A `define`d template body.
#[derive(Debug, Clone)]
pub(crate) struct Define {
    pub(crate) list: List,
    pub(crate) nslots: usize,
}

/// A parsed template.
#[derive(Debug, Clone)]
pub(crate) struct Program {
    pub(crate) list: List,
    pub(crate) nslots: usize,
    pub(crate) defines: HashMap<String, Define>,
}

/// A parse error at a byte offset.
#[derive(Debug)]
pub(crate) struct ParseError {
    pub(crate) pos: usize,
    pub(crate) message: String,
}

type PResult<T> = Result<T, ParseError>;

struct Var {
    name: String,
    slot: usize,
    ty: Ty,
}

struct Parser<'s> {
    src: &'s str,
    toks: Vec<Token>,
    i: usize,
    vars: Vec<Var>,
    nslots: usize,
    dot: Ty,
    range_depth: usize,
    defines: HashMap<String, Define>,
    /// `$` is the event (false after `$ = ...` anywhere: then nothing is assumed).
    static_root: bool,
    root_assigned: bool,
    /// Nesting of pipelines and control structures (bounded so that no input exhausts the
    /// stack).
    depth: usize,
}

/// Maximum nesting of parentheses and control structures.
const MAX_NESTING: usize = 64;

/// Parses `src`.
pub(crate) fn parse(src: &str) -> PResult<Program> {
    match parse_with(src, true) {
        Err(e) if e.message == "\u{0}reparse" => parse_with(src, false),
        r => r,
    }
}

fn parse_with(src: &str, static_root: bool) -> PResult<Program> {
    let toks = lex::lex(src).map_err(|e| ParseError {
        pos: e.pos,
        message: e.message,
    })?;
    let mut p = Parser {
        src,
        toks,
        i: 0,
        vars: Vec::new(),
        nslots: 0,
        dot: if static_root { Ty::Event } else { Ty::Unknown },
        range_depth: 0,
        defines: HashMap::new(),
        static_root,
        root_assigned: false,
        depth: 0,
    };
    p.vars.push(Var {
        name: "$".to_owned(),
        slot: 0,
        ty: p.dot,
    });
    p.nslots = 1;
    let list = p.top_level()?;
    if static_root && p.root_assigned {
        return Err(ParseError {
            pos: 0,
            message: "\u{0}reparse".to_owned(),
        });
    }
    Ok(Program {
        list,
        nslots: p.nslots,
        defines: p.defines,
    })
}

impl<'s> Parser<'s> {
    fn tok(&self) -> Token {
        // The token vector always ends with Eof; stay on it.
        self.toks
            .get(self.i)
            .or_else(|| self.toks.last())
            .copied()
            .unwrap_or(Token {
                kind: Kind::Eof,
                start: self.src.len(),
                end: self.src.len(),
            })
    }

    fn text(&self, t: Token) -> &'s str {
        self.src.get(t.start..t.end).unwrap_or("")
    }

    fn next(&mut self) -> Token {
        let t = self.tok();
        if self.i < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn peek(&self) -> Token {
        self.tok()
    }

    fn skip_space(&mut self) {
        while self.peek().kind == Kind::Space {
            self.i += 1;
        }
    }

    fn next_non_space(&mut self) -> Token {
        self.skip_space();
        self.next()
    }

    fn peek_non_space(&mut self) -> Token {
        self.skip_space();
        self.peek()
    }

    fn err<T>(&self, pos: usize, message: impl Into<String>) -> PResult<T> {
        Err(ParseError {
            pos,
            message: message.into(),
        })
    }

    fn describe(&self, t: Token) -> String {
        match t.kind {
            Kind::Eof => "EOF".to_owned(),
            Kind::RightDelim => "\"}}\"".to_owned(),
            Kind::LeftDelim => "\"{{\"".to_owned(),
            _ => format!("{:?}", self.text(t)),
        }
    }

    fn unexpected<T>(&self, t: Token, context: &str) -> PResult<T> {
        self.err(
            t.start,
            format!("unexpected {} in {context}", self.describe(t)),
        )
    }

    fn expect(&mut self, kind: Kind, context: &str) -> PResult<Token> {
        let t = self.next_non_space();
        if t.kind != kind {
            return self.unexpected(t, context);
        }
        Ok(t)
    }

    fn top_level(&mut self) -> PResult<List> {
        let mut list = Vec::new();
        loop {
            let t = self.peek();
            match t.kind {
                Kind::Eof => return Ok(list),
                Kind::LeftDelim => {
                    // {{define}} is only allowed at top level.
                    let save = self.i;
                    self.next();
                    if self.next_non_space().kind == Kind::Define {
                        self.definition(t.start)?;
                        continue;
                    }
                    self.i = save;
                }
                _ => {}
            }
            match self.text_or_action()? {
                Item::Node(n) => list.push(n),
                Item::None => {}
                Item::End(pos) => return self.err(pos, "unexpected {{end}}"),
                Item::Else(pos, _) => return self.err(pos, "unexpected {{else}}"),
            }
        }
    }

    fn definition(&mut self, pos: usize) -> PResult<()> {
        let name_tok = self.next_non_space();
        let name = match name_tok.kind {
            Kind::String | Kind::RawString => {
                unquote(self.text(name_tok)).map_err(|m| ParseError {
                    pos: name_tok.start,
                    message: m,
                })?
            }
            _ => return self.unexpected(name_tok, "define clause"),
        };
        self.expect(Kind::RightDelim, "define clause")?;
        let (list, nslots) = self.sub_template(|p| {
            let (list, end) = p.item_list()?;
            match end {
                Item::End(_) => Ok(list),
                Item::Else(pos, _) => p.err(pos, "unexpected {{else}} in define clause"),
                _ => p.err(pos, "unexpected EOF"),
            }
        })?;
        self.add_define(name, list, nslots);
        Ok(())
    }

    fn add_define(&mut self, name: String, list: List, nslots: usize) {
        // Go: a later non-empty definition replaces an earlier one.
        let empty = list
            .iter()
            .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()));
        if empty && self.defines.contains_key(&name) {
            return;
        }
        self.defines.insert(name, Define { list, nslots });
    }

    /// Parses a template body with its own variable frame and an unknown dot.
    fn sub_template(
        &mut self,
        f: impl FnOnce(&mut Self) -> PResult<List>,
    ) -> PResult<(List, usize)> {
        let saved_vars = std::mem::take(&mut self.vars);
        let saved_slots = self.nslots;
        let saved_dot = self.dot;
        let saved_range = self.range_depth;
        self.vars.push(Var {
            name: "$".to_owned(),
            slot: 0,
            ty: Ty::Unknown,
        });
        self.nslots = 1;
        self.dot = Ty::Unknown;
        self.range_depth = 0;
        let r = f(self);
        let nslots = self.nslots;
        self.vars = saved_vars;
        self.nslots = saved_slots;
        self.dot = saved_dot;
        self.range_depth = saved_range;
        Ok((r?, nslots))
    }

    /// Nodes until `{{end}}` or `{{else}}`.
    fn item_list(&mut self) -> PResult<(List, Item)> {
        let mut list = Vec::new();
        loop {
            if self.peek_non_space_text().kind == Kind::Eof {
                let t = self.peek();
                return self.err(t.start, "unexpected EOF");
            }
            match self.text_or_action()? {
                Item::Node(n) => list.push(n),
                Item::None => {}
                end @ (Item::End(_) | Item::Else(..)) => return Ok((list, end)),
            }
        }
    }

    fn peek_non_space_text(&self) -> Token {
        self.peek()
    }

    fn text_or_action(&mut self) -> PResult<Item> {
        let t = self.next();
        match t.kind {
            Kind::Text => Ok(Item::Node(Node::Text(self.text(t).into()))),
            Kind::Comment => Ok(Item::None),
            Kind::LeftDelim => self.action(),
            _ => self.unexpected(t, "input"),
        }
    }

    fn action(&mut self) -> PResult<Item> {
        let t = self.next_non_space();
        match t.kind {
            Kind::Block => self.block_control(t.start).map(Item::Node),
            Kind::Break => {
                if self.range_depth == 0 {
                    return self.err(t.start, "{{break}} outside {{range}}");
                }
                self.expect(Kind::RightDelim, "{{break}}")?;
                Ok(Item::Node(Node::Break))
            }
            Kind::Continue => {
                if self.range_depth == 0 {
                    return self.err(t.start, "{{continue}} outside {{range}}");
                }
                self.expect(Kind::RightDelim, "{{continue}}")?;
                Ok(Item::Node(Node::Continue))
            }
            Kind::Else => {
                let p = self.peek_non_space();
                match p.kind {
                    Kind::If => Ok(Item::Else(t.start, Some(Kind::If))),
                    Kind::With => Ok(Item::Else(t.start, Some(Kind::With))),
                    _ => {
                        self.expect(Kind::RightDelim, "else")?;
                        Ok(Item::Else(t.start, None))
                    }
                }
            }
            Kind::End => {
                self.expect(Kind::RightDelim, "end")?;
                Ok(Item::End(t.start))
            }
            Kind::If => self.control(Kind::If).map(Item::Node),
            Kind::Range => self.control(Kind::Range).map(Item::Node),
            Kind::With => self.control(Kind::With).map(Item::Node),
            Kind::Template => self.template_control(t.start).map(Item::Node),
            Kind::Define => self.err(t.start, "unexpected \"define\" in command"),
            _ => {
                self.i -= 1;
                let (pipe, _) = self.pipeline("command", Kind::RightDelim)?;
                if let (true, [cmd]) = (pipe.decl.is_empty(), pipe.cmds.as_slice())
                    && let [Arg::Direct(d, _, _)] = cmd.args.as_slice()
                {
                    return Ok(Item::Node(Node::Print(d.clone(), pipe)));
                }
                Ok(Item::Node(Node::Action(pipe)))
            }
        }
    }

    fn template_name(&mut self, context: &str) -> PResult<String> {
        let t = self.next_non_space();
        match t.kind {
            Kind::String | Kind::RawString => unquote(self.text(t)).map_err(|m| ParseError {
                pos: t.start,
                message: m,
            }),
            _ => self.unexpected(t, context),
        }
    }

    fn template_control(&mut self, pos: usize) -> PResult<Node> {
        let name = self.template_name("template clause")?;
        let pipe = if self.peek_non_space().kind != Kind::RightDelim {
            Some(self.pipeline("template clause", Kind::RightDelim)?.0)
        } else {
            self.next_non_space();
            None
        };
        Ok(Node::Template {
            name: name.into(),
            pipe,
            pos,
        })
    }

    fn block_control(&mut self, pos: usize) -> PResult<Node> {
        let name = self.template_name("block clause")?;
        let (pipe, _) = self.pipeline("block clause", Kind::RightDelim)?;
        let (list, nslots) = self.sub_template(|p| {
            let (list, end) = p.item_list()?;
            match end {
                Item::End(_) => Ok(list),
                _ => p.err(pos, "unexpected {{else}} in block clause"),
            }
        })?;
        self.add_define(name.clone(), list, nslots);
        Ok(Node::Template {
            name: name.into(),
            pipe: Some(pipe),
            pos,
        })
    }

    fn control(&mut self, kind: Kind) -> PResult<Node> {
        let pos = self.peek().start;
        self.enter(pos)?;
        let r = self.control_inner(kind);
        self.depth -= 1;
        r
    }

    fn enter(&mut self, pos: usize) -> PResult<()> {
        if self.depth >= MAX_NESTING {
            return self.err(pos, format!("template nesting deeper than {MAX_NESTING}"));
        }
        self.depth += 1;
        Ok(())
    }

    fn control_inner(&mut self, kind: Kind) -> PResult<Node> {
        let context = match kind {
            Kind::If => "if",
            Kind::Range => "range",
            _ => "with",
        };
        let nvars = self.vars.len();
        let saved_dot = self.dot;
        let (pipe, ty) = self.pipeline(context, Kind::RightDelim)?;
        if kind == Kind::Range {
            // Range variables hold the key/index and the element.
            let elem = ty.elem();
            let key = match ty {
                Ty::StrMap => Ty::Str,
                Ty::OwnerRefs | Ty::Strs => Ty::Int,
                _ => Ty::Unknown,
            };
            if !pipe.assign {
                match pipe.decl.len() {
                    1 => self.set_var_ty(nvars, elem),
                    2 => {
                        self.set_var_ty(nvars, key);
                        self.set_var_ty(nvars + 1, elem);
                    }
                    _ => {}
                }
            }
            self.dot = elem;
            self.range_depth += 1;
        } else if kind == Kind::With {
            self.dot = ty;
        }
        let body = self.item_list();
        if kind == Kind::Range {
            self.range_depth -= 1;
        }
        self.dot = saved_dot;
        let (list, next) = match body {
            Ok(x) => x,
            Err(e) => {
                self.vars.truncate(nvars);
                return Err(e);
            }
        };
        let r = (|| -> PResult<List> {
            match next {
                Item::End(_) => Ok(Vec::new()),
                Item::Else(_, Some(k))
                    if (k == Kind::If && kind == Kind::If)
                        || (k == Kind::With && kind == Kind::With) =>
                {
                    self.next_non_space();
                    // {{else if x}} ... {{end}} is {{else}}{{if x}} ... {{end}}{{end}}.
                    Ok(vec![self.control(k)?])
                }
                Item::Else(pos, _) => {
                    if let Item::Else(_, Some(_)) = next {
                        // `else if` in a range or `else with` in an if: the keyword is an error.
                        let t = self.peek_non_space();
                        self.expect(Kind::RightDelim, "else")
                            .map(|_| ())
                            .or_else(|_| self.unexpected(t, "else"))?;
                    }
                    let (else_list, end) = self.item_list()?;
                    match end {
                        Item::End(_) => Ok(else_list),
                        _ => self.err(pos, "expected end; found {{else}}"),
                    }
                }
                _ => Ok(Vec::new()),
            }
        })();
        self.vars.truncate(nvars);
        let else_list = r?;
        let c = Box::new(Control {
            pipe,
            list,
            else_list,
        });
        Ok(match kind {
            Kind::If => Node::If(c),
            Kind::Range => Node::Range(c),
            _ => Node::With(c),
        })
    }

    fn set_var_ty(&mut self, idx: usize, ty: Ty) {
        if let Some(v) = self.vars.get_mut(idx) {
            v.ty = ty;
        }
    }

    fn declare(&mut self, name: &str) -> usize {
        let slot = self.nslots;
        self.nslots += 1;
        self.vars.push(Var {
            name: name.to_owned(),
            slot,
            ty: Ty::Unknown,
        });
        slot
    }

    fn lookup_var(&self, name: &str) -> Option<&Var> {
        self.vars.iter().rev().find(|v| v.name == name)
    }

    /// A pipeline and the static type of its value.
    fn pipeline(&mut self, context: &str, end: Kind) -> PResult<(Pipe, Ty)> {
        let pos = self.peek().start;
        self.enter(pos)?;
        let r = self.pipeline_inner(context, end);
        self.depth -= 1;
        r
    }

    fn pipeline_inner(&mut self, context: &str, end: Kind) -> PResult<(Pipe, Ty)> {
        let mut decl = Vec::new();
        let mut assign = false;
        let first = self.peek_non_space();
        if first.kind == Kind::Variable {
            let save = self.i;
            let v = self.next();
            let name = self.text(v).to_owned();
            let n = self.peek_non_space();
            match n.kind {
                Kind::Assign | Kind::Declare => {
                    self.next();
                    assign = n.kind == Kind::Assign;
                    if assign {
                        let Some(slot) = self.lookup_var(&name).map(|var| var.slot) else {
                            return self.err(v.start, format!("undefined variable {name:?}"));
                        };
                        if slot == 0 && name == "$" {
                            self.root_assigned = true;
                        }
                        decl.push(slot);
                    } else {
                        decl.push(self.declare(&name));
                    }
                }
                Kind::Char if self.text(n) == "," => {
                    self.next();
                    if context != "range" {
                        return self.err(n.start, format!("too many declarations in {context}"));
                    }
                    decl.push(self.declare(&name));
                    let v2 = self.next_non_space();
                    if v2.kind != Kind::Variable {
                        return self.err(v2.start, "range can only initialize variables");
                    }
                    let name2 = self.text(v2).to_owned();
                    let op = self.next_non_space();
                    match op.kind {
                        Kind::Declare => decl.push(self.declare(&name2)),
                        Kind::Assign => {
                            assign = true;
                            let Some(var) = self.lookup_var(&name2) else {
                                return self.err(v2.start, format!("undefined variable {name2:?}"));
                            };
                            let slot = var.slot;
                            // The first variable was declared above; re-bind it as an assignment.
                            self.vars.pop();
                            self.nslots -= 1;
                            let Some(var1) = self.lookup_var(&name) else {
                                return self.err(v.start, format!("undefined variable {name:?}"));
                            };
                            decl = vec![var1.slot, slot];
                        }
                        _ => return self.unexpected(op, context),
                    }
                }
                _ => self.i = save,
            }
        }
        let mut cmds = Vec::new();
        let mut ty = Ty::Unknown;
        loop {
            let t = self.next_non_space();
            if t.kind == end {
                if cmds.is_empty() {
                    return self.err(t.start, format!("missing value for {context}"));
                }
                break;
            }
            match t.kind {
                Kind::Bool
                | Kind::CharConstant
                | Kind::Dot
                | Kind::Field
                | Kind::Identifier
                | Kind::Number
                | Kind::Nil
                | Kind::RawString
                | Kind::String
                | Kind::Variable
                | Kind::LeftParen => {
                    self.i -= 1;
                    let stage = cmds.len();
                    let (cmd, cty) = self.command(stage > 0)?;
                    if stage > 0
                        && let Some(Arg::Bool(_) | Arg::Dot | Arg::Nil | Arg::Num(_) | Arg::Str(_)) =
                            cmd.args.first()
                    {
                        return self.err(
                            cmd.span.0,
                            format!("non executable command in pipeline stage {}", stage + 1),
                        );
                    }
                    ty = cty;
                    cmds.push(cmd);
                }
                _ => return self.unexpected(t, context),
            }
        }
        // Declared variables take the pipeline's static type (unless reassigned later).
        if !assign
            && decl.len() == 1
            && let Some(v) = self.vars.last_mut()
        {
            v.ty = ty;
        }
        if assign {
            for slot in &decl {
                if let Some(v) = self.vars.iter_mut().rev().find(|v| v.slot == *slot) {
                    v.ty = Ty::Unknown;
                }
            }
        }
        Ok((Pipe { decl, assign, cmds }, ty))
    }

    /// A command; `piped`: it receives the previous command's value as its last argument.
    fn command(&mut self, piped: bool) -> PResult<(Cmd, Ty)> {
        let start = self.peek_non_space().start;
        let mut args = Vec::new();
        let mut tys = Vec::new();
        loop {
            self.skip_space();
            if let Some((a, ty)) = self.operand()? {
                args.push(a);
                tys.push(ty);
            }
            let t = self.next();
            match t.kind {
                Kind::Space => continue,
                Kind::RightDelim | Kind::RightParen => {
                    self.i -= 1;
                }
                Kind::Pipe => {}
                _ => return self.unexpected(t, "operand"),
            }
            break;
        }
        let end = self.tok().start;
        if args.is_empty() {
            return self.err(start, "empty command");
        }
        let span = (start, end.max(start));
        let nargs = args.len() - 1 + usize::from(piped);
        if piped
            && matches!(
                args[0],
                Arg::Bool(_) | Arg::Dot | Arg::Nil | Arg::Num(_) | Arg::Str(_)
            )
        {
            // The pipeline reports "non executable command".
            return Ok((Cmd { args, span }, Ty::Unknown));
        }
        // A function that is an operand, not the command (`len printf`, `printf.Field`), is
        // called without arguments.
        for (i, arg) in args.iter().enumerate() {
            let called_bare = match arg {
                Arg::Func(f, _) if i > 0 => Some(f),
                Arg::Chain(base, _, _) => match &**base {
                    Arg::Func(f, _) => Some(f),
                    _ => None,
                },
                _ => None,
            };
            if let Some(f) = called_bare {
                funcs::check_arity(f.func, 0).map_err(|m| ParseError {
                    pos: start,
                    message: m,
                })?;
            }
        }
        // Static checks of the first operand with arguments.
        let ty = match &args[0] {
            Arg::Func(f, _) => {
                funcs::check_arity(f.func, nargs).map_err(|m| ParseError {
                    pos: start,
                    message: m,
                })?;
                Ty::Unknown
            }
            Arg::Field(chain, _)
            | Arg::Direct(_, chain, _)
            | Arg::Var(_, chain, _)
            | Arg::Chain(_, chain, _) => {
                let last = chain.last();
                if nargs == 0
                    && tys[0] != Ty::Unknown
                    && let Some(f) = last
                    && let Some(n) = f.member.and_then(method_arity)
                    && n > 0
                {
                    return self.err(
                        start,
                        format!("wrong number of args for {}: want {n} got 0", f.name),
                    );
                }
                if nargs > 0
                    && let Some(f) = last
                {
                    match f.member.and_then(method_arity) {
                        Some(n) if n != nargs => {
                            return self.err(
                                start,
                                format!(
                                    "wrong number of args for {}: want {n} got {nargs}",
                                    f.name
                                ),
                            );
                        }
                        Some(_) => {}
                        None if tys[0] != Ty::Unknown && tys[0] != Ty::StrMap => {
                            return self.err(
                                start,
                                format!(
                                    "{} has arguments but cannot be invoked as function",
                                    f.name
                                ),
                            );
                        }
                        None => {}
                    }
                }
                tys[0]
            }
            Arg::Pipe(_) => {
                if nargs > 0 {
                    return self.err(start, "can't give argument to non-function");
                }
                tys[0]
            }
            Arg::Dot => {
                if nargs > 0 {
                    return self.err(start, "can't give argument to non-function .");
                }
                self.dot
            }
            Arg::Nil => return self.err(start, "nil is not a command"),
            _ => {
                if nargs > 0 {
                    return self.err(
                        start,
                        format!(
                            "can't give argument to non-function {}",
                            &self.src[span.0..span.1].trim()
                        ),
                    );
                }
                Ty::Unknown
            }
        };
        Ok((Cmd { args, span }, ty))
    }

    /// Resolves a field chain from a receiver of static type `ty`.
    fn resolve_chain(
        &self,
        mut ty: Ty,
        fields: &[&'s str],
        pos: usize,
    ) -> PResult<(Box<[FieldRef]>, Ty)> {
        let mut out = Vec::with_capacity(fields.len());
        for name in fields {
            let member = Member::from_name(name);
            match static_member(ty, member) {
                Some(Ok(t)) => ty = t,
                Some(Err(())) => {
                    return self.err(
                        pos,
                        format!("can't evaluate field {name} in type {}", ty.go_name()),
                    );
                }
                None => ty = Ty::Unknown,
            }
            out.push(FieldRef {
                name: (*name).into(),
                member,
            });
        }
        Ok((out.into_boxed_slice(), ty))
    }

    fn field_names(&mut self, first: Option<&'s str>) -> Vec<&'s str> {
        let mut names: Vec<&'s str> = first.into_iter().collect();
        while self.peek().kind == Kind::Field {
            let t = self.next();
            names.push(&self.text(t)[1..]);
        }
        names
    }

    fn operand(&mut self) -> PResult<Option<(Arg, Ty)>> {
        let t = self.peek();
        let start = t.start;
        let (term, ty) = match t.kind {
            Kind::Identifier => {
                self.next();
                let name = self.text(t);
                match funcs::lookup(name) {
                    Some(Ok(f)) => (Arg::Func(f, (t.start, t.end)), Ty::Unknown),
                    Some(Err(msg)) => return self.err(t.start, msg),
                    None => return self.err(t.start, format!("function {name:?} not defined")),
                }
            }
            Kind::Dot => {
                self.next();
                (Arg::Dot, self.dot)
            }
            Kind::Nil => {
                self.next();
                (Arg::Nil, Ty::Unknown)
            }
            Kind::Variable => {
                self.next();
                let name = self.text(t);
                let Some(var) = self.lookup_var(name) else {
                    return self.err(t.start, format!("undefined variable {name:?}"));
                };
                let (slot, vty) = (
                    var.slot,
                    if var.slot == 0 && !self.static_root {
                        Ty::Unknown
                    } else {
                        var.ty
                    },
                );
                let names = self.field_names(None);
                let (chain, ty) = self.resolve_chain(vty, &names, t.start)?;
                let end = self
                    .toks
                    .get(self.i.saturating_sub(1))
                    .map_or(t.end, |x| x.end);
                return Ok(Some((Arg::Var(slot, chain, (start, end)), ty)));
            }
            Kind::Field => {
                self.next();
                let names = self.field_names(Some(&self.text(t)[1..]));
                let (chain, ty) = self.resolve_chain(self.dot, &names, t.start)?;
                let end = self
                    .toks
                    .get(self.i.saturating_sub(1))
                    .map_or(t.end, |x| x.end);
                if self.dot == Ty::Event {
                    let members: Vec<Option<Member>> = chain.iter().map(|f| f.member).collect();
                    if let Some(d) = direct_of(&members, &names) {
                        return Ok(Some((Arg::Direct(d, chain, (start, end)), ty)));
                    }
                }
                return Ok(Some((Arg::Field(chain, (start, end)), ty)));
            }
            Kind::Bool => {
                self.next();
                (Arg::Bool(self.text(t) == "true"), Ty::Bool)
            }
            Kind::Number | Kind::CharConstant => {
                self.next();
                let n = parse_number(self.text(t), t.kind == Kind::CharConstant).map_err(|m| {
                    ParseError {
                        pos: t.start,
                        message: m,
                    }
                })?;
                (Arg::Num(n), Ty::Unknown)
            }
            Kind::String | Kind::RawString => {
                self.next();
                let s = unquote(self.text(t)).map_err(|m| ParseError {
                    pos: t.start,
                    message: m,
                })?;
                (Arg::Str(s.into()), Ty::Str)
            }
            Kind::LeftParen => {
                self.next();
                let (pipe, ty) = self.pipeline("parenthesized pipeline", Kind::RightParen)?;
                (Arg::Pipe(Box::new(pipe)), ty)
            }
            _ => return Ok(None),
        };
        if self.peek().kind == Kind::Field {
            match term {
                Arg::Bool(_) | Arg::Str(_) | Arg::Num(_) | Arg::Nil | Arg::Dot => {
                    return self.err(
                        self.peek().start,
                        format!(
                            "unexpected . after term {:?}",
                            self.src[start..t.end].trim()
                        ),
                    );
                }
                _ => {}
            }
            let names = self.field_names(None);
            let (chain, cty) = self.resolve_chain(ty, &names, start)?;
            let end = self
                .toks
                .get(self.i.saturating_sub(1))
                .map_or(t.end, |x| x.end);
            return Ok(Some((Arg::Chain(Box::new(term), chain, (start, end)), cty)));
        }
        Ok(Some((term, ty)))
    }
}

enum Item {
    Node(Node),
    None,
    End(usize),
    Else(usize, Option<Kind>),
}

/// Go's `strconv.Unquote` for `"..."`, `` `...` `` and `'...'` literals.
pub(crate) fn unquote(lit: &str) -> Result<String, String> {
    let bad = || "invalid syntax".to_owned();
    if let Some(raw) = lit.strip_prefix('`') {
        return raw
            .strip_suffix('`')
            .map(|s| s.replace('\r', ""))
            .ok_or_else(bad);
    }
    let quote = lit.chars().next().ok_or_else(bad)?;
    if quote != '"' && quote != '\'' {
        return Err(bad());
    }
    let body = lit
        .strip_prefix(quote)
        .and_then(|s| s.strip_suffix(quote))
        .ok_or_else(bad)?;
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            if c == quote || c == '\n' {
                return Err(bad());
            }
            out.push(c);
            continue;
        }
        let e = chars.next().ok_or_else(bad)?;
        match e {
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            '\'' if quote == '\'' => out.push('\''),
            '"' if quote == '"' => out.push('"'),
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let mut v: u32 = 0;
                for _ in 0..n {
                    let d = chars.next().and_then(|c| c.to_digit(16)).ok_or_else(bad)?;
                    v = v * 16 + d;
                }
                if e == 'x' {
                    // A byte; only ASCII is representable in a Rust string.
                    if v < 0x80 {
                        out.push(char::from(v as u8));
                    } else {
                        out.push('\u{fffd}');
                    }
                } else {
                    out.push(char::from_u32(v).ok_or_else(bad)?);
                }
            }
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    let d = chars.next().and_then(|c| c.to_digit(8)).ok_or_else(bad)?;
                    v = v * 8 + d;
                }
                if v > 255 {
                    return Err(bad());
                }
                if v < 0x80 {
                    out.push(char::from(v as u8));
                } else {
                    out.push('\u{fffd}');
                }
            }
            _ => return Err(bad()),
        }
    }
    if quote == '\'' && out.chars().count() != 1 {
        return Err(bad());
    }
    Ok(out)
}

/// Go's `parse.NumberNode` interpretation of a number or character literal.
pub(crate) fn parse_number(text: &str, is_char: bool) -> Result<NumLit, String> {
    if is_char {
        let s = unquote(text).map_err(|_| format!("malformed character constant: {text}"))?;
        let c = s.chars().next().unwrap_or('\0');
        let v = i64::from(u32::from(c));
        return Ok(NumLit {
            int: Some(v),
            float: Some(v as f64),
            float_text: false,
        });
    }
    if text.ends_with('i') {
        return Err(format!("complex numbers are not supported: {text:?}"));
    }
    let clean: String = text.chars().filter(|c| *c != '_').collect();
    let (neg, digits) = match clean.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
    };
    let lower = digits.to_ascii_lowercase();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|b| b.is_ascii_digit())
    {
        i64::from_str_radix(&lower[1..], 8).ok()
    } else {
        lower.parse::<i64>().ok()
    }
    .map(|v| if neg { -v } else { v });
    let is_hex = lower.starts_with("0x");
    let float_text = if is_hex {
        lower.contains('.') || lower.contains('p')
    } else {
        lower.contains(['.', 'e'])
    };
    let mut float = if is_hex && !float_text {
        int.map(|i| i as f64)
    } else if is_hex {
        None
    } else {
        clean.parse::<f64>().ok()
    };
    if float.is_none() {
        float = int.map(|i| i as f64);
    }
    let mut int = int;
    if let (None, Some(f)) = (int, float) {
        if !float_text {
            return Err(format!("integer overflow: {text:?}"));
        }
        if f.fract() == 0.0 && f.abs() < 9.2e18 {
            int = Some(f as i64);
        }
    }
    if int.is_none() && float.is_none() {
        return Err(format!("illegal number syntax: {text:?}"));
    }
    Ok(NumLit {
        int,
        float,
        float_text,
    })
}
