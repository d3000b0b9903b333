//! Pipeline files in RON (Rusty Object Notation), for teams that generate pipelines from Rust
//! code: the same pipeline as the TOML file, converted into the same TOML document before
//! anything else reads it, so `--set`, validation and "did you mean" work unchanged; errors
//! are located back at the line and column of the `.ron` file.
//!
//! The mapping (TOML ⇄ RON):
//!
//! | TOML | RON |
//! |---|---|
//! | table, inline table (`[data]`, `{ int = [1, 9] }`) | struct `(key: value, ...)`, or a map `{"key": value}` for keys that are not identifiers |
//! | array of tables (`[[models]]`) | list of structs `[(kind: "..."), ...]` |
//! | array | list `[...]` (a tuple `(1, 2)` reads as a list too) |
//! | string, integer, float, boolean | the same (`"x"`, `3`, `0.5`, `true`; `inf`, `NaN`) |
//! | key left out | key left out, or `None`; `Some(x)` reads as `x` |
//!
//! Struct names (`Pipeline(name: ...)`) and `#![enable(...)]` attributes are accepted and
//! ignored, so `ron::ser::to_string_pretty` of serde structs shaped like the pipeline is a valid
//! pipeline. Comments are not carried over by a conversion.

use crate::locate::{Place, Walk, line_col, segments};
use std::ops::Range;
use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

/// A RON text that is not valid RON, or holds a value with no place in a pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct RonError {
    /// 1-based line and column in the RON text.
    pub at: (usize, usize),
    /// What is wrong and what was expected.
    pub message: String,
}

/// Whether `path` names a RON pipeline file (extension `.ron`, any case).
pub fn is_ron(path: &std::path::Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("ron"))
}

/// The TOML text of a RON pipeline.
pub fn to_toml(text: &str) -> Result<String, RonError> {
    // The `ron` crate is the judge of RON syntax: its message and position come first.
    if let Err(e) = ron::from_str::<ron::Value>(text) {
        return Err(RonError { at: (e.span.start.line, e.span.start.col), message: e.code.to_string() });
    }
    let root = Parser::new(text).document()?;
    Ok(document(text, &root)?.to_string())
}

/// The RON text of a TOML pipeline (comments are not carried over).
pub fn from_toml(text: &str) -> Result<String, String> {
    let doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| e.message().to_string())?;
    let mut out = String::new();
    write_table(&mut out, doc.as_table(), 0, true);
    out.push('\n');
    Ok(out)
}

/// Line and column of dotted key `path` (`models[1].params.n_trees`) in a RON text: the key
/// itself when it exists, else the deepest part of it that does.
pub fn locate(text: &str, path: &str) -> Option<(usize, usize)> {
    let root = Parser::new(text).document().ok()?;
    walk(&root, path).best.map(|s| line_col(text, s.start))
}

/// Line and column in a RON text of a [`Place`] found in its TOML rendering.
pub fn position_of(text: &str, place: &Place) -> Option<(usize, usize)> {
    let root = Parser::new(text).document().ok()?;
    walk(&root, &place.path).position(text, place)
}

/// A RON value and the bytes it was written at.
#[derive(Debug, Clone)]
struct Node {
    span: Range<usize>,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// A struct `(key: value)` or a map `{"key": value}`.
    Table(Vec<Entry>),
    /// A list `[a, b]` or a tuple `(a, b)`.
    List(Vec<Node>),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// `None`: as if the key were not written.
    Absent,
}

