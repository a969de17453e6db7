//! What one render may spend: output bytes, steps of work, and the nesting of the values it
//! builds.
//!
//! A template is configuration, but what it does with event data is not: `{{ printf "%*d"
//! .Count 1 }}`, a `range` over `until` with `repeat` inside, or a dict stored inside itself
//! would otherwise let a single event exhaust memory, the CPU or the stack, on every restart.
//! Every render therefore runs on a budget; exceeding it is a [`RenderError`](super::RenderError)
//! of that render only.

use std::fmt;

/// The most bytes one render may produce, and the longest string any value in it may be.
///
/// Nothing a receiver accepts comes near it (a Kubernetes object, the event included, is at most
/// 1.5 MiB): it is there to stop a template that multiplies its input.
pub const MAX_OUTPUT: usize = 8 << 20;

/// The steps of work one render may take: every action, command, `range` iteration and function
/// call is one, and a function's result costs one more per element (lists, dicts) or per 16
/// bytes (strings) it holds. The seed app's templates take fewer than 100; `toJson .` of a large
/// event a few hundred. At most a few tenths of a second of CPU, and what the render builds
/// stays in the tens of megabytes.
pub const MAX_STEPS: u64 = 1_000_000;

/// How deeply the lists and dicts a template builds may nest (`dict "a" (dict "b" ...)`).
pub const MAX_VALUE_DEPTH: usize = 100;

/// A bound a value or an output ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bound {
    /// Larger than [`MAX_OUTPUT`].
    Size,
    /// Nested deeper than [`MAX_VALUE_DEPTH`].
    Depth,
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bound::Size => write!(f, "output larger than {} MiB", MAX_OUTPUT >> 20),
            Bound::Depth => write!(f, "value nested deeper than {MAX_VALUE_DEPTH} levels"),
        }
    }
}

impl From<Bound> for String {
    fn from(b: Bound) -> String {
        b.to_string()
    }
}

/// `Err(Bound::Size)` once `out` is longer than [`MAX_OUTPUT`].
pub(crate) fn check_len(out: &str) -> Result<(), Bound> {
    if out.len() > MAX_OUTPUT {
        Err(Bound::Size)
    } else {
        Ok(())
    }
}

/// `Err(Bound::Depth)` beyond [`MAX_VALUE_DEPTH`].
pub(crate) fn check_depth(depth: usize) -> Result<(), Bound> {
    if depth > MAX_VALUE_DEPTH {
        Err(Bound::Depth)
    } else {
        Ok(())
    }
}

/// The steps a render has left.
#[derive(Debug)]
pub(crate) struct Fuel {
    left: u64,
}

/// The message of a render that ran out of steps.
pub(crate) fn out_of_steps() -> String {
    format!("template took more than {MAX_STEPS} steps")
}

impl Fuel {
    /// A whole budget of [`MAX_STEPS`].
    pub(crate) fn new() -> Self {
        Self { left: MAX_STEPS }
    }

    /// Spends `steps`; false (and nothing left) once the budget is used up.
    #[inline]
    pub(crate) fn try_spend(&mut self, steps: u64) -> bool {
        match self.left.checked_sub(steps) {
            Some(left) => {
                self.left = left;
                true
            }
            None => {
                self.left = 0;
                false
            }
        }
    }

    /// Spends `steps`; an error once the budget is used up.
    pub(crate) fn charge(&mut self, steps: u64) -> Result<(), String> {
        if self.try_spend(steps) {
            Ok(())
        } else {
            Err(out_of_steps())
        }
    }

    /// Spends one step per item of `items` as it is taken, so that a function building a long
    /// list stops once the budget is used up instead of after it has built the whole list.
    pub(crate) fn collect<T>(&mut self, items: impl Iterator<Item = T>) -> Result<Vec<T>, String> {
        let mut out = Vec::new();
        for item in items {
            self.charge(1)?;
            out.push(item);
        }
        Ok(out)
    }
}
