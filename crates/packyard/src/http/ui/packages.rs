//! The package list (`/OWNER/REPO/packages?q=&type=&os=&dist=&arch=&status=&sort=&dir=&page=`,
//! every filter and order in the query string), a package's page at packagecloud's
//! `/OWNER/REPO/packages/OS/DIST/FILENAME` with its `/download` links, the owner's actions on
//! it (delete, promote), and the repository's download stats.

use std::net::SocketAddr;
use std::sync::Arc;

use askama::Template;
use axum::extract::{ConnectInfo, Path, Query, RawQuery, Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::repo::{self, Heading, PackageRow, PackageTable, RepoHead};
use super::session::{Posted, Visitor};
use super::{Layout, UiError, render, see_other, view};
use crate::app::App;
use crate::db::{
    self,
    packages::{Filter, Order, Package},
    repos::Repo,
};
use crate::distros::{self, DISTROS, Distro};
use crate::formats::PackageFormat;
use crate::http::api::packages::{destroy::destroy_package, promote::promote_package};
use crate::http::auth;
use packyard_formats::repo_path::RepoPath;

const PER_PAGE: i64 = 50;

#[derive(Deserialize, Default, Clone)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default, rename = "type")]
    format: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    dist: String,
    #[serde(default)]
    arch: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    dir: String,
    #[serde(default)]
    page: Option<i64>,
}

/// The columns the list sorts by, as `sort=` names them, with the heading each belongs to.
const SORTS: [(&str, &str); 5] = [
    ("name", "Name"),
    ("version", "Version"),
    ("size", "Size"),
    ("downloads", "Downloads"),
    ("uploaded", "Uploaded"),
];

impl ListQuery {
    fn sort(&self) -> &str {
        SORTS
            .iter()
            .find(|(name, _)| *name == self.sort)
            .map_or("uploaded", |(name, _)| name)
    }

    /// Newest, biggest and most downloaded first unless asked otherwise; names A to Z.
    fn descending(&self) -> bool {
        match self.dir.as_str() {
            "asc" => false,
            "desc" => true,
            _ => !matches!(self.sort(), "name"),
        }
    }

    /// This query with other values, as a link.
    fn link(&self, base: &str, change: impl FnOnce(&mut ListQuery)) -> String {
        let mut q = self.clone();
        change(&mut q);
        let mut pairs: Vec<(&str, String)> = Vec::new();
        for (key, value) in [
            ("q", &q.q),
            ("type", &q.format),
            ("os", &q.os),
            ("dist", &q.dist),
            ("arch", &q.arch),
            ("status", &q.status),
            ("sort", &q.sort),
            ("dir", &q.dir),
        ] {
            if !value.is_empty() {
                pairs.push((key, value.clone()));
            }
        }
        if let Some(page) = q.page.filter(|p| *p > 1) {
            pairs.push(("page", page.to_string()));
        }
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        if query.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{query}")
        }
    }

    fn filter(&self) -> Filter {
        let format = PackageFormat::from_name(self.format.trim()).map(|f| f.name().to_owned());
        let distro_version_ids = (!self.os.is_empty()).then(|| {
            DISTROS
                .iter()
                .filter(|d| d.os == self.os)
                .filter(|d| {
                    self.dist.is_empty()
                        || distros::by_path(&self.os, &self.dist).is_some_and(|f| f.id == d.id)
                })
                .map(|d| d.id)
                .collect()
        });
        let text = |s: &str| (!s.trim().is_empty()).then(|| s.trim().chars().take(200).collect());
        Filter {
            format,
            distro_version_ids,
            architecture: text(&self.arch),
            filename: text(&self.q),
            indexed: match self.status.as_str() {
                "indexed" => Some(true),
                "pending" => Some(false),
                _ => None,
            },
        }
    }
}

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

