//! Go `text/template` (+ sprig) templates, compiled once and rendered against an [`Event`].
//! (Interface placeholder: the implementation is being written.)

use crate::event::Event;

/// A compiled template.
#[derive(Debug, Clone)]
pub struct Template {
    source: String,
}

/// A template that does not parse.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
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
    /// What went wrong.
    pub message: String,
}

impl Template {
    /// Parses and compiles `source`.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        Ok(Self { source: source.to_owned() })
    }

    /// The template text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// `Some(text)` when the template has no actions.
    pub fn as_literal(&self) -> Option<&str> {
        (!self.source.contains("{{")).then_some(self.source.as_str())
    }

    /// Renders into `out`.
    pub fn render(&self, _event: Event<'_>, out: &mut String) -> Result<(), RenderError> {
        out.push_str(&self.source);
        Ok(())
    }

    /// Renders into a new string.
    pub fn render_to_string(&self, event: Event<'_>) -> Result<String, RenderError> {
        let mut s = String::new();
        self.render(event, &mut s)?;
        Ok(s)
    }
}
