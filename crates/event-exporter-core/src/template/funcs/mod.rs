//! The function map: text/template's built-ins plus sprig v3's `TxtFuncMap`.

pub(crate) mod gofmt;
mod sprig;
mod strcase;

use super::limits::{Fuel, check_len};
use super::value::{IntKind, ListKind, Value};

macro_rules! functions {
    ($( $variant:ident = $name:literal $(| $alias:literal)* : ($min:expr, $max:expr) ),* $(,)?) => {
        /// A template function.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum Func { $($variant),* }

        fn by_name(name: &str) -> Option<Func> {
            match name {
                $($name $(| $alias)* => Some(Func::$variant),)*
                _ => None,
            }
        }

        /// The canonical name of a function.
        pub(crate) fn name(f: Func) -> &'static str {
            match f { $(Func::$variant => $name),* }
        }

        fn arity(f: Func) -> (usize, Option<usize>) {
            match f { $(Func::$variant => ($min, $max)),* }
        }
    };
}

const N: Option<usize> = None;
const fn n(x: usize) -> Option<usize> {
    Some(x)
}

functions! {
    // text/template built-ins.
    And = "and": (1, N),
    Or = "or": (1, N),
    Not = "not": (1, n(1)),
    Len = "len": (1, n(1)),
    Index = "index": (1, N),
    Print = "print": (0, N),
    Printf = "printf": (1, N),
    Println = "println": (0, N),
    Html = "html": (0, N),
    Js = "js": (0, N),
    Urlquery = "urlquery": (0, N),
    Eq = "eq": (1, N),
    Ne = "ne": (2, n(2)),
    Lt = "lt": (2, n(2)),
    Le = "le": (2, n(2)),
    Gt = "gt": (2, n(2)),
    Ge = "ge": (2, n(2)),
    // sprig: defaults and flow.
    Default = "default": (1, N),
    Empty = "empty": (1, n(1)),
    Coalesce = "coalesce": (0, N),
    All = "all": (0, N),
    Any = "any": (0, N),
    Ternary = "ternary": (3, n(3)),
    Fail = "fail": (1, n(1)),
    Hello = "hello": (0, n(0)),
    // sprig: strings.
    Trim = "trim": (1, n(1)),
    TrimAll = "trimAll" | "trimall": (2, n(2)),
    TrimPrefix = "trimPrefix": (2, n(2)),
    TrimSuffix = "trimSuffix": (2, n(2)),
    Upper = "upper": (1, n(1)),
    Lower = "lower": (1, n(1)),
    Title = "title": (1, n(1)),
    Untitle = "untitle": (1, n(1)),
    Repeat = "repeat": (2, n(2)),
    Substr = "substr": (3, n(3)),
    Trunc = "trunc": (2, n(2)),
    Abbrev = "abbrev": (2, n(2)),
    Abbrevboth = "abbrevboth": (3, n(3)),
    Nospace = "nospace": (1, n(1)),
    Replace = "replace": (3, n(3)),
    Contains = "contains": (2, n(2)),
    HasPrefix = "hasPrefix": (2, n(2)),
    HasSuffix = "hasSuffix": (2, n(2)),
    Quote = "quote": (0, N),
    Squote = "squote": (0, N),
    Cat = "cat": (0, N),
    Indent = "indent": (2, n(2)),
    Nindent = "nindent": (2, n(2)),
    Wrap = "wrap": (2, n(2)),
    WrapWith = "wrapWith": (3, n(3)),
    Snakecase = "snakecase": (1, n(1)),
    Camelcase = "camelcase": (1, n(1)),
    Kebabcase = "kebabcase": (1, n(1)),
    Swapcase = "swapcase": (1, n(1)),
    Initials = "initials": (1, n(1)),
    Plural = "plural": (3, n(3)),
    ToString = "toString": (1, n(1)),
    ToStrings = "toStrings": (1, n(1)),
    Join = "join": (2, n(2)),
    Split = "split": (2, n(2)),
    SplitList = "splitList": (2, n(2)),
    Splitn = "splitn": (3, n(3)),
    SortAlpha = "sortAlpha": (1, n(1)),
    // sprig: encoding and hashes.
    B64enc = "b64enc": (1, n(1)),
    B64dec = "b64dec": (1, n(1)),
    B32enc = "b32enc": (1, n(1)),
    B32dec = "b32dec": (1, n(1)),
    Sha1sum = "sha1sum": (1, n(1)),
    Sha256sum = "sha256sum": (1, n(1)),
    Adler32sum = "adler32sum": (1, n(1)),
    ToJson = "toJson" | "mustToJson": (1, n(1)),
    ToPrettyJson = "toPrettyJson" | "mustToPrettyJson": (1, n(1)),
    ToRawJson = "toRawJson" | "mustToRawJson": (1, n(1)),
    FromJson = "fromJson": (1, n(1)),
    MustFromJson = "mustFromJson": (1, n(1)),
    // sprig: numbers.
    Atoi = "atoi": (1, n(1)),
    Int = "int": (1, n(1)),
    Int64 = "int64": (1, n(1)),
    Float64 = "float64": (1, n(1)),
    Add = "add": (0, N),
    Add1 = "add1": (1, n(1)),
    Sub = "sub": (2, n(2)),
    Mul = "mul": (1, N),
    Div = "div": (2, n(2)),
    Mod = "mod": (2, n(2)),
    Max = "max" | "biggest": (1, N),
    Min = "min": (1, N),
    Maxf = "maxf": (1, N),
    Minf = "minf": (1, N),
    Addf = "addf": (0, N),
    Add1f = "add1f": (1, n(1)),
    Subf = "subf": (1, N),
    Mulf = "mulf": (1, N),
    Divf = "divf": (1, N),
    Floor = "floor": (1, n(1)),
    Ceil = "ceil": (1, n(1)),
    Round = "round": (2, n(3)),
    Seq = "seq": (0, N),
    Until = "until": (1, n(1)),
    UntilStep = "untilStep": (3, n(3)),
    // sprig: lists.
    List = "list" | "tuple": (0, N),
    First = "first" | "mustFirst": (1, n(1)),
    Last = "last" | "mustLast": (1, n(1)),
    Rest = "rest" | "mustRest": (1, n(1)),
    Initial = "initial" | "mustInitial": (1, n(1)),
    Append = "append" | "push" | "mustAppend" | "mustPush": (2, n(2)),
    Prepend = "prepend" | "mustPrepend": (2, n(2)),
    Concat = "concat": (0, N),
    Reverse = "reverse" | "mustReverse": (1, n(1)),
    Uniq = "uniq" | "mustUniq": (1, n(1)),
    Without = "without" | "mustWithout": (1, N),
    Has = "has" | "mustHas": (2, n(2)),
    Compact = "compact" | "mustCompact": (1, n(1)),
    Slice = "slice" | "mustSlice": (1, N),
    Chunk = "chunk" | "mustChunk": (2, n(2)),
    // sprig: dicts.
    Dict = "dict": (0, N),
    Get = "get": (2, n(2)),
    Set = "set": (3, n(3)),
    Unset = "unset": (2, n(2)),
    HasKey = "hasKey": (2, n(2)),
    Keys = "keys": (0, N),
    Values = "values": (1, n(1)),
    Pluck = "pluck": (1, N),
    Pick = "pick": (1, N),
    Omit = "omit": (1, N),
    Merge = "merge" | "mustMerge": (1, N),
    MergeOverwrite = "mergeOverwrite" | "mustMergeOverwrite": (1, N),
    Dig = "dig": (3, N),
    // sprig: regular expressions (RE2 syntax).
    RegexMatch = "regexMatch": (2, n(2)),
    MustRegexMatch = "mustRegexMatch": (2, n(2)),
    RegexFind = "regexFind" | "mustRegexFind": (2, n(2)),
    RegexFindAll = "regexFindAll" | "mustRegexFindAll": (3, n(3)),
    RegexReplaceAll = "regexReplaceAll" | "mustRegexReplaceAll": (3, n(3)),
    RegexReplaceAllLiteral = "regexReplaceAllLiteral" | "mustRegexReplaceAllLiteral": (3, n(3)),
    RegexSplit = "regexSplit" | "mustRegexSplit": (3, n(3)),
    RegexQuoteMeta = "regexQuoteMeta": (1, n(1)),
    // sprig: dates.
    Now = "now": (0, n(0)),
    Date = "date": (2, n(2)),
    DateInZone = "dateInZone" | "date_in_zone": (3, n(3)),
    HtmlDate = "htmlDate": (1, n(1)),
    HtmlDateInZone = "htmlDateInZone": (2, n(2)),
    UnixEpoch = "unixEpoch": (1, n(1)),
    DateModify = "dateModify" | "date_modify" | "mustDateModify" | "must_date_modify": (2, n(2)),
    ToDate = "toDate" | "mustToDate": (2, n(2)),
    Ago = "ago": (1, n(1)),
    Duration = "duration": (1, n(1)),
    DurationRound = "durationRound": (1, n(1)),
    // sprig: OS, paths, reflection, misc.
    Env = "env": (1, n(1)),
    Expandenv = "expandenv": (1, n(1)),
    Base = "base" | "osBase": (1, n(1)),
    Dir = "dir" | "osDir": (1, n(1)),
    Clean = "clean" | "osClean": (1, n(1)),
    Ext = "ext" | "osExt": (1, n(1)),
    IsAbs = "isAbs" | "osIsAbs": (1, n(1)),
    TypeOf = "typeOf": (1, n(1)),
    TypeIs = "typeIs": (2, n(2)),
    TypeIsLike = "typeIsLike": (2, n(2)),
    KindOf = "kindOf": (1, n(1)),
    KindIs = "kindIs": (2, n(2)),
    DeepEqual = "deepEqual": (2, n(2)),
    Uuidv4 = "uuidv4": (0, n(0)),
}