fn choices(values: &[(&str, &str)], current: &str) -> Vec<Choice> {
    values
        .iter()
        .map(|(value, label)| Choice {
            value: (*value).to_owned(),
            label: (*label).to_owned(),
            selected: *value == current,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "ui/packages.html")]
struct ListPage {
    l: Layout,
    r: RepoHead,
    q: String,
    arch: String,
    formats: Vec<Choice>,
    oses: Vec<Choice>,
    dists: Vec<Choice>,
    statuses: Vec<Choice>,
    sorts: Vec<Choice>,
    dirs: Vec<Choice>,
    table: PackageTable,
    summary: String,
    previous: Option<String>,
    next: Option<String>,
}

pub async fn list(
    State(app): State<App>,
    Path((owner, name)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    visitor: Visitor,
) -> Result<Response, UiError> {
    let (repo, owns) = repo::visible_repo(&app, &visitor, &owner, &name).await?;
    // A malformed query (a page that is not a number) lists from the start, unfiltered.
    let query: ListQuery = raw
        .as_deref()
        .and_then(|raw| serde_urlencoded::from_str(raw).ok())
        .unwrap_or_default();
    let filter = query.filter();
    let page = query.page.unwrap_or(1).clamp(1, 1_000_000);
    let offset = (page - 1) * PER_PAGE;
    let descending = query.descending();
    let order = match query.sort() {
        "name" => Order::Name,
        "version" => Order::Version,
        "size" => Order::Size,
        "downloads" => Order::Downloads,
        _ => Order::Uploaded,
    };
    let (packages, total) = db::packages::list_sorted(
        &app.db, repo.id, &filter, order, descending, offset, PER_PAGE,
    )
    .await?;
    let now = db::now();
    let rows = packages
        .iter()
        .map(|p| PackageRow::of(&repo, p, now))
        .collect();
    let base = format!("/{owner}/{name}/packages");
    let sort = query.sort();
    let headings = Heading::COLUMNS
        .iter()
        .map(|(label, numeric)| {
            let key = SORTS.iter().find(|(_, l)| l == label).map(|(k, _)| *k);
            let active = key == Some(sort);
            Heading {
                label,
                numeric: *numeric,
                href: key.map(|key| {
                    query.link(&base, |q| {
                        q.sort = key.to_owned();
                        q.dir = if active && descending {
                            "asc"
                        } else if active {
                            "desc"
                        } else {
                            ""
                        }
                        .to_owned();
                        q.page = None;
                    })
                }),
                aria_sort: active.then_some(if descending {
                    "descending"
                } else {
                    "ascending"
                }),
                arrow: active.then_some(if descending { "▼" } else { "▲" }),
            }
        })
        .collect();
    let pages = (total + PER_PAGE - 1) / PER_PAGE;
    let previous = (page > 1).then(|| query.link(&base, |q| q.page = Some(page - 1)));
    let next = (page < pages).then(|| query.link(&base, |q| q.page = Some(page + 1)));
    let first = if total == 0 { 0 } else { offset + 1 };
    let last = (offset + PER_PAGE).min(total);
    let mut oses: Vec<&str> = DISTROS.iter().map(|d| d.os).collect();
    oses.dedup();
    let os_choices: Vec<(&str, &str)> = std::iter::once(("", "any"))
        .chain(oses.iter().map(|os| (*os, *os)))
        .collect();
    let dist_choices: Vec<(&str, &str)> = std::iter::once(("", "any"))
        .chain(
            DISTROS
                .iter()
                .filter(|d| d.os == query.os)
                .map(|d| (d.dist, d.dist)),
        )
        .collect();
    let format_choices: Vec<(&str, &str)> = std::iter::once(("", "any"))
        .chain(PackageFormat::ALL.iter().map(|f| (f.name(), f.label())))
        .collect();
    let (l, r) = repo::head(&app, &visitor, &repo, owns, "Packages");
    render(
        &visitor,
        &ListPage {
            l,
            r,
            q: query.q.clone(),
            arch: query.arch.clone(),
            formats: choices(&format_choices, &query.format),
            oses: choices(&os_choices, &query.os),
            dists: choices(&dist_choices, &query.dist),
            statuses: choices(
                &[("", "any"), ("indexed", "indexed"), ("pending", "pending")],
                &query.status,
            ),
            sorts: choices(&SORTS.map(|(k, l)| (k, l)), sort),
            dirs: choices(
                &[("desc", "descending"), ("asc", "ascending")],
                if descending { "desc" } else { "asc" },
            ),
            table: PackageTable {
                caption: format!("Packages of {owner}/{name}"),
                headings,
                rows,
            },
            summary: format!(
                "{} to {} of {} packages",
                view::count(first),
                view::count(last),
                view::count(total)
            ),
            previous,
            next,
        },
    )
}

/// What the path after `/packages/` names: a package of a target, and maybe its download.
struct PackagePath<'a> {
    distro: &'static Distro,
    filename: String,
    download: bool,
    _path: &'a str,
}

fn parse_path(path: &str) -> Option<PackagePath<'_>> {
    let mut parts = path.splitn(3, '/');
    let (os, dist, rest) = (parts.next()?, parts.next()?, parts.next()?);
    let distro = distros::by_path(os, dist)?;
    let (filename, download) = match rest.rsplit_once('/') {
        Some((file, "download" | "download.deb" | "download.rpm")) => (file, true),
        _ => (rest, false),
    };
    (!filename.is_empty()).then(|| PackagePath {
        distro,
        filename: filename.to_owned(),
        download,
        _path: path,
    })
}