#[derive(Debug, Clone)]
struct Entry {
    key: String,
    key_span: Range<usize>,
    value: Node,
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Parser<'a> {
        Parser { text, pos: 0 }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.bytes().get(self.pos + ahead).copied()
    }

    fn err(&self, at: usize, message: impl Into<String>) -> RonError {
        RonError { at: line_col(self.text, at), message: message.into() }
    }

    /// Skip white space and comments (`// ...`, nested `/* ... */`).
    fn skip_ws(&mut self) -> Result<(), RonError> {
        loop {
            match (self.peek(), self.peek_at(1)) {
                (Some(c), _) if c.is_ascii_whitespace() => self.pos += 1,
                (Some(b'/'), Some(b'/')) => {
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.pos += 1;
                    }
                }
                (Some(b'/'), Some(b'*')) => {
                    let start = self.pos;
                    let mut depth = 0usize;
                    loop {
                        match (self.peek(), self.peek_at(1)) {
                            (Some(b'/'), Some(b'*')) => (depth, self.pos) = (depth + 1, self.pos + 2),
                            (Some(b'*'), Some(b'/')) => {
                                (depth, self.pos) = (depth - 1, self.pos + 2);
                                if depth == 0 {
                                    break;
                                }
                            }
                            (Some(_), _) => self.pos += 1,
                            (None, _) => return Err(self.err(start, "unterminated block comment")),
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn expect(&mut self, c: u8, what: &str) -> Result<(), RonError> {
        self.skip_ws()?;
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(self.pos, format!("expected {what}")))
        }
    }

    /// The whole text: optional `#![enable(...)]` attributes, then one value.
    fn document(&mut self) -> Result<Node, RonError> {
        loop {
            self.skip_ws()?;
            if self.text[self.pos..].starts_with("#![") {
                match self.text[self.pos..].find(']') {
                    Some(end) => self.pos += end + 1,
                    None => return Err(self.err(self.pos, "unterminated attribute")),
                }
            } else {
                break;
            }
        }
        let v = self.value()?;
        self.skip_ws()?;
        if self.pos < self.text.len() {
            return Err(self.err(self.pos, "unexpected text after the pipeline's closing bracket"));
        }
        Ok(v)
    }

    /// An identifier (`name`, or a raw one `r#name`), if one starts here.
    fn ident(&mut self) -> Option<(String, Range<usize>)> {
        let start = self.pos;
        let b = self.bytes();
        if b.get(start) == Some(&b'r')
            && b.get(start + 1) == Some(&b'#')
            && b.get(start + 2).is_some_and(|c| *c != b'"')
        {
            let mut end = start + 2;
            while b.get(end).is_some_and(|&c| is_ident_char(c) || matches!(c, b'.' | b'+' | b'-')) {
                end += 1;
            }
            if end == start + 2 {
                return None;
            }
            self.pos = end;
            return Some((self.text[start + 2..end].to_string(), start..end));
        }
        if !b.get(start).is_some_and(|&c| is_ident_start(c)) {
            return None;
        }
        let mut end = start + 1;
        while b.get(end).is_some_and(|&c| is_ident_char(c)) {
            end += 1;
        }
        self.pos = end;
        Some((self.text[start..end].to_string(), start..end))
    }

    fn value(&mut self) -> Result<Node, RonError> {
        self.skip_ws()?;
        let start = self.pos;
        let node = |kind: Kind, end: usize| Node { span: start..end, kind };
        match self.peek() {
            None => Err(self.err(start, "expected a value, found the end of the file")),
            Some(b'"') => {
                let s = self.string()?;
                Ok(node(Kind::Str(s), self.pos))
            }
            Some(b'r') if matches!(self.peek_at(1), Some(b'"' | b'#')) && self.raw_string_ahead() => {
                let s = self.raw_string()?;
                Ok(node(Kind::Str(s), self.pos))
            }
            Some(b'\'') => {
                let s = self.char_literal()?;
                Ok(node(Kind::Str(s), self.pos))
            }
            Some(b'[') => {
                self.pos += 1;
                let items = self.list_items(b']')?;
                Ok(node(Kind::List(items), self.pos))
            }
            Some(b'{') => {
                self.pos += 1;
                let entries = self.map_entries()?;
                Ok(node(Kind::Table(entries), self.pos))
            }
            Some(b'(') => {
                let kind = self.parens()?;
                Ok(node(kind, self.pos))
            }
            Some(c) if c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.') => {
                let kind = self.number()?;
                Ok(node(kind, self.pos))
            }
            Some(_) => {
                let Some((name, _)) = self.ident() else {
                    return Err(self.err(start, "expected a value (a string, number, boolean, list or struct)"));
                };
                let kind = match name.as_str() {
                    "true" => Kind::Bool(true),
                    "false" => Kind::Bool(false),
                    "None" => Kind::Absent,
                    "inf" | "inff32" | "inff64" => Kind::Float(f64::INFINITY),
                    "NaN" | "NaNf32" | "NaNf64" => Kind::Float(f64::NAN),
                    "Some" => {
                        self.expect(b'(', "`(` after `Some`")?;
                        let inner = self.value()?;
                        self.expect(b')', "`)` closing `Some(`")?;
                        return Ok(inner);
                    }
                    _ => {
                        self.skip_ws()?;
                        if self.peek() == Some(b'(') {
                            // A named struct or tuple: the name is not part of the pipeline.
                            self.parens()?
                        } else {
                            return Err(self.err(
                                start,
                                format!(
                                    "`{name}` is a bare identifier (an enum variant or unit struct): pipeline \
                                     values are strings, numbers, booleans, lists and structs; write \"{name}\""
                                ),
                            ));
                        }
                    }
                };
                Ok(node(kind, self.pos))
            }
        }
    }

    /// `(key: value, ...)` (a struct) or `(a, b)` (a tuple); `()` is an empty struct.
    fn parens(&mut self) -> Result<Kind, RonError> {
        self.pos += 1; // `(`
        self.skip_ws()?;
        let save = self.pos;
        let is_struct = match self.ident() {
            Some(_) => {
                self.skip_ws()?;
                self.peek() == Some(b':') && self.peek_at(1) != Some(b':')
            }
            None => self.peek() == Some(b')'),
        };
        self.pos = save;
        if !is_struct {
            return Ok(Kind::List(self.list_items(b')')?));
        }
        let mut entries: Vec<Entry> = Vec::new();
        loop {
            self.skip_ws()?;
            if self.peek() == Some(b')') {
                self.pos += 1;
                return Ok(Kind::Table(entries));
            }
            let at = self.pos;
            let Some((key, key_span)) = self.ident() else {
                return Err(self.err(at, "expected a field name (an identifier) or `)`"));
            };
            self.expect(b':', &format!("`:` after `{key}`"))?;
            let value = self.value()?;
            push_entry(self, &mut entries, Entry { key, key_span, value })?;
            self.separator(b')')?;
        }
    }

    /// `"key": value, ...}` after the `{`.
    fn map_entries(&mut self) -> Result<Vec<Entry>, RonError> {
        let mut entries = Vec::new();
        loop {
            self.skip_ws()?;
            if self.peek() == Some(b'}') {
                self.pos += 1;
                return Ok(entries);
            }
            let key_node = self.value()?;
            let Kind::Str(key) = key_node.kind else {
                return Err(self.err(key_node.span.start, "a map key must be a string, e.g. {\"name\": 1}"));
            };
            self.expect(b':', &format!("`:` after \"{key}\""))?;
            let value = self.value()?;
            push_entry(self, &mut entries, Entry { key, key_span: key_node.span, value })?;
            self.separator(b'}')?;
        }
    }

    /// Values separated by commas up to `close` (after the opening bracket).
    fn list_items(&mut self, close: u8) -> Result<Vec<Node>, RonError> {
        let mut items = Vec::new();
        loop {
            self.skip_ws()?;
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok(items);
            }
            items.push(self.value()?);
            self.separator(close)?;
        }
    }

    /// After an item: a comma, or the closing bracket (left for the caller).
    fn separator(&mut self, close: u8) -> Result<(), RonError> {
        self.skip_ws()?;
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(())
            }
            Some(c) if c == close => Ok(()),
            _ => Err(self.err(self.pos, format!("expected `,` or `{}`", close as char))),
        }
    }

    fn string(&mut self) -> Result<String, RonError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.pos..];
            let Some(c) = rest.chars().next() else { return Err(self.err(start, "unterminated string")) };
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => out.push(self.escape()?),
                c => out.push(c),
            }
        }
    }

    fn escape(&mut self) -> Result<char, RonError> {
        let at = self.pos - 1;
        let c = self.peek().ok_or_else(|| self.err(at, "unterminated escape"))?;
        self.pos += 1;
        Ok(match c {
            b'"' => '"',
            b'\'' => '\'',
            b'\\' => '\\',
            b'/' => '/',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'0' => '\0',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'x' => {
                let hex = self.text.get(self.pos..self.pos + 2).ok_or_else(|| self.err(at, "bad `\\x` escape"))?;
                self.pos += 2;
                u8::from_str_radix(hex, 16)
                    .ok()
                    .filter(u8::is_ascii)
                    .map(char::from)
                    .ok_or_else(|| self.err(at, format!("`\\x{hex}` is not an ASCII escape")))?
            }
            b'u' => {
                let braced = self.peek() == Some(b'{');
                let hex = if braced {
                    let end = self.text[self.pos..].find('}').ok_or_else(|| self.err(at, "bad `\\u{...}` escape"))?;
                    let hex = &self.text[self.pos + 1..self.pos + end];
                    self.pos += end + 1;
                    hex
                } else {
                    let hex = self.text.get(self.pos..self.pos + 4).ok_or_else(|| self.err(at, "bad `\\u` escape"))?;
                    self.pos += 4;
                    hex
                };
                u32::from_str_radix(hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| self.err(at, format!("`{hex}` is not a Unicode scalar value")))?
            }
            other => return Err(self.err(at, format!("unknown escape `\\{}`", other as char))),
        })
    }

    /// Whether a raw string (`r"..."`, `r#"..."#`) starts here, rather than a raw identifier.
    fn raw_string_ahead(&self) -> bool {
        let rest = &self.bytes()[self.pos + 1..];
        let hashes = rest.iter().take_while(|&&c| c == b'#').count();
        rest.get(hashes) == Some(&b'"')
    }

    fn raw_string(&mut self) -> Result<String, RonError> {
        let start = self.pos;
        self.pos += 1;
        let hashes = self.bytes()[self.pos..].iter().take_while(|&&c| c == b'#').count();
        self.pos += hashes + 1;
        let close = format!("\"{}", "#".repeat(hashes));
        let end = self.text[self.pos..].find(&close).ok_or_else(|| self.err(start, "unterminated raw string"))?;
        let s = self.text[self.pos..self.pos + end].to_string();
        self.pos += end + close.len();
        Ok(s)
    }

    fn char_literal(&mut self) -> Result<String, RonError> {
        let start = self.pos;
        self.pos += 1;
        let c = match self.text[self.pos..].chars().next() {
            Some('\\') => {
                self.pos += 1;
                self.escape()?
            }
            Some(c) => {
                self.pos += c.len_utf8();
                c
            }
            None => return Err(self.err(start, "unterminated character")),
        };
        if self.peek() != Some(b'\'') {
            return Err(self.err(start, "a character literal holds one character"));
        }
        self.pos += 1;
        Ok(c.to_string())
    }

    fn number(&mut self) -> Result<Kind, RonError> {
        let start = self.pos;
        let b = self.bytes();
        let mut end = start;
        if matches!(b.get(end), Some(b'-' | b'+')) {
            end += 1;
        }
        // `-inf`, `+inf`, `-NaN`.
        let rest = &self.text[end..];
        for (word, value) in [("inf", f64::INFINITY), ("NaN", f64::NAN)] {
            if rest.starts_with(word) && !rest.as_bytes().get(word.len()).is_some_and(|&c| is_ident_char(c)) {
                self.pos = end + word.len();
                let negative = b[start] == b'-';
                return Ok(Kind::Float(if negative { -value } else { value }));
            }
        }
        while b.get(end).is_some_and(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.'))
            || (matches!(b.get(end), Some(b'+' | b'-')) && matches!(b.get(end - 1), Some(b'e' | b'E')))
        {
            end += 1;
        }
        self.pos = end;
        let raw: String = self.text[start..end].chars().filter(|&c| c != '_').collect();
        let bad = || RonError { at: line_col(self.text, start), message: format!("`{raw}` is not a number") };
        let (sign, digits) = match raw.strip_prefix('-') {
            Some(d) => (-1i128, d),
            None => (1, raw.strip_prefix('+').unwrap_or(&raw)),
        };
        for (prefix, radix) in [("0x", 16), ("0b", 2), ("0o", 8)] {
            if let Some(d) = digits.strip_prefix(prefix) {
                let d = strip_int_suffix(d);
                let v = i128::from_str_radix(d, radix).map_err(|_| bad())? * sign;
                return i64::try_from(v).map(Kind::Int).map_err(|_| self.err(start, too_big(&raw)));
            }
        }
        let (body, float_suffix) = match digits.strip_suffix("f64").or_else(|| digits.strip_suffix("f32")) {
            Some(b) => (b, true),
            None => (strip_int_suffix(digits), false),
        };
        let text = if sign < 0 { format!("-{body}") } else { body.to_string() };
        if float_suffix || body.contains(['.', 'e', 'E']) {
            text.parse::<f64>().map(Kind::Float).map_err(|_| bad())
        } else {
            let v: i128 = text.parse().map_err(|_| bad())?;
            i64::try_from(v).map(Kind::Int).map_err(|_| self.err(start, too_big(&raw)))
        }
    }
}

