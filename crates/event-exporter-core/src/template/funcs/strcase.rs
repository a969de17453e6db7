//! String helpers sprig takes from `huandu/xstrings` v1.3.3 and `Masterminds/goutils`,
//! and Go's `strings.Title`.

use super::super::limits::{Bound, MAX_OUTPUT};

fn is_connector(r: char) -> bool {
    r == '-' || r == '_' || r.is_whitespace()
}

/// Go's `unicode.IsPunct`, exact for ASCII.
fn is_punct(r: char) -> bool {
    if r.is_ascii() {
        return "!\"#%&'()*,-./:;?@[\\]_{}".contains(r);
    }
    matches!(
        r,
        '\u{a1}' | '\u{a7}' | '\u{ab}' | '\u{b6}' | '\u{b7}' | '\u{bb}' | '\u{bf}'
    ) || ('\u{2010}'..='\u{2027}').contains(&r)
        || ('\u{2030}'..='\u{205e}').contains(&r)
        || ('\u{3001}'..='\u{3003}').contains(&r)
        || ('\u{3008}'..='\u{3011}').contains(&r)
}

/// xstrings' `isAlphabet`: a letter that is not a CJK character.
fn is_alphabet(r: char) -> bool {
    if !r.is_alphabetic() {
        return false;
    }
    let u = r as u32;
    !(u >= 0x3400 && ((0x4E00..=0x9FCC).contains(&u) || (0x3400..=0x4D85).contains(&u)))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum W {
    Invalid,
    Number,
    Upper,
    Alpha,
    Connector,
    Punct,
    Other,
}

fn first(s: &str) -> Option<char> {
    s.chars().next()
}

fn next_word(s: &str) -> (W, &str, &str) {
    let Some(r) = first(s) else {
        return (W::Invalid, "", "");
    };
    let mut offset = r.len_utf8();
    let mut remaining = &s[offset..];
    let consume_while = |offset: &mut usize, remaining: &mut &str, f: &dyn Fn(char) -> bool| {
        while let Some(c) = first(remaining) {
            if !f(c) {
                break;
            }
            *offset += c.len_utf8();
            *remaining = &remaining[c.len_utf8()..];
        }
    };
    let wt = if is_connector(r) {
        consume_while(&mut offset, &mut remaining, &is_connector);
        W::Connector
    } else if is_punct(r) {
        consume_while(&mut offset, &mut remaining, &is_punct);
        W::Punct
    } else if r.is_uppercase() {
        if let Some(r2) = first(remaining) {
            if r2.is_uppercase() {
                let mut prev_size = r2.len_utf8();
                offset += prev_size;
                remaining = &remaining[prev_size..];
                let mut last = r2;
                while let Some(c) = first(remaining) {
                    last = c;
                    if !c.is_uppercase() {
                        break;
                    }
                    prev_size = c.len_utf8();
                    offset += prev_size;
                    remaining = &remaining[prev_size..];
                }
                // "HTTPStatus" splits into "HTTP" and "Status".
                if !remaining.is_empty() && is_alphabet(last) {
                    offset -= prev_size;
                    remaining = &s[offset..];
                }
            } else if is_alphabet(r2) {
                offset += r2.len_utf8();
                remaining = &remaining[r2.len_utf8()..];
                consume_while(&mut offset, &mut remaining, &|c| {
                    is_alphabet(c) && !c.is_uppercase()
                });
            }
        }
        W::Upper
    } else if is_alphabet(r) {
        consume_while(&mut offset, &mut remaining, &|c| {
            is_alphabet(c) && !c.is_uppercase()
        });
        W::Alpha
    } else if r.is_numeric() {
        consume_while(&mut offset, &mut remaining, &char::is_numeric);
        W::Number
    } else {
        consume_while(&mut offset, &mut remaining, &|c| {
            !(is_connector(c) || is_alphabet(c) || c.is_numeric() || is_punct(c))
        });
        W::Other
    };
    (wt, &s[..offset], remaining)
}

fn to_lower(buf: &mut String, wt: W, s: &str, conn: char) {
    if wt != W::Upper && wt != W::Connector {
        buf.push_str(s);
        return;
    }
    for r in s.chars() {
        if is_connector(r) {
            buf.push(conn);
        } else if r.is_uppercase() {
            buf.extend(r.to_lowercase());
        } else {
            buf.push(r);
        }
    }
}

/// xstrings' `camelCaseToLowerCase` (`snakecase`, `kebabcase`).
pub(crate) fn camel_to_lower(s: &str, conn: char) -> String {
    if s.is_empty() {
        return String::new();
    }
    let mut buf = String::with_capacity(s.len() + 4);
    let (mut wt, mut word, mut remaining) = next_word(s);
    while !remaining.is_empty() {
        if wt != W::Connector {
            to_lower(&mut buf, wt, word, conn);
        }
        let prev = wt;
        let last = word;
        (wt, word, remaining) = next_word(remaining);
        match prev {
            W::Number => {
                while wt == W::Alpha || wt == W::Number {
                    to_lower(&mut buf, wt, word, conn);
                    (wt, word, remaining) = next_word(remaining);
                }
                if wt != W::Invalid && wt != W::Punct && wt != W::Connector {
                    buf.push(conn);
                }
            }
            W::Connector => to_lower(&mut buf, prev, last, conn),
            W::Punct => {}
            _ => {
                if wt != W::Number {
                    if wt != W::Connector && wt != W::Punct {
                        buf.push(conn);
                    }
                    continue;
                }
                if remaining.is_empty() {
                    continue;
                }
                let last = word;
                (wt, word, remaining) = next_word(remaining);
                // "Bld4Floor" => "bld4_floor"
                if wt != W::Alpha {
                    to_lower(&mut buf, W::Number, last, conn);
                    if wt != W::Connector && wt != W::Punct {
                        buf.push(conn);
                    }
                    continue;
                }
                // "HTTP2xx" => "http_2xx"
                buf.push(conn);
                to_lower(&mut buf, W::Number, last, conn);
                while wt == W::Alpha || wt == W::Number {
                    to_lower(&mut buf, wt, word, conn);
                    (wt, word, remaining) = next_word(remaining);
                }
                if wt != W::Invalid && wt != W::Connector && wt != W::Punct {
                    buf.push(conn);
                }
            }
        }
    }
    to_lower(&mut buf, wt, word, conn);
    buf
}

fn upper1(c: char) -> char {
    c.to_uppercase().next().unwrap_or(c)
}

fn lower1(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

/// xstrings' `ToCamelCase`.
pub(crate) fn camel_case(s: &str) -> String {
    if s.is_empty() {
        return String::new();
    }
    let mut buf = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    let mut r0 = '\0';
    let mut got = false;
    // Leading connectors appear in the output.
    for c in chars.by_ref() {
        if !is_connector(c) {
            r0 = upper1(c);
            got = true;
            break;
        }
        buf.push(c);
    }
    if chars.peek().is_none() {
        if got {
            buf.push(r0);
        }
        return buf;
    }
    for c in chars {
        let r1 = r0;
        r0 = c;
        if is_connector(r0) && is_connector(r1) {
            buf.push(r1);
            continue;
        }
        if is_connector(r1) {
            r0 = upper1(r0);
        } else {
            r0 = lower1(r0);
            buf.push(r1);
        }
    }
    buf.push(r0);
    buf
}

/// Go's `strings.Title`.
pub(crate) fn title(s: &str) -> String {
    let is_sep = |r: char| {
        if r.is_ascii() {
            return !(r.is_ascii_alphanumeric() || r == '_');
        }
        if r.is_alphabetic() || r.is_numeric() {
            return false;
        }
        r.is_whitespace()
    };
    let mut prev = ' ';
    s.chars()
        .map(|r| {
            let out = if is_sep(prev) { upper1(r) } else { r };
            prev = r;
            out
        })
        .collect()
}

/// goutils' `Uncapitalize` with whitespace delimiters (sprig's `untitle`).
pub(crate) fn untitle(s: &str) -> String {
    let mut next = true;
    s.chars()
        .map(|c| {
            if c.is_whitespace() {
                next = true;
                c
            } else if next {
                next = false;
                lower1(c)
            } else {
                c
            }
        })
        .collect()
}

/// goutils' `SwapCase`.
pub(crate) fn swap_case(s: &str) -> String {
    let mut ws = true;
    s.chars()
        .map(|c| {
            if c.is_uppercase() {
                ws = false;
                lower1(c)
            } else if c.is_lowercase() {
                if ws {
                    ws = false;
                    upper1(c)
                } else {
                    upper1(c)
                }
            } else {
                ws = c.is_whitespace();
                c
            }
        })
        .collect()
}

/// goutils' `Initials` with whitespace delimiters.
pub(crate) fn initials(s: &str) -> String {
    let mut gap = true;
    let mut out = String::new();
    for c in s.chars() {
        if c.is_whitespace() {
            gap = true;
        } else if gap {
            out.push(c);
            gap = false;
        }
    }
    out
}

/// goutils' `WrapCustom`.
pub(crate) fn wrap_custom(
    s: &str,
    wrap_len: i64,
    newline: &str,
    wrap_long: bool,
) -> Result<String, Bound> {
    if s.is_empty() {
        return Ok(String::new());
    }
    let nl = if newline.is_empty() { "\n" } else { newline };
    let wl = usize::try_from(wrap_len.max(1)).unwrap_or(1);
    let b = s.as_bytes();
    let n = b.len();
    let mut out: Vec<u8> = Vec::with_capacity(n + 8);
    let mut offset = 0usize;
    while n - offset > wl {
        if out.len() > MAX_OUTPUT {
            return Err(Bound::Size);
        }
        if b[offset] == b' ' {
            offset += 1;
            continue;
        }
        let end = (wl + offset + 1).min(n);
        let space = b[offset..end].iter().rposition(|c| *c == b' ');
        match space {
            Some(sp) => {
                out.extend_from_slice(&b[offset..offset + sp]);
                out.extend_from_slice(nl.as_bytes());
                offset += sp + 1;
            }
            None => {
                let end = wl + offset;
                if wrap_long {
                    out.extend_from_slice(&b[offset..end]);
                    out.extend_from_slice(nl.as_bytes());
                    offset += wl;
                } else {
                    match b[end..].iter().position(|c| *c == b' ') {
                        None => {
                            out.extend_from_slice(&b[offset..]);
                            offset = n;
                        }
                        Some(i) => {
                            let sp = i + end;
                            out.extend_from_slice(&b[offset..sp]);
                            out.extend_from_slice(nl.as_bytes());
                            offset = sp + 1;
                        }
                    }
                }
            }
        }
    }
    out.extend_from_slice(&b[offset.min(n)..]);
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn byte_slice(s: &str, from: usize, to: usize) -> String {
    let b = s.as_bytes();
    let to = to.min(b.len());
    let from = from.min(to);
    String::from_utf8_lossy(&b[from..to]).into_owned()
}

/// goutils' `AbbreviateFull` (errors read as "return the input").
pub(crate) fn abbreviate_full(s: &str, offset: i64, max_width: i64) -> String {
    if s.is_empty() || max_width < 4 {
        return s.to_owned();
    }
    let len = s.len() as i64;
    if len <= max_width {
        return s.to_owned();
    }
    let mut offset = offset.min(len);
    if len.saturating_sub(offset) < max_width - 3 {
        offset = len - (max_width - 3);
    }
    if offset <= 4 {
        return byte_slice(s, 0, (max_width - 3) as usize) + "...";
    }
    if max_width < 7 {
        return s.to_owned();
    }
    if offset + max_width - 3 < len {
        let rest = byte_slice(s, offset as usize, s.len());
        return "...".to_owned() + &abbreviate_full(&rest, 0, max_width - 3);
    }
    "...".to_owned() + &byte_slice(s, (len - (max_width - 3)) as usize, s.len())
}

/// Byte-indexed slicing as Go does it (invalid UTF-8 becomes U+FFFD).
pub(crate) fn go_slice(s: &str, from: usize, to: usize) -> String {
    byte_slice(s, from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_like_xstrings() {
        for (i, snake) in [
            ("FirstName", "first_name"),
            ("HTTPServer", "http_server"),
            ("NoHTTPS", "no_https"),
            ("GO_PATH", "go_path"),
            ("GO PATH", "go_path"),
            ("GO-PATH", "go_path"),
            ("http2xx", "http_2xx"),
            ("HTTP20xOK", "http_20x_ok"),
            ("Duration2m3s", "duration_2m3s"),
            ("Bld4Floor3rd", "bld4_floor_3rd"),
            ("BackOff", "back_off"),
        ] {
            assert_eq!(camel_to_lower(i, '_'), snake, "{i}");
        }
        assert_eq!(camel_to_lower("BackOff", '-'), "back-off");
        assert_eq!(camel_case("some_words"), "SomeWords");
        assert_eq!(camel_case("_complex__case_"), "_Complex_Case_");
        assert_eq!(camel_case("http_server"), "HttpServer");
    }

    #[test]
    fn title_like_go() {
        assert_eq!(title("search-333c4774e-h9b2q"), "Search-333c4774e-H9b2q");
        assert_eq!(title("hello wOrld"), "Hello WOrld");
        assert_eq!(untitle("Hello World"), "hello world");
        assert_eq!(swap_case("Hello World"), "hELLO wORLD");
    }

    #[test]
    fn wrap_and_abbrev() {
        assert_eq!(
            wrap_custom(
                "Readiness probe failed: Get \"http://10.0.250.69:8080/healthz\": dial tcp 10.0.250.69:8080: connect: connection refused",
                20,
                "",
                false
            )
            .unwrap(),
            "Readiness probe\nfailed: Get\n\"http://10.0.250.69:8080/healthz\":\ndial tcp\n10.0.250.69:8080:\nconnect: connection\nrefused"
        );
        assert_eq!(abbreviate_full("New size: 1; reason", 0, 10), "New siz...");
        assert_eq!(abbreviate_full("abcdefghijklmno", 10, 10), "...ijklmno");
    }
}
