//! sprig v3.2.3's functions.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::rc::Rc;

use base64::Engine as _;
use regex::Regex;

use super::super::gotime::{GoTime, duration_string};
use super::super::limits::{Bound, Fuel, MAX_OUTPUT, check_depth, check_len};
use super::super::value::{
    DictRef, IntKind, ListKind, TimeKind, Value, is_container, new_dict, write_json,
};
use super::{FResult, Func, gofmt, str_list, strcase};

/// Sprig's `quote`, `squote` and `cat`: the non-nil arguments, each written by `write`, joined
/// by spaces.
fn join_non_nil(
    args: &[Value<'_>],
    mut write: impl FnMut(&Value<'_>, &mut String) -> Result<(), Bound>,
) -> Result<String, Bound> {
    let mut out = String::new();
    let present = args
        .iter()
        .map(|a| a.clone().into_iface())
        .filter(|a| !matches!(a, Value::Nil));
    for (i, a) in present.enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write(&a, &mut out)?;
        check_len(&out)?;
    }
    Ok(out)
}

/// Errs when a string of `len` bytes would be larger than a render may produce: what the
/// functions that multiply their input check before building anything.
fn fits(len: u128) -> Result<(), Bound> {
    if len > MAX_OUTPUT as u128 {
        Err(Bound::Size)
    } else {
        Ok(())
    }
}

fn take<'a>(args: &mut [Value<'a>], i: usize) -> Value<'a> {
    args.get_mut(i)
        .map_or(Value::Nil, |v| std::mem::replace(v, Value::Nil))
}

/// A `string` parameter.
pub(crate) fn str_arg<'v>(v: &'v Value<'_>) -> Result<&'v str, String> {
    match v {
        Value::Str(s) => Ok(s),
        Value::String(s) => Ok(s),
        Value::Missing => Err("invalid value; expected string".to_owned()),
        other => Err(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        )),
    }
}

/// An `int` parameter.
fn int_arg(v: &Value<'_>) -> Result<i64, String> {
    match v {
        Value::Int(i, IntKind::Int) => Ok(*i),
        Value::Missing => Err("invalid value; expected int".to_owned()),
        other => Err(format!(
            "wrong type for value; expected int; got {}",
            other.type_name()
        )),
    }
}

fn bool_arg(v: &Value<'_>) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Missing => Err("invalid value; expected bool".to_owned()),
        other => Err(format!(
            "wrong type for value; expected bool; got {}",
            other.type_name()
        )),
    }
}

/// spf13/cast's `ToInt64` (errors read as 0).
fn to_i64(v: &Value<'_>) -> i64 {
    match v {
        Value::Int(i, _) => *i,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::Str(_) | Value::String(_) => parse_int_base0(v.as_str().unwrap_or("")).unwrap_or(0),
        _ => 0,
    }
}

fn parse_int_base0(s: &str) -> Option<i64> {
    let (neg, d) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let d = d.replace('_', "");
    let lower = d.to_ascii_lowercase();
    let v = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else if lower.len() > 1 && lower.starts_with('0') {
        i64::from_str_radix(&lower[1..], 8).ok()
    } else {
        lower.parse().ok()
    }?;
    Some(if neg { -v } else { v })
}

/// spf13/cast's `ToFloat64` (errors read as 0).
fn to_f64(v: &Value<'_>) -> f64 {
    match v {
        Value::Int(i, _) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Str(_) | Value::String(_) => v.as_str().unwrap_or("").parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// sprig's `strslice`, within the size bound (the same long string may be in a list many
/// times), one step of `fuel` per element.
fn strslice(v: &Value<'_>, fuel: &mut Fuel) -> Result<Vec<String>, String> {
    fuel.charge(v.len().unwrap_or(0) as u64)?;
    let items = match v {
        Value::List(l, ListKind::Iface) => l
            .iter()
            .filter(|x| !matches!(x, Value::Nil | Value::Missing))
            .cloned()
            .collect(),
        Value::List(..) | Value::Slice(_) => v.list_items().unwrap_or_default(),
        Value::Nil | Value::Missing => Vec::new(),
        other => return Ok(vec![other.strval()?]),
    };
    let mut total = 0usize;
    let mut out = Vec::with_capacity(items.len());
    for item in &items {
        let text = item.strval()?;
        fuel.charge((text.len() / 16) as u64)?;
        total += text.len() + 1;
        fits(total as u128)?;
        out.push(text);
    }
    Ok(out)
}

fn s<'a>(x: String) -> FResult<'a> {
    Ok(Value::string(x))
}

fn list<'a>(items: Vec<Value<'a>>) -> Value<'a> {
    Value::list(items, ListKind::Iface)
}

fn kind_name(v: &Value<'_>) -> &'static str {
    match v {
        Value::Missing | Value::Nil => "invalid",
        Value::Bool(_) => "bool",
        Value::Int(_, IntKind::Int) => "int",
        Value::Int(_, IntKind::Int32) => "int32",
        Value::Int(_, IntKind::Int64) => "int64",
        Value::Float(_) => "float64",
        Value::Str(_) | Value::String(_) => "string",
        Value::Time(..) => "struct",
        Value::StrMap(_) | Value::Dict(_) => "map",
        Value::Slice(_) | Value::List(..) => "slice",
        Value::Obj { ptr: true, .. } | Value::NilPtr(_) => "ptr",
        Value::Obj { .. } => "struct",
    }
}

/// `reflect.DeepEqual` for template values; one step of `fuel` per value compared.
fn deep_equal<'a>(
    a: &Value<'a>,
    b: &Value<'a>,
    fuel: &mut Fuel,
    depth: usize,
) -> Result<bool, String> {
    fuel.charge(1)?;
    check_depth(depth)?;
    Ok(match (a, b) {
        (Value::Nil | Value::Missing, Value::Nil | Value::Missing) => true,
        (Value::Int(x, kx), Value::Int(y, ky)) => x == y && kx == ky,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        _ if a.as_str().is_some() && b.as_str().is_some() => a.as_str() == b.as_str(),
        (Value::Dict(x), Value::Dict(y)) => {
            if Rc::ptr_eq(x, y) {
                return Ok(true);
            }
            let (x, y) = (x.borrow(), y.borrow());
            if x.len() != y.len() {
                return Ok(false);
            }
            for (k, xv) in x.iter() {
                match y.get(k) {
                    Some(yv) if deep_equal(xv, yv, fuel, depth + 1)? => {}
                    _ => return Ok(false),
                }
            }
            true
        }
        (Value::List(x, _), Value::List(y, _)) if Rc::ptr_eq(x, y) => true,
        (Value::List(..), _) | (_, Value::List(..)) => {
            if a.type_name() != b.type_name() || a.len() != b.len() {
                return Ok(false);
            }
            let mut i = 0;
            while let (Some(xv), Some(yv)) = (a.list_item(i), b.list_item(i)) {
                if !deep_equal(&xv, &yv, fuel, depth + 1)? {
                    return Ok(false);
                }
                i += 1;
            }
            true
        }
        _ => a.type_name() == b.type_name() && super::json_equal(a, b, fuel)?,
    })
}