/// sprig functions this engine does not implement (randomness, crypto, network, semver).
const UNSUPPORTED: &[&str] = &[
    "call",
    "randAlphaNum",
    "randAlpha",
    "randAscii",
    "randNumeric",
    "randInt",
    "randBytes",
    "shuffle",
    "toDecimal",
    "deepCopy",
    "mustDeepCopy",
    "getHostByName",
    "bcrypt",
    "htpasswd",
    "genPrivateKey",
    "derivePassword",
    "buildCustomCert",
    "genCA",
    "genCAWithKey",
    "genSelfSignedCert",
    "genSelfSignedCertWithKey",
    "genSignedCert",
    "genSignedCertWithKey",
    "encryptAES",
    "decryptAES",
    "semver",
    "semverCompare",
    "urlParse",
    "urlJoin",
];

/// A resolved function reference.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FuncRef {
    pub(crate) func: Func,
}

/// Resolves a function name: `None` when undefined, `Some(Err)` when known but unsupported.
pub(crate) fn lookup(name: &str) -> Option<Result<FuncRef, String>> {
    if let Some(func) = by_name(name) {
        return Some(Ok(FuncRef { func }));
    }
    if UNSUPPORTED.contains(&name) {
        return Some(Err(format!(
            "function {name:?} is not supported by event-exporter"
        )));
    }
    None
}