async fn find_package(
    app: &App,
    repo: &Repo,
    distro: &Distro,
    filename: &str,
) -> Result<Package, UiError> {
    crate::ingest::by_filename(app, repo.id, distro, filename)
        .await?
        .ok_or(UiError::NotFound)
}

pub struct Fact {
    pub label: &'static str,
    pub value: String,
    /// The exact value, where `value` is rounded.
    pub title: Option<String>,
}

pub struct Relation {
    pub kind: String,
    pub items: Vec<String>,
}

pub struct OtherVersion {
    pub version: String,
    pub architecture: String,
    pub href: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "ui/package.html")]
struct PackagePage {
    l: Layout,
    r: RepoHead,
    owns: bool,
    package: String,
    version: String,
    facts: Vec<Fact>,
    checksums: Vec<view::Snippet>,
    install: Vec<view::Snippet>,
    relations: Vec<Relation>,
    indexed: bool,
    visibility: String,
    downloads: String,
    chart: String,
    chart_text: String,
    others: Vec<OtherVersion>,
    download_href: String,
    action_href: String,
    destinations: Vec<String>,
    confirm: Option<Confirm>,
}

/// A confirmation of a destructive action, shown in place of its buttons.
pub struct Confirm {
    pub action: &'static str,
    pub question: String,
    pub destination: String,
    pub copy: bool,
}

pub async fn show(
    State(app): State<App>,
    Path((owner, name, path)): Path<(String, String, String)>,
    Query(confirm): Query<ConfirmQuery>,
    headers: HeaderMap,
    visitor: Visitor,
    request: Request,
) -> Result<Response, UiError> {
    // packagecloud's download path of a raw file (`packages/anyfile/FILE/download`) is a
    // repository file, served as every other one is.
    let file_path = format!("packages/{path}");
    if RepoPath::parse(&file_path).is_some() {
        let client = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .copied()
            .unwrap_or(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 0))));
        let path = Path((owner, name, file_path));
        return Ok(crate::http::repo::serve(State(app), client, path, request).await);
    }
    let (repo, owns) = repo::visible_repo(&app, &visitor, &owner, &name).await?;
    let wanted = parse_path(&path).ok_or(UiError::NotFound)?;
    let package = find_package(&app, &repo, wanted.distro, &wanted.filename).await?;
    if wanted.download {
        // As packagecloud's `/download` links: a redirect to the file itself, which counts
        // the download and checks a private repository's token as every file read does.
        let format = PackageFormat::from_name(&package.format).unwrap_or(wanted.distro.format);
        let base = auth::base_url(&app, &headers);
        let location = format!(
            "{base}{}",
            format.url_path(&owner, &name, wanted.distro, &package)
        );
        let mut response = axum::http::StatusCode::FOUND.into_response();
        if let Ok(value) = axum::http::HeaderValue::from_str(&location) {
            response
                .headers_mut()
                .insert(axum::http::header::LOCATION, value);
        }
        return Ok(response);
    }
    let confirm = match (owns, confirm.confirm.as_deref()) {
        (true, Some("delete")) => Some(Confirm {
            action: "delete",
            question: format!(
                "Delete {} from {owner}/{name}? It leaves the index at the next publish; hosts that have it keep it.",
                package.filename
            ),
            destination: String::new(),
            copy: false,
        }),
        (true, Some("promote")) => {
            let destination = confirm.destination.unwrap_or_default();
            let copy = confirm.copy.is_some();
            Some(Confirm {
                action: "promote",
                question: format!(
                    "{} {} from {owner}/{name} to {destination}?",
                    if copy { "Copy" } else { "Move" },
                    package.filename
                ),
                destination,
                copy,
            })
        }
        _ => None,
    };
    package_page(
        &app,
        &headers,
        &visitor,
        &repo,
        owns,
        wanted.distro,
        &package,
        confirm,
    )
    .await
}