/// Whether `v` holds `target` (so storing `v` in `target` would make a dict that contains
/// itself, which Go lets a template build and then cannot print without crashing). One step of
/// `fuel` per list or dict looked into.
fn contains_dict<'a>(v: &Value<'a>, target: &DictRef<'a>, fuel: &mut Fuel) -> Result<bool, String> {
    let mut seen: HashSet<*const ()> = HashSet::new();
    let mut stack: Vec<Value<'a>> = vec![v.clone()];
    while let Some(v) = stack.pop() {
        match &v {
            Value::Dict(d) => {
                if Rc::ptr_eq(d, target) {
                    return Ok(true);
                }
                if seen.insert(Rc::as_ptr(d).cast()) {
                    let d = d.borrow();
                    fuel.charge(1 + d.len() as u64)?;
                    stack.extend(d.values().filter(|x| is_container(x)).cloned());
                }
            }
            Value::List(l, _) if seen.insert(Rc::as_ptr(l).cast()) => {
                fuel.charge(1 + l.len() as u64)?;
                stack.extend(l.iter().filter(|x| is_container(x)).cloned());
            }
            _ => {}
        }
    }
    Ok(false)
}

/// Refuses to store `v` in `dict` when that would make `dict` contain itself.
fn check_acyclic<'a>(v: &Value<'a>, dict: &DictRef<'a>, fuel: &mut Fuel) -> Result<(), String> {
    if is_container(v) && contains_dict(v, dict, fuel)? {
        return Err("a dict cannot contain itself".to_owned());
    }
    Ok(())
}

/// The elements of a list parameter (a copy), one step of `fuel` each.
fn list_arg<'a>(v: &Value<'a>, what: &str, fuel: &mut Fuel) -> Result<Vec<Value<'a>>, String> {
    fuel.charge(v.len().unwrap_or(0) as u64)?;
    v.list_items().ok_or_else(|| {
        format!(
            "Cannot {what} type {}",
            match v {
                Value::Nil | Value::Missing => "<nil>".to_owned(),
                other => kind_name(other).to_owned(),
            }
        )
    })
}

/// A `map[string]interface{}` parameter (a `map[string]string` reads as a copy of it, the
/// evident answer where Go fails on the type).
fn dict_arg<'a>(v: &Value<'a>) -> Result<DictRef<'a>, String> {
    match v {
        Value::Dict(d) => Ok(d.clone()),
        Value::StrMap(m) => Ok(new_dict(
            m.map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), Value::Str(v.as_str())))
                    .collect()
            })
            .unwrap_or_default(),
        )),
        Value::Nil | Value::Missing => Ok(new_dict(BTreeMap::new())),
        other => Err(format!(
            "wrong type for value; expected map[string]interface {{}}; got {}",
            other.type_name()
        )),
    }
}

thread_local! {
    static REGEX_CACHE: RefCell<HashMap<String, Option<Regex>>> = RefCell::new(HashMap::new());
}

/// Patterns cached per thread (templates use a few fixed ones; a pattern built from event data
/// changes with each event, and must not pile up).
const REGEX_CACHE_SIZE: usize = 64;

/// The longest pattern compiled, and the most memory its compiled program and lazy DFA may take:
/// a pattern can come from event data (`regexFind (printf "%s.*" .Reason) .Message`).
const MAX_PATTERN: usize = 4096;
const REGEX_MEMORY: usize = 256 << 10;

/// What compiling a pattern costs (when it is not cached already).
const REGEX_COMPILE: u64 = 2_000;

/// Compiles (and caches) a Go RE2 pattern, and pays for matching it against `haystack`: one
/// step per 16 bytes, more for a long pattern (matching can take time proportional to both).
fn regex(pattern: &str, haystack: &str, fuel: &mut Fuel) -> Result<Regex, String> {
    let per_16_bytes = 1 + (pattern.len() / 256) as u64;
    fuel.charge((haystack.len() / 16) as u64 * per_16_bytes)?;
    regex_compiled(pattern, fuel)
}

fn regex_compiled(pattern: &str, fuel: &mut Fuel) -> Result<Regex, String> {
    let refused = || {
        let shown = crate::redact::excerpt(pattern, crate::redact::BRIEF);
        format!("error parsing regexp: {shown:?}")
    };
    if pattern.len() > MAX_PATTERN {
        return Err(refused());
    }
    REGEX_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if let Some(r) = c.get(pattern) {
            return r.clone().ok_or_else(refused);
        }
        fuel.charge(REGEX_COMPILE)?;
        let r = regex::RegexBuilder::new(pattern)
            .size_limit(REGEX_MEMORY)
            .dfa_size_limit(REGEX_MEMORY)
            .build()
            .ok();
        if c.len() >= REGEX_CACHE_SIZE {
            c.clear();
        }
        c.insert(pattern.to_owned(), r.clone());
        r.ok_or_else(refused)
    })
}

/// Go's `regexp.QuoteMeta`.
fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Go's `(*Regexp).Split`, one step of `fuel` per part.
fn regex_split(re: &Regex, s: &str, n: i64, fuel: &mut Fuel) -> Result<Vec<String>, String> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if !re.as_str().is_empty() && s.is_empty() {
        return Ok(vec![String::new()]);
    }
    let mut out = Vec::new();
    let mut beg = 0;
    let mut end = 0;
    for m in re.find_iter(s) {
        if n > 0 && out.len() as i64 == n - 1 {
            break;
        }
        end = m.start();
        if m.end() != 0 {
            fuel.charge(1)?;
            out.push(s[beg..end].to_owned());
        }
        beg = m.end();
    }
    if end != s.len() {
        out.push(s[beg..].to_owned());
    }
    Ok(out)
}

/// `regexReplaceAll` (`$1` expanded) or `regexReplaceAllLiteral`, stopping at the size bound.
fn regex_replace(re: &Regex, src: &str, repl: &str, literal: bool) -> Result<String, Bound> {
    let mut out = String::with_capacity(src.len());
    let mut last = 0;
    for caps in re.captures_iter(src) {
        let Some(m) = caps.get(0) else { continue };
        out.push_str(&src[last..m.start()]);
        if literal {
            out.push_str(repl);
        } else {
            caps.expand(repl, &mut out);
        }
        last = m.end();
        check_len(&out)?;
    }
    out.push_str(&src[last..]);
    check_len(&out)?;
    Ok(out)
}