fn too_big(raw: &str) -> String {
    format!("`{raw}` does not fit a 64-bit signed integer (the largest a pipeline holds)")
}

/// `12u8` → `12`: RON's integer type suffixes.
fn strip_int_suffix(d: &str) -> &str {
    for s in ["i128", "u128", "isize", "usize", "i64", "u64", "i32", "u32", "i16", "u16", "i8", "u8"] {
        if let Some(b) = d.strip_suffix(s) {
            return b;
        }
    }
    d
}

fn push_entry(p: &Parser<'_>, entries: &mut Vec<Entry>, e: Entry) -> Result<(), RonError> {
    if entries.iter().any(|x| x.key == e.key) {
        return Err(p.err(e.key_span.start, format!("duplicate key `{}`", e.key)));
    }
    entries.push(e);
    Ok(())
}

/// The TOML document of a parsed RON pipeline.
fn document(text: &str, root: &Node) -> Result<DocumentMut, RonError> {
    let err = |at: usize, m: String| RonError { at: line_col(text, at), message: m };
    let Kind::Table(entries) = &root.kind else {
        return Err(err(
            root.span.start,
            "a RON pipeline is one struct: `(pipeline: (...), data: (...), models: [...], ...)`".into(),
        ));
    };
    let mut doc = DocumentMut::new();
    for e in entries {
        let item = match &e.value.kind {
            Kind::Absent => continue,
            Kind::Table(inner) => Item::Table(section(text, inner)?),
            Kind::List(items) if !items.is_empty() && items.iter().all(|n| matches!(n.kind, Kind::Table(_))) => {
                let mut tables = ArrayOfTables::new();
                for n in items {
                    let Kind::Table(inner) = &n.kind else { unreachable!("checked above") };
                    let mut t = Table::new();
                    for (k, v) in inline_entries(text, inner)? {
                        t.insert(&k, Item::Value(v));
                    }
                    tables.push(t);
                }
                Item::ArrayOfTables(tables)
            }
            _ => Item::Value(value(text, &e.value)?),
        };
        doc.insert(&e.key, item);
    }
    Ok(doc)
}