/// Whether `f` reads the bytes of the strings it is given (most do: a scan, a hash, a copy).
/// Those that only hold or pass them on (`list`, `dict`, `set`, `default`, …) do not pay for
/// them.
pub(crate) fn reads_strings(f: Func) -> bool {
    use Func as F;
    !matches!(
        f,
        F::List
            | F::Dict
            | F::Set
            | F::Append
            | F::Prepend
            | F::Default
            | F::Ternary
            | F::Coalesce
            | F::Empty
            | F::Len
            | F::Get
            | F::HasKey
            | F::TypeOf
            | F::KindOf
            | F::Pluck
            | F::First
            | F::Last
            | F::Index
            | F::Not
            | F::And
            | F::Or
    )
}

/// Checks an argument count (Go checks it when executing; a template that cannot run is
/// refused when it loads).
pub(crate) fn check_arity(f: Func, got: usize) -> Result<(), String> {
    let (min, max) = arity(f);
    let ok = got >= min && max.is_none_or(|m| got <= m);
    if ok {
        return Ok(());
    }
    Err(match max {
        Some(m) if m == min => format!("wrong number of args for {}: want {m} got {got}", name(f)),
        _ => format!(
            "wrong number of args for {}: want at least {min} got {got}",
            name(f)
        ),
    })
}

pub(crate) type FResult<'a> = Result<Value<'a>, String>;