fn time_of(v: &Value<'_>) -> Option<GoTime> {
    match v {
        Value::Time(t, _) => Some(*t),
        Value::Int(i, _) => Some(GoTime::from_unix(*i)),
        _ => None,
    }
}

fn format_in_zone(layout: &str, t: GoTime, zone: &str) -> String {
    if zone == "UTC" || zone == "Local" || zone.is_empty() {
        return t.format(layout);
    }
    match jiff::tz::TimeZone::get(zone) {
        Ok(tz) => {
            let ts =
                jiff::Timestamp::new(t.sec, t.nsec as i32).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
            let info = tz.to_offset_info(ts);
            let off = info.offset().seconds();
            t.format_zoned(layout, off, info.abbreviation())
        }
        Err(_) => t.format(layout),
    }
}

/// Go's `os.ExpandEnv`, stopping at the size bound.
fn expand_env(s: &str) -> Result<String, Bound> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        check_len(&out)?;
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(braced) = after.strip_prefix('{') {
            if let Some(end) = braced.find('}') {
                let name = &braced[..end];
                out.push_str(&std::env::var(name).unwrap_or_default());
                rest = &braced[end + 1..];
                continue;
            }
            // Bad syntax: Go drops "${".
            rest = braced;
            continue;
        }
        let len = after
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
            .map_or(after.len(), |(i, _)| i);
        if len == 0 {
            // A special single-character name ($*, $1, ...) or a lone '$'.
            match after.chars().next() {
                Some(c) if "*#$@!?-".contains(c) || c.is_ascii_digit() => {
                    out.push_str(&std::env::var(c.to_string()).unwrap_or_default());
                    rest = &after[c.len_utf8()..];
                }
                _ => {
                    out.push('$');
                    rest = after;
                }
            }
            continue;
        }
        out.push_str(&std::env::var(&after[..len]).unwrap_or_default());
        rest = &after[len..];
    }
    out.push_str(rest);
    check_len(&out)?;
    Ok(out)
}

