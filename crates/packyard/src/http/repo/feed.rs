//! `/OWNER/REPO/feed.atom`: a repository's newest packages as an Atom feed (RFC 4287), read
//! with the same credentials as its files. Every field of a package is escaped: they are the
//! uploader's.

use anyhow::Result;
use packyard_formats::markup::escape;

use crate::app::App;
use crate::db::{self, packages::Filter, repos::Repo};
use crate::distros;

/// Entries in the feed.
const ENTRIES: i64 = 50;

pub async fn atom(app: &App, repo: &Repo, base: &str) -> Result<String> {
    let (packages, _) =
        db::packages::list(&app.db, repo.id, &Filter::default(), 0, ENTRIES).await?;
    let home = format!("{base}/{}/{}", repo.owner, repo.name);
    let updated = packages.first().map_or(repo.created_at, |p| p.created_at);
    let mut xml = String::with_capacity(1024 + packages.len() * 800);
    xml.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    xml.push_str(&format!(
        "  <id>{}/feed.atom</id>\n  <title>{}/{} packages</title>\n  <updated>{}</updated>\n  \
         <link rel=\"self\" href=\"{}/feed.atom\"/>\n  <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n  \
         <author><name>{}</name></author>\n  <generator>Packyard</generator>\n",
        escape(&home),
        escape(&repo.owner),
        escape(&repo.name),
        rfc3339(updated),
        escape(&home),
        escape(&home),
        escape(&repo.owner),
    ));
    for p in &packages {
        let Some(distro) = distros::by_id(p.distro_version_id) else {
            continue;
        };
        let page = format!(
            "{home}/packages/{}/{}/{}",
            distro.os, distro.dist, p.filename
        );
        xml.push_str(&format!(
            "  <entry>\n    <id>{}</id>\n    <title>{} {} ({}) in {}/{}</title>\n    <updated>{}</updated>\n    \
             <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n    \
             <summary>{}, {} bytes, SHA-256 {}</summary>\n  </entry>\n",
            escape(&format!("{home}/packages/{}/{}/{}#{}", distro.os, distro.dist, p.filename, p.id)),
            escape(&p.name),
            escape(&p.version),
            escape(&p.architecture),
            distro.os,
            distro.dist,
            rfc3339(p.created_at),
            escape(&page),
            escape(&p.filename),
            p.size,
            escape(&p.sha256),
        ));
    }
    xml.push_str("</feed>\n");
    Ok(xml)
}

fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}