/// Calls `f` with evaluated arguments (which it may take), spending from `fuel` what its work
/// costs beyond one step.
pub(crate) fn call<'a>(f: &FuncRef, args: &mut [Value<'a>], fuel: &mut Fuel) -> FResult<'a> {
    use Func as F;
    match f.func {
        F::And | F::Or => {
            // Reached only through a non-short-circuit path; keep Go's semantics.
            let want = f.func == F::Or;
            let mut last = Value::Missing;
            for a in args.iter_mut() {
                last = std::mem::replace(a, Value::Nil);
                if last.truth() == want {
                    return Ok(last);
                }
            }
            Ok(last)
        }
        F::Not => Ok(Value::Bool(!args[0].truth())),
        F::Len => match &args[0] {
            Value::NilPtr(_) => Err("len of nil pointer".to_owned()),
            Value::Missing | Value::Nil => Err("len of untyped nil".to_owned()),
            v => v
                .len()
                .map(|n| Value::Int(n as i64, IntKind::Int))
                .ok_or_else(|| format!("len of type {}", v.type_name())),
        },
        F::Index => index(args),
        F::Print => {
            let args: Vec<Value<'a>> = args.iter().cloned().map(Value::into_iface).collect();
            let mut s = String::new();
            gofmt::sprint(&args, &mut s)?;
            Ok(Value::string(s))
        }
        F::Println => {
            let args: Vec<Value<'a>> = args.iter().cloned().map(Value::into_iface).collect();
            let mut s = String::new();
            gofmt::sprintln(&args, &mut s)?;
            Ok(Value::string(s))
        }
        F::Printf => {
            let format = sprig::str_arg(&args[0])?.to_owned();
            let rest: Vec<Value<'a>> = args[1..].iter().cloned().map(Value::into_iface).collect();
            let mut s = String::new();
            gofmt::sprintf(&format, &rest, &mut s)?;
            Ok(Value::string(s))
        }
        F::Html => escaped(html_escape(&eval_args(args)?)),
        F::Js => escaped(js_escape(&eval_args(args)?)),
        F::Urlquery => escaped(query_escape(&eval_args(args)?)),
        F::Eq => {
            if args.len() < 2 {
                return Err("missing argument for comparison".to_owned());
            }
            let (a, rest) = args.split_at(1);
            for b in rest {
                if eq(&a[0], b, fuel)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        F::Ne => Ok(Value::Bool(!eq(&args[0], &args[1], fuel)?)),
        F::Lt => Ok(Value::Bool(lt(&args[0], &args[1])?)),
        F::Le => Ok(Value::Bool(
            lt(&args[0], &args[1])? || eq(&args[0], &args[1], fuel)?,
        )),
        F::Gt => Ok(Value::Bool(
            !(lt(&args[0], &args[1])? || eq(&args[0], &args[1], fuel)?),
        )),
        F::Ge => Ok(Value::Bool(!lt(&args[0], &args[1])?)),
        _ => sprig::call(f.func, args, fuel),
    }
}

/// An escaped string, within the size bound (escaping multiplies a string by up to 6).
fn escaped<'a>(s: String) -> FResult<'a> {
    check_len(&s)?;
    Ok(Value::string(s))
}

/// text/template's `evalArgs`: one string as is, else `fmt.Sprint` of the arguments.
fn eval_args(args: &[Value<'_>]) -> Result<String, String> {
    if let [a] = args
        && let Some(s) = a.as_str()
    {
        return Ok(s.to_owned());
    }
    let args: Vec<Value<'_>> = args.iter().cloned().map(Value::into_iface).collect();
    let mut s = String::new();
    gofmt::sprint(&args, &mut s)?;
    Ok(s)
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' => out.push('\u{fffd}'),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c if !c.is_ascii() && !gofmt::is_go_printable(c) => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub(crate) fn query_escape(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            b => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

fn index<'a>(args: &mut [Value<'a>]) -> FResult<'a> {
    let mut item = std::mem::replace(&mut args[0], Value::Nil);
    for ix in args[1..].iter() {
        item = match &item {
            Value::Missing | Value::Nil => return Err("index of untyped nil".to_owned()),
            Value::NilPtr(_) => return Err("index of nil pointer".to_owned()),
            Value::StrMap(m) => {
                let Some(k) = ix.as_str() else {
                    return Err(format!(
                        "value has type {}; should be string",
                        ix.type_name()
                    ));
                };
                // A missing key gives the element type's zero value.
                Value::Str(m.and_then(|m| m.get(k)).map_or("", String::as_str))
            }
            Value::Dict(d) => {
                let Some(k) = ix.as_str() else {
                    return Err(format!(
                        "value has type {}; should be string",
                        ix.type_name()
                    ));
                };
                d.borrow().get(k).cloned().unwrap_or(Value::Nil)
            }
            Value::List(..) | Value::Slice(_) | Value::Str(_) | Value::String(_) => {
                let Value::Int(i, _) = ix else {
                    return Err(format!(
                        "cannot index slice/array with type {}",
                        ix.type_name()
                    ));
                };
                let len = item.len().unwrap_or(0);
                if *i < 0 || *i as usize >= len {
                    return Err(format!("index out of range: {i}"));
                }
                let i = *i as usize;
                if let Some(s) = item.as_str() {
                    Value::Int(i64::from(s.as_bytes()[i]), IntKind::Int)
                } else {
                    item.list_item(i).unwrap_or(Value::Nil)
                }
            }
            other => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Basic {
    Bool,
    Int,
    Float,
    Str,
    Other,
}

fn basic(v: &Value<'_>) -> Basic {
    match v {
        Value::Bool(_) => Basic::Bool,
        Value::Int(..) => Basic::Int,
        Value::Float(_) => Basic::Float,
        Value::Str(_) | Value::String(_) => Basic::Str,
        _ => Basic::Other,
    }
}

fn is_zero_value(v: &Value<'_>) -> bool {
    matches!(v, Value::Missing | Value::Nil)
}

/// Whether two values (structs of the event, times) marshal to the same JSON, paying for the
/// JSON built: one step per 16 bytes of its strings and per value in it.
pub(crate) fn json_equal(a: &Value<'_>, b: &Value<'_>, fuel: &mut Fuel) -> Result<bool, String> {
    fn weight(v: &serde_json::Value) -> u64 {
        match v {
            serde_json::Value::String(s) => 1 + (s.len() / 16) as u64,
            serde_json::Value::Array(items) => 1 + items.iter().map(weight).sum::<u64>(),
            serde_json::Value::Object(m) => {
                1 + m
                    .iter()
                    .map(|(k, v)| (k.len() / 16) as u64 + weight(v))
                    .sum::<u64>()
            }
            _ => 1,
        }
    }
    let (x, y) = (a.to_json()?, b.to_json()?);
    fuel.charge(weight(&x) + weight(&y))?;
    Ok(x == y)
}

/// text/template's `eq` for one pair.
fn eq(a: &Value<'_>, b: &Value<'_>, fuel: &mut Fuel) -> Result<bool, String> {
    if matches!(
        a,
        Value::StrMap(_) | Value::Dict(_) | Value::List(..) | Value::Slice(_)
    ) {
        return Err("invalid type for comparison".to_owned());
    }
    let (ka, kb) = (basic(a), basic(b));
    if ka != kb {
        if !is_zero_value(a) && !is_zero_value(b) {
            return Err("incompatible types for comparison".to_owned());
        }
        return Ok(false);
    }
    Ok(match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x, _), Value::Int(y, _)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        _ if ka == Basic::Str => a.as_str() == b.as_str(),
        _ => {
            if matches!(
                b,
                Value::StrMap(_) | Value::Dict(_) | Value::List(..) | Value::Slice(_)
            ) {
                return Err(format!(
                    "non-comparable types {}: {}",
                    a.type_name(),
                    b.type_name()
                ));
            }
            match (a, b) {
                (Value::Missing | Value::Nil, Value::Missing | Value::Nil) => true,
                (Value::Time(x, kx), Value::Time(y, ky)) => x == y && kx == ky,
                // Structs of the event, compared field by field through their JSON.
                _ => a.type_name() == b.type_name() && json_equal(a, b, fuel)?,
            }
        }
    })
}

/// text/template's `lt`.
fn lt(a: &Value<'_>, b: &Value<'_>) -> Result<bool, String> {
    let (ka, kb) = (basic(a), basic(b));
    if ka == Basic::Other || kb == Basic::Other {
        return Err("invalid type for comparison".to_owned());
    }
    if ka != kb {
        return Err("incompatible types for comparison".to_owned());
    }
    Ok(match (a, b) {
        (Value::Int(x, _), Value::Int(y, _)) => x < y,
        (Value::Float(x), Value::Float(y)) => x < y,
        (Value::Bool(_), _) => return Err("invalid type for comparison".to_owned()),
        _ => a.as_str() < b.as_str(),
    })
}

/// A `[]string` value.
pub(crate) fn str_list<'a>(items: Vec<String>) -> Value<'a> {
    Value::list(
        items.into_iter().map(Value::string).collect(),
        ListKind::Str,
    )
}
