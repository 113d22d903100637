//! Repodata XML, one package fragment at a time, plus the frame around the fragments and
//! `repomd.xml`. A fragment of `primary.xml` looks like:
//!
//! ```text
//! <package type="rpm">
//!   <name>hello</name>
//!   <arch>x86_64</arch>
//!   <version epoch="0" ver="1.0" rel="1.el9"/>
//!   <checksum type="sha256" pkgid="YES">…</checksum>
//!   …
//!   <location href="Packages/h/hello-1.0-1.el9.x86_64.rpm"/>
//!   <format>
//!     <rpm:license>MIT</rpm:license>
//!     …
//!     <rpm:header-range start="4504" end="9120"/>
//!     <rpm:provides><rpm:entry name="hello" flags="EQ" epoch="0" ver="1.0" rel="1.el9"/></rpm:provides>
//!     <rpm:requires><rpm:entry name="/bin/sh" pre="1"/></rpm:requires>
//!     <file>/usr/bin/hello</file>
//!   </format>
//! </package>
//! ```
//!
//! Fragments are rendered once, when a package is pushed, and concatenated by the indexer
//! between the head and tail that `xml_frame` gives.

use std::fmt::Write as _;

use super::header::{Dependency, FileKind, RpmFile, RpmPackage, is_primary_file};
use crate::markup::escape;

fn element(out: &mut String, indent: &str, name: &str, value: &str) {
    if value.is_empty() {
        let _ = writeln!(out, "{indent}<{name}/>");
    } else {
        let _ = writeln!(out, "{indent}<{name}>{}</{name}>", escape(value));
    }
}

fn version_element(out: &mut String, p: &RpmPackage) {
    let _ = writeln!(
        out,
        "  <version epoch=\"{}\" ver=\"{}\" rel=\"{}\"/>",
        p.epoch,
        escape(&p.version),
        escape(&p.release)
    );
}

fn file_element(out: &mut String, indent: &str, file: &RpmFile) {
    let kind = match file.kind {
        FileKind::File => "",
        FileKind::Dir => " type=\"dir\"",
        FileKind::Ghost => " type=\"ghost\"",
    };
    let _ = writeln!(out, "{indent}<file{kind}>{}</file>", escape(&file.path));
}

fn dependencies(out: &mut String, name: &str, deps: &[Dependency]) {
    if deps.is_empty() {
        return;
    }
    let _ = writeln!(out, "    <rpm:{name}>");
    for dep in deps {
        let _ = write!(out, "      <rpm:entry name=\"{}\"", escape(&dep.name));
        if let Some(flags) = dep.flags {
            let _ = write!(out, " flags=\"{flags}\"");
            let parts = [
                ("epoch", &dep.epoch),
                ("ver", &dep.version),
                ("rel", &dep.release),
            ];
            for (attr, value) in parts {
                if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                    let _ = write!(out, " {attr}=\"{}\"", escape(value));
                }
            }
        }
        if dep.pre {
            out.push_str(" pre=\"1\"");
        }
        out.push_str("/>\n");
    }
    let _ = writeln!(out, "    </rpm:{name}>");
}

/// The package's `primary.xml` fragment. `sha256` is the file's checksum (its pkgid), `href`
/// its location relative to the repository base, `size` its length, `time` the upload time.
pub fn primary_entry(p: &RpmPackage, sha256: &str, href: &str, size: u64, time: i64) -> String {
    let mut out = String::with_capacity(2048);
    out.push_str("<package type=\"rpm\">\n");
    element(&mut out, "  ", "name", &p.name);
    element(&mut out, "  ", "arch", &p.arch);
    version_element(&mut out, p);
    let _ = writeln!(
        out,
        "  <checksum type=\"sha256\" pkgid=\"YES\">{sha256}</checksum>"
    );
    element(&mut out, "  ", "summary", &p.summary);
    element(&mut out, "  ", "description", &p.description);
    element(&mut out, "  ", "packager", &p.packager);
    element(&mut out, "  ", "url", &p.url);
    let _ = writeln!(out, "  <time file=\"{time}\" build=\"{}\"/>", p.build_time);
    let _ = writeln!(
        out,
        "  <size package=\"{size}\" installed=\"{}\" archive=\"{}\"/>",
        p.installed_size, p.archive_size
    );
    let _ = writeln!(out, "  <location href=\"{}\"/>", escape(href));
    out.push_str("  <format>\n");
    element(&mut out, "    ", "rpm:license", &p.license);
    element(&mut out, "    ", "rpm:vendor", &p.vendor);
    element(&mut out, "    ", "rpm:group", &p.group);
    element(&mut out, "    ", "rpm:buildhost", &p.buildhost);
    element(&mut out, "    ", "rpm:sourcerpm", &p.source_rpm);
    let _ = writeln!(
        out,
        "    <rpm:header-range start=\"{}\" end=\"{}\"/>",
        p.header_start, p.header_end
    );
    dependencies(&mut out, "provides", &p.provides);
    dependencies(&mut out, "requires", &p.requires);
    dependencies(&mut out, "conflicts", &p.conflicts);
    dependencies(&mut out, "obsoletes", &p.obsoletes);
    dependencies(&mut out, "suggests", &p.suggests);
    dependencies(&mut out, "enhances", &p.enhances);
    dependencies(&mut out, "recommends", &p.recommends);
    dependencies(&mut out, "supplements", &p.supplements);
    for file in p.files.iter().filter(|f| is_primary_file(&f.path)) {
        file_element(&mut out, "    ", file);
    }
    out.push_str("  </format>\n</package>\n");
    out
}

