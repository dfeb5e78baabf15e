//! Finding the line and column of a key path such as `routes[0].upstream` in the TOML text.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Answers "where in the file is this key?" for error messages.
#[derive(Debug)]
pub struct Locator<'a> {
    text: &'a str,
    root: Option<Spanned<DeTable<'a>>>,
}

enum Segment<'p> {
    Key(&'p str),
    Index(usize),
}

impl<'a> Locator<'a> {
    /// Parses `text` once; a text that does not parse locates nothing.
    pub fn new(text: &'a str) -> Self {
        Self {
            text,
            root: DeTable::parse(text).ok(),
        }
    }

    /// The 1-based line and column of the deepest key of `path` that exists in the file.
    pub fn position_of(&self, path: &str) -> Option<(usize, usize)> {
        let root = self.root.as_ref()?;
        let mut offset = None;
        let mut table: Option<&DeTable<'_>> = Some(root.get_ref());
        let mut value: Option<&DeValue<'_>> = None;
        for segment in segments(path) {
            let next = match (segment, table, value) {
                (Segment::Key(key), Some(table), _) => match table.get_key_value(key) {
                    Some((name, item)) => {
                        offset = Some(name.span().start);
                        item
                    }
                    None => break,
                },
                (Segment::Index(index), _, Some(DeValue::Array(array))) => match array.get(index) {
                    Some(item) => {
                        offset = Some(item.span().start);
                        item
                    }
                    None => break,
                },
                _ => break,
            };
            value = Some(next.get_ref());
            table = next.get_ref().as_table();
        }
        offset.map(|offset| line_col(self.text, offset))
    }
}

fn segments(path: &str) -> impl Iterator<Item = Segment<'_>> {
    path.split('.')
        .filter(|part| !part.is_empty())
        .flat_map(|part| {
            let (key, indices) = part.split_once('[').unwrap_or((part, ""));
            let key = (!key.is_empty()).then_some(Segment::Key(key));
            let indices = indices
                .split('[')
                .filter_map(|index| index.trim_end_matches(']').parse().ok())
                .map(Segment::Index);
            key.into_iter().chain(indices)
        })
}

/// The 1-based line and column of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str =
        "[server]\nlisten = '1'\n\n[[routes]]\napi = 'x'\n\n[[routes]]\n  upstream = 2\n";

    #[test]
    fn finds_keys_tables_and_array_items() {
        let locator = Locator::new(TEXT);
        assert_eq!(locator.position_of("server.listen"), Some((2, 1)));
        assert_eq!(locator.position_of("routes[1].upstream"), Some((8, 3)));
        let item = locator.position_of("routes[0]");
        assert!(item.is_some());
        assert_eq!(locator.position_of("routes[0].missing"), item);
        assert_eq!(locator.position_of("nothing.here"), None);
    }
}
