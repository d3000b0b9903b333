//! Find where a dotted key (`models[1].params.n_trees`) sits in the TOML text, so every
//! configuration error can name its line and column.

use toml_edit::{Document, Item, TableLike, Value};

/// 1-based (line, column) of byte offset `pos` in `text`.
pub fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(text.len());
    let before = &text[..pos];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(pos, |p| pos - p - 1) + 1;
    (line, col)
}

/// Split `a.b[2].c` into segments: names and indices.
fn segments(path: &str) -> Vec<Result<&str, usize>> {
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

/// Byte span of the deepest existing prefix of `path` in `text` (the key itself when it
/// exists, its table otherwise).
pub fn find_span(text: &str, path: &str) -> Option<std::ops::Range<usize>> {
    let doc = Document::parse(text.to_string()).ok()?;
    let mut table: Option<&dyn TableLike> = Some(doc.as_table());
    let mut item: Option<&Item> = None;
    let mut best = None;
    for seg in segments(path) {
        match seg {
            Ok(name) => {
                let Some((k, v)) = table.and_then(|t| t.get_key_value(name)) else { break };
                best = k.span().or(best);
                table = v.as_table_like();
                item = Some(v);
            }
            Err(i) => match item {
                Some(Item::ArrayOfTables(a)) => {
                    let Some(t) = a.get(i) else { break };
                    best = t.span().or(best);
                    table = Some(t);
                    item = None;
                }
                Some(Item::Value(Value::Array(a))) => {
                    let Some(v) = a.get(i) else { break };
                    best = v.span().or(best);
                    table = v.as_inline_table().map(|t| t as &dyn TableLike);
                    item = None;
                }
                _ => break,
            },
        }
    }
    best
}

/// Line and column of `path` in `text`, when it can be found.
pub fn locate(text: &str, path: &str) -> Option<(usize, usize)> {
    find_span(text, path).map(|s| line_col(text, s.start))
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
}
