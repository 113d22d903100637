//! Where the client commands find their server and token, highest first: flags (`--url`,
//! `--token`, `--profile`), `PACKYARD_URL`/`PACKYARD_TOKEN`, `PACKAGECLOUD_URL`/
//! `PACKAGECLOUD_TOKEN`, a profile of `~/.config/packyard/config.toml`, then package_cloud's
//! own `~/.packagecloud`, so a machine set up for package_cloud needs nothing more.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// package_cloud's server when its file names none.
const PACKAGECLOUD_URL: &str = "https://packagecloud.io";

/// The flags that point a command at a server; any of them makes `key`, `token` and
/// `reindex` talk to it rather than to a data folder.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RemoteArgs {
    /// The server, such as https://packages.example.com [env: PACKYARD_URL, PACKAGECLOUD_URL]
    #[arg(long)]
    pub url: Option<String>,
    /// An API token [env: PACKYARD_TOKEN, PACKAGECLOUD_TOKEN]; other users of this machine
    /// can read it in the process list, so prefer the environment or `packyard login`
    #[arg(long)]
    pub token: Option<String>,
    /// A profile of the client configuration (~/.config/packyard/config.toml) [env: PACKYARD_PROFILE]
    #[arg(long)]
    pub profile: Option<String>,
}

impl RemoteArgs {
    pub fn given(&self) -> bool {
        self.url.is_some() || self.token.is_some() || self.profile.is_some()
    }
}

/// A server and the token to speak to it with.
#[derive(Debug, Clone)]
pub struct Remote {
    /// Without a trailing slash.
    pub url: String,
    pub token: Option<String>,
}

/// `~/.config/packyard/config.toml`:
///
/// ```toml
/// default_profile = "work"
/// [profile.work]
/// url = "https://packages.example.com"
/// token = "..."
/// ```
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ConfigFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_profile: Option<String>,
    #[serde(default)]
    pub profile: BTreeMap<String, Profile>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn home() -> Option<PathBuf> {
    etcetera::home_dir().ok()
}

/// The client configuration file: `$PACKYARD_CLIENT_CONFIG`, or `config.toml` in
/// `$XDG_CONFIG_HOME/packyard` (`~/.config/packyard`).
pub fn config_path() -> Result<PathBuf> {
    if let Some(path) = env("PACKYARD_CLIENT_CONFIG") {
        return Ok(PathBuf::from(path));
    }
    use etcetera::BaseStrategy;
    let strategy = etcetera::choose_base_strategy().context("finding the home folder")?;
    Ok(strategy.config_dir().join("packyard").join("config.toml"))
}

impl ConfigFile {
    pub fn load() -> Result<ConfigFile> {
        let path = config_path()?;
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                toml::from_str(&text).with_context(|| format!("reading {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Writes the file readable by its owner only (it holds tokens), replacing it whole.
    pub fn save(&self) -> Result<PathBuf> {
        let path = config_path()?;
        let dir = path
            .parent()
            .context("the configuration file has no folder")?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let text = toml::to_string(self)?;
        let mut file = tempfile::Builder::new()
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .tempfile_in(dir)
            .with_context(|| format!("writing in {}", dir.display()))?;
        file.write_all(text.as_bytes())?;
        file.as_file().sync_all()?;
        file.persist(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    fn profile(&self, name: Option<&str>) -> Result<Option<&Profile>> {
        match name.or(self.default_profile.as_deref()) {
            Some(name) => self.profile.get(name).map(Some).ok_or_else(|| {
                anyhow::anyhow!(
                    "no profile {name:?} in {}; `packyard login --profile {name}` makes one",
                    config_path()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                )
            }),
            None => Ok(self.profile.get("default")),
        }
    }
}

/// package_cloud's `~/.packagecloud`: `{"url": ..., "token": ...}`.
fn packagecloud_file() -> Result<Option<Profile>> {
    let Some(path) = home().map(|h| h.join(".packagecloud")) else {
        return Ok(None);
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mut profile: Profile = serde_json::from_str(&text)
                .with_context(|| format!("reading {}", path.display()))?;
            profile.url.get_or_insert_with(|| PACKAGECLOUD_URL.into());
            Ok(Some(profile))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Whether anything names a server for the client commands, short of flags.
pub fn configured() -> bool {
    [
        "PACKYARD_URL",
        "PACKYARD_TOKEN",
        "PACKAGECLOUD_TOKEN",
        "PACKYARD_PROFILE",
    ]
    .iter()
    .any(|name| env(name).is_some())
        || config_path().is_ok_and(|p| p.exists())
        || home().is_some_and(|h| h.join(".packagecloud").exists())
}

/// The server and token the flags, the environment and the files name.
pub fn resolve(args: &RemoteArgs) -> Result<Remote> {
    let file = ConfigFile::load()?;
    let profile_name = args.profile.clone().or_else(|| env("PACKYARD_PROFILE"));
    let profile = file
        .profile(profile_name.as_deref())?
        .cloned()
        .unwrap_or_default();
    let packagecloud = packagecloud_file()?.unwrap_or_default();
    let url = args
        .url
        .clone()
        .or_else(|| env("PACKYARD_URL"))
        .or_else(|| env("PACKAGECLOUD_URL"))
        .or(profile.url)
        .or(packagecloud.url)
        .context(
            "no server: give --url, set PACKYARD_URL, run `packyard login --url URL`, \
             or set up ~/.packagecloud",
        )?;
    let token = args
        .token
        .clone()
        .or_else(|| env("PACKYARD_TOKEN"))
        .or_else(|| env("PACKAGECLOUD_TOKEN"))
        .or(profile.token)
        .or(packagecloud.token);
    Ok(Remote {
        url: url.trim_end_matches('/').to_owned(),
        token,
    })
}

/// A token as it may be shown: its last four characters.
pub fn masked(token: &str) -> String {
    let tail: String = token
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("******{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_all_but_the_last_four_characters() {
        assert_eq!(masked("abcdef123456"), "******3456");
        assert_eq!(masked("ab"), "******ab");
    }
}
