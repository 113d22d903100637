//! Every client subcommand against a running server: login, repo, distro, ls, show, stats,
//! promote, yank, token (master and read), key, reindex, completions and man.

use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use super::{Client, text, write_debs};
use crate::support::TestApp;

#[tokio::test]
async fn login_keeps_the_token_for_the_owner_alone() {
    let app = TestApp::new().await;
    packyard::db::users::set_login(
        &app.app.db,
        "admin",
        "admin@example.com",
        "correct horse battery",
    )
    .await
    .unwrap();
    let client = Client::bare().with_env("PACKYARD_PASSWORD", "correct horse battery");
    let out = client
        .ok(&["login", "--url", &app.base, "--email", "admin@example.com"])
        .await;
    assert!(
        out.contains("******") && !out.contains(&app.token),
        "never the whole token: {out}"
    );
    let path = client.home.path().join(".config/packyard/config.toml");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{path:?}");
    let saved = std::fs::read_to_string(&path).unwrap();
    assert!(
        saved.contains("[profile.default]") && saved.contains(&app.base),
        "{saved}"
    );

    // The saved profile is all later commands need.
    app.create_repo("stable", false).await;
    let listed = Client {
        home: client.home,
        env: Vec::new(),
    }
    .ok(&["repo", "list"])
    .await;
    assert!(listed.contains("admin/stable"), "{listed}");

    let wrong = Client::bare().with_env("PACKYARD_PASSWORD", "not the password");
    let out = wrong
        .run(&["login", "--url", &app.base, "--email", "admin@example.com"])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("did not accept"), "{}", text(&out));
    assert!(
        !wrong
            .home
            .path()
            .join(".config/packyard/config.toml")
            .exists()
    );
}

#[tokio::test]
async fn repositories_distributions_and_packages() {
    let app = TestApp::new().await;
    let client = Client::new(&app.base, &app.token);
    client.ok(&["repo", "create", "stable"]).await;
    let created = client.ok(&["repo", "create", "secret", "--private"]).await;
    assert!(created.contains("private repository secret"), "{created}");
    let listed = client.ok(&["repo", "list"]).await;
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("admin/secret") && l.contains("private")),
        "{listed}"
    );
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("admin/stable") && l.contains("public")),
        "{listed}"
    );
    let shown = client.ok(&["repo", "show", "admin/secret"]).await;
    assert!(shown.contains("access:         private"), "{shown}");
    assert!(
        shown.contains("/install/repositories/admin/secret/script"),
        "{shown}"
    );
    let json: Value = client.json(&["repo", "show", "admin/stable"]).await;
    assert_eq!(json["fqname"], "admin/stable");

    let distros = client.ok(&["distro", "list", "deb"]).await;
    assert!(
        distros
            .lines()
            .any(|l| l.contains("debian/bookworm") && l.contains(" 12 ")),
        "{distros}"
    );
    assert!(!distros.contains("el/9"), "{distros}");
    assert_eq!(
        client
            .run(&["distro", "list", "nosuch"])
            .await
            .status
            .code(),
        Some(2)
    );

    let work = tempfile::tempdir().unwrap();
    let debs = write_debs(work.path(), "hello", 2);
    let files: Vec<&str> = debs.iter().map(|p| p.to_str().unwrap()).collect();
    client
        .ok(&[
            "push",
            "admin/stable/debian/bookworm",
            files[0],
            files[1],
            "--wait",
        ])
        .await;

    let ls = client.ok(&["ls", "admin/stable"]).await;
    assert_eq!(
        ls.lines().filter(|l| l.contains(" hello0")).count(),
        2,
        "{ls}"
    );
    assert!(
        ls.contains("hello00") && ls.contains("debian/bookworm") && ls.contains("yes"),
        "{ls}"
    );
    let named: Vec<Value> = client
        .json(&["ls", "admin/stable", "--name", "hello01"])
        .await;
    assert_eq!(named.len(), 1);
    assert_eq!(named[0]["filename"], "hello01_1.0_amd64.deb");
    let none: Vec<Value> = client.json(&["ls", "admin/stable/el/9"]).await;
    assert!(none.is_empty());

    let sha256 = packyard_formats::digest::sha256_hex(&std::fs::read(&debs[0]).unwrap());
    let shown = client
        .ok(&[
            "show",
            "admin/stable/debian/bookworm",
            "hello00_1.0_amd64.deb",
        ])
        .await;
    assert!(shown.contains("indexed:      yes"), "{shown}");
    assert!(
        shown.contains(&format!("sha256:       {sha256}")),
        "{shown}"
    );
    assert!(shown.contains("downloads:    0"), "{shown}");
    let package: Value = client
        .json(&[
            "show",
            "admin/stable/debian/bookworm",
            "hello00_1.0_amd64.deb",
        ])
        .await;
    let download = package["download_url"].as_str().unwrap().to_owned();
    assert_eq!(reqwest::get(&download).await.unwrap().status(), 200);
    // Downloads are counted in batches; wait for this one.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let stats: Value = loop {
        let stats: Value = client
            .json(&[
                "stats",
                "admin/stable/debian/bookworm",
                "hello00_1.0_amd64.deb",
            ])
            .await;
        if stats["total"] == 1 || std::time::Instant::now() > deadline {
            break stats;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(stats["total"], 1, "{stats}");
    let daily: i64 = stats["daily"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_i64().unwrap())
        .sum();
    assert_eq!(daily, 1);

    // promote --copy keeps the source; promote moves; yank removes.
    client
        .ok(&[
            "promote",
            "admin/stable/debian/bookworm",
            "hello00_1.0_amd64.deb",
            "admin/secret",
            "--copy",
        ])
        .await;
    client
        .ok(&[
            "promote",
            "admin/stable/debian/bookworm",
            "hello01_1.0_amd64.deb",
            "admin/secret",
        ])
        .await;
    let secret: Vec<Value> = client.json(&["ls", "admin/secret"]).await;
    let hellos = |list: &[Value]| {
        list.iter()
            .filter(|p| p["name"].as_str().unwrap().starts_with("hello"))
            .count()
    };
    assert_eq!(hellos(&secret), 2);
    let stable: Vec<Value> = client.json(&["ls", "admin/stable"]).await;
    assert_eq!(hellos(&stable), 1, "the moved one left stable");
    client
        .ok(&[
            "yank",
            "admin/stable/debian/bookworm",
            "hello00_1.0_amd64.deb",
        ])
        .await;
    let stable: Vec<Value> = client.json(&["ls", "admin/stable"]).await;
    assert_eq!(hellos(&stable), 0);
    let out = client
        .run(&[
            "yank",
            "admin/stable/debian/bookworm",
            "hello00_1.0_amd64.deb",
        ])
        .await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "yanking what is gone fails: {}",
        text(&out)
    );
    assert!(text(&out).contains("404"), "{}", text(&out));
}

