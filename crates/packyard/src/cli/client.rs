//! The client commands: `login`, `push`, `yank`, `promote`, `ls`, `show`, `repo`, `token`,
//! `distro`, `stats`, `completions`, `man`, and the client forms of `key`, `token rotate` and
//! `reindex`. They speak API v1 to the server `--url`, the environment or the client
//! configuration names (`client::config`).

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use packyard_api as api;
use serde_json::{Value, json};

use crate::client::Exit;
use crate::client::config::{self, ConfigFile, Profile, RemoteArgs, masked};
use crate::client::http::{Api, DEFAULT_RETRIES, Refused, Retry};
use crate::client::push::{self, Destination};

/// The server flags and how often to retry, for every client command.
#[derive(Args, Clone, Debug)]
pub struct Remote {
    #[command(flatten)]
    pub args: RemoteArgs,
    /// Retries of a request after a connection error or a 408, 429, 502, 503 or 504
    #[arg(long, default_value_t = DEFAULT_RETRIES)]
    pub retries: u32,
}

impl Remote {
    pub fn api(&self) -> Result<Api> {
        Api::new(config::resolve(&self.args)?, self.retries)
    }
}

#[derive(Args)]
pub struct PushArgs {
    #[command(flatten)]
    remote: Remote,
    /// OWNER/REPO/OS/DIST (debian/bookworm, el/9 ...); OWNER/REPO alone for Python wheels,
    /// npm tarballs and raw files
    destination: String,
    /// Files or globs (expanded here too, so quoting them is fine)
    #[arg(required = true)]
    files: Vec<String>,
    /// Uploads at once
    #[arg(long, default_value_t = 4)]
    jobs: usize,
    /// Return once every package is in the served, signed index, waiting at most this long
    /// (10m when no duration is given); exit 4 if that runs out
    #[arg(long, num_args = 0..=1, default_missing_value = "10m", value_parser = parse_duration)]
    wait: Option<Duration>,
    /// Push the files that can be pushed and exit 3 if any could not
    #[arg(long)]
    skip_errors: bool,
    /// Say where each file would go, and push nothing
    #[arg(long)]
    dry_run: bool,
    /// One JSON object per line and event: file, phase, bytes, status, error
    #[arg(long)]
    json: bool,
    /// No progress bars, also on a terminal
    #[arg(long)]
    no_progress: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("{text:?} is not a duration such as 90s, 10m or 1h: {e}"))
}

pub async fn push(args: PushArgs) -> Result<()> {
    let destination = Destination::parse(&args.destination)?;
    let files = push::expand(&args.files)?;
    let api = args.remote.api()?;
    let options = push::Options {
        jobs: args.jobs,
        wait: args.wait,
        skip_errors: args.skip_errors,
        dry_run: args.dry_run,
        json: args.json,
        progress: !args.no_progress && !args.json && std::io::stderr().is_terminal(),
    };
    let report = push::push(&api, &destination, &files, &options).await?;
    match report.exit_code(args.skip_errors) {
        0 => Ok(()),
        code => Err(Exit::silent(code).into()),
    }
}

#[derive(Subcommand)]
pub enum RepoCommand {
    /// Repositories the token may push to
    List {
        #[command(flatten)]
        remote: Remote,
        #[arg(long)]
        json: bool,
    },
    /// Create a repository
    Create {
        #[command(flatten)]
        remote: Remote,
        name: String,
        /// Readable only with a read token or an API token
        #[arg(long)]
        private: bool,
        #[arg(long)]
        json: bool,
    },
    /// A repository's settings and install script
    Show {
        #[command(flatten)]
        remote: Remote,
        /// OWNER/REPO
        repository: String,
        #[arg(long)]
        json: bool,
    },
}

