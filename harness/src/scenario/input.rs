//! What a landscape file may be before it is parsed: a regular file (not a FIFO, a device or
//! `/dev/zero`) of at most [`MAX_LANDSCAPE_BYTES`], in UTF-8, with no YAML tags beyond the core
//! schema's (`!Foo` would pick an enum variant behind the validator's back); and how messages
//! quote what a file says: control characters escaped, so a name cannot rewrite the terminal.

use std::io::Read;
use std::path::Path;

use saphyr_parser::{Event, Parser};

use super::source_map::Location;

/// The largest landscape file read (the seed landscape is about 15 KB).
pub const MAX_LANDSCAPE_BYTES: u64 = 4 << 20;

/// Why a landscape file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("it is not a regular file")]
    NotAFile,
    #[error("it is larger than {0} bytes")]
    TooLarge(u64),
    #[error("it is not UTF-8 text")]
    NotUtf8,
}

/// Reads a landscape file within the limits above.
pub fn read(path: &Path) -> Result<String, InputError> {
    let bytes = read_capped(path, MAX_LANDSCAPE_BYTES)?;
    String::from_utf8(bytes).map_err(|_| InputError::NotUtf8)
}

/// Reads a regular file of at most `cap` bytes (the one reader of every file a landscape names:
/// the landscape itself, connector definitions). Never reads more than `cap + 1` bytes, so a
/// FIFO or a huge file cannot exhaust memory.
pub fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, InputError> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(InputError::NotAFile);
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(cap + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(InputError::TooLarge(cap));
    }
    Ok(bytes)
}

/// The first tag outside the YAML core schema, with where the tagged node starts (for a block
/// mapping, its first key). A file that does not parse
/// has none here: serde reports its syntax error.
pub fn unknown_tag(text: &str) -> Option<(Location, String)> {
    for item in Parser::new_from_str(text) {
        let (event, span) = item.ok()?;
        let tag = match event {
            Event::Scalar(_, _, _, tag)
            | Event::SequenceStart(_, tag)
            | Event::MappingStart(_, tag) => tag,
            _ => None,
        };
        if let Some(tag) = tag.filter(|t| !t.is_yaml_core_schema()) {
            let here = Location {
                line: span.start.line(),
                col: span.start.col() + 1,
            };
            return Some((here, format!("{}{}", tag.handle, tag.suffix)));
        }
    }
    None
}

/// `text` with every control character but the newline written as `\u{…}`.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_cap_are_read() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        assert!(matches!(read(dir.path()), Err(InputError::NotAFile)));
        assert!(matches!(
            read(Path::new("/dev/zero")),
            Err(InputError::NotAFile)
        ));
        let big = dir.path().join("big.yaml");
        std::fs::write(&big, vec![b'#'; MAX_LANDSCAPE_BYTES as usize + 1]).expect("written");
        assert!(matches!(
            read(&big),
            Err(InputError::TooLarge(MAX_LANDSCAPE_BYTES))
        ));
        let bin = dir.path().join("bin.yaml");
        std::fs::write(&bin, [0xff, 0xfe]).expect("written");
        assert!(matches!(read(&bin), Err(InputError::NotUtf8)));
    }

    #[test]
    fn tags_outside_the_core_schema_are_found_where_they_stand() {
        assert_eq!(unknown_tag("a: !!str 1\nb: [1, !!int 2]\n"), None);
        let (at, tag) = unknown_tag("a: 1\nkind: !Command {argv: [x]}\n").expect("a tag");
        assert_eq!((at.line, tag.as_str()), (2, "!Command"));
    }

    /// `ppvnet validate` on a FIFO returns at once instead of waiting for a writer; a tag is
    /// refused where it stands; a name with an escape sequence is quoted harmlessly.
    #[test]
    fn hostile_landscape_files_are_refused_clearly() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let fifo = dir.path().join("fifo.yaml");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("a FIFO");
        let err = super::super::load(&fifo).expect_err("a FIFO is refused");
        assert!(
            err.to_string()
                .ends_with("cannot read the landscape file: it is not a regular file"),
            "{err}"
        );
        let tagged = dir.path().join("tagged.yaml");
        std::fs::write(&tagged, "name: x\nsubscription: !Evil y\n").expect("written");
        let err = super::super::load(&tagged).expect_err("a tag is refused");
        assert!(
            err.to_string()
                .contains(":2:21: the YAML tag !Evil is not part of the landscape format"),
            "{err}"
        );
        let escaped = dir.path().join("escape.yaml");
        std::fs::write(&escaped, "name: \"x\\e[2J\"\n").expect("written");
        let err = super::super::load(&escaped).expect_err("an incomplete landscape");
        assert!(!err.to_string().contains('\x1b'), "{err}");
    }

    #[test]
    fn control_characters_are_escaped_but_lines_kept() {
        assert_eq!(escape_controls("a\x1b[2Jb\nc\t"), "a\\u{1b}[2Jb\nc\\u{9}");
    }
}
