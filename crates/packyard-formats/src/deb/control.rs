//! deb822 control paragraphs, as in a package's `control` file:
//!
//! ```text
//! Package: hello
//! Version: 2.10-3
//! Architecture: amd64
//! Depends: libc6 (>= 2.34)
//! Description: example package based on GNU hello
//!  The GNU hello program produces a familiar, friendly greeting.
//!  .
//!  A second paragraph.
//! ```
//!
//! Field names are case-insensitive; values keep their continuation lines exactly.

use thiserror::Error;

/// One control paragraph with its fields in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    fields: Vec<(String, String)>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ControlError {
    #[error("control file is not valid UTF-8")]
    NotUtf8,
    #[error("control file line {0} is neither a `Field: value` line nor a continuation line")]
    BadLine(usize),
    #[error("control file has the field {0} twice")]
    DuplicateField(String),
    #[error("control file holds more than one paragraph")]
    SeveralParagraphs,
    #[error("control file is empty")]
    Empty,
    #[error("control field name {0:?} has characters that field names cannot have")]
    BadFieldName(String),
}

impl Control {
    pub fn parse(bytes: &[u8]) -> Result<Control, ControlError> {
        let text = std::str::from_utf8(bytes).map_err(|_| ControlError::NotUtf8)?;
        let mut fields: Vec<(String, String)> = Vec::new();
        let mut ended = false;
        for (index, line) in text.lines().enumerate() {
            let line_no = index + 1;
            if line.trim().is_empty() {
                ended = !fields.is_empty();
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            if ended {
                return Err(ControlError::SeveralParagraphs);
            }
            if line.starts_with(' ') || line.starts_with('\t') {
                let Some((_, value)) = fields.last_mut() else {
                    return Err(ControlError::BadLine(line_no));
                };
                value.push('\n');
                value.push_str(line.trim_end());
                continue;
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(ControlError::BadLine(line_no));
            };
            if name.is_empty()
                || name.starts_with('-')
                || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
            {
                return Err(ControlError::BadFieldName(name.to_owned()));
            }
            if fields.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                return Err(ControlError::DuplicateField(name.to_owned()));
            }
            fields.push((name.to_owned(), value.trim().to_owned()));
        }
        if fields.is_empty() {
            return Err(ControlError::Empty);
        }
        Ok(Control { fields })
    }

    /// The value of a field, looked up case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_and_continuations() {
        let c = Control::parse(
            b"Package: hello\nversion: 1.0\nDescription: short\n more\n .\n end\n\n",
        )
        .unwrap();
        assert_eq!(c.get("Package"), Some("hello"));
        assert_eq!(c.get("Version"), Some("1.0"));
        assert_eq!(c.get("description"), Some("short\n more\n .\n end"));
    }

    #[test]
    fn rejects_malformed_paragraphs() {
        assert_eq!(Control::parse(b""), Err(ControlError::Empty));
        assert_eq!(Control::parse(b" leading\n"), Err(ControlError::BadLine(1)));
        assert_eq!(
            Control::parse(b"Package: a\nPackage: b\n"),
            Err(ControlError::DuplicateField("Package".into()))
        );
        assert_eq!(
            Control::parse(b"Package: a\n\nPackage: b\n"),
            Err(ControlError::SeveralParagraphs)
        );
        assert_eq!(
            Control::parse(b"no colon here\n"),
            Err(ControlError::BadLine(1))
        );
        assert_eq!(Control::parse(&[0xff, b':']), Err(ControlError::NotUtf8));
    }
}