pub async fn repo(command: RepoCommand) -> Result<()> {
    match command {
        RepoCommand::List { remote, json } => {
            let repos: Vec<Value> = remote.api()?.get("/api/v1/repos.json").await?;
            if json {
                return print_json(&repos);
            }
            println!(
                "{:<40}  {:<7}  {:>8}  LAST PUSH",
                "REPOSITORY", "ACCESS", "PACKAGES"
            );
            for r in &repos {
                println!(
                    "{:<40}  {:<7}  {:>8}  {}",
                    text(&r["fqname"]),
                    if r["private"].as_bool() == Some(true) {
                        "private"
                    } else {
                        "public"
                    },
                    text(&r["package_count_human"]),
                    text(&r["last_push_human"]),
                );
            }
            Ok(())
        }
        RepoCommand::Create {
            remote,
            name,
            private,
            json,
        } => {
            let mut form = vec![("repository[name]", name.clone())];
            if private {
                form.push(("repository[private]", "1".into()));
            }
            let created: Value = remote
                .api()?
                .post_form("/api/v1/repos.json", Retry::OnConnect, &form)
                .await?;
            if json {
                return print_json(&created);
            }
            println!(
                "created {} repository {name}: {}",
                if private { "private" } else { "public" },
                text(&created["url"])
            );
            Ok(())
        }
        RepoCommand::Show {
            remote,
            repository,
            json,
        } => {
            let (owner, name) = owner_repo(&repository)?;
            let r: Value = remote
                .api()?
                .get(&format!("/api/v1/repos/{owner}/{name}.json"))
                .await?;
            if json {
                return print_json(&r);
            }
            println!("repository:     {}", text(&r["fqname"]));
            println!(
                "access:         {}",
                if r["private"].as_bool() == Some(true) {
                    "private"
                } else {
                    "public"
                }
            );
            println!("created:        {}", text(&r["created_at"]));
            println!("packages:       {}", text(&r["package_count_human"]));
            println!("last push:      {}", text(&r["last_push_human"]));
            println!("web:            {}", text(&r["url"]));
            println!("install script: {}", text(&r["urls"]["install_script"]));
            Ok(())
        }
    }
}

/// `OWNER/REPO`.
fn owner_repo(text: &str) -> Result<(&str, &str)> {
    match text.split('/').collect::<Vec<_>>().as_slice() {
        [owner, name] if !owner.is_empty() && !name.is_empty() => Ok((owner, name)),
        _ => Err(Exit::usage(format!("{text:?} is not OWNER/REPO")).into()),
    }
}

