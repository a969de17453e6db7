//! Go `text/template` (+ sprig) templates, compiled once and rendered against an [`Event`].
//!
//! The engine follows Go 1.19's `text/template` and sprig v3.2.3's `TxtFuncMap`, with dot
//! bound to upstream's `*EnhancedEvent`:
//!
//! - the lexer and parser implement Go's grammar (trim markers, comments, raw strings,
//!   pipelines, parenthesised pipelines, variables, `if`/`else if`/`with`/`range`/`else`,
//!   `break`/`continue`, `define`/`template`/`block`);
//! - functions are resolved when the template is parsed (`function "x" not defined` is a
//!   [`TemplateError`]), and so are field chains where dot is statically the event
//!   (`.InvolvedObject.Name` becomes a chain of precomputed member ids, and a field that does
//!   not exist on the event's Go type is a parse error);
//! - rendering evaluates over a small value type that borrows from the event: field access,
//!   comparisons, conditionals and plain substitution allocate nothing beyond the output.
//!
//! Go's printing rules are kept: a missing map key renders `<no value>`, maps print as
//! `map[k:v ...]`, times print as `2006-01-02 15:04:05.999999999 -0700 MST` (always in UTC),
//! the zero time as `0001-01-01 00:00:00 +0000 UTC`.
//!
//! Every render is bounded, whatever the event holds: at most [`MAX_OUTPUT`] bytes of output
//! (and of any string it builds), [`MAX_STEPS`] steps of work, values nested at most
//! [`MAX_VALUE_DEPTH`] deep, and no dict that contains itself. A render that reaches a bound
//! fails with a [`RenderError`] (that delivery fails; nothing else does). Where Go would do
//! otherwise: it prints a width or precision over 1e6 as `%!(BADWIDTH)`/`%!(BADPREC)` too, but
//! it lets a template build an unbounded output, and crashes on printing a dict that contains
//! itself.

mod exec;
mod funcs;
pub(crate) mod gotime;
mod lex;
mod limits;
mod parse;
mod types;
mod value;

pub use limits::{MAX_OUTPUT, MAX_STEPS, MAX_VALUE_DEPTH};

/// The steps renders sharing it may still take ([`MAX_STEPS`] at first): what one layout's
/// templates spend together.
#[derive(Debug)]
pub struct Budget(limits::Fuel);

impl Budget {
    /// A whole budget.
    pub fn new() -> Self {
        Self(limits::Fuel::new())
    }
}

impl Default for Budget {
    fn default() -> Self {
        Self::new()
    }
}

use std::sync::Arc;

use crate::event::Event;

/// A compiled template.
///
/// Cheap to clone (the compiled program is shared) and safe to use from many threads.
#[derive(Debug, Clone)]
pub struct Template {
    source: Arc<str>,
    /// `Some` when the template has no actions.
    literal: Option<Arc<str>>,
    program: Arc<parse::Program>,
}

/// A template that does not parse.
#[derive(Debug, Clone, thiserror::Error)]
#[error("template: template:{line}:{column}: {message}")]
pub struct TemplateError {
    /// 1-based line within the template text.
    pub line: usize,
    /// 1-based column within the template text.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// A template that failed while rendering.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct RenderError {
    /// What went wrong, Go-style: `template: template:LINE:COL: executing "template" at
    /// <.Field>: ...`.
    pub message: String,
}

/// 1-based line and column (in characters) of byte offset `pos` in `src`.
fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(src.len());
    let mut p = pos;
    while !src.is_char_boundary(p) {
        p -= 1;
    }
    let before = &src[..p];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

impl Template {
    /// Parses and compiles `source`.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let program = parse::parse(source).map_err(|e| {
            let (line, column) = line_col(source, e.pos);
            TemplateError {
                line,
                column,
                message: crate::redact::excerpt(&e.message, 300),
            }
        })?;
        let literal = match program.list.as_slice() {
            [] if program.defines.is_empty() => Some(Arc::from("")),
            [parse::Node::Text(t)] if program.defines.is_empty() && **t == *source => {
                Some(Arc::from(source))
            }
            _ => None,
        };
        Ok(Self {
            source: Arc::from(source),
            literal,
            program: Arc::new(program),
        })
    }

    /// The template text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// `Some(text)` when the template has no actions (rendering it yields `text`).
    pub fn as_literal(&self) -> Option<&str> {
        self.literal.as_deref()
    }

    /// Renders into `out`. On error, `out` may hold part of the output (as with Go).
    pub fn render(&self, event: Event<'_>, out: &mut String) -> Result<(), RenderError> {
        self.render_with(event, out, &mut Budget::new())
    }

    /// [`render`](Self::render) spending from `budget`: templates rendered together (the
    /// fields of a layout) share one.
    pub fn render_with(
        &self,
        event: Event<'_>,
        out: &mut String,
        budget: &mut Budget,
    ) -> Result<(), RenderError> {
        if let Some(lit) = &self.literal {
            out.push_str(lit);
            return Ok(());
        }
        exec::execute(&self.program, event, out, &mut budget.0).map_err(|e| {
            let (line, column) = line_col(&self.source, e.span.0);
            let at = self.source.get(e.span.0..e.span.1).unwrap_or("").trim();
            // What failed may quote event data (`fail`, a bad argument): a short excerpt only.
            RenderError {
                message: format!(
                    "template: template:{line}:{column}: executing \"template\" at <{}>: {}",
                    crate::redact::Brief(at),
                    crate::redact::excerpt(&e.message, 300)
                ),
            }
        })
    }

    /// Renders into a new string.
    pub fn render_to_string(&self, event: Event<'_>) -> Result<String, RenderError> {
        let mut s = String::with_capacity(self.source.len() + 32);
        self.render(event, &mut s)?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests;
