//! The lexer: Go's `text/template/parse` lexer, producing a token vector.

/// Token kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Plain text (already trimmed by `{{-`/`-}}` markers).
    Text,
    LeftDelim,
    RightDelim,
    Comment,
    Space,
    Identifier,
    /// `.Name` (the token text includes the dot).
    Field,
    /// `$` or `$name`.
    Variable,
    Dot,
    String,
    RawString,
    CharConstant,
    Number,
    Bool,
    Nil,
    Pipe,
    LeftParen,
    RightParen,
    Assign,
    Declare,
    /// A printable ASCII character with no other meaning (`,` in range declarations).
    Char,
    // Keywords.
    Block,
    Break,
    Continue,
    Define,
    Else,
    End,
    If,
    Range,
    Template,
    With,
    Eof,
}

/// A token: its kind and the byte range of its text in the source.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Token {
    pub(crate) kind: Kind,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// A lexing error at a byte offset.
#[derive(Debug)]
pub(crate) struct LexError {
    pub(crate) pos: usize,
    pub(crate) message: String,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

struct Lexer<'s> {
    src: &'s str,
    pos: usize,
    toks: Vec<Token>,
    paren_depth: usize,
}

/// Splits `src` into tokens.
pub(crate) fn lex(src: &str) -> Result<Vec<Token>, LexError> {
    let mut l = Lexer {
        src,
        pos: 0,
        toks: Vec::new(),
        paren_depth: 0,
    };
    l.run()?;
    Ok(l.toks)
}

impl<'s> Lexer<'s> {
    fn rest(&self) -> &'s str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn emit(&mut self, kind: Kind, start: usize) {
        self.toks.push(Token {
            kind,
            start,
            end: self.pos,
        });
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, LexError> {
        Err(LexError {
            pos: self.pos,
            message: message.into(),
        })
    }

