//! JSON text exactly as Go's `encoding/json` writes it.
//!
//! Upstream bodies come from `json.Marshal` and sprig's `toJson`/`toPrettyJson` use it too, so
//! byte-identical output needs its habits: object keys sorted, `<`, `>` and `&` escaped as
//! `\u003c`, `\u003e`, `\u0026`, U+2028/U+2029 escaped, control characters other than `\n`, `\r`
//! and `\t` written as `\u00XX` (Go 1.19), and floats in Go's `strconv` style.

use std::fmt::Write as _;

use serde_json::Value;

/// Writes `value` compactly, as `json.Marshal` does.
pub fn write_compact(value: &Value, out: &mut String) {
    write_value(value, out, None, 0);
}

/// Writes `value` indented by two spaces per level, as `json.MarshalIndent(v, "", "  ")` does.
pub fn write_pretty(value: &Value, out: &mut String) {
    write_value(value, out, Some("  "), 0);
}

/// [`write_pretty`] of a value nested `depth` levels deep in an indented document (its
/// lines are indented as its place there needs).
pub fn write_pretty_at(value: &Value, out: &mut String, depth: usize) {
    write_value(value, out, Some("  "), depth);
}

/// `json.Marshal` of `value`, as a new string.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    write_compact(value, &mut out);
    out
}

/// `json.MarshalIndent(value, "", "  ")`, as a new string.
pub fn to_string_pretty(value: &Value) -> String {
    let mut out = String::new();
    write_pretty(value, &mut out);
    out
}

fn newline(out: &mut String, indent: Option<&str>, depth: usize) {
    if let Some(ind) = indent {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(ind);
        }
    }
}

fn write_value(value: &Value, out: &mut String, indent: Option<&str>, depth: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent, depth + 1);
                write_value(item, out, indent, depth + 1);
            }
            newline(out, indent, depth);
            out.push(']');
        }
        Value::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            // serde_json's map is sorted unless `preserve_order` is on somewhere in the
            // dependency graph; sort explicitly so the output never depends on that.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent, depth + 1);
                write_string(k, out);
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                write_value(v, out, indent, depth + 1);
            }
            newline(out, indent, depth);
            out.push('}');
        }
    }
}

fn write_number(n: &serde_json::Number, out: &mut String) {
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(f) = n.as_f64() {
        write_float(f, out);
    }
}

/// A float64 as Go's `encoding/json` formats it: `strconv.FormatFloat(f, 'f', -1, 64)` for
/// magnitudes in [1e-6, 1e21), else the shortest `'e'` form with a two-digit exponent minimum.
pub fn write_float(f: f64, out: &mut String) {
    let abs = f.abs();
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        // Rust's Display is the shortest round-trip representation without exponent.
        let _ = write!(out, "{f}");
        return;
    }
    let s = format!("{f:e}");
    // Rust writes `1e-7` / `1.5e21`; Go writes `1e-07` / `1.5e+21`.
    match s.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            let _ = write!(out, "{mantissa}e{sign}");
            if digits.len() < 2 {
                out.push('0');
            }
            out.push_str(digits);
        }
        None => out.push_str(&s),
    }
}

/// A JSON string literal with Go's escaping.
pub fn write_string(s: &str, out: &mut String) {
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            '<' => Some("\\u003c"),
            '>' => Some("\\u003e"),
            '&' => Some("\\u0026"),
            '\u{2028}' => Some("\\u2028"),
            '\u{2029}' => Some("\\u2029"),
            c if (c as u32) < 0x20 => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
        }
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapes_like_go() {
        assert_eq!(
            to_string(&json!("a<b>&\"c\"\n\u{1}\u{2028}é")),
            r#""a\u003cb\u003e\u0026\"c\"\n\u0001\u2028é""#
        );
    }

    #[test]
    fn sorts_keys_and_indents() {
        let v = json!({"b": [1, {"y": null, "x": true}], "a": {}, "c": []});
        assert_eq!(
            to_string(&v),
            r#"{"a":{},"b":[1,{"x":true,"y":null}],"c":[]}"#
        );
        assert_eq!(
            to_string_pretty(&v),
            "{\n  \"a\": {},\n  \"b\": [\n    1,\n    {\n      \"x\": true,\n      \"y\": null\n    }\n  ],\n  \"c\": []\n}"
        );
    }

    #[test]
    fn floats_like_go() {
        let f = |x: f64| {
            let mut s = String::new();
            write_float(x, &mut s);
            s
        };
        assert_eq!(f(1.5), "1.5");
        assert_eq!(f(100.0), "100");
        assert_eq!(f(1e-7), "1e-07");
        assert_eq!(f(1.5e21), "1.5e+21");
        assert_eq!(f(0.000001), "0.000001");
    }
}