/// `toRawJson`: Go's encoder without HTML escaping.
fn unescape_html_json(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let esc = &rest[i..];
        let repl = if esc.starts_with("\\u003c") {
            Some('<')
        } else if esc.starts_with("\\u003e") {
            Some('>')
        } else if esc.starts_with("\\u0026") {
            Some('&')
        } else {
            None
        };
        match repl {
            Some(c) => {
                out.push(c);
                rest = &esc[6..];
            }
            None => {
                // Copy the backslash and the escaped character.
                let mut it = esc.char_indices();
                it.next();
                let n = it.next().map_or(esc.len(), |(j, c)| j + c.len_utf8());
                out.push_str(&esc[..n]);
                rest = &esc[n..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn sha1_hex(data: &[u8]) -> String {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for chunk in msg.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in chunk.chunks(4).enumerate().take(16) {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | ((!b) & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        h[0] = h[0].wrapping_add(a);
        h[1] = h[1].wrapping_add(b);
        h[2] = h[2].wrapping_add(c);
        h[3] = h[3].wrapping_add(d);
        h[4] = h[4].wrapping_add(e);
    }
    let mut out = String::with_capacity(40);
    for x in h {
        let _ = write!(out, "{x:08x}");
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn base32_encode(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let v = buf.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let nchars = (chunk.len() * 8).div_ceil(5);
        for i in 0..8 {
            if i < nchars {
                out.push(char::from(B32[((v >> (35 - i * 5)) & 31) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base32_decode(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::new();
    let mut acc: u64 = 0;
    let mut bits = 0;
    for (i, c) in s.bytes().enumerate() {
        let v = B32
            .iter()
            .position(|x| *x == c)
            .ok_or_else(|| format!("illegal base32 data at input byte {i}"))?;
        acc = (acc << 5) | v as u64;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

fn uuid_v4() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i as u64);
        h.write_u128(GoTime::now().unix_nano() as u128);
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h = hex(&bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Go's `path.Clean`.
fn path_clean(p: &str) -> String {
    if p.is_empty() {
        return ".".to_owned();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

fn path_base(p: &str) -> String {
    if p.is_empty() {
        return ".".to_owned();
    }
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".to_owned();
    }
    t.rsplit('/').next().unwrap_or(t).to_owned()
}

fn path_dir(p: &str) -> String {
    let dir = match p.rfind('/') {
        Some(i) => &p[..=i],
        None => "",
    };
    path_clean(dir)
}

fn path_ext(p: &str) -> String {
    for (i, c) in p.char_indices().rev() {
        if c == '/' {
            break;
        }
        if c == '.' {
            return p[i..].to_owned();
        }
    }
    String::new()
}

/// mergo's `Merge` of `src` into `dst` (nested dicts merged, not replaced), refusing to make a
/// dict contain itself.
fn merge_into<'a>(
    dst: &DictRef<'a>,
    src: &DictRef<'a>,
    overwrite: bool,
    fuel: &mut Fuel,
    depth: usize,
) -> Result<(), String> {
    check_depth(depth)?;
    let src_entries: Vec<(String, Value<'a>)> = src
        .borrow()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    fuel.charge(src_entries.len() as u64)?;
    for (k, v) in src_entries {
        let existing = dst.borrow().get(&k).cloned();
        match existing {
            Some(Value::Dict(d)) if matches!(v, Value::Dict(_)) => {
                if let Value::Dict(sd) = &v
                    && !Rc::ptr_eq(&d, sd)
                {
                    merge_into(&d, sd, overwrite, fuel, depth + 1)?;
                }
            }
            Some(cur) => {
                if (cur.is_empty() || overwrite) && !v.is_empty() {
                    check_acyclic(&v, dst, fuel)?;
                    dst.borrow_mut().insert(k, v);
                }
            }
            None => {
                check_acyclic(&v, dst, fuel)?;
                dst.borrow_mut().insert(k, v);
            }
        }
    }
    Ok(())
}

/// Calls a sprig function.
pub(super) fn call<'a>(f: Func, args: &mut [Value<'a>], fuel: &mut Fuel) -> FResult<'a> {
    use Func as F;
    match f {
        F::Default => {
            let d = take(args, 0).into_iface();
            match args.get(1) {
                Some(g) if !g.is_empty() => Ok(take(args, 1).into_iface()),
                _ => Ok(d),
            }
        }
        F::Empty => Ok(Value::Bool(args[0].is_empty())),
        F::Coalesce => {
            for a in args.iter_mut() {
                if !a.is_empty() {
                    return Ok(std::mem::replace(a, Value::Nil).into_iface());
                }
            }
            Ok(Value::Nil)
        }
        F::All => Ok(Value::Bool(args.iter().all(|a| !a.is_empty()))),
        F::Any => Ok(Value::Bool(args.iter().any(|a| !a.is_empty()))),
        F::Ternary => {
            let cond = bool_arg(&args[2])?;
            Ok(if cond { take(args, 0) } else { take(args, 1) }.into_iface())
        }
        F::Fail => Err(str_arg(&args[0])?.to_owned()),
        F::Hello => Ok(Value::Str("Hello!")),

        // Strings.
        F::Trim => {
            let x = str_arg(&args[0])?;
            let t = x.trim_matches(|c: char| c.is_whitespace());
            if t.len() == x.len() {
                Ok(take(args, 0))
            } else {
                s(t.to_owned())
            }
        }
        F::TrimAll => {
            let cut = str_arg(&args[0])?;
            s(str_arg(&args[1])?
                .trim_matches(|c| cut.contains(c))
                .to_owned())
        }
        F::TrimPrefix => {
            let p = str_arg(&args[0])?;
            let x = str_arg(&args[1])?;
            match x.strip_prefix(p) {
                Some(r) if !p.is_empty() => s(r.to_owned()),
                _ => Ok(take(args, 1)),
            }
        }
        F::TrimSuffix => {
            let p = str_arg(&args[0])?;
            let x = str_arg(&args[1])?;
            match x.strip_suffix(p) {
                Some(r) if !p.is_empty() => s(r.to_owned()),
                _ => Ok(take(args, 1)),
            }
        }
        F::Upper => s(str_arg(&args[0])?.to_uppercase()),
        F::Lower => s(str_arg(&args[0])?.to_lowercase()),
        F::Title => s(strcase::title(str_arg(&args[0])?)),
        F::Untitle => s(strcase::untitle(str_arg(&args[0])?)),
        F::Repeat => {
            let n = int_arg(&args[0])?;
            let x = str_arg(&args[1])?;
            if n < 0 {
                return Err("strings: negative Repeat count".to_owned());
            }
            fits((x.len() as u128) * (n as u128))?;
            s(x.repeat(n as usize))
        }
        F::Substr => {
            let start = int_arg(&args[0])?;
            let end = int_arg(&args[1])?;
            let x = str_arg(&args[2])?;
            let len = x.len() as i64;
            let (a, b) = if start < 0 {
                (0, end)
            } else if end < 0 || end > len {
                (start, len)
            } else {
                (start, end)
            };
            if a < 0 || b < a || b > len {
                return Err(format!(
                    "runtime error: slice bounds out of range [{a}:{b}]"
                ));
            }
            s(strcase::go_slice(x, a as usize, b as usize))
        }
        F::Trunc => {
            let c = int_arg(&args[0])?;
            let x = str_arg(&args[1])?;
            let len = x.len() as i64;
            if c < 0 && len + c > 0 {
                s(strcase::go_slice(x, (len + c) as usize, x.len()))
            } else if c >= 0 && len > c {
                s(strcase::go_slice(x, 0, c as usize))
            } else {
                Ok(take(args, 1))
            }
        }
        F::Abbrev => {
            let w = int_arg(&args[0])?;
            let x = str_arg(&args[1])?;
            s(strcase::abbreviate_full(x, 0, w))
        }
        F::Abbrevboth => {
            let l = int_arg(&args[0])?;
            let r = int_arg(&args[1])?;
            let x = str_arg(&args[2])?;
            if r < 4 || (l > 0 && r < 7) {
                return Ok(take(args, 2));
            }
            s(strcase::abbreviate_full(x, l, r))
        }
        F::Nospace => s(str_arg(&args[0])?
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect()),
        F::Replace => {
            let old = str_arg(&args[0])?;
            let new = str_arg(&args[1])?;
            let src = str_arg(&args[2])?;
            if old.is_empty() {
                // Go inserts `new` around every rune.
                let runes = src.chars().count() as u128;
                fits(src.len() as u128 + (runes + 1) * new.len() as u128)?;
                let mut out = String::new();
                out.push_str(new);
                for c in src.chars() {
                    out.push(c);
                    out.push_str(new);
                }
                return s(out);
            }
            if !src.contains(old) {
                return Ok(take(args, 2));
            }
            if new.len() > old.len() {
                let grow = (new.len() - old.len()) as u128;
                fits(src.len() as u128 + src.matches(old).count() as u128 * grow)?;
            }
            s(src.replace(old, new))
        }
        F::Contains => Ok(Value::Bool(str_arg(&args[1])?.contains(str_arg(&args[0])?))),
        F::HasPrefix => Ok(Value::Bool(
            str_arg(&args[1])?.starts_with(str_arg(&args[0])?),
        )),
        F::HasSuffix => Ok(Value::Bool(
            str_arg(&args[1])?.ends_with(str_arg(&args[0])?),
        )),
        F::Quote => s(join_non_nil(args, |a, out| {
            gofmt::go_quote(&a.strval()?, out);
            Ok(())
        })?),
        F::Squote => s(join_non_nil(args, |a, out| {
            out.push('\'');
            gofmt::fmt_arg_v(a, out)?;
            out.push('\'');
            Ok(())
        })?),
        F::Cat => s(join_non_nil(args, gofmt::fmt_arg_v)?),
        F::Indent | F::Nindent => {
            let n = int_arg(&args[0])?;
            let x = str_arg(&args[1])?;
            let width = usize::try_from(n).unwrap_or(0);
            let lines = x.matches('\n').count() as u128 + 1;
            fits(x.len() as u128 + lines * width as u128 + 1)?;
            let pad = " ".repeat(width);
            let mut out = String::with_capacity(x.len() + pad.len() + 1);
            if f == F::Nindent {
                out.push('\n');
            }
            out.push_str(&pad);
            out.push_str(&x.replace('\n', &format!("\n{pad}")));
            s(out)
        }
        F::Wrap => {
            let n = int_arg(&args[0])?;
            s(strcase::wrap_custom(str_arg(&args[1])?, n, "", false)?)
        }
        F::WrapWith => {
            let n = int_arg(&args[0])?;
            let sep = str_arg(&args[1])?;
            s(strcase::wrap_custom(str_arg(&args[2])?, n, sep, true)?)
        }
        F::Snakecase => s(strcase::camel_to_lower(str_arg(&args[0])?, '_')),
        F::Kebabcase => s(strcase::camel_to_lower(str_arg(&args[0])?, '-')),
        F::Camelcase => s(strcase::camel_case(str_arg(&args[0])?)),
        F::Swapcase => s(strcase::swap_case(str_arg(&args[0])?)),
        F::Initials => s(strcase::initials(str_arg(&args[0])?)),
        F::Plural => {
            let count = int_arg(&args[2])?;
            Ok(if count == 1 {
                take(args, 0)
            } else {
                take(args, 1)
            })
        }
        F::ToString => match &args[0] {
            Value::Str(_) | Value::String(_) => Ok(take(args, 0)),
            other => s(other.clone().into_iface().strval()?),
        },
        F::ToStrings => Ok(str_list(strslice(&args[0].clone().into_iface(), fuel)?)),
        F::Join => {
            let sep = str_arg(&args[0])?;
            let parts = strslice(&args[1].clone().into_iface(), fuel)?;
            let total: usize = parts.iter().map(String::len).sum();
            fits(total as u128 + parts.len() as u128 * sep.len() as u128)?;
            s(parts.join(sep))
        }
        F::Split | F::Splitn => {
            let sep = str_arg(&args[0])?;
            let parts = if f == F::Split {
                go_split(str_arg(&args[1])?, sep, -1, fuel)?
            } else {
                go_split(str_arg(&args[2])?, sep, int_arg(&args[1])?, fuel)?
            };
            let d: BTreeMap<String, Value<'a>> = parts
                .into_iter()
                .enumerate()
                .map(|(i, p)| (format!("_{i}"), Value::string(p)))
                .collect();
            Ok(Value::dict(d))
        }
        F::SplitList => {
            let sep = str_arg(&args[0])?;
            Ok(str_list(go_split(str_arg(&args[1])?, sep, -1, fuel)?))
        }
        F::SortAlpha => {
            let v = args[0].clone().into_iface();
            let mut items = if v.is_list() {
                strslice(&v, fuel)?
            } else {
                vec![v.strval()?]
            };
            items.sort();
            Ok(str_list(items))
        }

        // Encoding and hashes.
        F::B64enc => s(base64::engine::general_purpose::STANDARD.encode(str_arg(&args[0])?)),
        F::B64dec => s(
            match base64::engine::general_purpose::STANDARD.decode(str_arg(&args[0])?) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => go_b64_error(&e),
            },
        ),
        F::B32enc => s(base32_encode(str_arg(&args[0])?.as_bytes())),
        F::B32dec => s(match base32_decode(str_arg(&args[0])?) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => e,
        }),
        F::Sha256sum => {
            use sha2::Digest as _;
            s(hex(&sha2::Sha256::digest(str_arg(&args[0])?.as_bytes())))
        }
        F::Sha1sum => s(sha1_hex(str_arg(&args[0])?.as_bytes())),
        F::Adler32sum => {
            let (mut a, mut b) = (1u32, 0u32);
            for byte in str_arg(&args[0])?.bytes() {
                a = (a + u32::from(byte)) % 65521;
                b = (b + a) % 65521;
            }
            s(((b << 16) | a).to_string())
        }
        F::ToJson | F::ToPrettyJson | F::ToRawJson => {
            let mut out = String::new();
            write_json(&args[0], &mut out, f == F::ToPrettyJson, 0)?;
            if f == F::ToRawJson {
                out = unescape_html_json(&out);
            }
            s(out)
        }
        F::FromJson | F::MustFromJson => {
            let text = str_arg(&args[0])?;
            // What the parsed value may hold, paid before it is built.
            fuel.charge(text.len() as u64 / 4)?;
            match serde_json::from_str::<serde_json::Value>(text) {
                Ok(v) => Ok(Value::from_json(&v)),
                Err(e) if f == F::MustFromJson => Err(e.to_string()),
                Err(_) => Ok(Value::Nil),
            }
        }

        // Numbers.
        F::Atoi => Ok(Value::Int(
            str_arg(&args[0])?.parse::<i64>().unwrap_or(0),
            IntKind::Int,
        )),
        F::Int => Ok(Value::Int(to_i64(&args[0]), IntKind::Int)),
        F::Int64 => Ok(Value::Int(to_i64(&args[0]), IntKind::Int64)),
        F::Float64 => Ok(Value::Float(to_f64(&args[0]))),
        F::Add => Ok(Value::Int(
            args.iter().fold(0i64, |a, b| a.wrapping_add(to_i64(b))),
            IntKind::Int64,
        )),
        F::Add1 => Ok(Value::Int(to_i64(&args[0]).wrapping_add(1), IntKind::Int64)),
        F::Sub => Ok(Value::Int(
            to_i64(&args[0]).wrapping_sub(to_i64(&args[1])),
            IntKind::Int64,
        )),
        F::Mul => Ok(Value::Int(
            args.iter().fold(1i64, |a, b| a.wrapping_mul(to_i64(b))),
            IntKind::Int64,
        )),
        F::Div | F::Mod => {
            let (a, b) = (to_i64(&args[0]), to_i64(&args[1]));
            if b == 0 {
                return Err("runtime error: integer divide by zero".to_owned());
            }
            Ok(Value::Int(
                if f == F::Div {
                    a.wrapping_div(b)
                } else {
                    a.wrapping_rem(b)
                },
                IntKind::Int64,
            ))
        }
        F::Max => Ok(Value::Int(
            args.iter().map(to_i64).max().unwrap_or(0),
            IntKind::Int64,
        )),
        F::Min => Ok(Value::Int(
            args.iter().map(to_i64).min().unwrap_or(0),
            IntKind::Int64,
        )),
        F::Maxf => Ok(Value::Float(
            args.iter().map(to_f64).fold(f64::NEG_INFINITY, f64::max),
        )),
        F::Minf => Ok(Value::Float(
            args.iter().map(to_f64).fold(f64::INFINITY, f64::min),
        )),
        F::Addf => Ok(Value::Float(args.iter().map(to_f64).sum())),
        F::Add1f => Ok(Value::Float(to_f64(&args[0]) + 1.0)),
        F::Subf => Ok(Value::Float(
            args.iter()
                .skip(1)
                .fold(to_f64(&args[0]), |a, b| a - to_f64(b)),
        )),
        F::Mulf => Ok(Value::Float(
            args.iter()
                .skip(1)
                .fold(to_f64(&args[0]), |a, b| a * to_f64(b)),
        )),
        F::Divf => Ok(Value::Float(
            args.iter()
                .skip(1)
                .fold(to_f64(&args[0]), |a, b| a / to_f64(b)),
        )),
        F::Floor => Ok(Value::Float(to_f64(&args[0]).floor())),
        F::Ceil => Ok(Value::Float(to_f64(&args[0]).ceil())),
        F::Round => {
            let val = to_f64(&args[0]);
            let places = int_arg(&args[1])? as f64;
            let round_on = args.get(2).map_or(0.5, to_f64);
            let pow = 10f64.powf(places);
            let digit = pow * val;
            let div = digit.fract();
            let r = if div >= round_on {
                digit.ceil()
            } else {
                digit.floor()
            };
            Ok(Value::Float(r / pow))
        }
        F::Seq => {
            let p: Vec<i64> = args.iter().map(int_arg).collect::<Result<_, _>>()?;
            let v = match p.as_slice() {
                [end] => {
                    let inc = if *end < 1 { -1 } else { 1 };
                    until_step(1, end.saturating_add(inc), inc)
                }
                [start, end] => {
                    let step = if end < start { -1 } else { 1 };
                    until_step(*start, end.saturating_add(step), step)
                }
                [start, step, end] => {
                    if end < start && *step > 0 {
                        Vec::new()
                    } else {
                        let inc = if end < start { -1 } else { 1 };
                        until_step(*start, end.saturating_add(inc), *step)
                    }
                }
                _ => Vec::new(),
            };
            s(v.iter().map(i64::to_string).collect::<Vec<_>>().join(" "))
        }
        F::Until => {
            let n = int_arg(&args[0])?;
            let step = if n < 0 { -1 } else { 1 };
            Ok(int_list(until_step(0, n, step)))
        }
        F::UntilStep => {
            let (a, b, c) = (int_arg(&args[0])?, int_arg(&args[1])?, int_arg(&args[2])?);
            Ok(int_list(until_step(a, b, c)))
        }

        // Lists.
        F::List => Ok(list(
            args.iter_mut()
                .map(|a| std::mem::replace(a, Value::Nil).into_iface())
                .collect(),
        )),
        F::First | F::Last => {
            let what = if f == F::First {
                "find first on"
            } else {
                "find last on"
            };
            if !args[0].is_list() {
                list_arg(&args[0], what, fuel)?;
            }
            let n = args[0].len().unwrap_or(0);
            let at = if f == F::First { 0 } else { n.wrapping_sub(1) };
            Ok(args[0].list_item(at).unwrap_or(Value::Nil))
        }
        F::Rest | F::Initial => {
            let mut items = list_arg(
                &args[0],
                if f == F::Rest {
                    "find rest on"
                } else {
                    "find initial on"
                },
                fuel,
            )?;
            if items.is_empty() {
                return Ok(Value::Nil);
            }
            if f == F::Rest {
                items.remove(0);
            } else {
                items.pop();
            }
            Ok(list(items))
        }
        F::Append => {
            let mut items = list_arg(&args[0], "push on", fuel)?;
            items.push(take(args, 1).into_iface());
            Ok(list(items))
        }
        F::Prepend => {
            let mut items = list_arg(&args[0], "prepend on", fuel)?;
            items.insert(0, take(args, 1).into_iface());
            Ok(list(items))
        }
        F::Concat => {
            let mut out = Vec::new();
            for a in args.iter() {
                out.extend(list_arg(a, "concat", fuel)?);
            }
            Ok(list(out))
        }
        F::Reverse => {
            let mut items = list_arg(&args[0], "find reverse on", fuel)?;
            items.reverse();
            Ok(list(items))
        }
        F::Uniq => {
            let items = list_arg(&args[0], "find uniq on", fuel)?;
            let mut out: Vec<Value<'a>> = Vec::new();
            for it in items {
                if !any_equal(&out, &it, fuel)? {
                    out.push(it);
                }
            }
            Ok(list(out))
        }
        F::Without => {
            let items = list_arg(&args[0], "find without on", fuel)?;
            let omit: Vec<Value<'a>> = args[1..].iter().map(|a| a.clone().into_iface()).collect();
            let mut kept = Vec::with_capacity(items.len());
            for it in items {
                if !any_equal(&omit, &it, fuel)? {
                    kept.push(it);
                }
            }
            Ok(list(kept))
        }
        F::Has => {
            if matches!(args[1], Value::Nil | Value::Missing) {
                return Ok(Value::Bool(false));
            }
            let items = list_arg(&args[1], "find has on", fuel)?;
            let needle = args[0].clone().into_iface();
            Ok(Value::Bool(any_equal(&items, &needle, fuel)?))
        }
        F::Compact => {
            let items = list_arg(&args[0], "compact on", fuel)?;
            Ok(list(items.into_iter().filter(|x| !x.is_empty()).collect()))
        }
        F::Slice => {
            fuel.charge(args[0].len().unwrap_or(0) as u64)?;
            let Some(items) = args[0].list_items() else {
                return Err(format!(
                    "list should be type of slice or array but {}",
                    kind_name(&args[0])
                ));
            };
            if items.is_empty() {
                return Ok(Value::Nil);
            }
            let l = items.len() as i64;
            let start = args.get(1).map_or(0, to_i64);
            let end = if args.len() < 3 { l } else { to_i64(&args[2]) };
            if start < 0 || end < start || end > l {
                return Err(format!("reflect: slice index out of range [{start}:{end}]"));
            }
            let kind = match &args[0] {
                Value::List(_, k) => *k,
                Value::Slice(Some(super::super::value::Slice::Strs(_))) => ListKind::Str,
                _ => ListKind::Iface,
            };
            Ok(Value::list(
                items[start as usize..end as usize].to_vec(),
                kind,
            ))
        }
        F::Chunk => {
            let size = int_arg(&args[0])?;
            let items = list_arg(&args[1], "chunk", fuel)?;
            if size <= 0 {
                return Err("runtime error: integer divide by zero".to_owned());
            }
            Ok(list(
                items
                    .chunks(size as usize)
                    .map(|c| list(c.to_vec()))
                    .collect(),
            ))
        }

        // Dicts.
        F::Dict => {
            let mut d = BTreeMap::new();
            let mut i = 0;
            while i < args.len() {
                let k = args[i].clone().into_iface().strval()?;
                fuel.charge((k.len() / 16) as u64)?;
                let v = if i + 1 < args.len() {
                    take(args, i + 1).into_iface()
                } else {
                    Value::Str("")
                };
                d.insert(k, v);
                i += 2;
            }
            Ok(Value::dict(d))
        }
        F::Get => {
            let d = dict_arg(&args[0])?;
            let k = str_arg(&args[1])?;
            let v = d.borrow().get(k).cloned();
            Ok(v.unwrap_or(Value::Str("")))
        }
        F::Set => {
            let d = dict_arg(&args[0])?;
            let k = str_arg(&args[1])?.to_owned();
            let v = take(args, 2).into_iface();
            check_acyclic(&v, &d, fuel)?;
            d.borrow_mut().insert(k, v);
            Ok(Value::Dict(d))
        }
        F::Unset => {
            let d = dict_arg(&args[0])?;
            let k = str_arg(&args[1])?;
            d.borrow_mut().remove(k);
            Ok(Value::Dict(d))
        }
        F::HasKey => {
            let d = dict_arg(&args[0])?;
            let k = str_arg(&args[1])?;
            let has = d.borrow().contains_key(k);
            Ok(Value::Bool(has))
        }
        F::Keys => {
            let mut keys = Vec::new();
            for a in args.iter() {
                let d = dict_arg(a)?;
                let d = d.borrow();
                fuel.charge(d.keys().map(|k| 1 + (k.len() / 16) as u64).sum())?;
                keys.extend(d.keys().cloned());
            }
            Ok(str_list(keys))
        }
        F::Values => {
            let d = dict_arg(&args[0])?;
            let v: Vec<Value<'a>> = d.borrow().values().cloned().collect();
            Ok(list(v))
        }
        F::Pluck => {
            let k = str_arg(&args[0])?.to_owned();
            let mut out = Vec::new();
            for a in &args[1..] {
                if let Some(v) = dict_arg(a)?.borrow().get(&k) {
                    out.push(v.clone());
                }
            }
            Ok(list(out))
        }
        F::Pick | F::Omit => {
            let d = dict_arg(&args[0])?;
            let keys: Vec<String> = args[1..]
                .iter()
                .map(|a| str_arg(a).map(str::to_owned))
                .collect::<Result<_, _>>()?;
            fuel.charge(d.borrow().len() as u64 * (1 + keys.len() as u64))?;
            let res: BTreeMap<String, Value<'a>> = d
                .borrow()
                .iter()
                .filter(|(k, _)| keys.contains(k) == (f == F::Pick))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Ok(Value::dict(res))
        }
        F::Merge | F::MergeOverwrite => {
            let dst = dict_arg(&args[0])?;
            for a in &args[1..] {
                let src = dict_arg(a)?;
                if !Rc::ptr_eq(&dst, &src) {
                    merge_into(&dst, &src, f == F::MergeOverwrite, fuel, 0)?;
                }
            }
            Ok(Value::Dict(dst))
        }
        F::Dig => {
            let n = args.len();
            let mut cur = dict_arg(&args[n - 1])?;
            let def = args[n - 2].clone().into_iface();
            let keys: Vec<String> = args[..n - 2]
                .iter()
                .map(|a| str_arg(a).map(str::to_owned))
                .collect::<Result<_, _>>()?;
            for (i, k) in keys.iter().enumerate() {
                let step = cur.borrow().get(k).cloned();
                match step {
                    None => return Ok(def),
                    Some(v) if i + 1 == keys.len() => return Ok(v),
                    Some(v) => cur = dict_arg(&v)?,
                }
            }
            Ok(def)
        }

        // Regular expressions.
        F::RegexMatch | F::MustRegexMatch => {
            let p = str_arg(&args[0])?;
            let x = str_arg(&args[1])?;
            match regex(p, x, fuel) {
                Ok(re) => Ok(Value::Bool(re.is_match(x))),
                Err(e) if f == F::MustRegexMatch => Err(e),
                Err(_) => Ok(Value::Bool(false)),
            }
        }
        F::RegexFind => {
            let re = regex(str_arg(&args[0])?, str_arg(&args[1])?, fuel)?;
            s(re.find(str_arg(&args[1])?)
                .map_or(String::new(), |m| m.as_str().to_owned()))
        }
        F::RegexFindAll => {
            let x = str_arg(&args[1])?;
            let re = regex(str_arg(&args[0])?, x, fuel)?;
            let n = int_arg(&args[2])?;
            let it = re.find_iter(x).map(|m| m.as_str().to_owned());
            let v: Vec<String> = if n < 0 {
                fuel.collect(it)?
            } else {
                fuel.collect(it.take(n as usize))?
            };
            Ok(str_list(v))
        }
        F::RegexReplaceAll | F::RegexReplaceAllLiteral => {
            let (src, repl) = (str_arg(&args[1])?, str_arg(&args[2])?);
            let re = regex(str_arg(&args[0])?, src, fuel)?;
            s(regex_replace(
                &re,
                src,
                repl,
                f == F::RegexReplaceAllLiteral,
            )?)
        }
        F::RegexSplit => {
            let re = regex(str_arg(&args[0])?, str_arg(&args[1])?, fuel)?;
            Ok(str_list(regex_split(
                &re,
                str_arg(&args[1])?,
                int_arg(&args[2])?,
                fuel,
            )?))
        }
        F::RegexQuoteMeta => s(quote_meta(str_arg(&args[0])?)),

        // Dates.
        F::Now => Ok(Value::Time(GoTime::now(), TimeKind::Std)),
        F::Date => {
            let layout = str_arg(&args[0])?;
            let t = time_of(&args[1]).unwrap_or_else(GoTime::now);
            s(t.format(layout))
        }
        F::DateInZone => {
            let layout = str_arg(&args[0])?;
            let t = time_of(&args[1]).unwrap_or_else(GoTime::now);
            s(format_in_zone(layout, t, str_arg(&args[2])?))
        }
        F::HtmlDate => s(time_of(&args[0])
            .unwrap_or_else(GoTime::now)
            .format("2006-01-02")),
        F::HtmlDateInZone => {
            let t = time_of(&args[0]).unwrap_or_else(GoTime::now);
            s(format_in_zone("2006-01-02", t, str_arg(&args[1])?))
        }
        F::UnixEpoch => match &args[0] {
            Value::Time(t, _) => s(t.unix().to_string()),
            other => Err(format!(
                "wrong type for value; expected time.Time; got {}",
                other.type_name()
            )),
        },
        F::DateModify => {
            let d = str_arg(&args[0])?;
            let Value::Time(t, _) = &args[1] else {
                return Err(format!(
                    "wrong type for value; expected time.Time; got {}",
                    args[1].type_name()
                ));
            };
            match parse_duration(d) {
                Some(ns) => {
                    let total =
                        i128::from(t.sec) * 1_000_000_000 + i128::from(t.nsec) + i128::from(ns);
                    let sec = total.div_euclid(1_000_000_000) as i64;
                    let nsec = total.rem_euclid(1_000_000_000) as u32;
                    Ok(Value::Time(GoTime { sec, nsec }, TimeKind::Std))
                }
                None => Ok(Value::Time(*t, TimeKind::Std)),
            }
        }
        F::ToDate => {
            let layout = str_arg(&args[0])?;
            let x = str_arg(&args[1])?;
            Ok(Value::Time(
                super::super::gotime::parse(layout, x).unwrap_or(GoTime::ZERO),
                TimeKind::Std,
            ))
        }
        F::Ago => {
            let t = time_of(&args[0]).unwrap_or_else(GoTime::now);
            let now = GoTime::now();
            let secs = now.sec.saturating_sub(t.sec).saturating_add(
                if now.nsec >= t.nsec.saturating_add(500_000_000) {
                    1
                } else {
                    0
                },
            );
            s(duration_string(secs.saturating_mul(1_000_000_000)))
        }
        F::Duration => {
            let n: i64 = match &args[0] {
                Value::Str(_) | Value::String(_) => {
                    args[0].as_str().unwrap_or("").parse().unwrap_or(0)
                }
                Value::Int(i, IntKind::Int64) => *i,
                _ => 0,
            };
            s(duration_string(n.saturating_mul(1_000_000_000)))
        }
        F::DurationRound => {
            let secs: i64 = match &args[0] {
                Value::Str(_) | Value::String(_) => parse_duration(args[0].as_str().unwrap_or(""))
                    .map_or(0, |ns| ns / 1_000_000_000),
                Value::Int(i, _) => *i / 1_000_000_000,
                Value::Time(t, _) => GoTime::now().sec.saturating_sub(t.sec),
                _ => 0,
            };
            s(duration_round(secs))
        }

        // OS, paths, reflection.
        F::Env => s(std::env::var(str_arg(&args[0])?).unwrap_or_default()),
        F::Expandenv => s(expand_env(str_arg(&args[0])?)?),
        F::Base => s(path_base(str_arg(&args[0])?)),
        F::Dir => s(path_dir(str_arg(&args[0])?)),
        F::Clean => s(path_clean(str_arg(&args[0])?)),
        F::Ext => s(path_ext(str_arg(&args[0])?)),
        F::IsAbs => Ok(Value::Bool(str_arg(&args[0])?.starts_with('/'))),
        F::TypeOf => s(args[0].clone().into_iface().type_name()),
        F::TypeIs => Ok(Value::Bool(
            str_arg(&args[0])? == args[1].clone().into_iface().type_name(),
        )),
        F::TypeIsLike => {
            let t = str_arg(&args[0])?;
            let n = args[1].clone().into_iface().type_name();
            Ok(Value::Bool(t == n || format!("*{t}") == n))
        }
        F::KindOf => Ok(Value::Str(kind_name(&args[0]))),
        F::KindIs => Ok(Value::Bool(str_arg(&args[0])? == kind_name(&args[1]))),
        F::DeepEqual => Ok(Value::Bool(deep_equal(&args[0], &args[1], fuel, 0)?)),
        F::Uuidv4 => s(uuid_v4()),
        _ => Err(format!("function {:?} is not implemented", super::name(f))),
    }
}

fn go_b64_error(e: &base64::DecodeError) -> String {
    match e {
        base64::DecodeError::InvalidByte(i, _) | base64::DecodeError::InvalidLastSymbol(i, _) => {
            format!("illegal base64 data at input byte {i}")
        }
        _ => "illegal base64 data at input byte 0".to_owned(),
    }
}

fn int_list<'a>(v: Vec<i64>) -> Value<'a> {
    list(v.into_iter().map(|i| Value::Int(i, IntKind::Int)).collect())
}

fn until_step(start: i64, stop: i64, step: i64) -> Vec<i64> {
    let mut v = Vec::new();
    const LIMIT: usize = 1 << 20;
    if stop < start {
        if step >= 0 {
            return v;
        }
        let mut i = start;
        while i > stop && v.len() < LIMIT {
            v.push(i);
            let Some(next) = i.checked_add(step) else {
                break;
            };
            i = next;
        }
        return v;
    }
    if step <= 0 {
        return v;
    }
    let mut i = start;
    while i < stop && v.len() < LIMIT {
        v.push(i);
        let Some(next) = i.checked_add(step) else {
            break;
        };
        i = next;
    }
    v
}

/// Whether `needle` is deeply equal to one of `items`.
fn any_equal<'a>(items: &[Value<'a>], needle: &Value<'a>, fuel: &mut Fuel) -> Result<bool, String> {
    for it in items {
        if deep_equal(it, needle, fuel, 0)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Go's `strings.SplitN` (`n < 0`: all), one step of `fuel` per part.
fn go_split(s: &str, sep: &str, n: i64, fuel: &mut Fuel) -> Result<Vec<String>, String> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if sep.is_empty() {
        // One part per rune, the last holding the rest when `n` is reached.
        let limit = if n > 0 { n as usize } else { usize::MAX };
        let mut out = Vec::new();
        let mut rest = s;
        while let Some(c) = rest.chars().next() {
            fuel.charge(1)?;
            if out.len() + 1 == limit {
                out.push(rest.to_owned());
                return Ok(out);
            }
            out.push(c.to_string());
            rest = &rest[c.len_utf8()..];
        }
        return Ok(out);
    }
    if n < 0 {
        return fuel.collect(s.split(sep).map(str::to_owned));
    }
    fuel.collect(s.splitn(n as usize, sep).map(str::to_owned))
}

/// Go's `time.ParseDuration`, in nanoseconds.
pub(crate) fn parse_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let v: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += v * mult;
    }
    if total > 9.2e18 {
        return None;
    }
    let t = total as i64;
    Some(if neg { -t } else { t })
}

/// sprig's `durationRound` for a number of seconds.
fn duration_round(secs: i64) -> String {
    let u = secs.unsigned_abs();
    let (year, month, day, hour, minute) = (31_536_000u64, 2_592_000u64, 86_400u64, 3600u64, 60u64);
    match u {
        _ if u > year => format!("{}y", u / year),
        _ if u > month => format!("{}mo", u / month),
        _ if u > day => format!("{}d", u / day),
        _ if u > hour => format!("{}h", u / hour),
        _ if u > minute => format!("{}m", u / minute),
        _ => format!("{u}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_matches_known_vectors() {
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    }

    #[test]
    fn base32_round_trip() {
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI======");
        assert_eq!(
            base32_decode("MZXW6YTBOI======").expect("valid base32"),
            b"foobar"
        );
    }

    #[test]
    fn raw_json_unescapes_only_html_escapes() {
        assert_eq!(
            unescape_html_json(r#""a\u003cb\\u003c""#),
            r#""a<b\\u003c""#
        );
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_duration("x"), None);
    }
}