#[derive(Deserialize, Default)]
pub struct ConfirmQuery {
    confirm: Option<String>,
    destination: Option<String>,
    copy: Option<String>,
}

#[allow(clippy::too_many_arguments)]
async fn package_page(
    app: &App,
    headers: &HeaderMap,
    visitor: &Visitor,
    repo: &Arc<Repo>,
    owns: bool,
    distro: &'static Distro,
    package: &Package,
    confirm: Option<Confirm>,
) -> Result<Response, UiError> {
    let (owner, name) = (repo.owner.clone(), repo.name.clone());
    let format = PackageFormat::from_name(&package.format).unwrap_or(distro.format);
    let (created_ms, indexed_ms) = db::packages::timing(&app.db, package.id).await?;
    let downloads = package.download_count;
    let visibility = match (package.indexed, indexed_ms) {
        (true, Some(at)) => {
            let lag = created_ms
                .map(|c| format!(", {} after the push", view::duration_ms((at - c).max(0))));
            format!(
                "In the signed index since {}{}",
                view::datetime(at / 1000),
                lag.unwrap_or_default()
            )
        }
        (true, None) => "In the signed index".to_owned(),
        (false, _) => "Waiting for the next publish".to_owned(),
    };
    let base = auth::base_url(app, headers);
    let target = format!("{}/{}", distro.os, distro.dist);
    let mut facts = vec![
        Fact {
            label: "Format",
            value: format.label().to_owned(),
            title: None,
        },
        Fact {
            label: "Target",
            value: target.clone(),
            title: None,
        },
        Fact {
            label: "Version",
            value: package.version.clone(),
            title: None,
        },
        Fact {
            label: "Architecture",
            value: package.architecture.clone(),
            title: None,
        },
        Fact {
            label: "File",
            value: package.filename.clone(),
            title: None,
        },
        Fact {
            label: "Size",
            value: view::size(package.size),
            title: Some(format!("{} bytes", view::count(package.size))),
        },
        Fact {
            label: "Uploaded",
            value: view::datetime(package.created_at),
            title: None,
        },
    ];
    let entries = db::packages::entries(&app.db, package.id).await?;
    facts.extend(described_fields(&entries));
    let checksums = [
        ("md5", "MD5", &package.md5),
        ("sha1", "SHA-1", &package.sha1),
        ("sha256", "SHA-256", &package.sha256),
        ("sha512", "SHA-512", &package.sha512),
    ]
    .into_iter()
    .map(|(id, label, value)| view::Snippet::new(format!("checksum-{id}"), label, value.clone()))
    .collect();
    let install = install_lines(format, package, &base, &owner, &name);
    let relations =
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&package.dependencies)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(kind, items)| {
                let items: Vec<String> = items
                    .as_array()?
                    .iter()
                    .map(|i| match i {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                (!items.is_empty()).then_some(Relation { kind, items })
            })
            .collect();
    let now = db::now();
    let days = view::daily(&db::downloads::times(&app.db, package.id).await?, now, 30);
    let last_30: i64 = days.iter().map(|d| d.1).sum();
    let chart = view::svg_data_url(&view::bar_chart(&days, 300, 40));
    let others = db::packages::versions_of(&app.db, repo.id, distro.id, &package.name)
        .await?
        .into_iter()
        .map(|p| OtherVersion {
            current: p.id == package.id,
            href: repo::package_href(repo, &p),
            version: p.version,
            architecture: p.architecture,
        })
        .collect();
    let destinations = if owns {
        let user = visitor.require_user()?;
        let mut out = Vec::new();
        for r in db::repos::all(&app.db).await? {
            if r.id != repo.id && db::users::acts_for(&app.db, user, r.owner_id).await? {
                out.push(format!("{}/{}", r.owner, r.name));
            }
        }
        out
    } else {
        Vec::new()
    };
    let href = repo::package_href(repo, package);
    let (l, r) = repo::head(app, visitor, repo, owns, "Packages");
    let l = l.crumb(href.clone(), package.filename.clone());
    render(
        visitor,
        &PackagePage {
            l,
            r,
            owns,
            package: package.name.clone(),
            version: package.version.clone(),
            facts,
            checksums,
            install,
            relations,
            indexed: package.indexed,
            visibility,
            downloads: view::count(downloads),
            chart,
            chart_text: format!("{} downloads in the last 30 days", view::count(last_30)),
            others,
            download_href: format!("{href}/download"),
            action_href: href,
            destinations,
            confirm,
        },
    )
}