/// A top-level section (`[data]`); its larger sub-tables become `[data.events]`-style tables.
fn section(text: &str, entries: &[Entry]) -> Result<Table, RonError> {
    let mut t = Table::new();
    for e in entries {
        match &e.value.kind {
            Kind::Absent => {}
            Kind::Table(inner) if inner.len() > 4 => {
                t.insert(&e.key, Item::Table(section(text, inner)?));
            }
            _ => {
                t.insert(&e.key, Item::Value(value(text, &e.value)?));
            }
        }
    }
    Ok(t)
}

fn inline_entries(text: &str, entries: &[Entry]) -> Result<Vec<(String, Value)>, RonError> {
    entries
        .iter()
        .filter(|e| !matches!(e.value.kind, Kind::Absent))
        .map(|e| Ok((e.key.clone(), value(text, &e.value)?)))
        .collect()
}

fn value(text: &str, n: &Node) -> Result<Value, RonError> {
    Ok(match &n.kind {
        Kind::Str(s) => Value::from(s.as_str()),
        Kind::Int(i) => Value::from(*i),
        Kind::Float(f) => Value::from(*f),
        Kind::Bool(b) => Value::from(*b),
        Kind::List(items) => {
            let mut a = Array::new();
            for item in items {
                a.push(value(text, item)?);
            }
            Value::Array(a)
        }
        Kind::Table(entries) => {
            let mut t = InlineTable::new();
            for (k, v) in inline_entries(text, entries)? {
                t.insert(&k, v);
            }
            Value::InlineTable(t)
        }
        Kind::Absent => {
            return Err(RonError {
                at: line_col(text, n.span.start),
                message: "`None` can only stand for a key left out, not inside a list".into(),
            });
        }
    })
}

