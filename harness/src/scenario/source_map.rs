//! Where in the YAML file each item of a landscape stands.
//!
//! serde gives locations only for syntax and type errors. Validation errors ("subnet prefix
//! outside its vNet") are found later, on the typed model, so a second pass over the YAML event
//! stream records the line and column of every node by its path (`vnets[0].subnets[1].prefix`).
//! Validation names the path of the offending item and this map turns it into `file:line:col`.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser};

/// A position in the landscape file (1-based line and column).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    pub line: usize,
    pub col: usize,
}

/// Node locations by path.
#[derive(Debug, Default)]
pub struct SourceMap {
    nodes: HashMap<String, Location>,
}

enum Frame {
    Sequence { path: String, next: usize },
    Mapping { path: String, key: Option<String> },
}

impl SourceMap {
    /// Builds the map. A file that does not parse yields an empty map: serde reports the
    /// syntax error itself, with its own location.
    pub fn build(text: &str) -> Self {
        let mut nodes = HashMap::new();
        let mut stack: Vec<Frame> = Vec::new();
        for item in Parser::new_from_str(text) {
            let Ok((event, span)) = item else {
                return Self::default();
            };
            let here = Location {
                line: span.start.line(),
                col: span.start.col() + 1,
            };
            match event {
                Event::Scalar(value, ..) => {
                    if let Some(Frame::Mapping { key, .. }) = stack.last_mut()
                        && key.is_none()
                    {
                        // A mapping key: the entry's location is the key's.
                        *key = Some(value.into_owned());
                        let path = Self::child_path(&stack);
                        nodes.entry(path).or_insert(here);
                        continue;
                    }
                    let path = Self::child_path(&stack);
                    nodes.entry(path).or_insert(here);
                    Self::advance(&mut stack);
                }
                Event::Alias(_) => {
                    let path = Self::child_path(&stack);
                    nodes.entry(path).or_insert(here);
                    Self::advance(&mut stack);
                }
                Event::SequenceStart(..) => {
                    let path = Self::child_path(&stack);
                    nodes.entry(path.clone()).or_insert(here);
                    stack.push(Frame::Sequence { path, next: 0 });
                }
                Event::MappingStart(..) => {
                    let path = Self::child_path(&stack);
                    nodes.entry(path.clone()).or_insert(here);
                    stack.push(Frame::Mapping { path, key: None });
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    stack.pop();
                    Self::advance(&mut stack);
                }
                _ => {}
            }
        }
        Self { nodes }
    }

    /// The path a new node at the top of `stack` gets.
    fn child_path(stack: &[Frame]) -> String {
        match stack.last() {
            None => String::new(),
            Some(Frame::Sequence { path, next }) => format!("{path}[{next}]"),
            Some(Frame::Mapping { path, key }) => {
                let key = key.as_deref().unwrap_or("");
                if path.is_empty() {
                    key.to_string()
                } else {
                    format!("{path}.{key}")
                }
            }
        }
    }

    /// After a complete value: move to the next sequence index or expect the next mapping key.
    fn advance(stack: &mut [Frame]) {
        match stack.last_mut() {
            Some(Frame::Sequence { next, .. }) => *next += 1,
            Some(Frame::Mapping { key, .. }) => *key = None,
            None => {}
        }
    }

    /// The location of `path`, or of its nearest ancestor that has one (a defaulted field has
    /// no node of its own; its parent item is the best place to point at).
    pub fn locate(&self, path: &str) -> Option<Location> {
        let mut p = path;
        loop {
            if let Some(loc) = self.nodes.get(p) {
                return Some(*loc);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
name: demo
vnets:
  - name: a
    subnets:
      - name: s1
        prefix: 10.0.1.0/24
      - name: s2
        prefix: 10.0.2.0/24
  - name: b
    addressSpace: [10.1.0.0/16, 10.2.0.0/16]
";

    #[test]
    fn nested_items_have_their_own_lines() {
        let map = SourceMap::build(DOC);
        assert_eq!(map.locate("name"), Some(Location { line: 1, col: 1 }));
        assert_eq!(
            map.locate("vnets[0].subnets[1].prefix").map(|l| l.line),
            Some(8)
        );
        assert_eq!(map.locate("vnets[0].subnets[1]").map(|l| l.line), Some(7));
        assert_eq!(
            map.locate("vnets[1].addressSpace[1]").map(|l| l.line),
            Some(10)
        );
        assert_eq!(map.locate("vnets[1].name").map(|l| l.line), Some(9));
    }

    #[test]
    fn a_missing_field_points_at_its_item() {
        let map = SourceMap::build(DOC);
        assert_eq!(map.locate("vnets[1].region").map(|l| l.line), Some(9));
    }

    #[test]
    fn broken_yaml_gives_an_empty_map() {
        let map = SourceMap::build("a: [1, 2\nb: }");
        assert_eq!(map.locate("a"), None);
    }
}