/// Description, maintainer, homepage and licence as the package's index entry states them,
/// shown as text (never markup, never a link: a `javascript:` homepage stays inert).
fn described_fields(entries: &[(String, String)]) -> Vec<Fact> {
    let mut facts = Vec::new();
    for (part, body) in entries {
        match part.as_str() {
            "packages" | "sources" => {
                for (field, label) in [
                    ("Maintainer", "Maintainer"),
                    ("Homepage", "Homepage"),
                    ("Section", "Section"),
                    ("Description", "Description"),
                ] {
                    if let Some(value) = stanza_field(body, field) {
                        facts.push(Fact {
                            label,
                            value,
                            title: None,
                        });
                    }
                }
            }
            "primary" => {
                for (tag, label) in [
                    ("summary", "Summary"),
                    ("description", "Description"),
                    ("packager", "Packager"),
                    ("url", "Homepage"),
                    ("rpm:license", "Licence"),
                ] {
                    if let Some(value) = xml_element(body, tag) {
                        facts.push(Fact {
                            label,
                            value,
                            title: None,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    facts
}

/// A field of a deb822 stanza, continuation lines joined.
fn stanza_field(stanza: &str, field: &str) -> Option<String> {
    let mut lines = stanza.lines();
    let prefix = format!("{field}:");
    let first = lines.find(|l| l.starts_with(&prefix))?;
    let mut value = first[prefix.len()..].trim().to_owned();
    for line in lines.take_while(|l| l.starts_with(' ') || l.starts_with('\t')) {
        let line = line.trim();
        value.push('\n');
        value.push_str(if line == "." { "" } else { line });
    }
    (!value.is_empty()).then_some(value)
}

/// The text of the first `<tag>` in an XML fragment, entities decoded.
fn xml_element(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    let text = quick_unescape(&xml[start..end]);
    (!text.trim().is_empty()).then_some(text)
}

fn quick_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn install_lines(
    format: PackageFormat,
    p: &Package,
    base: &str,
    owner: &str,
    name: &str,
) -> Vec<view::Snippet> {
    let line = match format {
        PackageFormat::Deb => format!(
            "sudo apt-get install {}={}\nsudo apt-mark hold {}",
            p.name, p.version, p.name
        ),
        PackageFormat::Rpm => {
            let version = p
                .version
                .split_once(':')
                .map_or(p.version.as_str(), |v| v.1);
            format!("sudo dnf install {}-{version}", p.name)
        }
        PackageFormat::Python => format!(
            "pip install --extra-index-url {base}/{owner}/{name}/pypi/simple/ '{}=={}'",
            p.name, p.version
        ),
        PackageFormat::Node => format!(
            "npm install --registry {base}/{owner}/{name}/npm/ {}@{}",
            p.name, p.version
        ),
        PackageFormat::Dsc => format!("apt-get source {}={}", p.name, p.version),
        PackageFormat::Oci => {
            let host = base.split_once("://").map_or(base, |(_, host)| host);
            format!("podman pull {host}/{owner}/{name}/{}@{}", p.name, p.version)
        }
        PackageFormat::AnyFile => {
            let distro = distros::by_id(p.distro_version_id);
            match distro {
                Some(d) => format!("curl -fLO {base}/{owner}/{name}/{}", format.file_path(d, p)),
                None => String::new(),
            }
        }
    };
    vec![view::Snippet::new(
        "install-line",
        "Install this version",
        line,
    )]
}

#[derive(Deserialize)]
pub struct ActionForm {
    action: String,
    #[serde(default)]
    destination: String,
    #[serde(default)]
    copy: Option<String>,
}

/// `POST` of a package page: `delete` or `promote` (after their confirmation).
pub async fn act(
    State(app): State<App>,
    Path((owner, name, path)): Path<(String, String, String)>,
    Posted { visitor, form }: Posted<ActionForm>,
) -> Result<Response, UiError> {
    let repo = repo::owned_repo(&app, &visitor, &owner, &name).await?;
    let user = visitor.require_user()?;
    let wanted = parse_path(&path)
        .filter(|w| !w.download)
        .ok_or(UiError::NotFound)?;
    let package = find_package(&app, &repo, wanted.distro, &wanted.filename).await?;
    match form.action.as_str() {
        "delete" => {
            destroy_package(&app, user, visitor.client, &repo, wanted.distro, &package).await?;
            Ok(see_other(&format!("/{owner}/{name}/packages")))
        }
        "promote" => {
            let (dest_owner, dest_name) = form
                .destination
                .split_once('/')
                .ok_or_else(|| UiError::BadRequest("choose a destination repository".into()))?;
            let destination = repo::owned_repo(&app, &visitor, dest_owner, dest_name).await?;
            if destination.id == repo.id {
                return Err(UiError::BadRequest(
                    "that is the package's own repository".into(),
                ));
            }
            let promoted = promote_package(
                &app,
                user,
                visitor.client,
                &repo,
                &destination,
                wanted.distro,
                &package,
                form.copy.is_some(),
            )
            .await?;
            Ok(see_other(&repo::package_href(&destination, &promoted)))
        }
        _ => Err(UiError::BadRequest("unknown action".into())),
    }
}

#[derive(Template)]
#[template(path = "ui/stats.html")]
struct StatsPage {
    l: Layout,
    r: RepoHead,
    chart: String,
    chart_text: String,
    top: PackageTable,
}

/// Downloads of the repository: the last 30 days, and its most downloaded packages.
pub async fn stats(
    State(app): State<App>,
    Path((owner, name)): Path<(String, String)>,
    visitor: Visitor,
) -> Result<Response, UiError> {
    let (repo, owns) = repo::visible_repo(&app, &visitor, &owner, &name).await?;
    let now = db::now();
    let times = db::downloads::repository_daily(&app.db, repo.id, now - 30 * 86_400).await?;
    let days = view::daily(&times, now, 30);
    let total: i64 = days.iter().map(|d| d.1).sum();
    let (top, _) = db::packages::list_sorted(
        &app.db,
        repo.id,
        &Filter::default(),
        Order::Downloads,
        true,
        0,
        20,
    )
    .await?;
    let rows = top.iter().map(|p| PackageRow::of(&repo, p, now)).collect();
    let (l, r) = repo::head(&app, &visitor, &repo, owns, "Stats");
    render(
        &visitor,
        &StatsPage {
            l,
            r,
            chart: view::svg_data_url(&view::bar_chart(&days, 600, 120)),
            chart_text: format!(
                "{} downloads in the last 30 days; busiest day {}",
                view::count(total),
                days.iter()
                    .max_by_key(|d| d.1)
                    .filter(|d| d.1 > 0)
                    .map_or_else(
                        || "none".to_owned(),
                        |d| format!("{} ({})", d.0, view::count(d.1))
                    )
            ),
            top: PackageTable {
                caption: format!("The most downloaded packages of {owner}/{name}"),
                headings: Heading::plain(),
                rows,
            },
        },
    )
}
