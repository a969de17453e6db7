//! Go's `fmt` package as templates use it: `print`, `println`, `printf`.

use std::fmt::Write as _;

use super::super::limits::{Bound, check_depth, check_len};
use super::super::value::{Value, fmt_float_v, fmt_v};

type FmtResult = Result<(), Bound>;

/// `fmt.Sprint`: operands formatted with `%v`, a space between two operands when neither is
/// a string.
pub(crate) fn sprint(args: &[Value<'_>], out: &mut String) -> FmtResult {
    let mut prev_string = false;
    for (i, a) in args.iter().enumerate() {
        let is_string = a.as_str().is_some();
        if i > 0 && !is_string && !prev_string {
            out.push(' ');
        }
        fmt_arg_v(a, out)?;
        prev_string = is_string;
    }
    Ok(())
}

/// `fmt.Sprintln`: operands separated by spaces, then a newline.
pub(crate) fn sprintln(args: &[Value<'_>], out: &mut String) -> FmtResult {
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        fmt_arg_v(a, out)?;
    }
    out.push('\n');
    Ok(())
}

/// `%v` of a top-level argument (Stringers print through `String()`).
pub(crate) fn fmt_arg_v(a: &Value<'_>, out: &mut String) -> FmtResult {
    fmt_v(a, out, 0)
}

#[derive(Default, Clone, Copy)]
struct Flags {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

fn pad(out: &mut String, s: &str, f: &Flags, numeric: bool) {
    let n = s.chars().count();
    let w = f.width.unwrap_or(0);
    if n >= w {
        out.push_str(s);
        return;
    }
    let fill = w - n;
    if f.minus {
        out.push_str(s);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if f.zero {
        // Zero padding goes after a sign.
        let (sign, rest) = if numeric && (s.starts_with('-') || s.starts_with('+')) {
            s.split_at(1)
        } else {
            ("", s)
        };
        out.push_str(sign);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(rest);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(s);
    }
}

/// Go's `strconv.Quote`.
pub(crate) fn go_quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            '\u{fffd}' => out.push_str("\\ufffd"),
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
}

/// An approximation of Go's `strconv.IsPrint`.
pub(crate) fn is_go_printable(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    let u = c as u32;
    let format_or_control = c.is_control()
        || matches!(u, 0x80..=0x9f | 0xad | 0x2028 | 0x2029 | 0xfeff | 0xfff9..=0xfffb);
    // Go's IsPrint accepts only U+0020 as a space.
    let space = c.is_whitespace();
    !(format_or_control || space)
}

/// An argument as Go's fmt shows it in error reports: `<nil>`, or `type=value`.
fn fmt_bad_arg(a: &Value<'_>, out: &mut String) -> FmtResult {
    match a {
        Value::Nil | Value::Missing => out.push_str("<nil>"),
        _ => {
            out.push_str(&a.type_name());
            out.push('=');
            fmt_v(a, out, 0)?;
        }
    }
    Ok(())
}

fn bad_verb(verb: char, a: &Value<'_>, out: &mut String) -> FmtResult {
    out.push_str("%!");
    out.push(verb);
    out.push('(');
    fmt_bad_arg(a, out)?;
    out.push(')');
    Ok(())
}

/// `n` copies of `c`.
fn push_n(out: &mut String, c: char, n: usize) {
    out.extend(std::iter::repeat_n(c, n));
}

fn fmt_int(i: i64, verb: char, f: &Flags, out: &mut String) -> bool {
    let neg = i < 0;
    let u = i.unsigned_abs();
    let digits = match verb {
        'd' | 'v' => u.to_string(),
        'x' => format!("{u:x}"),
        'X' => format!("{u:X}"),
        'o' | 'O' => format!("{u:o}"),
        'b' => format!("{u:b}"),
        'c' => {
            let s = char::from_u32(i as u32).unwrap_or('\u{fffd}').to_string();
            pad(out, &s, f, false);
            return true;
        }
        'q' => {
            let c = char::from_u32(i as u32).unwrap_or('\u{fffd}');
            let mut s = String::new();
            go_quote(&c.to_string(), &mut s);
            let inner = &s[1..s.len() - 1];
            let inner = if inner == "\\\"" { "\"" } else { inner };
            let q = if c == '\'' {
                "'\\''".to_owned()
            } else {
                format!("'{inner}'")
            };
            pad(out, &q, f, false);
            return true;
        }
        'U' => {
            let s = format!("U+{u:04X}");
            pad(out, &s, f, false);
            return true;
        }
        _ => return false,
    };
    let mut s = String::new();
    if neg {
        s.push('-');
    } else if f.plus {
        s.push('+');
    } else if f.space {
        s.push(' ');
    }
    if f.sharp {
        match verb {
            'x' => s.push_str("0x"),
            'X' => s.push_str("0X"),
            'o' => s.push('0'),
            'b' => s.push_str("0b"),
            _ => {}
        }
    }
    if verb == 'O' {
        s.push_str("0o");
    }
    match f.prec {
        // Precision 0 prints nothing for 0.
        Some(0) if u == 0 => {}
        Some(p) => {
            push_n(&mut s, '0', p.saturating_sub(digits.len()));
            s.push_str(&digits);
        }
        None => s.push_str(&digits),
    }
    let zero_ok = f.prec.is_none();
    let ff = Flags {
        zero: f.zero && zero_ok,
        ..*f
    };
    pad(out, &s, &ff, true);
    true
}

/// Digits past the decimal point that can be non-zero in an `f64` (its exact expansion has at
/// most 1074); beyond them Go prints zeros, and Rust's formatter panics past 65535.
const MAX_EXACT_DECIMALS: usize = 1100;

/// Significant digits an `f64`'s exact expansion can have (at most 767).
const MAX_EXACT_DIGITS: usize = 800;

/// `x` with `prec` digits after the point, as Go's `%.Nf` (exact, zero-padded past the digits
/// a double has).
fn fixed(x: f64, prec: usize) -> String {
    let mut s = format!("{:.*}", prec.min(MAX_EXACT_DECIMALS), x);
    if prec > MAX_EXACT_DECIMALS && x.is_finite() {
        push_n(&mut s, '0', prec - MAX_EXACT_DECIMALS);
    }
    s
}

/// `x` as Go's `%.Ne`: mantissa with `prec` decimals, and an exponent of two digits at least.
fn scientific(x: f64, prec: usize) -> String {
    let e = format!("{:.*e}", prec.min(MAX_EXACT_DIGITS), x);
    let (m, ex) = e.split_once('e').unwrap_or((&e, "0"));
    let ex: i32 = ex.parse().unwrap_or(0);
    let mut m = m.to_owned();
    if prec > MAX_EXACT_DIGITS && x.is_finite() {
        push_n(&mut m, '0', prec - MAX_EXACT_DIGITS);
    }
    format!(
        "{m}e{}{:02}",
        if ex < 0 { '-' } else { '+' },
        ex.unsigned_abs()
    )
}

fn fmt_float(x: f64, verb: char, f: &Flags, out: &mut String) -> bool {
    let mut s = match verb {
        'v' | 'g' | 'G' => match f.prec {
            None => {
                let mut s = String::new();
                fmt_float_v(x, &mut s);
                s
            }
            Some(p) => {
                // %.Ng: N significant digits, trailing zeros dropped (so digits a double
                // does not have never show).
                let p = p.clamp(1, MAX_EXACT_DIGITS);
                let e = format!("{:.*e}", p - 1, x);
                let (m, ex) = e.split_once('e').unwrap_or((&e, "0"));
                let ex: i32 = ex.parse().unwrap_or(0);
                if ex < -4 || ex >= p as i32 {
                    let m = if m.contains('.') {
                        m.trim_end_matches('0').trim_end_matches('.')
                    } else {
                        m
                    };
                    format!(
                        "{m}e{}{:02}",
                        if ex < 0 { '-' } else { '+' },
                        ex.unsigned_abs()
                    )
                } else {
                    let decimals = (p as i32 - 1 - ex).max(0) as usize;
                    let s = format!("{x:.decimals$}");
                    if s.contains('.') {
                        s.trim_end_matches('0').trim_end_matches('.').to_owned()
                    } else {
                        s
                    }
                }
            }
        },
        'f' | 'F' => fixed(x, f.prec.unwrap_or(6)),
        'e' | 'E' => scientific(x, f.prec.unwrap_or(6)),
        _ => return false,
    };
    if verb == 'E' || verb == 'G' {
        s = s.to_uppercase();
    }
    if f.plus && !s.starts_with('-') {
        s.insert(0, '+');
    } else if f.space && !s.starts_with('-') {
        s.insert(0, ' ');
    }
    pad(out, &s, f, true);
    true
}

fn fmt_str(s: &str, verb: char, f: &Flags, out: &mut String) -> bool {
    let s: &str = match f.prec {
        Some(p) if matches!(verb, 's' | 'v' | 'q') => match s.char_indices().nth(p) {
            Some((i, _)) => &s[..i],
            None => s,
        },
        _ => s,
    };
    match verb {
        'v' | 's' => pad(out, s, f, false),
        'q' => {
            let mut q = String::new();
            if f.sharp && !s.contains('`') && s.chars().all(|c| c == '\t' || is_go_printable(c)) {
                q.push('`');
                q.push_str(s);
                q.push('`');
            } else {
                go_quote(s, &mut q);
            }
            pad(out, &q, f, false);
        }
        'x' | 'X' => {
            let bytes = match f.prec {
                Some(p) => &s.as_bytes()[..p.min(s.len())],
                None => s.as_bytes(),
            };
            let mut h = String::new();
            for (i, b) in bytes.iter().enumerate() {
                if f.space && i > 0 {
                    h.push(' ');
                }
                if f.sharp && (f.space || i == 0) {
                    h.push_str(if verb == 'x' { "0x" } else { "0X" });
                }
                if verb == 'x' {
                    let _ = write!(h, "{b:02x}");
                } else {
                    let _ = write!(h, "{b:02X}");
                }
            }
            pad(out, &h, f, false);
        }
        _ => return false,
    }
    true
}

/// Formats one argument with a verb: `Ok(false)` when the verb does not apply.
fn fmt_one(
    a: &Value<'_>,
    verb: char,
    f: &Flags,
    out: &mut String,
    depth: usize,
) -> Result<bool, Bound> {
    check_depth(depth)?;
    Ok(match a {
        Value::Nil | Value::Missing => {
            if verb == 'v' {
                pad(out, "<nil>", f, false);
                true
            } else {
                false
            }
        }
        Value::NilPtr(_) | Value::Time(..) | Value::Obj { ptr: true, .. }
            if matches!(verb, 'v' | 's' | 'q' | 'x' | 'X') =>
        {
            // Stringers.
            let mut s = String::new();
            fmt_v(a, &mut s, 0)?;
            fmt_str(&s, verb, f, out)
        }
        Value::Bool(b) => {
            if matches!(verb, 't' | 'v') {
                pad(out, if *b { "true" } else { "false" }, f, false);
                true
            } else {
                false
            }
        }
        Value::Int(i, _) => fmt_int(*i, verb, f, out),
        Value::Float(x) => fmt_float(*x, verb, f, out),
        Value::Str(_) | Value::String(_) => fmt_str(a.as_str().unwrap_or(""), verb, f, out),
        _ => {
            if verb == 'v' || verb == 's' {
                let mut s = String::new();
                fmt_v(a, &mut s, 0)?;
                pad(out, &s, f, false);
                true
            } else if verb == 'd' && a.is_list() {
                // Element-wise: [1 2 3]
                let items = a.list_items().unwrap_or_default();
                out.push('[');
                for (i, it) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    if !fmt_one(it, verb, f, out, depth + 1)? {
                        bad_verb(verb, it, out)?;
                    }
                    check_len(out)?;
                }
                out.push(']');
                true
            } else {
                false
            }
        }
    })
}

/// Go's `tooLarge`: widths and precisions beyond ±1e6 are refused.
fn too_large(n: i64) -> bool {
    !(-1_000_000..=1_000_000).contains(&n)
}

/// Go's `parsenum`: the decimal number at `b[i..]`, if any, and where it ends. A number that
/// grows too large (a digit after a value over 1e6) is no number, and ends the format (Go then
/// reports `%!(NOVERB)`).
fn parse_num(b: &[u8], mut i: usize) -> (Option<usize>, usize) {
    let mut num: i64 = 0;
    let mut any = false;
    while i < b.len() && b[i].is_ascii_digit() {
        if too_large(num) {
            return (None, b.len());
        }
        num = num * 10 + i64::from(b[i] - b'0');
        any = true;
        i += 1;
    }
    (any.then_some(num as usize), i)
}

/// Go's `intFromArg`: a width or precision from an integer argument within ±1e6.
fn int_from_arg(a: Option<&Value<'_>>) -> Option<i64> {
    match a {
        Some(Value::Int(n, _)) if !too_large(*n) => Some(*n),
        _ => None,
    }
}

/// `fmt.Sprintf`, stopping at the render's size bound.
pub(crate) fn sprintf(format: &str, args: &[Value<'_>], out: &mut String) -> FmtResult {
    let b = format.as_bytes();
    let mut i = 0;
    let mut argi = 0;
    let mut reordered = false;
    while i < b.len() {
        check_len(out)?;
        let start = i;
        while i < b.len() && b[i] != b'%' {
            i += 1;
        }
        out.push_str(&format[start..i]);
        if i >= b.len() {
            break;
        }
        i += 1; // '%'
        let mut f = Flags::default();
        while i < b.len() {
            match b[i] {
                b'+' => f.plus = true,
                b'-' => {
                    f.minus = true;
                    f.zero = false;
                }
                b'#' => f.sharp = true,
                b' ' => f.space = true,
                b'0' => f.zero = !f.minus,
                _ => break,
            }
            i += 1;
        }
        // Argument index.
        let mut arg_index = |i: &mut usize, argi: &mut usize| {
            if *i < b.len()
                && b[*i] == b'['
                && let Some(close) = format[*i..].find(']')
            {
                if let Ok(n) = format[*i + 1..*i + close].parse::<usize>()
                    && n >= 1
                {
                    *argi = n - 1;
                    reordered = true;
                }
                *i += close + 1;
            }
        };
        arg_index(&mut i, &mut argi);
        // Width.
        if i < b.len() && b[i] == b'*' {
            i += 1;
            match int_from_arg(args.get(argi)) {
                Some(w) if w < 0 => {
                    f.minus = true;
                    f.zero = false;
                    f.width = Some(w.unsigned_abs() as usize);
                }
                Some(w) => f.width = Some(w as usize),
                None => out.push_str("%!(BADWIDTH)"),
            }
            if argi < args.len() {
                argi += 1;
            }
        } else {
            (f.width, i) = parse_num(b, i);
        }
        // Precision.
        if i + 1 < b.len() && b[i] == b'.' {
            i += 1;
            arg_index(&mut i, &mut argi);
            if i < b.len() && b[i] == b'*' {
                i += 1;
                match int_from_arg(args.get(argi)) {
                    Some(p) if p >= 0 => f.prec = Some(p as usize),
                    _ => out.push_str("%!(BADPREC)"),
                }
                if argi < args.len() {
                    argi += 1;
                }
            } else {
                let (p, next) = parse_num(b, i);
                f.prec = Some(p.unwrap_or(0));
                i = next;
            }
        }
        arg_index(&mut i, &mut argi);
        if i >= b.len() {
            out.push_str("%!(NOVERB)");
            break;
        }
        let verb = format[i..].chars().next().unwrap_or('%');
        i += verb.len_utf8();
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(a) = args.get(argi) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        argi += 1;
        if verb == 'T' {
            pad(out, &a.type_name(), &f, false);
            continue;
        }
        if !fmt_one(a, verb, &f, out, 0)? {
            bad_verb(verb, a, out)?;
        }
    }
    if !reordered && argi < args.len() {
        out.push_str("%!(EXTRA ");
        for (k, a) in args[argi..].iter().enumerate() {
            if k > 0 {
                out.push_str(", ");
            }
            fmt_bad_arg(a, out)?;
            check_len(out)?;
        }
        out.push(')');
    }
    check_len(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::value::IntKind;

    fn pf(f: &str, args: &[Value<'_>]) -> String {
        let mut s = String::new();
        sprintf(f, args, &mut s).expect("within bounds");
        s
    }

    #[test]
    fn verbs() {
        let s = Value::Str("api");
        let i = Value::Int(42, IntKind::Int32);
        assert_eq!(
            pf("%s/%v/%q", &[s.clone(), s.clone(), s.clone()]),
            "api/api/\"api\""
        );
        assert_eq!(
            pf(
                "%d %5d %-5d| %05d %x %X %o %b",
                &[
                    i.clone(),
                    i.clone(),
                    i.clone(),
                    i.clone(),
                    i.clone(),
                    i.clone(),
                    i.clone(),
                    i.clone()
                ]
            ),
            "42    42 42   | 00042 2a 2A 52 101010"
        );
        assert_eq!(
            pf("%t %v", &[Value::Bool(true), Value::Bool(false)]),
            "true false"
        );
        assert_eq!(
            pf("%%d events", &[Value::Int(0, IntKind::Int32)]),
            "%d events%!(EXTRA int32=0)"
        );
        assert_eq!(pf("%d", std::slice::from_ref(&s)), "%!d(string=api)");
        assert_eq!(pf("%s %d", std::slice::from_ref(&s)), "api %!d(MISSING)");
        assert_eq!(
            pf(
                "%.2s|%6.2f|%e|%g",
                &[
                    s.clone(),
                    Value::Float(2.5),
                    Value::Float(1234.5),
                    Value::Float(0.000012)
                ]
            ),
            "ap|  2.50|1.234500e+03|1.2e-05"
        );
        assert_eq!(
            pf(
                "%x %c %q %U",
                &[
                    s.clone(),
                    Value::Int(65, IntKind::Int),
                    Value::Int(65, IntKind::Int),
                    Value::Int(65, IntKind::Int)
                ]
            ),
            "617069 A 'A' U+0041"
        );
        assert_eq!(pf("%s", &[Value::Nil]), "%!s(<nil>)");
        assert_eq!(pf("%v %T", &[Value::Nil, s]), "<nil> string");
        assert_eq!(
            pf("%[2]s %[1]s", &[Value::Str("a"), Value::Str("b")]),
            "b a"
        );
    }

    #[test]
    fn quote_like_go() {
        let mut s = String::new();
        go_quote("a\"b\\\n\té\u{1}", &mut s);
        assert_eq!(s, "\"a\\\"b\\\\\\n\\té\\x01\"");
    }
}