/// Follow `path` down from `root` as far as it exists (as `locate::walk` does in TOML).
fn walk(root: &Node, path: &str) -> Walk {
    let segs = segments(path);
    let mut w = Walk::new(segs.len());
    let mut node = root;
    for seg in segs {
        match (seg, &node.kind) {
            (Ok(name), Kind::Table(entries)) => {
                let Some(e) = entries.iter().find(|e| e.key == name) else { break };
                w.best = Some(e.key_span.clone());
                (w.key, w.value) = (Some(e.key_span.clone()), Some(e.value.span.clone()));
                node = &e.value;
            }
            (Err(i), Kind::List(items)) => {
                let Some(item) = items.get(i) else { break };
                w.best = Some(item.span.clone());
                (w.key, w.value) = (None, Some(item.span.clone()));
                node = item;
            }
            _ => break,
        }
        w.matched += 1;
    }
    w
}

/// Whether `key` can be written as a RON struct field name.
fn is_ident(key: &str) -> bool {
    let b = key.as_bytes();
    !b.is_empty() && is_ident_start(b[0]) && b.iter().all(|&c| is_ident_char(c))
}

fn write_key(out: &mut String, key: &str, as_struct: bool) {
    if as_struct {
        out.push_str(key);
    } else {
        out.push_str(&format!("{key:?}"));
    }
}

