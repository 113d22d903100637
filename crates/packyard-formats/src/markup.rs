//! Escaping text for XML and HTML, where uploaded fields end up in index documents.

/// Escapes text for XML or HTML content and double-quoted attribute values; drops the
/// characters XML 1.0 cannot hold (control characters but tab and line ends, U+FFFE, U+FFFF).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup_and_drops_what_xml_cannot_hold() {
        assert_eq!(
            super::escape("a<b>&\"c\"\u{1}\td"),
            "a&lt;b&gt;&amp;&quot;c&quot;\td"
        );
    }
}
