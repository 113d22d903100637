//! `/OWNER/REPO`: how to install from the repository (per format, with copy buttons), its
//! targets with counts and last publishes, and its newest packages. Owners of a private
//! repository can mint a read token for the manual snippets, shown on that response only.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

use super::session::{Posted, Visitor};
use super::{Layout, UiError, render, view};
use crate::app::App;
use crate::audit::{self, Actor, Event};
use crate::db::{self, packages::Filter, repos::Repo};
use crate::distros;
use crate::formats::PackageFormat;
use crate::http::auth;
use crate::keyring;

/// The repository `visitor` may see, and whether they may change it. A private repository
/// the visitor may not read is 404, as a missing one.
pub async fn visible_repo(
    app: &App,
    visitor: &Visitor,
    owner: &str,
    name: &str,
) -> Result<(Arc<Repo>, bool), UiError> {
    let repo = auth::readable_repo(app, visitor.user.as_ref(), owner, name).await?;
    let owns = match &visitor.user {
        Some(user) => db::users::acts_for(&app.db, user, repo.owner_id).await?,
        None => false,
    };
    Ok((repo, owns))
}

/// The repository the visitor may change; 404 to anyone else who is signed in, and to
/// visitors of a private one (a stranger learns nothing).
pub async fn owned_repo(
    app: &App,
    visitor: &Visitor,
    owner: &str,
    name: &str,
) -> Result<Arc<Repo>, UiError> {
    match visible_repo(app, visitor, owner, name).await? {
        (repo, true) => Ok(repo),
        // A public repository's owner may not have signed in yet.
        (_, false) if visitor.user.is_none() => Err(UiError::SignIn),
        (_, false) => Err(UiError::NotFound),
    }
}

/// The tabs of a repository's pages.
fn tabs(owner: &str, name: &str, owns: bool, current: &str) -> Vec<Tab> {
    let base = format!("/{owner}/{name}");
    let mut tabs = vec![
        ("Install", base.clone()),
        ("Packages", format!("{base}/packages")),
        ("Stats", format!("{base}/stats")),
        ("Keys", format!("{base}/keys")),
    ];
    if owns {
        tabs.push(("Upload", format!("{base}/upload")));
        tabs.push(("Tokens", format!("{base}/tokens")));
    }
    tabs.into_iter()
        .map(|(label, href)| Tab {
            current: label == current,
            label,
            href,
        })
        .collect()
}