fn package_open(out: &mut String, p: &RpmPackage, sha256: &str) {
    let _ = writeln!(
        out,
        "<package pkgid=\"{sha256}\" name=\"{}\" arch=\"{}\">",
        escape(&p.name),
        escape(&p.arch)
    );
    version_element(out, p);
}

/// The package's `filelists.xml` fragment: every file, with its type.
pub fn filelists_entry(p: &RpmPackage, sha256: &str) -> String {
    let mut out = String::with_capacity(256 + p.files.len() * 64);
    package_open(&mut out, p, sha256);
    for file in &p.files {
        file_element(&mut out, "  ", file);
    }
    out.push_str("</package>\n");
    out
}

/// The package's `other.xml` fragment: its changelog.
pub fn other_entry(p: &RpmPackage, sha256: &str) -> String {
    let mut out = String::with_capacity(512);
    package_open(&mut out, p, sha256);
    for entry in &p.changelog {
        let _ = writeln!(
            out,
            "  <changelog author=\"{}\" date=\"{}\">{}</changelog>",
            escape(&entry.author),
            entry.date,
            escape(&entry.text)
        );
    }
    out.push_str("</package>\n");
    out
}

/// The text before and after the package fragments of `part` (`primary`, `filelists` or
/// `other`).
///
/// The root element carries no `packages` count. No client requires one: libsolv (and so dnf,
/// dnf5 and zypper) and createrepo_c never read it, and EL7's yum-metadata-parser uses it only as
/// the total of a progress callback, which it skips without one. Without it the head is the same
/// in every publish, so the digests of the uncompressed files (`open-checksum`, which EL7's yum
/// verifies) resume from the hash state after the last unchanged chunk instead of starting over.
pub fn xml_frame(part: &str) -> (String, String) {
    let (root, namespaces) = match part {
        "primary" => (
            "metadata",
            "xmlns=\"http://linux.duke.edu/metadata/common\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\"",
        ),
        "filelists" => (
            "filelists",
            "xmlns=\"http://linux.duke.edu/metadata/filelists\"",
        ),
        _ => (
            "otherdata",
            "xmlns=\"http://linux.duke.edu/metadata/other\"",
        ),
    };
    (
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} {namespaces}>\n"),
        format!("</{root}>\n"),
    )
}

/// One `<data>` record of `repomd.xml`.
pub struct RepomdRecord<'a> {
    pub kind: &'a str,
    pub checksum: &'a str,
    pub open_checksum: &'a str,
    pub href: &'a str,
    pub timestamp: i64,
    pub size: u64,
    pub open_size: u64,
}

pub fn render_repomd(revision: i64, records: &[RepomdRecord<'_>]) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<repomd xmlns=\"http://linux.duke.edu/metadata/repo\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\">\n",
    );
    let _ = writeln!(out, "  <revision>{revision}</revision>");
    for r in records {
        let _ = write!(
            out,
            "  <data type=\"{}\">\n    <checksum type=\"sha256\">{}</checksum>\n    <open-checksum type=\"sha256\">{}</open-checksum>\n    <location href=\"{}\"/>\n    <timestamp>{}</timestamp>\n    <size>{}</size>\n    <open-size>{}</open-size>\n  </data>\n",
            r.kind,
            r.checksum,
            r.open_checksum,
            escape(r.href),
            r.timestamp,
            r.size,
            r.open_size
        );
    }
    out.push_str("</repomd>\n");
    out
}

/// The data files `repomd.xml` lists: SHA-256, size and location of each.
pub fn repomd_sha256(repomd: &str) -> Vec<(String, u64, String)> {
    fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
        let from = text.find(start)? + start.len();
        let to = text[from..].find(end)? + from;
        Some(&text[from..to])
    }
    repomd
        .split("<data ")
        .skip(1)
        .filter_map(|data| {
            let checksum = between(data, "<checksum type=\"sha256\">", "</checksum>")?;
            let href = between(data, "<location href=\"", "\"")?;
            let size = between(data, "<size>", "</size>")?.parse().ok()?;
            Some((checksum.to_owned(), size, href.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_drops_invalid_characters() {
        assert_eq!(escape("a<b>&\"c\"\u{1}"), "a&lt;b&gt;&amp;&quot;c&quot;");
    }

    #[test]
    fn reads_the_digests_repomd_lists() {
        let repomd = r#"<repomd><revision>1</revision><data type="primary"><checksum type="sha256">cc</checksum><open-checksum type="sha256">dd</open-checksum><location href="repodata/cc-primary.xml.gz"/><timestamp>1</timestamp><size>42</size><open-size>99</open-size></data></repomd>"#;
        assert_eq!(
            repomd_sha256(repomd),
            [("cc".to_owned(), 42, "repodata/cc-primary.xml.gz".to_owned())]
        );
    }
}
