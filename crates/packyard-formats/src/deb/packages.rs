//! One package's stanza in a `Packages` index:
//!
//! ```text
//! Package: hello
//! Architecture: amd64
//! Version: 2.10-3
//! Maintainer: Santiago Vila <sanvila@debian.org>
//! Installed-Size: 280
//! Depends: libc6 (>= 2.34)
//! Filename: pool/bookworm/main/h/hello/hello_2.10-3_amd64.deb
//! Size: 53128
//! MD5sum: ...
//! SHA1: ...
//! SHA256: ...
//! SHA512: ...
//! Homepage: https://www.gnu.org/software/hello/
//! Description: example package based on GNU hello
//!  The GNU hello program produces a familiar, friendly greeting.
//! ```
//!
//! Fields come in the order `apt-ftparchive` writes them, so a stanza compares field for field
//! with the reference tool's output; fields it does not know follow in control-file order.

use super::control::Control;
use crate::digest::FileDigests;

/// apt's canonical field order for binary package stanzas.
const FIELD_ORDER: &[&str] = &[
    "Package",
    "Package-Type",
    "Architecture",
    "Subarchitecture",
    "Version",
    "Kernel-Version",
    "Built-Using",
    "Static-Built-Using",
    "Built-For-Profiles",
    "Auto-Built-Package",
    "Multi-Arch",
    "Priority",
    "Build-Essential",
    "Protected",
    "Essential",
    "Installer-Menu-Item",
    "Section",
    "Source",
    "Origin",
    "Maintainer",
    "Original-Maintainer",
    "Bugs",
    "Installed-Size",
    "Provides",
    "Pre-Depends",
    "Depends",
    "Recommends",
    "Suggests",
    "Conflicts",
    "Breaks",
    "Replaces",
    "Enhances",
    "Filename",
    "Size",
    "MD5sum",
    "SHA1",
    "SHA256",
    "SHA512",
    "Homepage",
    "Description",
    "Tag",
    "Task",
];

/// Fields of a package's control file that never go into an index.
const DROPPED: &[&str] = &["Status", "Conffiles", "Config-Version"];

/// Renders the stanza for a package stored at `filename` (relative to the repository root),
/// ending in a newline and without the blank line that separates stanzas.
pub fn render_stanza(control: &Control, filename: &str, file: &FileDigests) -> String {
    let size = file.size.to_string();
    let generated: [(&str, &str); 6] = [
        ("Filename", filename),
        ("Size", &size),
        ("MD5sum", &file.md5),
        ("SHA1", &file.sha1),
        ("SHA256", &file.sha256),
        ("SHA512", &file.sha512),
    ];
    let lookup = |name: &str| {
        generated
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .or_else(|| control.get(name))
    };

    let mut out = String::with_capacity(1024);
    for name in FIELD_ORDER {
        if let Some(value) = lookup(name) {
            push_field(&mut out, name, value);
        }
    }
    for (name, value) in control.fields() {
        let known = FIELD_ORDER.iter().any(|f| f.eq_ignore_ascii_case(name));
        let dropped = DROPPED.iter().any(|f| f.eq_ignore_ascii_case(name));
        if !known && !dropped {
            push_field(&mut out, name, value);
        }
    }
    out
}

pub(crate) fn push_field(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push(':');
    if !value.starts_with('\n') {
        out.push(' ');
    }
    out.push_str(value);
    out.push('\n');
}