    fn peek_char(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn next_char(&mut self) -> Option<char> {
        let c = self.peek_char()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// `(delim, trim)`: at `}}` or ` -}}`.
    fn at_right_delim(&self) -> (bool, bool) {
        let r = self.rest().as_bytes();
        if r.len() >= 2 && is_space(r[0]) && r[1] == b'-' && r[2..].starts_with(b"}}") {
            return (true, true);
        }
        (r.starts_with(b"}}"), false)
    }

    fn run(&mut self) -> Result<(), LexError> {
        loop {
            // Text up to the next "{{".
            let start = self.pos;
            match self.rest().find("{{") {
                None => {
                    self.pos = self.src.len();
                    if self.pos > start {
                        self.emit(Kind::Text, start);
                    }
                    self.toks.push(Token {
                        kind: Kind::Eof,
                        start: self.pos,
                        end: self.pos,
                    });
                    return Ok(());
                }
                Some(off) => {
                    let delim = self.pos + off;
                    let after = &self.src.as_bytes()[delim + 2..];
                    let trim = after.len() >= 2 && after[0] == b'-' && is_space(after[1]);
                    let mut text_end = delim;
                    if trim {
                        text_end = start
                            + self.src[start..delim]
                                .trim_end_matches([' ', '\t', '\r', '\n'])
                                .len();
                    }
                    if text_end > start {
                        self.toks.push(Token {
                            kind: Kind::Text,
                            start,
                            end: text_end,
                        });
                    }
                    self.pos = delim + 2;
                    if trim {
                        self.pos += 2;
                    }
                    let ld_start = delim;
                    if self.rest().starts_with("/*") {
                        self.lex_comment(ld_start)?;
                    } else {
                        self.emit(Kind::LeftDelim, ld_start);
                        self.paren_depth = 0;
                        self.inside_action()?;
                    }
                }
            }
        }
    }

    fn after_right_delim(&mut self, trim: bool) {
        if trim {
            let r = self.rest();
            let t = r.trim_start_matches([' ', '\t', '\r', '\n']);
            self.pos += r.len() - t.len();
        }
    }

    fn lex_comment(&mut self, start: usize) -> Result<(), LexError> {
        let body = self.pos + 2;
        let Some(end) = self.src[body..].find("*/") else {
            return self.err("unclosed comment");
        };
        self.pos = body + end + 2;
        let (delim, trim) = self.at_right_delim();
        if !delim {
            return self.err("comment ends before closing delimiter");
        }
        if trim {
            self.pos += 2;
        }
        self.pos += 2;
        self.emit(Kind::Comment, start);
        self.after_right_delim(trim);
        Ok(())
    }

    fn inside_action(&mut self) -> Result<(), LexError> {
        loop {
            let (delim, trim) = self.at_right_delim();
            if delim {
                if self.paren_depth != 0 {
                    return self.err("unclosed left paren");
                }
                let start = self.pos;
                if trim {
                    self.pos += 2;
                }
                self.pos += 2;
                self.emit(Kind::RightDelim, start);
                self.after_right_delim(trim);
                return Ok(());
            }
            let start = self.pos;
            let Some(c) = self.next_char() else {
                return self.err("unclosed action");
            };
            match c {
                ' ' | '\t' | '\r' | '\n' => {
                    // Spaces; a single space before "-}}" belongs to the delimiter.
                    self.pos = start;
                    while self.rest().as_bytes().first().is_some_and(|b| is_space(*b)) {
                        self.pos += 1;
                        if self.at_right_delim() == (true, true) {
                            break;
                        }
                    }
                    if self.pos > start {
                        self.emit(Kind::Space, start);
                    }
                }
                '=' => self.emit(Kind::Assign, start),
                ':' => {
                    if self.next_char() != Some('=') {
                        return self.err("expected :=");
                    }
                    self.emit(Kind::Declare, start);
                }
                '|' => self.emit(Kind::Pipe, start),
                '"' => {
                    loop {
                        match self.next_char() {
                            Some('\\') => match self.next_char() {
                                None | Some('\n') => {
                                    return self.err("unterminated quoted string");
                                }
                                Some(_) => {}
                            },
                            None | Some('\n') => return self.err("unterminated quoted string"),
                            Some('"') => break,
                            Some(_) => {}
                        }
                    }
                    self.emit(Kind::String, start);
                }
                '`' => {
                    match self.rest().find('`') {
                        None => return self.err("unterminated raw quoted string"),
                        Some(i) => self.pos += i + 1,
                    }
                    self.emit(Kind::RawString, start);
                }
                '$' => self.field_or_variable(start, Kind::Variable)?,
                '\'' => {
                    loop {
                        match self.next_char() {
                            Some('\\') => match self.next_char() {
                                None | Some('\n') => {
                                    return self.err("unterminated character constant");
                                }
                                Some(_) => {}
                            },
                            None | Some('\n') => {
                                return self.err("unterminated character constant");
                            }
                            Some('\'') => break,
                            Some(_) => {}
                        }
                    }
                    self.emit(Kind::CharConstant, start);
                }
                '.' if !self.peek_char().is_some_and(|c| c.is_ascii_digit()) => {
                    self.field_or_variable(start, Kind::Field)?;
                }
                '.' | '+' | '-' | '0'..='9' => {
                    self.pos = start;
                    self.lex_number()?;
                }
                '(' => {
                    self.emit(Kind::LeftParen, start);
                    self.paren_depth += 1;
                }
                ')' => {
                    if self.paren_depth == 0 {
                        return self.err("unexpected right paren U+0029 ')'");
                    }
                    self.paren_depth -= 1;
                    self.emit(Kind::RightParen, start);
                }
                c if is_alnum(c) => {
                    self.pos = start;
                    self.lex_identifier()?;
                }
                c if c.is_ascii() && !c.is_ascii_control() => self.emit(Kind::Char, start),
                c => {
                    return self.err(format!(
                        "unrecognized character in action: U+{:04X} {c:?}",
                        c as u32
                    ));
                }
            }
        }
    }

    fn at_terminator(&self) -> bool {
        match self.peek_char() {
            None => true,
            Some(c) => matches!(
                c,
                ' ' | '\t' | '\r' | '\n' | '.' | ',' | '|' | ':' | ')' | '(' | '}'
            ),
        }
    }

    fn bad_char<T>(&self) -> Result<T, LexError> {
        let c = self.peek_char().unwrap_or('\u{fffd}');
        self.err(format!("bad character U+{:04X} {c:?}", c as u32))
    }

    fn field_or_variable(&mut self, start: usize, kind: Kind) -> Result<(), LexError> {
        if self.at_terminator() {
            self.emit(
                if kind == Kind::Variable {
                    Kind::Variable
                } else {
                    Kind::Dot
                },
                start,
            );
            return Ok(());
        }
        while self.peek_char().is_some_and(is_alnum) {
            self.next_char();
        }
        if !self.at_terminator() {
            return self.bad_char();
        }
        self.emit(kind, start);
        Ok(())
    }

    fn lex_identifier(&mut self) -> Result<(), LexError> {
        let start = self.pos;
        while self.peek_char().is_some_and(is_alnum) {
            self.next_char();
        }
        if !self.at_terminator() {
            return self.bad_char();
        }
        let kind = match &self.src[start..self.pos] {
            "block" => Kind::Block,
            "break" => Kind::Break,
            "continue" => Kind::Continue,
            "define" => Kind::Define,
            "else" => Kind::Else,
            "end" => Kind::End,
            "if" => Kind::If,
            "range" => Kind::Range,
            "nil" => Kind::Nil,
            "template" => Kind::Template,
            "with" => Kind::With,
            "true" | "false" => Kind::Bool,
            _ => Kind::Identifier,
        };
        self.emit(kind, start);
        Ok(())
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.peek_char() {
            Some(c) if valid.contains(c) => {
                self.next_char();
                true
            }
            _ => false,
        }
    }

    fn accept_run(&mut self, valid: &str) {
        while self.accept(valid) {}
    }

    fn lex_number(&mut self) -> Result<(), LexError> {
        let start = self.pos;
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 11 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        if digits.len() == 23 && self.accept("pP") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if self.peek_char().is_some_and(is_alnum) {
            self.next_char();
            return self.err(format!(
                "bad number syntax: {:?}",
                &self.src[start..self.pos]
            ));
        }
        self.emit(Kind::Number, start);
        Ok(())
    }
}