/// `OWNER/REPO/OS/DIST`.
fn package_target(text: &str) -> Result<Destination> {
    let dest = Destination::parse(text)?;
    if dest.dist.is_none() {
        return Err(Exit::usage(format!(
            "{text:?} is not OWNER/REPO/OS/DIST (python/1, node/1 and anyfile/1 for those formats)"
        ))
        .into());
    }
    Ok(dest)
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `packyard yank OWNER/REPO/OS/DIST FILE`: removes a package, as package_cloud does.
pub async fn yank(remote: Remote, target: String, file: String) -> Result<()> {
    let dest = package_target(&target)?;
    let path = format!(
        "/api/v1/repos/{}/{}/{}/{}/{}",
        dest.owner,
        dest.repo,
        dest.os.as_deref().unwrap_or_default(),
        dest.dist.as_deref().unwrap_or_default(),
        file
    );
    remote.api()?.delete(&path).await?;
    println!("yanked {file} from {target}; the next publish leaves it out");
    Ok(())
}

/// `packyard promote OWNER/REPO/OS/DIST FILE DEST_OWNER/DEST_REPO [--copy]`.
pub async fn promote(
    remote: Remote,
    source: String,
    file: String,
    destination: String,
    copy: bool,
) -> Result<()> {
    let dest = package_target(&source)?;
    owner_repo(&destination)?;
    let path = format!(
        "/api/v1/repos/{}/{}/{}/{}/{}/promote.json",
        dest.owner,
        dest.repo,
        dest.os.as_deref().unwrap_or_default(),
        dest.dist.as_deref().unwrap_or_default(),
        file
    );
    let mut form = vec![("destination", destination.clone())];
    if copy {
        form.push(("copy", "true".into()));
    }
    // A second try of a move finds nothing to move; of a copy, the copy already there.
    let _: Value = remote
        .api()?
        .post_form(&path, Retry::OnConnect, &form)
        .await?;
    println!(
        "{} {file} from {} to {destination}",
        if copy { "copied" } else { "moved" },
        dest.repository()
    );
    Ok(())
}

#[derive(Args)]
pub struct LsArgs {
    #[command(flatten)]
    remote: Remote,
    /// OWNER/REPO, or OWNER/REPO/OS or OWNER/REPO/OS/DIST for one distribution
    repository: String,
    /// Only this package type: deb, rpm, dsc, python, node, anyfile
    #[arg(long = "type")]
    kind: Option<String>,
    /// Only this architecture
    #[arg(long)]
    arch: Option<String>,
    /// Only packages of this name
    #[arg(long)]
    name: Option<String>,
    /// Only file names containing this
    #[arg(long)]
    query: Option<String>,
    /// At most this many packages
    #[arg(long, default_value_t = 1000)]
    limit: usize,
    #[arg(long)]
    json: bool,
}

/// Every package the search matches, following the pages (`Link: ...; rel="next"`) up to
/// `limit`.
async fn search(
    api: &Api,
    owner: &str,
    repo: &str,
    query: &[(&str, String)],
    limit: usize,
) -> Result<Vec<api::Package>> {
    let mut found = Vec::new();
    for page in 1.. {
        let mut query = query.to_vec();
        query.push(("per_page", "100".into()));
        query.push(("page", page.to_string()));
        let path = format!(
            "/api/v1/repos/{owner}/{repo}/search.json?{}",
            serde_urlencoded::to_string(&query)?
        );
        let response = api
            .send(reqwest::Method::GET, &path, Retry::Always, |r| r)
            .await?;
        let more = response
            .headers()
            .get_all(reqwest::header::LINK)
            .iter()
            .any(|link| link.to_str().is_ok_and(|l| l.contains("rel=\"next\"")));
        let batch: Vec<api::Package> = crate::client::http::json(response).await?;
        found.extend(batch);
        if !more || found.len() >= limit {
            break;
        }
    }
    found.truncate(limit);
    Ok(found)
}

pub async fn ls(args: LsArgs) -> Result<()> {
    let dest = Destination::parse(&args.repository)?;
    let api = args.remote.api()?;
    let mut query = Vec::new();
    if let Some(os) = &dest.os {
        let dist = match &dest.dist {
            Some(dist) => format!("{os}/{dist}"),
            None => os.clone(),
        };
        query.push(("dist", dist));
    }
    if let Some(kind) = &args.kind {
        let filter = match kind.as_str() {
            "deb" | "rpm" | "dsc" | "gem" => format!("{kind}s"),
            "py" => "python".into(),
            other => other.to_owned(),
        };
        query.push(("filter", filter));
    }
    if let Some(arch) = &args.arch {
        query.push(("arch", arch.clone()));
    }
    if let Some(q) = args.query.as_ref().or(args.name.as_ref()) {
        query.push(("q", q.clone()));
    }
    let mut packages = search(&api, &dest.owner, &dest.repo, &query, args.limit).await?;
    if let Some(name) = &args.name {
        packages.retain(|p| &p.name == name);
    }
    if args.json {
        return print_json(&packages);
    }
    println!(
        "{:<6} {:<18} {:<28} {:<24} {:<8} {:>10}  {:<7}  FILE",
        "TYPE", "DISTRIBUTION", "NAME", "VERSION", "ARCH", "SIZE", "INDEXED"
    );
    for p in &packages {
        println!(
            "{:<6} {:<18} {:<28} {:<24} {:<8} {:>10}  {:<7}  {}",
            p.package_type,
            p.distro_version,
            p.name,
            full_version(p),
            p.architecture,
            p.size,
            if p.indexed { "yes" } else { "not yet" },
            p.filename
        );
    }
    eprintln!("{} package(s)", packages.len());
    Ok(())
}

fn full_version(p: &api::Package) -> String {
    let mut version = String::new();
    if let Some(epoch) = p.epoch.filter(|e| *e > 0) {
        version.push_str(&format!("{epoch}:"));
    }
    version.push_str(&p.version);
    if let Some(release) = p.release.as_deref().filter(|r| !r.is_empty()) {
        version.push('-');
        version.push_str(release);
    }
    version
}

/// The package a file name names in OWNER/REPO/OS/DIST, as the server shows it now.
async fn find_package(api: &Api, target: &str, file: &str) -> Result<api::Package> {
    let dest = package_target(target)?;
    let dist = format!(
        "{}/{}",
        dest.os.as_deref().unwrap_or_default(),
        dest.dist.as_deref().unwrap_or_default()
    );
    let found = search(
        api,
        &dest.owner,
        &dest.repo,
        &[("q", file.to_owned()), ("dist", dist)],
        1000,
    )
    .await?;
    let package = found
        .into_iter()
        .find(|p| p.filename == file || p.filename.rsplit('/').next() == Some(file))
        .ok_or_else(|| anyhow::anyhow!("{target} has no package file {file}"))?;
    // The search's entry may be older than a publish that just happened.
    api.get(&package.self_url).await
}

pub async fn show(remote: Remote, target: String, file: String, json: bool) -> Result<()> {
    let api = remote.api()?;
    let package = find_package(&api, &target, &file).await?;
    let downloads: Value = api
        .get(&package.downloads_count_url)
        .await
        .unwrap_or(Value::Null);
    if json {
        let mut value = serde_json::to_value(&package)?;
        value["downloads"] = downloads["value"].clone();
        return print_json(&value);
    }
    println!("name:         {}", package.name);
    println!("version:      {}", full_version(&package));
    println!("architecture: {}", package.architecture);
    println!("type:         {}", package.package_type);
    println!("distribution: {}", package.distro_version);
    println!("file:         {}", package.filename);
    println!("size:         {} bytes", package.size);
    println!("pushed:       {}", package.created_at);
    println!(
        "indexed:      {}",
        if package.indexed {
            "yes, in the served signed index"
        } else {
            "not yet"
        }
    );
    println!("downloads:    {}", text(&downloads["value"]));
    println!("md5:          {}", package.md5sum);
    println!("sha1:         {}", package.sha1sum);
    println!("sha256:       {}", package.sha256sum);
    println!("sha512:       {}", package.sha512sum);
    println!("download:     {}", package.download_url);
    for (kind, list) in &package.dependencies {
        println!("{:<13} {}", format!("{kind}:"), list.join(", "));
    }
    Ok(())
}

pub async fn stats(
    remote: Remote,
    target: String,
    file: String,
    days: u32,
    json: bool,
) -> Result<()> {
    let api = remote.api()?;
    let package = find_package(&api, &target, &file).await?;
    let count: Value = api.get(&package.downloads_count_url).await?;
    let series: std::collections::BTreeMap<String, i64> =
        api.get(&package.downloads_series_url).await?;
    let since = time::OffsetDateTime::now_utc() - time::Duration::days(i64::from(days));
    let format = time::macros::format_description!("[year][month][day]Z");
    let since = since.format(&format)?;
    let recent: Vec<(&String, &i64)> = series.iter().filter(|(day, _)| **day >= since).collect();
    if json {
        return print_json(&json!({
            "file": package.filename,
            "total": count["value"],
            "daily": recent.iter().map(|(d, n)| (d.to_string(), **n)).collect::<std::collections::BTreeMap<_, _>>(),
        }));
    }
    println!(
        "{}: {} download(s) in all",
        package.filename,
        text(&count["value"])
    );
    for (day, n) in recent {
        println!("{}  {n}", day.trim_end_matches('Z'));
    }
    Ok(())
}

pub async fn distro_list(remote: Remote, kind: Option<String>, json: bool) -> Result<()> {
    let all: api::Distributions = remote.api()?.get("/api/v1/distributions.json").await?;
    let wanted: Vec<(&String, &Vec<api::DistributionFamily>)> = all
        .iter()
        .filter(|(key, _)| {
            kind.as_ref()
                .is_none_or(|k| *k == **key || (k == "python" && *key == "py"))
        })
        .collect();
    if wanted.is_empty() {
        return Err(Exit::usage(format!(
            "the server has no package type {:?}; it has {}",
            kind.unwrap_or_default(),
            all.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
        .into());
    }
    if json {
        return print_json(
            &wanted
                .into_iter()
                .collect::<std::collections::BTreeMap<_, _>>(),
        );
    }
    println!("{:<8} {:<24} {:>5}  NAME", "TYPE", "OS/DIST", "ID");
    for (key, families) in wanted {
        for family in families {
            for v in &family.versions {
                println!(
                    "{:<8} {:<24} {:>5}  {} {}",
                    key,
                    format!("{}/{}", family.index_name, v.index_name),
                    v.id,
                    family.display_name,
                    v.display_name
                );
            }
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct LoginArgs {
    /// The server, such as https://packages.example.com [env: PACKYARD_URL; default: the
    /// profile's]
    #[arg(long)]
    url: Option<String>,
    /// Save the token under this profile [default: default]
    #[arg(long)]
    profile: Option<String>,
    /// The account's email address (asked for when not given)
    #[arg(long)]
    email: Option<String>,
}

/// Trades an email and password for the account's API token (`GET /api/v1/token.json`, as
/// package_cloud does) and keeps it in the client configuration, readable by its owner only.
pub async fn login(args: LoginArgs) -> Result<()> {
    let mut file = ConfigFile::load()?;
    let profile_name = args
        .profile
        .clone()
        .or_else(|| std::env::var("PACKYARD_PROFILE").ok())
        .or_else(|| file.default_profile.clone())
        .unwrap_or_else(|| "default".into());
    let url = args
        .url
        .clone()
        .or_else(|| std::env::var("PACKYARD_URL").ok().filter(|u| !u.is_empty()))
        .or_else(|| file.profile.get(&profile_name).and_then(|p| p.url.clone()))
        .ok_or_else(|| Exit::usage("which server? give --url"))?;
    let url = url.trim_end_matches('/').to_owned();
    let email = match args.email {
        Some(email) => email,
        None => prompt_line("email: ")?,
    };
    let password = match std::env::var("PACKYARD_PASSWORD") {
        Ok(password) => password,
        Err(_) if std::io::stdin().is_terminal() => rpassword::prompt_password("password: ")?,
        Err(_) => read_line()?,
    };
    let api = Api::new(
        config::Remote {
            url: url.clone(),
            token: None,
        },
        DEFAULT_RETRIES,
    )?;
    let response = api
        .send(
            reqwest::Method::GET,
            "/api/v1/token.json",
            Retry::Always,
            |r| r.basic_auth(&email, Some(&password)),
        )
        .await;
    let response = match response {
        Err(e) if e.downcast_ref::<Refused>().is_some_and(|r| r.status == 401) => {
            anyhow::bail!("{url} did not accept that email and password")
        }
        other => other?,
    };
    let answer: Value = crate::client::http::json(response).await?;
    let token = answer["token"]
        .as_str()
        .context("the server's answer had no token")?
        .to_owned();
    file.profile.insert(
        profile_name.clone(),
        Profile {
            url: Some(url.clone()),
            token: Some(token.clone()),
        },
    );
    if file.default_profile.is_none() && profile_name != "default" && file.profile.len() == 1 {
        file.default_profile = Some(profile_name.clone());
    }
    let path = file.save()?;
    println!(
        "logged in to {url} as {email}; token {} saved in {} (profile {profile_name})",
        masked(&token),
        path.display()
    );
    Ok(())
}

fn prompt_line(prompt: &str) -> Result<String> {
    if std::io::stdin().is_terminal() {
        eprint!("{prompt}");
    }
    read_line()
}

fn read_line() -> Result<String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    anyhow::ensure!(!line.is_empty(), "nothing was given on standard input");
    Ok(line)
}

/// Asks before something that cannot be undone, unless `--yes`; off a terminal `--yes` is
/// required.
fn confirm(question: &str, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Exit::usage(format!(
            "{question} Give --yes to go ahead without a terminal to ask on."
        ))
        .into());
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    anyhow::ensure!(
        matches!(answer.trim(), "y" | "Y" | "yes"),
        "nothing was changed"
    );
    Ok(())
}

#[derive(Subcommand)]
pub enum ReadTokenCommand {
    /// Read tokens of a master token, values masked
    List {
        #[command(flatten)]
        remote: Remote,
        repository: String,
        /// The master token they belong to
        #[arg(long, default_value = "default")]
        master: String,
        #[arg(long)]
        json: bool,
    },
    /// Make a read token for a host (usually its name) and print its value
    Create {
        #[command(flatten)]
        remote: Remote,
        repository: String,
        name: String,
        #[arg(long, default_value = "default")]
        master: String,
    },
    /// Stop a read token from working
    Revoke {
        #[command(flatten)]
        remote: Remote,
        repository: String,
        /// The read token's name or id
        #[arg(value_name = "TOKEN")]
        read_token: String,
        #[arg(long, default_value = "default")]
        master: String,
        /// Do not ask first
        #[arg(long)]
        yes: bool,
    },
}

/// A repository's master tokens as the API lists them.
async fn masters(api: &Api, owner: &str, name: &str) -> Result<Vec<Value>> {
    api.get(&format!("/api/v1/repos/{owner}/{name}/master_tokens.json"))
        .await
}

/// A master token of OWNER/REPO by name: the API, the token as listed, and its path.
struct Master {
    api: Api,
    token: Value,
    path: String,
}

impl Master {
    async fn find(remote: &Remote, repository: &str, name: &str) -> Result<Master> {
        let (owner, repo) = owner_repo(repository)?;
        let api = remote.api()?;
        let token = masters(&api, owner, repo)
            .await?
            .into_iter()
            .find(|m| m["name"].as_str() == Some(name))
            .ok_or_else(|| anyhow::anyhow!("{repository} has no master token named {name}"))?;
        let path = format!(
            "/api/v1/repos/{owner}/{repo}/master_tokens/{}",
            text(&token["id"])
        );
        Ok(Master { api, token, path })
    }
}

fn shown(value: &Value) -> String {
    value.as_str().map(masked).unwrap_or_else(|| "-".into())
}

pub async fn token_list(remote: Remote, repository: String, json: bool) -> Result<()> {
    let (owner, name) = owner_repo(&repository)?;
    let mut list = masters(&remote.api()?, owner, name).await?;
    for m in &mut list {
        mask_values(m);
    }
    if json {
        return print_json(&list);
    }
    println!("{:<24}  {:<12}  READ TOKENS", "MASTER TOKEN", "VALUE");
    for m in &list {
        let reads = m["read_tokens"].as_array().cloned().unwrap_or_default();
        println!(
            "{:<24}  {:<12}  {}",
            text(&m["name"]),
            text(&m["value"]),
            reads.len()
        );
        for r in &reads {
            println!(
                "  read {:<19}  {:<12}  id {}",
                text(&r["name"]),
                text(&r["value"]),
                text(&r["id"])
            );
        }
    }
    Ok(())
}

/// Replaces every token value in a listing by its masked form.
fn mask_values(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key == "value" {
                    *v = Value::String(shown(v));
                } else {
                    mask_values(v);
                }
            }
        }
        Value::Array(list) => list.iter_mut().for_each(mask_values),
        _ => {}
    }
}

pub async fn token_create(remote: Remote, repository: String, name: String) -> Result<()> {
    let (owner, repo) = owner_repo(&repository)?;
    let created: Value = remote
        .api()?
        .post_form(
            &format!("/api/v1/repos/{owner}/{repo}/master_tokens.json"),
            Retry::OnConnect,
            &[("master_token[name]", name.clone())],
        )
        .await?;
    // The one time the value is shown: what the command is for.
    println!("{}", text(&created["value"]));
    eprintln!(
        "master token {name} of {repository}: keep the value above, it is not shown again in full"
    );
    Ok(())
}

pub async fn token_rotate(
    remote: Remote,
    repository: String,
    name: String,
    grace: String,
) -> Result<()> {
    let m = Master::find(&remote, &repository, &name).await?;
    let rotated: Value = m
        .api
        .post_form(
            &format!("{}/rotate.json", m.path),
            Retry::OnConnect,
            &[("grace", grace.clone())],
        )
        .await?;
    println!("{}", text(&rotated["value"]));
    eprintln!("the previous value and its read tokens keep working for {grace}");
    Ok(())
}

pub async fn token_revoke(
    remote: Remote,
    repository: String,
    name: String,
    yes: bool,
) -> Result<()> {
    let m = Master::find(&remote, &repository, &name).await?;
    let reads = m.token["read_tokens"].as_array().map_or(0, Vec::len);
    confirm(
        &format!(
            "Revoke master token {name} of {repository}? Its {reads} read token(s) stop working too, and hosts using them can no longer install."
        ),
        yes,
    )?;
    m.api.delete(&m.path).await?;
    println!("revoked master token {name} and its {reads} read token(s)");
    Ok(())
}

pub async fn read_token(command: ReadTokenCommand) -> Result<()> {
    match command {
        ReadTokenCommand::List {
            remote,
            repository,
            master: master_name,
            json,
        } => {
            let mut m = Master::find(&remote, &repository, &master_name)
                .await?
                .token;
            mask_values(&mut m);
            let reads = m["read_tokens"].as_array().cloned().unwrap_or_default();
            if json {
                return print_json(&reads);
            }
            println!("{:>6}  {:<32}  VALUE", "ID", "NAME");
            for r in &reads {
                println!(
                    "{:>6}  {:<32}  {}",
                    text(&r["id"]),
                    text(&r["name"]),
                    text(&r["value"])
                );
            }
            Ok(())
        }
        ReadTokenCommand::Create {
            remote,
            repository,
            name,
            master: master_name,
        } => {
            let m = Master::find(&remote, &repository, &master_name).await?;
            let created: Value = m
                .api
                .post_form(
                    &format!("{}/read_tokens.json", m.path),
                    Retry::OnConnect,
                    &[("read_token[name]", name.clone())],
                )
                .await?;
            println!("{}", text(&created["value"]));
            Ok(())
        }
        ReadTokenCommand::Revoke {
            remote,
            repository,
            read_token: token,
            master: master_name,
            yes,
        } => {
            let m = Master::find(&remote, &repository, &master_name).await?;
            let read = m.token["read_tokens"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["name"].as_str() == Some(token.as_str()) || text(&r["id"]) == token)
                .cloned()
                .ok_or_else(|| {
                    anyhow::anyhow!("master token {master_name} has no read token {token}")
                })?;
            confirm(
                &format!(
                    "Revoke read token {} of {repository}? Hosts using it can no longer install.",
                    text(&read["name"])
                ),
                yes,
            )?;
            m.api
                .delete(&format!("{}/read_tokens/{}", m.path, text(&read["id"])))
                .await?;
            println!("revoked read token {}", text(&read["name"]));
            Ok(())
        }
    }
}

/// The client form of `packyard reindex OWNER/REPO[/OS/DIST] [--package FILE] [--wait]`.
pub async fn reindex(
    remote: &Remote,
    target: &str,
    package: Option<&str>,
    wait: Option<Duration>,
    json: bool,
) -> Result<()> {
    let dest = Destination::parse(target)?;
    let mut form = Vec::new();
    if let (Some(os), Some(dist)) = (&dest.os, &dest.dist) {
        form.push(("os", os.clone()));
        form.push(("dist", dist.clone()));
    } else if dest.os.is_some() {
        return Err(Exit::usage(format!(
            "{target:?} is not OWNER/REPO or OWNER/REPO/OS/DIST"
        ))
        .into());
    }
    if let Some(file) = package {
        form.push(("filename", file.to_owned()));
    }
    let api = remote.api()?;
    let started = std::time::Instant::now();
    let deadline = wait.map(|w| started + w);
    let mut path = format!("/api/v1/repos/{}/{}/reindex.json", dest.owner, dest.repo);
    if let Some(wait) = wait {
        path.push_str(&format!("?wait={}", wait.as_secs().clamp(1, 60)));
    }
    let mut answer: Value = api.post_form(&path, Retry::Always, &form).await?;
    // The server waits at most a minute per request; ask again (an idempotent rebuild of what
    // is queued anyway) until the deadline.
    while let Some(deadline) = deadline {
        if answer["done"].as_bool() == Some(true) || std::time::Instant::now() >= deadline {
            break;
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let path = format!(
            "/api/v1/repos/{}/{}/reindex.json?wait={}",
            dest.owner,
            dest.repo,
            left.as_secs().clamp(1, 60)
        );
        answer = api.post_form(&path, Retry::Always, &form).await?;
    }
    if json {
        print_json(&answer)?;
    } else {
        println!(
            "queued a rebuild of {} target(s) of {}",
            text(&answer["targets_queued"]),
            dest.repository()
        );
        if answer["done"].as_bool() == Some(true) {
            println!(
                "published: every package is in the served index ({:.1} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    if wait.is_some() && answer["done"].as_bool() != Some(true) {
        return Err(Exit {
            code: 4,
            message: format!("not published yet: {}", text(&answer["waiting"])),
        }
        .into());
    }
    Ok(())
}

/// `packyard completions SHELL`.
pub fn completions(shell: clap_complete::Shell, command: &mut clap::Command) {
    clap_complete::generate(shell, command, "packyard", &mut std::io::stdout());
}

/// `packyard man [--dir DIR]`: the man page on standard output, or one page per command in
/// DIR.
pub fn man(command: clap::Command, dir: Option<&std::path::Path>) -> Result<()> {
    match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            clap_mangen::generate_to(command, dir)?;
            Ok(())
        }
        None => {
            clap_mangen::Man::new(command).render(&mut std::io::stdout())?;
            Ok(())
        }
    }
}