const INDENT: &str = "    ";
const WIDTH: usize = 100;

/// A TOML table (standard or inline) as a RON struct, or a map when a key is no identifier.
fn write_table(out: &mut String, t: &dyn toml_edit::TableLike, depth: usize, top: bool) {
    let as_struct = t.iter().all(|(k, _)| is_ident(k));
    let (open, close) = if as_struct { ('(', ')') } else { ('{', '}') };
    let entries: Vec<(String, String)> = t
        .iter()
        .map(|(k, item)| {
            let mut key = String::new();
            write_key(&mut key, k, as_struct);
            let mut v = String::new();
            write_item(&mut v, item, depth + 1);
            (key, v)
        })
        .collect();
    let one_line =
        format!("{open}{}{close}", entries.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", "));
    if !top && !one_line.contains('\n') && one_line.len() + depth * INDENT.len() <= WIDTH {
        out.push_str(&one_line);
        return;
    }
    out.push(open);
    out.push('\n');
    for (k, v) in entries {
        out.push_str(&INDENT.repeat(depth + 1));
        out.push_str(&format!("{k}: {v},\n"));
    }
    out.push_str(&INDENT.repeat(depth));
    out.push(close);
}

fn write_item(out: &mut String, item: &Item, depth: usize) {
    match item {
        Item::Value(v) => write_value(out, v, depth),
        Item::Table(t) => write_table(out, t, depth, false),
        Item::ArrayOfTables(a) => {
            out.push_str("[\n");
            for t in a.iter() {
                out.push_str(&INDENT.repeat(depth + 1));
                write_table(out, t, depth + 1, false);
                out.push_str(",\n");
            }
            out.push_str(&INDENT.repeat(depth));
            out.push(']');
        }
        Item::None => out.push_str("None"),
    }
}

