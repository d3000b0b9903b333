//! Find where a dotted key (`models[1].params.n_trees`) sits in the TOML text, so every
//! configuration error can name its line and column.

use std::ops::Range;
use toml_edit::{Document, Item, Table, TableLike, Value};

/// 1-based (line, column) of byte offset `pos` in `text`.
pub fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(text.len());
    let before = &text[..pos];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(pos, |p| pos - p - 1) + 1;
    (line, col)
}

/// Split `a.b[2].c` into segments: names and indices.
pub(crate) fn segments(path: &str) -> Vec<Result<&str, usize>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(p) = rest.find('[') {
            out.push(Ok(&rest[..p]));
            rest = &rest[p..];
            while let Some(end) = rest.find(']') {
                if let Ok(i) = rest[1..end].parse() {
                    out.push(Err(i));
                }
                rest = &rest[end + 1..];
            }
        } else {
            out.push(Ok(rest));
        }
    }
    out.retain(|s| !matches!(s, Ok("")));
    out
}

/// What a walk down a document (TOML here, RON in `ron_file`) found of a dotted key.
pub(crate) struct Walk {
    /// Leading segments that exist.
    pub(crate) matched: usize,
    /// Segments of the key.
    pub(crate) total: usize,
    /// Span of the deepest existing key (or array element).
    pub(crate) best: Option<Range<usize>>,
    /// Key span of the last segment reached.
    pub(crate) key: Option<Range<usize>>,
    /// Value span (a table's header) of the last segment reached.
    pub(crate) value: Option<Range<usize>>,
}

impl Walk {
    /// Nothing found yet of a key of `total` segments.
    pub(crate) fn new(total: usize) -> Walk {
        Walk { matched: 0, total, best: None, key: None, value: None }
    }

    /// 1-based line and column in `text` (the walked document) of `place`, when the whole key
    /// was found.
    pub(crate) fn position(self, text: &str, place: &Place) -> Option<(usize, usize)> {
        if self.matched != self.total || self.total == 0 {
            return None;
        }
        let span = match place.part {
            Part::Key => self.key,
            Part::Value => self.value,
        }?;
        Some(line_col(text, span.start + place.offset.min(span.len().saturating_sub(1))))
    }
}

/// Follow `path` down from `root` as far as it exists.
fn walk(root: &Table, path: &str) -> Walk {
    let segs = segments(path);
    let mut w = Walk::new(segs.len());
    let mut table: Option<&dyn TableLike> = Some(root);
    let mut item: Option<&Item> = None;
    for seg in segs {
        match seg {
            Ok(name) => {
                let Some((k, v)) = table.and_then(|t| t.get_key_value(name)) else { break };
                w.best = k.span().or(w.best);
                (w.key, w.value) = (k.span(), v.span());
                table = v.as_table_like();
                item = Some(v);
            }
            Err(i) => match item {
                Some(Item::ArrayOfTables(a)) => {
                    let Some(t) = a.get(i) else { break };
                    w.best = t.span().or(w.best);
                    (w.key, w.value) = (None, t.span());
                    table = Some(t);
                    item = None;
                }
                Some(Item::Value(Value::Array(a))) => {
                    let Some(v) = a.get(i) else { break };
                    w.best = v.span().or(w.best);
                    (w.key, w.value) = (None, v.span());
                    table = v.as_inline_table().map(|t| t as &dyn TableLike);
                    item = None;
                }
                _ => break,
            },
        }
        w.matched += 1;
    }
    w
}

/// Byte span of the deepest existing prefix of `path` in `text` (the key itself when it
/// exists, its table otherwise).
pub fn find_span(text: &str, path: &str) -> Option<Range<usize>> {
    let doc = Document::parse(text.to_string()).ok()?;
    walk(doc.as_table(), path).best
}

/// Line and column of `path` in `text`, when it can be found.
pub fn locate(text: &str, path: &str) -> Option<(usize, usize)> {
    find_span(text, path).map(|s| line_col(text, s.start))
}

/// How many leading segments of `path` exist under `root`.
pub(crate) fn existing_segments(root: &Table, path: &str) -> usize {
    walk(root, path).matched
}

/// Whether dotted key `key` lies at or below the first `n` segments of dotted key `prefix`.
pub(crate) fn is_within(key: &str, prefix: &str, n: usize) -> bool {
    let (key, prefix) = (segments(key), segments(prefix));
    n <= prefix.len() && key.len() >= n && key[..n] == prefix[..n]
}

/// The part of an entry that a position falls on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The key (`trials` of `trials = 3`).
    Key,
    /// The value, or a table's `[header]`.
    Value,
}

/// A position in a TOML text named by the entry that holds it, so that it can be found again in
/// another rendering of the same document (see [`position_of`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// Dotted key of the deepest entry holding the position, e.g. `models[1].params.n_trees`.
    pub path: String,
    /// Key or value of that entry.
    pub part: Part,
    /// Bytes from the start of that part.
    pub offset: usize,
}

