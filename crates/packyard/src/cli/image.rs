//! `packyard image tag|rollback|history|ls`: container image tags through the server, as
//! `http/api/images.rs` and the registry's tag list answer them. Promotion is moving a tag to
//! a digest; `rollback` moves it back one step.

use anyhow::Result;
use clap::Subcommand;
use serde_json::Value;

use crate::cli::client::Remote;
use crate::client::Exit;
use crate::client::http::Retry;

#[derive(Subcommand)]
pub enum ImageCommand {
    /// Point TAG at a manifest: `packyard image tag OWNER/REPO/IMAGE@sha256:... prod`
    Tag {
        #[command(flatten)]
        remote: Remote,
        /// OWNER/REPO/IMAGE@sha256:DIGEST
        source: String,
        tag: String,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Move TAG back to where it pointed before its last move: OWNER/REPO/IMAGE:TAG
    Rollback {
        #[command(flatten)]
        remote: Remote,
        /// OWNER/REPO/IMAGE:TAG
        target: String,
        #[arg(long)]
        json: bool,
    },
    /// Every move of a tag, newest first: OWNER/REPO/IMAGE:TAG
    History {
        #[command(flatten)]
        remote: Remote,
        /// OWNER/REPO/IMAGE:TAG
        target: String,
        #[arg(long)]
        json: bool,
    },
}

/// `OWNER/REPO/IMAGE` split at its first two slashes.
fn split_name(name: &str) -> Result<(&str, &str, &str)> {
    let mut parts = name.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(owner), Some(repo), Some(image))
            if !owner.is_empty() && !repo.is_empty() && !image.is_empty() =>
        {
            Ok((owner, repo, image))
        }
        _ => Err(Exit::usage(format!("{name:?} is not OWNER/REPO/IMAGE")).into()),
    }
}

/// `OWNER/REPO/IMAGE:TAG`, the tag after the last colon.
fn split_tagged(target: &str) -> Result<(&str, &str, &str, &str)> {
    let (name, tag) = target
        .rsplit_once(':')
        .filter(|(name, tag)| !tag.is_empty() && !tag.contains('/') && !name.is_empty())
        .ok_or_else(|| Exit::usage(format!("{target:?} is not OWNER/REPO/IMAGE:TAG")))?;
    let (owner, repo, image) = split_name(name)?;
    Ok((owner, repo, image, tag))
}

pub async fn run(command: ImageCommand) -> Result<()> {
    match command {
        ImageCommand::Tag {
            remote,
            source,
            tag,
            json,
        } => {
            let (name, digest) = source.split_once('@').ok_or_else(|| {
                Exit::usage(format!("{source:?} is not OWNER/REPO/IMAGE@sha256:DIGEST"))
            })?;
            let (owner, repo, image) = split_name(name)?;
            let path = format!("/api/v1/repos/{owner}/{repo}/images/tag.json");
            let form = [
                ("image", image.to_owned()),
                ("digest", digest.to_owned()),
                ("tag", tag),
            ];
            // Moving a tag again to the same digest changes nothing: safe to retry.
            let moved: Value = remote.api()?.post_form(&path, Retry::Always, &form).await?;
            print_move(&moved, json, "tagged")
        }
        ImageCommand::Rollback {
            remote,
            target,
            json,
        } => {
            let (owner, repo, image, tag) = split_tagged(&target)?;
            let path = format!("/api/v1/repos/{owner}/{repo}/images/rollback.json");
            let form = [("image", image.to_owned()), ("tag", tag.to_owned())];
            // A second rollback would go one step further: only retried if never sent.
            let moved: Value = remote
                .api()?
                .post_form(&path, Retry::OnConnect, &form)
                .await?;
            print_move(&moved, json, "rolled back")
        }
        ImageCommand::History {
            remote,
            target,
            json,
        } => {
            let (owner, repo, image, tag) = split_tagged(&target)?;
            let query = serde_urlencoded::to_string([("image", image), ("tag", tag)])?;
            let path = format!("/api/v1/repos/{owner}/{repo}/images/history.json?{query}");
            let moves: Vec<Value> = remote.api()?.get(&path).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&moves)?);
                return Ok(());
            }
            println!("{:<20}  {:<71}  {:<10}  ACTOR", "MOVED", "DIGEST", "KIND");
            for m in &moves {
                let at = m["moved_at"].as_i64().unwrap_or_default();
                let when = crate::http::ui::view::datetime(at);
                let digest = m["digest"]
                    .as_str()
                    .filter(|d| !d.is_empty())
                    .unwrap_or("(deleted)");
                let kind = match (m["rollback"].as_bool(), m["undone"].as_bool()) {
                    (Some(true), _) => "rollback",
                    (_, Some(true)) => "undone",
                    _ => "move",
                };
                println!(
                    "{when:<20}  {digest:<71}  {kind:<10}  {}",
                    m["actor"].as_str().unwrap_or_default()
                );
            }
            Ok(())
        }
    }
}

fn print_move(moved: &Value, json: bool, verb: &str) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(moved)?);
        return Ok(());
    }
    let (image, tag, digest) = (
        moved["image"].as_str().unwrap_or_default(),
        moved["tag"].as_str().unwrap_or_default(),
        moved["digest"].as_str().unwrap_or_default(),
    );
    match (moved["moved"].as_bool(), moved["previous"].as_str()) {
        (Some(false), _) => println!("{image}:{tag} already points at {digest}"),
        (_, Some(previous)) => println!("{verb} {image}:{tag}: {previous} -> {digest}"),
        _ => println!("{verb} {image}:{tag}: new tag -> {digest}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_as_registries_write_them() {
        assert_eq!(split_name("a/b/c/d").unwrap(), ("a", "b", "c/d"));
        assert!(split_name("a/b").is_err());
        assert_eq!(split_tagged("a/b/c:prod").unwrap(), ("a", "b", "c", "prod"));
        assert!(split_tagged("a/b/c").is_err());
        assert!(split_tagged("a/b/c:").is_err());
    }
}