fn write_value(out: &mut String, v: &Value, depth: usize) {
    match v {
        Value::String(s) => out.push_str(&format!("{:?}", s.value())),
        Value::Integer(i) => out.push_str(&i.value().to_string()),
        Value::Float(f) => {
            let f = *f.value();
            out.push_str(&if f.is_nan() {
                "NaN".to_string()
            } else if f.is_infinite() {
                if f > 0.0 { "inf" } else { "-inf" }.to_string()
            } else {
                format!("{f:?}")
            });
        }
        Value::Boolean(b) => out.push_str(&b.value().to_string()),
        // A TOML date or time: a string in RON (pipelines read dates from strings).
        Value::Datetime(d) => out.push_str(&format!("{:?}", d.value().to_string())),
        Value::Array(a) => {
            let items: Vec<String> = a
                .iter()
                .map(|x| {
                    let mut s = String::new();
                    write_value(&mut s, x, depth + 1);
                    s
                })
                .collect();
            let one_line = format!("[{}]", items.join(", "));
            if !one_line.contains('\n') && one_line.len() + depth * INDENT.len() <= WIDTH {
                out.push_str(&one_line);
            } else {
                out.push_str("[\n");
                for s in items {
                    out.push_str(&format!("{}{s},\n", INDENT.repeat(depth + 1)));
                }
                out.push_str(&INDENT.repeat(depth));
                out.push(']');
            }
        }
        Value::InlineTable(t) => write_table(out, t, depth, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RON: &str = r#"// a comment
#![enable(implicit_some)]
Pipeline(
    pipeline: (name: "x", task: "binary", seed: 7, device: None),
    data: (source: "synthetic.promotion", rows: 1_000, target: "purchase", drop: ["a", "b"]),
    clean: [(kind: "impute", strategy: "median")],
    models: [
        (kind: "a"),
        (kind: "b", params: {"n_trees": 5}, search: (depth: (int: (3, 9), log: true))),
    ],
    /* block /* nested */ comment */
    search: (trials: 3, metric: Some("roc_auc"), threshold: 0.5, budget: -inf),
)
"#;

    #[test]
    fn converts_to_the_same_toml_document() {
        let toml_text = to_toml(RON).unwrap();
        let got: toml::Table = toml::from_str(&toml_text).unwrap();
        let want: toml::Table = toml::from_str(
            "[pipeline]\nname = \"x\"\ntask = \"binary\"\nseed = 7\n\
             [data]\nsource = \"synthetic.promotion\"\nrows = 1000\ntarget = \"purchase\"\ndrop = [\"a\", \"b\"]\n\
             [[clean]]\nkind = \"impute\"\nstrategy = \"median\"\n\
             [[models]]\nkind = \"a\"\n\
             [[models]]\nkind = \"b\"\nparams = { n_trees = 5 }\nsearch = { depth = { int = [3, 9], log = true } }\n\
             [search]\ntrials = 3\nmetric = \"roc_auc\"\nthreshold = 0.5\nbudget = -inf\n",
        )
        .unwrap();
        assert_eq!(got, want, "{toml_text}");
    }

    #[test]
    fn larger_nested_structs_become_sub_tables_and_read_back_alike() {
        let ron_text = r#"(
            pipeline: (name: "e", task: "binary"),
            data: (
                path: "log.txt",
                events: (entity: "id", time: "t", values: ["v"], cutoff: "1997-09-30", horizon_end: "1998-06-30"),
                target: "again",
                split: (kind: "modulo", modulo: 5, remainder: 4),
            ),
        )"#;
        let toml_text = to_toml(ron_text).unwrap();
        assert!(toml_text.contains("[data.events]"), "{toml_text}");
        let got: toml::Table = toml::from_str(&toml_text).unwrap();
        assert_eq!(got["data"]["target"].as_str(), Some("again"));
        assert_eq!(got["data"]["events"]["values"][0].as_str(), Some("v"));
        assert_eq!(got["data"]["split"]["modulo"].as_integer(), Some(5));
        let back: toml::Table = toml::from_str(&to_toml(&from_toml(&toml_text).unwrap()).unwrap()).unwrap();
        assert_eq!(back, got);
        assert_eq!(locate(ron_text, "data.events.cutoff"), Some((5, 66)));
    }

    #[test]
    fn keys_are_located_in_the_ron_text() {
        assert_eq!(locate(RON, "pipeline.seed"), Some((4, 43)));
        assert_eq!(locate(RON, "models[1].params.n_trees"), Some((9, 30)));
        assert_eq!(locate(RON, "models[1].search.depth"), Some((9, 54)));
        // A missing key falls back to the deepest part that exists.
        assert_eq!(locate(RON, "search.cv_folds"), Some((12, 5)));
        let place = Place { path: "search.trials".into(), part: crate::locate::Part::Value, offset: 0 };
        assert_eq!(position_of(RON, &place), Some((12, 22)));
    }

    #[test]
    fn toml_round_trips_through_ron() {
        let toml_text = "[pipeline]\nname = \"x\"\ntask = \"uplift\"\n\n[data]\nrows = 10\nsplit = { kind = \"random\", \
                         test_fraction = 0.25 }\n\n[[models]]\nkind = \"a\"\nparams = { c = 1.0 }\n\n[policy]\ncost = \
                         { \"Womens E-Mail\" = 0.05 }\n";
        let ron_text = from_toml(toml_text).unwrap();
        assert!(ron_text.contains("cost: {\"Womens E-Mail\": 0.05}"), "{ron_text}");
        assert!(ron_text.contains("params: (c: 1.0)"), "{ron_text}");
        let back: toml::Table = toml::from_str(&to_toml(&ron_text).unwrap()).unwrap();
        assert_eq!(back, toml::from_str::<toml::Table>(toml_text).unwrap());
    }

    #[test]
    fn bad_ron_is_located() {
        let e = to_toml("(\n  pipeline: (name: \"x\",\n  data: (),\n)").unwrap_err();
        assert_eq!(e.at.0, 4, "{e:?}");
        let e = to_toml("(\n  pipeline: (task: Binary),\n)").unwrap_err();
        assert_eq!(e.at, (2, 20), "{e:?}");
        assert!(e.message.contains("write \"Binary\""), "{e:?}");
        let e = to_toml("(\n  a: 1,\n  a: 2,\n)").unwrap_err();
        assert_eq!((e.at, e.message.as_str()), ((3, 3), "duplicate key `a`"));
    }
}