#[tokio::test]
async fn master_and_read_tokens() {
    let app = TestApp::new().await;
    app.create_repo("secret", true).await;
    let client = Client::new(&app.base, &app.token);
    let value = client
        .ok(&["token", "create", "admin/secret", "ci"])
        .await
        .trim()
        .to_owned();
    assert!(value.len() >= 16, "{value}");
    let read = client
        .ok(&[
            "token",
            "read",
            "create",
            "admin/secret",
            "web01",
            "--master",
            "ci",
        ])
        .await
        .trim()
        .to_owned();
    // The read token opens the private repository.
    let gpgkey = reqwest::Client::new()
        .get(app.url("/admin/secret/gpgkey"))
        .basic_auth(&read, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(gpgkey.status(), 200);

    let listed = client.ok(&["token", "list", "admin/secret"]).await;
    assert!(
        listed.contains("ci") && listed.contains("web01"),
        "{listed}"
    );
    assert!(
        !listed.contains(&value) && !listed.contains(&read),
        "values masked: {listed}"
    );
    assert!(
        listed.contains(&format!("******{}", &value[value.len() - 4..])),
        "{listed}"
    );
    let reads = client
        .ok(&[
            "token",
            "read",
            "list",
            "admin/secret",
            "--master",
            "ci",
            "--json",
        ])
        .await;
    assert!(!reads.contains(&read), "{reads}");

    // Off a terminal, revoking needs --yes.
    let out = client
        .run(&[
            "token",
            "read",
            "revoke",
            "admin/secret",
            "web01",
            "--master",
            "ci",
        ])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    client
        .ok(&[
            "token",
            "read",
            "revoke",
            "admin/secret",
            "web01",
            "--master",
            "ci",
            "--yes",
        ])
        .await;
    let gone = reqwest::Client::new()
        .get(app.url("/admin/secret/gpgkey"))
        .basic_auth(&read, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(
        gone.status(),
        404,
        "a private repository is 404 to a revoked token"
    );

    let rotated = client
        .ok(&["token", "rotate", "admin/secret", "ci", "--grace", "1h"])
        .await
        .trim()
        .to_owned();
    assert_ne!(rotated, value);
    let revoked = client
        .ok(&["token", "revoke", "admin/secret", "ci", "--yes"])
        .await;
    assert!(revoked.contains("revoked master token ci"), "{revoked}");
    let listed = client.ok(&["token", "list", "admin/secret"]).await;
    assert!(!listed.lines().any(|l| l.starts_with("ci ")), "{listed}");
}

#[tokio::test]
async fn signing_keys_and_reindex_through_the_api() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    app.push_deb("stable", "hello", "1.0", "amd64").await;
    app.wait_for_jobs().await;
    let client = Client::new(&app.base, &app.token);

    let listing: Value = client.json(&["key", "list", "admin/stable"]).await;
    let first = listing["keys"][0]["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    let text_list = client.ok(&["key", "list", "admin/stable"]).await;
    assert!(
        text_list.contains(&first) && text_list.contains("active"),
        "{text_list}"
    );

    let rotated = client
        .ok(&["key", "rotate", "admin/stable", "--algorithm", "ed25519"])
        .await;
    assert!(rotated.contains("new key"), "{rotated}");
    let listing: Value = client.json(&["key", "list", "admin/stable"]).await;
    let states: Vec<&str> = listing["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap())
        .collect();
    assert_eq!(states.len(), 2);
    assert!(
        states.contains(&"retiring") && states.contains(&"active"),
        "{states:?}"
    );

    let extended = client
        .ok(&["key", "extend", "admin/stable", &first, "--days", "400"])
        .await;
    assert!(extended.contains("400 days"), "{extended}");
    let armored = client.ok(&["key", "export", "admin/stable"]).await;
    assert_eq!(
        armored.matches("BEGIN PGP PUBLIC KEY BLOCK").count(),
        2,
        "{armored}"
    );
    client
        .ok(&["key", "retire", "admin/stable", &first, "--force"])
        .await;
    let listing: Value = client.json(&["key", "list", "admin/stable"]).await;
    let retired = listing["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["fingerprint"] == first.as_str())
        .unwrap();
    assert_eq!(retired["state"], "retired");

    // A key made elsewhere, imported from a file and staged: published, not yet signing.
    let made = packyard::sign::generate(
        "Imported <keys@example.invalid>",
        packyard::sign::KeyAlgorithm::Ed25519,
        86_400 * 365,
    )
    .unwrap();
    let file = client.home.path().join("imported.asc");
    std::fs::write(&file, &made.secret_armored).unwrap();
    let imported = client
        .ok(&[
            "key",
            "import",
            "admin/stable",
            file.to_str().unwrap(),
            "--stage",
        ])
        .await;
    assert!(
        imported.contains(&made.fingerprint) && imported.contains("(staged)"),
        "{imported}"
    );
    let listing: Value = client.json(&["key", "list", "admin/stable"]).await;
    let staged = listing["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["fingerprint"] == made.fingerprint.as_str())
        .unwrap();
    assert_eq!(staged["state"], "next");

    let reindexed = client.ok(&["reindex", "admin/stable", "--wait"]).await;
    assert!(reindexed.contains("published"), "{reindexed}");
    let answer: Value = client
        .json(&["reindex", "admin/stable/debian/bookworm", "--wait"])
        .await;
    assert_eq!(answer["done"], true, "{answer}");
    let out = client.run(&["reindex", "--all"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // A data-folder flag makes it the operator's command again, whatever the environment.
    let mut local = client.command(&["key", "list", "admin/stable", "--data-dir"]);
    local.arg(app.data_dir());
    if let Some(url) = &app.app.config.database_url {
        local.arg("--database-url").arg(url);
    }
    if let Some(storage) = &app.storage {
        local.envs(storage.env());
    }
    let local = local.output().await.unwrap();
    assert!(local.status.success(), "{}", text(&local));
    assert!(text(&local).contains("FINGERPRINT") && text(&local).contains("retired"));
}

#[tokio::test]
async fn completions_and_man_pages_are_generated() {
    let client = Client::bare();
    let bash = client.ok(&["completions", "bash"]).await;
    assert!(
        bash.contains("_packyard()") && bash.contains("push"),
        "{}",
        &bash[..bash.len().min(500)]
    );
    let zsh = client.ok(&["completions", "zsh"]).await;
    assert!(zsh.contains("#compdef packyard"));
    let man = client.ok(&["man"]).await;
    assert!(
        man.contains(".TH packyard") && man.contains("push"),
        "{}",
        &man[..man.len().min(500)]
    );
    let dir = client.home.path().join("man");
    client.ok(&["man", "--dir", dir.to_str().unwrap()]).await;
    for page in [
        "packyard.1",
        "packyard-push.1",
        "packyard-token-read-create.1",
    ] {
        let text =
            std::fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{page}");
    }
    // Bash itself accepts the script.
    let script = client.home.path().join("packyard.bash");
    std::fs::write(&script, &bash).unwrap();
    let sourced = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p packyard",
            script.display()
        ))
        .output()
        .unwrap();
    assert!(
        sourced.status.success(),
        "{}",
        String::from_utf8_lossy(&sourced.stderr)
    );
}