pub struct Tab {
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

/// What the pages of a repository show above their content: its name and tabs.
pub struct RepoHead {
    pub owner: String,
    pub name: String,
    pub tabs: Vec<Tab>,
}

/// The layout and head of the repository page `title` (a tab's label).
pub fn head(
    app: &App,
    visitor: &Visitor,
    repo: &Repo,
    owns: bool,
    title: &str,
) -> (Layout, RepoHead) {
    let head = RepoHead {
        owner: repo.owner.clone(),
        name: repo.name.clone(),
        tabs: tabs(&repo.owner, &repo.name, owns, title),
    };
    (layout(app, visitor, repo, title), head)
}

fn layout(app: &App, visitor: &Visitor, repo: &Repo, title: &str) -> Layout {
    let (owner, name) = (&repo.owner, &repo.name);
    let l = Layout::new(app, visitor, format!("{title} · {owner}/{name}"))
        .crumb(format!("/{owner}"), owner.clone())
        .crumb(format!("/{owner}/{name}"), name.clone());
    if title == "Install" {
        l
    } else {
        l.crumb(String::new(), title)
    }
}

/// One row of the targets table.
pub struct TargetRow {
    pub target: String,
    pub format: &'static str,
    pub architectures: String,
    pub count: String,
    pub size: String,
    pub bytes: i64,
    pub last_publish: String,
    pub packages_href: String,
}

/// A package as a row of a list.
pub struct PackageRow {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub target: String,
    pub href: String,
    pub size: String,
    pub bytes: i64,
    pub downloads: String,
    pub uploaded: String,
    pub uploaded_title: String,
    pub indexed: bool,
}

impl PackageRow {
    pub fn of(repo: &Repo, p: &db::packages::Package, now: i64) -> PackageRow {
        let distro = distros::by_id(p.distro_version_id);
        let target = distro.map_or_else(String::new, |d| format!("{}/{}", d.os, d.dist));
        PackageRow {
            name: p.name.clone(),
            version: p.version.clone(),
            architecture: p.architecture.clone(),
            href: package_href(repo, p),
            target,
            size: view::size(p.size),
            bytes: p.size,
            downloads: view::count(p.download_count),
            uploaded: view::relative(p.created_at, now),
            uploaded_title: view::datetime(p.created_at),
            indexed: p.indexed,
        }
    }
}

/// The package page of `p`: packagecloud's `/OWNER/REPO/packages/OS/DIST/FILENAME`, with
/// the file name's characters escaped for a path.
pub fn package_href(repo: &Repo, p: &db::packages::Package) -> String {
    let target = distros::by_id(p.distro_version_id).map_or_else(
        || "unknown/unknown".to_owned(),
        |d| format!("{}/{}", d.os, d.dist),
    );
    format!(
        "/{}/{}/packages/{target}/{}",
        repo.owner,
        repo.name,
        path_escape(&p.filename)
    )
}

/// Percent-escapes what may not stand in a path segment as it is.
pub fn path_escape(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~+:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A table of packages: its caption, column headings (with sort links on the list page),
/// and rows.
pub struct PackageTable {
    pub caption: String,
    pub headings: Vec<Heading>,
    pub rows: Vec<PackageRow>,
}

pub struct Heading {
    pub label: &'static str,
    pub numeric: bool,
    /// The link that sorts by this column, where it sorts.
    pub href: Option<String>,
    /// `ascending` or `descending` on the column the table is sorted by.
    pub aria_sort: Option<&'static str>,
    pub arrow: Option<&'static str>,
}

impl Heading {
    pub const COLUMNS: [(&'static str, bool); 8] = [
        ("Name", false),
        ("Version", false),
        ("Architecture", false),
        ("Target", false),
        ("Size", true),
        ("Downloads", true),
        ("Uploaded", false),
        ("Status", false),
    ];

    /// Headings without sort links.
    pub fn plain() -> Vec<Heading> {
        Heading::COLUMNS
            .iter()
            .map(|(label, numeric)| Heading {
                label,
                numeric: *numeric,
                href: None,
                aria_sort: None,
                arrow: None,
            })
            .collect()
    }
}

/// A format's install instructions.
pub struct Section {
    pub id: &'static str,
    pub title: String,
    pub snippets: Vec<view::Snippet>,
}

#[derive(Template)]
#[template(path = "ui/repo.html")]
struct RepoPage {
    l: Layout,
    r: RepoHead,
    private: bool,
    owns: bool,
    sections: Vec<Section>,
    targets: Vec<TargetRow>,
    newest: PackageTable,
    /// Set on the response that minted a read token: the token's name.
    minted: Option<String>,
}

pub async fn page(
    State(app): State<App>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    visitor: Visitor,
) -> Result<Response, UiError> {
    render_page(&app, &headers, &visitor, &owner, &name, None).await
}

/// The example target of a format's snippets: the repository's first, or a common one.
fn example_target(
    summary: &[db::packages::TargetSummary],
    format: PackageFormat,
) -> &'static distros::Distro {
    summary
        .iter()
        .filter_map(|t| distros::by_id(t.distro_version_id))
        .find(|d| d.format == format && d.os != "any" && d.os != "rpm_any")
        .or_else(|| match format {
            PackageFormat::Rpm => distros::by_os_dist("el", "9"),
            _ => distros::by_os_dist("debian", "bookworm"),
        })
        .expect("the built-in distributions include debian/bookworm and el/9")
}

async fn render_page(
    app: &App,
    headers: &HeaderMap,
    visitor: &Visitor,
    owner: &str,
    name: &str,
    minted: Option<(String, String)>,
) -> Result<Response, UiError> {
    let (repo, owns) = visible_repo(app, visitor, owner, name).await?;
    let summary = app
        .cache
        .summary(repo.id, db::packages::summary(&app.db, repo.id))
        .await?;
    let (newest_packages, total) =
        db::packages::list(&app.db, repo.id, &Filter::default(), 0, 20).await?;
    let now = db::now();
    let newest: Vec<PackageRow> = newest_packages
        .iter()
        .map(|p| PackageRow::of(&repo, p, now))
        .collect();
    let published = db::generations::published_in(&app.db, repo.id).await?;
    let mut last_publish: BTreeMap<i64, i64> = BTreeMap::new();
    for p in &published {
        let at = last_publish.entry(p.distro_version_id).or_default();
        *at = (*at).max(p.published_at);
    }
    let mut by_target: BTreeMap<i64, (Vec<String>, i64, i64, &str)> = BTreeMap::new();
    for t in summary.iter() {
        let entry = by_target
            .entry(t.distro_version_id)
            .or_insert_with(|| (Vec::new(), 0, 0, ""));
        // Python and npm keep a project's name where others keep an architecture.
        let format = PackageFormat::from_name(&t.format);
        if matches!(
            format,
            Some(PackageFormat::Deb | PackageFormat::Rpm | PackageFormat::Dsc)
        ) {
            entry.0.push(t.architecture.clone());
        }
        entry.1 += t.count;
        entry.2 += t.bytes;
        entry.3 = format.map_or("", PackageFormat::label);
    }
    let targets = by_target
        .into_iter()
        .map(|(id, (mut archs, count, bytes, format))| {
            archs.sort();
            archs.dedup();
            let (target, href) = match distros::by_id(id) {
                Some(d) => (
                    format!("{}/{}", d.os, d.dist),
                    format!("/{owner}/{name}/packages?os={}&dist={}", d.os, d.dist),
                ),
                None => (id.to_string(), format!("/{owner}/{name}/packages")),
            };
            TargetRow {
                target,
                format,
                architectures: archs.join(", "),
                count: view::count(count),
                size: view::size(bytes),
                bytes,
                last_publish: last_publish
                    .get(&id)
                    .map_or_else(|| "not yet".to_owned(), |at| view::relative(*at, now)),
                packages_href: href,
            }
        })
        .collect();

    let base = auth::base_url(app, headers);
    let master = if repo.private && owns {
        db::tokens::masters(&app.db, repo.id)
            .await?
            .into_iter()
            .find(|m| m.name == "default")
            .map(|m| m.value)
    } else {
        None
    };
    let read_token = minted.as_ref().map(|(_, value)| value.as_str());
    let sections = sections(
        &base,
        &repo,
        &summary,
        &newest_packages,
        master.as_deref(),
        read_token,
    );
    let (l, r) = head(app, visitor, &repo, owns, "Install");
    render(
        visitor,
        &RepoPage {
            l,
            r,
            private: repo.private,
            owns,
            sections,
            targets,
            newest: PackageTable {
                caption: format!("The newest of {} packages", view::count(total)),
                headings: Heading::plain(),
                rows: newest,
            },
            minted: minted.map(|(name, _)| name),
        },
    )
}

/// `scheme://TOKEN:@host` for URLs that carry a token, as packagecloud's snippets do.
fn with_token(base: &str, token: Option<&str>) -> String {
    match (token, base.split_once("://")) {
        (Some(token), Some((scheme, rest))) => format!("{scheme}://{token}:@{rest}"),
        _ => base.to_owned(),
    }
}

/// The install instructions of every format the repository holds (deb and rpm always).
fn sections(
    base: &str,
    repo: &Repo,
    summary: &[db::packages::TargetSummary],
    newest: &[db::packages::Package],
    master: Option<&str>,
    read_token: Option<&str>,
) -> Vec<Section> {
    let (owner, name) = (repo.owner.as_str(), repo.name.as_str());
    let fq = format!("{owner}/{name}");
    let has = |format: PackageFormat| {
        summary
            .iter()
            .any(|t| PackageFormat::from_name(&t.format) == Some(format))
    };
    let latest = |format: PackageFormat| {
        newest
            .iter()
            .filter(|p| !keyring::is_keyring(repo, &p.name))
            .find(|p| PackageFormat::from_name(&p.format) == Some(format))
            .map(|p| (p.name.clone(), p.version.clone()))
    };
    let script_base = with_token(base, master);
    // Private repositories: the manual snippets need a read token; until one is minted they
    // show where it goes.
    let reader = if repo.private {
        Some(read_token.unwrap_or("READ_TOKEN"))
    } else {
        None
    };
    let read_base = with_token(base, reader);
    let mut out = Vec::new();

    let deb = example_target(summary, PackageFormat::Deb);
    let keyring_path = keyring::deb_keyring_path(owner, name);
    let keyring_package = keyring::package_name(owner, name);
    let (deb_name, deb_version) =
        latest(PackageFormat::Deb).unwrap_or_else(|| ("PACKAGE".to_owned(), "VERSION".to_owned()));
    out.push(Section {
        id: "deb",
        title: "Debian and Ubuntu (apt)".to_owned(),
        snippets: vec![
            view::Snippet::new(
                "deb-script",
                "Quick install",
                format!("curl -s {script_base}/install/repositories/{fq}/script.deb.sh | sudo bash"),
            ),
            view::Snippet::new(
                "deb-manual",
                format!("Manual setup ({}/{}; use your distribution's codename)", deb.os, deb.dist),
                format!(
                    "curl -fsSL {read_base}/{fq}/gpgkey | sudo gpg --dearmor -o {keyring_path}\n\
                     sudo tee /etc/apt/sources.list.d/{owner}_{name}.sources > /dev/null <<'EOF'\n\
                     Types: deb deb-src\n\
                     URIs: {read_base}/{fq}/{os}/\n\
                     Suites: {dist}\n\
                     Components: main\n\
                     Signed-By: {keyring_path}\n\
                     EOF\n\
                     sudo apt-get update\n\
                     sudo apt-get install {keyring_package}",
                    os = deb.os,
                    dist = deb.dist,
                ),
            ),
            view::Snippet::new(
                "deb-pin",
                "Install one version and hold it",
                format!(
                    "sudo apt-get install {deb_name}={deb_version}\nsudo apt-mark hold {deb_name}"
                ),
            ),
            view::Snippet::new(
                "deb-downgrade",
                "Go back to an older version (then hold it)",
                format!(
                    "sudo apt-get install --allow-downgrades {deb_name}=OLDER_VERSION\nsudo apt-mark hold {deb_name}"
                ),
            ),
        ],
    });

    let rpm = example_target(summary, PackageFormat::Rpm);
    let (rpm_name, rpm_version) =
        latest(PackageFormat::Rpm).unwrap_or_else(|| ("PACKAGE".to_owned(), "VERSION".to_owned()));
    out.push(Section {
        id: "rpm",
        title: "Enterprise Linux, Fedora, SUSE (dnf, yum, zypper)".to_owned(),
        snippets: vec![
            view::Snippet::new(
                "rpm-script",
                "Quick install",
                format!("curl -s {script_base}/install/repositories/{fq}/script.rpm.sh | sudo bash"),
            ),
            view::Snippet::new(
                "rpm-manual",
                format!("Manual setup ({}/{}; use your release)", rpm.os, rpm.dist),
                format!(
                    "sudo tee /etc/yum.repos.d/{owner}_{name}.repo > /dev/null <<'EOF'\n\
                     [{owner}_{name}]\n\
                     name={owner}_{name}\n\
                     baseurl={read_base}/{fq}/{os}/{dist}/$basearch\n\
                     repo_gpgcheck=1\n\
                     gpgcheck=0\n\
                     enabled=1\n\
                     gpgkey={read_base}/{fq}/gpgkey\n\
                     metadata_expire=300\n\
                     EOF\n\
                     sudo dnf makecache",
                    os = rpm.os,
                    dist = rpm.dist,
                ),
            ),
            view::Snippet::new(
                "rpm-pin",
                "Install one version, or go back to an older one",
                format!(
                    "sudo dnf install {rpm_name}-{rpm_version}\nsudo dnf downgrade {rpm_name}-OLDER_VERSION"
                ),
            ),
        ],
    });

    if has(PackageFormat::Python) {
        let project = latest(PackageFormat::Python).map_or_else(|| "PROJECT".to_owned(), |p| p.0);
        out.push(Section {
            id: "python",
            title: "Python (pip, uv)".to_owned(),
            snippets: vec![
                view::Snippet::new(
                    "python-script",
                    "Quick setup (adds the index to pip's configuration)",
                    format!(
                        "curl -s {script_base}/install/repositories/{fq}/script.python.sh | bash"
                    ),
                ),
                view::Snippet::new(
                    "python-pip",
                    "Install with pip",
                    format!(
                        "pip install --extra-index-url {read_base}/{fq}/pypi/simple/ {project}"
                    ),
                ),
            ],
        });
    }
    if has(PackageFormat::Node) {
        let package = latest(PackageFormat::Node).map_or_else(|| "PACKAGE".to_owned(), |p| p.0);
        let npm_reader = if repo.private {
            format!(
                "\nnpm config set -- //{}/{fq}/npm/:_authToken {}",
                base.split_once("://").map_or(base, |b| b.1),
                reader.unwrap_or("READ_TOKEN")
            )
        } else {
            String::new()
        };
        out.push(Section {
            id: "npm",
            title: "Node.js (npm, pnpm)".to_owned(),
            snippets: vec![
                view::Snippet::new(
                    "npm-script",
                    "Quick setup (sets the registry in ~/.npmrc)",
                    format!(
                        "curl -s {script_base}/install/repositories/{fq}/script.node.sh | bash"
                    ),
                ),
                view::Snippet::new(
                    "npm-install",
                    "Install with npm",
                    format!("npm install --registry {base}/{fq}/npm/ {package}{npm_reader}"),
                ),
            ],
        });
    }
    if has(PackageFormat::AnyFile) {
        out.push(Section {
            id: "raw",
            title: "Raw files".to_owned(),
            snippets: vec![view::Snippet::new(
                "raw-download",
                "Download a file",
                format!("curl -fLO {read_base}/{fq}/raw/NAME/VERSION/FILE"),
            )],
        });
    }
    out
}

#[derive(Deserialize)]
pub struct MintForm {}

/// Mints a read token of the `default` master token, named `web-USER-DATE`, and shows the
/// page with it in the snippets. It is not shown again (the tokens page lists it by name).
pub async fn mint_read_token(
    State(app): State<App>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    Posted { visitor, .. }: Posted<MintForm>,
) -> Result<Response, UiError> {
    let repo = owned_repo(&app, &visitor, &owner, &name).await?;
    let user = visitor.require_user()?;
    let master = db::tokens::masters(&app.db, repo.id)
        .await?
        .into_iter()
        .find(|m| m.name == "default")
        .ok_or_else(|| UiError::BadRequest("the repository has no default master token".into()))?;
    let date = view::datetime(db::now());
    let token_name = format!(
        "web-{}-{}-{}",
        user.name,
        &date[..10],
        &date[11..16].replace(':', "")
    );
    let token = db::tokens::mint_read(&app.db, &master, &token_name, None).await?;
    let event = Event::new(Actor::User(user.name.clone()), "token.create")
        .ip(visitor.client)
        .repository(&owner, &name)
        .target(token_name.clone())
        .details(serde_json::json!({ "kind": "read", "master": master.name }));
    audit::record(&app.db, event).await;
    render_page(
        &app,
        &headers,
        &visitor,
        &owner,
        &name,
        Some((token.name, token.value)),
    )
    .await
}