/// The entry of `text` that byte `pos` falls on, if any (not in a comment or blank space).
pub fn place_at(text: &str, pos: usize) -> Option<Place> {
    let doc = Document::parse(text.to_string()).ok()?;
    let mut best = None;
    visit_table(doc.as_table(), "", pos, &mut best);
    best
}

/// 1-based line and column in `text` of a [`Place`] found in another rendering of it, when the
/// entry exists in `text`.
pub fn position_of(text: &str, place: &Place) -> Option<(usize, usize)> {
    let doc = Document::parse(text.to_string()).ok()?;
    walk(doc.as_table(), &place.path).position(text, place)
}

fn offset_in(span: Option<Range<usize>>, pos: usize) -> Option<usize> {
    span.filter(|s| s.start <= pos && pos < s.end.max(s.start + 1)).map(|s| pos - s.start)
}

fn visit_table(table: &dyn TableLike, prefix: &str, pos: usize, best: &mut Option<Place>) {
    for (name, _) in table.iter() {
        let Some((key, item)) = table.get_key_value(name) else { continue };
        let path = if prefix.is_empty() { name.to_string() } else { format!("{prefix}.{name}") };
        if let Some(offset) = offset_in(key.span(), pos) {
            *best = Some(Place { path: path.clone(), part: Part::Key, offset });
        }
        match item {
            Item::Value(v) => visit_value(v, &path, pos, best),
            Item::Table(t) => {
                if let Some(offset) = offset_in(t.span(), pos) {
                    *best = Some(Place { path: path.clone(), part: Part::Value, offset });
                }
                visit_table(t, &path, pos, best);
            }
            Item::ArrayOfTables(a) => {
                for (i, t) in a.iter().enumerate() {
                    let path = format!("{path}[{i}]");
                    if let Some(offset) = offset_in(t.span(), pos) {
                        *best = Some(Place { path: path.clone(), part: Part::Value, offset });
                    }
                    visit_table(t, &path, pos, best);
                }
            }
            Item::None => {}
        }
    }
}

fn visit_value(v: &Value, path: &str, pos: usize, best: &mut Option<Place>) {
    if let Some(offset) = offset_in(v.span(), pos) {
        *best = Some(Place { path: path.to_string(), part: Part::Value, offset });
    }
    match v {
        Value::Array(a) => {
            for (i, e) in a.iter().enumerate() {
                visit_value(e, &format!("{path}[{i}]"), pos, best);
            }
        }
        Value::InlineTable(t) => visit_table(t, path, pos, best),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str =
        "[pipeline]\nname = \"x\"\n\n[[models]]\nkind = \"a\"\n\n[[models]]\nkind = \"b\"\nparams = { n_trees = 5 }\n";

    #[test]
    fn finds_nested_keys() {
        assert_eq!(locate(TOML, "pipeline.name"), Some((2, 1)));
        assert_eq!(locate(TOML, "models[1].kind"), Some((8, 1)));
        assert_eq!(locate(TOML, "models[1].params.n_trees"), Some((9, 12)));
        // a missing key falls back to the deepest prefix that exists
        assert_eq!(locate(TOML, "models[1].params.missing"), Some((9, 1)));
    }

    #[test]
    fn places_survive_another_rendering() {
        // The same document with a line added above: a place found in one text is found at
        // its own line and column in the other.
        let other = format!("# added\n{TOML}");
        let pos = TOML.find("5 }").unwrap();
        let place = place_at(TOML, pos).unwrap();
        assert_eq!(place, Place { path: "models[1].params.n_trees".into(), part: Part::Value, offset: 0 });
        assert_eq!(position_of(TOML, &place), Some((9, 22)));
        assert_eq!(position_of(&other, &place), Some((10, 22)));
        let key = place_at(TOML, TOML.find("kind = \"b\"").unwrap() + 1).unwrap();
        assert_eq!((key.path.as_str(), key.part, key.offset), ("models[1].kind", Part::Key, 1));
        assert_eq!(place_at(TOML, TOML.find("\n\n").unwrap() + 1), None, "a blank line holds no entry");
    }

    #[test]
    fn prefixes_and_existing_segments() {
        let doc = Document::parse(TOML.to_string()).unwrap();
        assert_eq!(existing_segments(doc.as_table(), "models[1].params.n_trees"), 4);
        assert_eq!(existing_segments(doc.as_table(), "models[1].search.n_trees"), 2);
        assert_eq!(existing_segments(doc.as_table(), "a.b.c"), 0);
        assert!(is_within("models[1].params.n_trees", "models[1].params.n_trees", 4));
        assert!(is_within("models[1].params", "models[1].params.n_trees", 3));
        assert!(!is_within("models[1]", "models[1].params.n_trees", 3));
        assert!(!is_within("models[0].params", "models[1].params.n_trees", 3));
    }
}
