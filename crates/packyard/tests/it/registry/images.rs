//! Images pushed and pulled by skopeo (built by umoci, or written by hand for a multi-platform
//! index), private repositories, tags moved and rolled back, and collection of what a deleted
//! manifest leaves.

use std::process::Command;

use serde_json::Value;

use super::{Layout, Skopeo, host};
use crate::apt_client::combined;
use crate::support::TestApp;

/// An image built by umoci: two layers, each adding a file, tagged `tag` in `dir`.
fn umoci_image(dir: &std::path::Path, tag: &str) {
    let umoci = |args: &[&str]| {
        let out = Command::new("umoci")
            .args(args)
            .output()
            .expect("umoci runs (scripts/test installs it)");
        assert!(
            out.status.success(),
            "umoci {}:\n{}",
            args.join(" "),
            combined(&out)
        );
    };
    let layout = dir.to_str().unwrap();
    let image = format!("{layout}:{tag}");
    umoci(&["init", "--layout", layout]);
    umoci(&["new", "--image", &image]);
    let files = tempfile::tempdir().unwrap();
    for (name, contents) in [
        ("hello.txt", "hello from packyard\n"),
        ("data.bin", "0123456789"),
    ] {
        let path = files.path().join(name);
        std::fs::write(&path, contents).unwrap();
        umoci(&[
            "insert",
            "--rootless",
            "--image",
            &image,
            path.to_str().unwrap(),
            &format!("/{name}"),
        ]);
    }
}

fn layers(manifest: &Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_pushes_and_pulls_oci_and_docker_images_layer_for_layer() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("source");
    umoci_image(&source, "1.0");
    let skopeo = Skopeo::new();
    let creds = format!("ci:{}", app.token);
    let remote = |tag: &str| format!("docker://{}/admin/stable/demo:{tag}", host(&app));
    let from = format!("oci:{}:1.0", source.display());

    skopeo.push(&app, &from, &remote("1.0"));
    skopeo.ok(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
        "--format",
        "v2s2",
        &from,
        &remote("v2s2"),
    ]);

    // Pulled back anonymously (the repository is public): the same layers, byte for byte.
    let pushed = Layout::read_tagged(&source, "1.0");
    for tag in ["1.0", "v2s2"] {
        let out = work.path().join(format!("out-{tag}"));
        let to = format!("oci:{}:{tag}", out.display());
        skopeo.ok(&["copy", "--src-tls-verify=false", &remote(tag), &to]);
        let pulled = Layout::read_tagged(&out, tag);
        assert_eq!(layers(&pulled), layers(&pushed), "{tag}");
        for digest in layers(&pushed) {
            assert_eq!(
                Layout::blob_bytes(&out, &digest),
                Layout::blob_bytes(&source, &digest),
                "layer {digest} of {tag}"
            );
        }
    }

    let inspect: Value =
        serde_json::from_str(&skopeo.ok(&["inspect", "--tls-verify=false", &remote("1.0")]))
            .unwrap();
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2, "{inspect}");
    assert_eq!(inspect["Architecture"], "amd64");
    let digest = inspect["Digest"].as_str().unwrap().to_owned();
    let raw = skopeo.ok(&["inspect", "--raw", "--tls-verify=false", &remote("v2s2")]);
    assert!(
        raw.contains("application/vnd.docker.distribution.manifest.v2+json"),
        "{raw}"
    );
    let tags: Value = serde_json::from_str(&skopeo.ok(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{}/admin/stable/demo", host(&app)),
    ]))
    .unwrap();
    assert_eq!(tags["Tags"], serde_json::json!(["1.0", "v2s2"]));

    // API v1 lists the image's manifests as packages of type oci, with tags and sizes.
    let listed = app.json("/api/v1/repos/admin/stable/packages.json").await;
    let manifests: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["package_type"] == "oci")
        .collect();
    assert_eq!(manifests.len(), 2, "{listed}");
    let oci = manifests
        .iter()
        .find(|p| p["version"] == digest.as_str())
        .unwrap_or_else(|| panic!("{digest} is not listed: {listed}"));
    assert_eq!(oci["name"], "demo");
    assert_eq!(oci["architecture"], "linux/amd64");
    assert_eq!(oci["image"]["tags"][0]["tag"], "1.0", "{oci}");
    // Pulls by tag are counted per tag (the copy and the inspections above).
    assert!(
        oci["image"]["tags"][0]["pulls"].as_i64().unwrap() >= 1,
        "{oci}"
    );
    let total = oci["size"].as_str().unwrap().parse::<u64>().unwrap();
    let layer_bytes: u64 = pushed["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum();
    assert!(
        total > layer_bytes,
        "{total} counts the layers ({layer_bytes}) and the rest"
    );

    // The web UI lists the image among the packages and shows its page with a pull line.
    let page = app.text("/admin/stable/packages?type=oci").await;
    assert!(
        page.contains("demo") && page.contains("linux/amd64"),
        "{page}"
    );
    let html = oci["package_html_url"].as_str().unwrap();
    let page = app.get(html).send().await.unwrap();
    assert_eq!(page.status(), 200, "{html}");
    let page = page.text().await.unwrap();
    assert!(
        page.contains(&format!(
            "podman pull {}/admin/stable/demo@{digest}",
            host(&app)
        )),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_platform_index_is_pushed_whole_and_pulled_for_one_platform() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let work = tempfile::tempdir().unwrap();
    let mut layout = Layout::new(&work.path().join("multi"));
    let amd64 = layout.image("amd64", &[layout.layer("arch", b"amd64\n")]);
    let arm64 = layout.image("arm64", &[layout.layer("arch", b"arm64\n")]);
    let index = layout.index(&[amd64.clone(), arm64.clone()]);
    layout.tag(&index, "multi");

    let skopeo = Skopeo::new();
    let creds = format!("ci:{}", app.token);
    let remote = format!("docker://{}/admin/stable/tools/multi:2.0", host(&app));
    skopeo.ok(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
        &format!("oci:{}:multi", layout.dir.display()),
        &remote,
    ]);
    let raw: Value =
        serde_json::from_str(&skopeo.ok(&["inspect", "--raw", "--tls-verify=false", &remote]))
            .unwrap();
    assert_eq!(raw["manifests"].as_array().unwrap().len(), 2, "{raw}");
    let out = work.path().join("arm");
    skopeo.ok(&[
        "--override-arch",
        "arm64",
        "copy",
        "--src-tls-verify=false",
        &remote,
        &format!("oci:{}:arm", out.display()),
    ]);
    let pulled = Layout::read_tagged(&out, "arm");
    let wanted = Layout::read_blob(&layout.dir, arm64["digest"].as_str().unwrap());
    assert_eq!(layers(&pulled), layers(&wanted));

    let listed = app.json("/api/v1/repos/admin/stable/packages.json").await;
    let index_row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["version"] == index["digest"])
        .unwrap_or_else(|| panic!("the index is not listed: {listed}"));
    assert_eq!(index_row["name"], "tools/multi");
    // API v1's show answers at the package's own URL, the image's name of two segments.
    let shown = app.json(index_row["package_url"].as_str().unwrap()).await;
    assert_eq!(shown["image"]["digest"], index["digest"], "{shown}");
    assert_eq!(index_row["architecture"], "index");
    assert_eq!(
        index_row["image"]["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_repository_challenges_strangers_and_serves_read_tokens() {
    let app = TestApp::new().await;
    app.create_repo("secret", true).await;
    let work = tempfile::tempdir().unwrap();
    let mut layout = Layout::new(&work.path().join("img"));
    let image = layout.image("amd64", &[layout.layer("secret", b"private\n")]);
    layout.tag(&image, "1");
    let skopeo = Skopeo::new();
    let remote = format!("docker://{}/admin/secret/app:1", host(&app));
    let from = format!("oci:{}:1", layout.dir.display());
    skopeo.push(&app, &from, &remote);

    // Anonymous: a challenge, as for a name that does not exist.
    let anonymous = skopeo.run(&["inspect", "--tls-verify=false", &remote]);
    let text = combined(&anonymous);
    assert!(!anonymous.status.success(), "{text}");
    let manifest = app
        .get("/v2/admin/secret/app/manifests/1")
        .send()
        .await
        .unwrap();
    assert_eq!(manifest.status(), 401);
    assert!(
        manifest.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic realm="),
        "{:?}",
        manifest.headers()
    );
    let missing = app
        .get("/v2/admin/nothing/app/manifests/1")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);

    // A read token pulls and cannot push; another user's token learns nothing.
    let reader = app.read_token("secret", "build-host").await;
    let reader = reader["value"].as_str().unwrap().to_owned();
    let reader_creds = format!("reader:{reader}");
    skopeo.ok(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        &reader_creds,
        &remote,
    ]);
    let push = skopeo.run(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &reader_creds,
        &from,
        &format!("docker://{}/admin/secret/app:2", host(&app)),
    ]);
    assert!(!push.status.success(), "{}", combined(&push));
    let stranger = app.stranger_token().await;
    let refused = app
        .get("/v2/admin/secret/app/manifests/1")
        .basic_auth("x", Some(&stranger))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 404);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "NAME_UNKNOWN");
    let wrong = app
        .get("/v2/")
        .basic_auth("x", Some("not-a-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_manifest_collects_its_own_layers_and_keeps_shared_ones() {
    let app = TestApp::builder()
        .configure(|c| c.index_grace_secs = 0)
        .start()
        .await;
    app.create_repo("stable", false).await;
    let work = tempfile::tempdir().unwrap();
    let mut layout = Layout::new(&work.path().join("img"));
    let shared = layout.layer("base", b"shared base layer\n");
    let own = layout.layer("app", b"only in the old image\n");
    let old = layout.image("amd64", &[shared.clone(), own.clone()]);
    let new = layout.image("amd64", std::slice::from_ref(&shared));
    layout.tag(&old, "old");
    layout.tag(&new, "new");
    let skopeo = Skopeo::new();
    let creds = format!("ci:{}", app.token);
    for (tag, image) in [("old", "app"), ("new", "app"), ("new", "other")] {
        skopeo.push(
            &app,
            &format!("oci:{}:{tag}", layout.dir.display()),
            &format!("docker://{}/admin/stable/{image}:{tag}", host(&app)),
        );
    }
    let blobs = app.app.blobs.clone();
    let stored = |descriptor: &Value| {
        let key = packyard::storage::BlobKey::from_sha256(
            descriptor["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:"),
        )
        .unwrap();
        let blobs = blobs.clone();
        async move { blobs.exists(&key).await.unwrap() }
    };
    assert!(stored(&own).await && stored(&shared).await);

    skopeo.ok(&[
        "delete",
        "--tls-verify=false",
        "--creds",
        &creds,
        &format!("docker://{}/admin/stable/app:old", host(&app)),
    ]);
    let gone = app
        .get(&format!(
            "/v2/admin/stable/app/manifests/{}",
            old["digest"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    packyard::jobs::gc::collect(&app.app, false).await.unwrap();
    assert!(
        !stored(&own).await,
        "the deleted image's own layer is collected"
    );
    assert!(
        stored(&shared).await,
        "the layer the other images use stays"
    );
    let out = work.path().join("pulled");
    skopeo.ok(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}/admin/stable/app:new", host(&app)),
        &format!("oci:{}:new", out.display()),
    ]);
    assert_eq!(
        Layout::blob_bytes(&out, shared["digest"].as_str().unwrap()),
        Layout::blob_bytes(&layout.dir, shared["digest"].as_str().unwrap())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prod_moves_to_an_older_digest_and_rolls_back_with_events_and_history() {
    let (app, _stop) = crate::webhooks::app().await;
    app.create_repo("stable", false).await;
    let (receiver, url) = crate::webhooks::Receiver::start(0).await;
    let hook = app
        .authed(
            reqwest::Method::POST,
            "/api/v1/repos/admin/stable/webhooks.json",
        )
        .form(&[("url", url.as_str()), ("events", "image.pushed,tag.moved")])
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status(), 201, "{:?}", hook.text().await);

    // Three weekly builds, each pushed as its version and as :prod.
    let work = tempfile::tempdir().unwrap();
    let mut layout = Layout::new(&work.path().join("img"));
    let mut digests = Vec::new();
    for week in 1..=3 {
        let image = layout.image(
            "amd64",
            &[layout.layer("build", format!("week {week}\n").as_bytes())],
        );
        layout.tag(&image, &format!("w{week}"));
        digests.push(image["digest"].as_str().unwrap().to_owned());
    }
    let skopeo = Skopeo::new();
    for week in 1..=3 {
        for tag in [format!("w{week}"), "prod".to_owned()] {
            skopeo.push(
                &app,
                &format!("oci:{}:w{week}", layout.dir.display()),
                &format!("docker://{}/admin/stable/worker:{tag}", host(&app)),
            );
        }
    }
    let prod = || async {
        let inspect = skopeo.ok(&[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{}/admin/stable/worker:prod", host(&app)),
        ]);
        let inspect: Value = serde_json::from_str(&inspect).unwrap();
        inspect["Digest"].as_str().unwrap().to_owned()
    };
    assert_eq!(prod().await, digests[2]);

    // Production goes back to week 1 by re-tagging its digest, as `oc tag --source=docker
    // ...@sha256:<older> ...:prod` does; then the tag rolls back one step, to week 3.
    let client = crate::client::Client::new(&app.base, &app.token);
    let tagged: Value = client
        .json(&[
            "image",
            "tag",
            &format!("admin/stable/worker@{}", digests[0]),
            "prod",
        ])
        .await;
    assert_eq!(tagged["previous"], digests[2].as_str(), "{tagged}");
    assert_eq!(prod().await, digests[0]);
    let rolled: Value = client
        .json(&["image", "rollback", "admin/stable/worker:prod"])
        .await;
    assert_eq!(rolled["digest"], digests[2].as_str(), "{rolled}");
    assert_eq!(prod().await, digests[2]);
    // A second rollback undoes the push of week 3 to :prod: week 2.
    let rolled: Value = client
        .json(&["image", "rollback", "admin/stable/worker:prod"])
        .await;
    assert_eq!(rolled["digest"], digests[1].as_str(), "{rolled}");
    assert_eq!(prod().await, digests[1]);

    let history: Vec<Value> = client
        .json(&["image", "history", "admin/stable/worker:prod"])
        .await;
    let kinds: Vec<(bool, bool)> = history
        .iter()
        .map(|m| {
            (
                m["rollback"].as_bool().unwrap(),
                m["undone"].as_bool().unwrap(),
            )
        })
        .collect();
    // Newest first: rollback, rollback, the re-tag (undone), week 3 (undone), week 2, week 1.
    assert_eq!(
        kinds,
        [
            (true, false),
            (true, false),
            (false, true),
            (false, true),
            (false, false),
            (false, false)
        ],
        "{history:?}"
    );
    let text = client
        .run(&["image", "history", "admin/stable/worker:prod"])
        .await;
    assert!(String::from_utf8_lossy(&text.stdout).contains("rollback"));
    // An unknown digest is refused, and a tag with nothing before it cannot roll back.
    let missing = client
        .run(&[
            "image",
            "tag",
            &format!("admin/stable/worker@sha256:{}", "0".repeat(64)),
            "prod",
        ])
        .await;
    assert!(!missing.status.success());
    let first = client
        .run(&["image", "rollback", "admin/stable/worker:w1"])
        .await;
    assert!(!first.status.success());
    assert!(
        combined(&first).contains("no earlier digest"),
        "{}",
        combined(&first)
    );

    // Deployments hear of it: three images pushed, every move of :prod (3 pushes, the re-tag,
    // two rollbacks) and the first move of each week's tag.
    receiver.wait_for(3 + 6 + 3).await;
    let events = receiver.events();
    let of = |kind: &str| events.iter().filter(|(_, e)| e["type"] == kind).count();
    assert_eq!(of("image.pushed"), 3, "{events:?}");
    assert_eq!(of("tag.moved"), 9, "{events:?}");
    let last = events
        .iter()
        .rev()
        .find(|(_, e)| e["type"] == "tag.moved" && e["data"]["tag"] == "prod")
        .unwrap();
    assert_eq!(last.1["data"]["rollback"], true);
    assert_eq!(last.1["data"]["digest"], digests[1].as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_retention_keeps_the_newest_build_tags_and_collects_old_untagged_manifests() {
    let app = TestApp::builder()
        .configure(|c| c.index_grace_secs = 0)
        .start()
        .await;
    app.create_repo("stable", false).await;
    let work = tempfile::tempdir().unwrap();
    let mut layout = Layout::new(&work.path().join("img"));
    let base = layout.layer("base", b"the base every build shares\n");
    let mut builds = Vec::new();
    for n in 1..=6 {
        let own = layout.layer("app", format!("build {n}\n").as_bytes());
        let image = layout.image("amd64", &[base.clone(), own.clone()]);
        layout.tag(&image, &format!("b{n}"));
        builds.push((image["digest"].as_str().unwrap().to_owned(), own));
    }
    let skopeo = Skopeo::new();
    // Builds 1 to 5 as build-N; prod is build 2, latest build 5; build 6 was pushed as tmp,
    // whose tag is then deleted, leaving its manifest untagged.
    let pushes = [
        (1, "build-1"),
        (2, "build-2"),
        (3, "build-3"),
        (4, "build-4"),
        (5, "build-5"),
        (2, "prod"),
        (5, "latest"),
        (6, "tmp"),
    ];
    for (n, tag) in pushes {
        skopeo.push(
            &app,
            &format!("oci:{}:b{n}", layout.dir.display()),
            &format!("docker://{}/admin/stable/svc:{tag}", host(&app)),
        );
    }
    let untag = app
        .authed(
            reqwest::Method::DELETE,
            "/v2/admin/stable/svc/manifests/tmp",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(untag.status(), 202);
    // The builds were tagged in order, a month ago.
    app.app
        .db
        .execute_sql(
            "UPDATE oci_tags SET updated_at = 1000 + CAST(substr(tag, 7) AS INTEGER)
             WHERE tag LIKE 'build-%'",
        )
        .await
        .unwrap();
    app.app
        .db
        .execute_sql(
            "UPDATE packages SET created_at = created_at - 30 * 86400 WHERE format = 'oci'",
        )
        .await
        .unwrap();

    let set = crate::operations::packyard(
        &app,
        &[
            "retention",
            "set",
            "admin/stable",
            "--target",
            "oci/1",
            "--keep-last",
            "2",
            "--tags",
            "^build-",
            "--protect",
            "^prod$",
            "--keep-days",
            "7",
        ],
    )
    .await;
    assert!(set.status.success(), "{}", combined(&set));
    let preview =
        crate::operations::packyard(&app, &["retention", "preview", "admin/stable", "--json"])
            .await;
    assert!(preview.status.success(), "{}", combined(&preview));
    let plan: Value = serde_json::from_slice(&preview.stdout).unwrap();
    let tags: Vec<&str> = plan["images"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tag"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["build-3", "build-2", "build-1"], "{plan}");
    let mut gone: Vec<&str> = plan["images"]["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    gone.sort();
    let mut expected = vec![
        builds[0].0.as_str(),
        builds[2].0.as_str(),
        builds[5].0.as_str(),
    ];
    expected.sort();
    assert_eq!(gone, expected, "build 2 stays for prod: {plan}");
    let own_bytes: i64 = [0, 2, 5]
        .iter()
        .map(|&i| builds[i].1["size"].as_i64().unwrap())
        .sum();
    let freed = plan["images"]["bytes_freed"].as_i64().unwrap();
    assert!(
        freed > own_bytes,
        "{freed} counts the three own layers ({own_bytes}), configs and manifests"
    );
    assert!(
        freed < own_bytes + base["size"].as_i64().unwrap() + 3 * 1000,
        "the shared base stays: {freed}"
    );
    let text = crate::operations::packyard(&app, &["retention", "preview", "admin/stable"]).await;
    assert!(String::from_utf8_lossy(&text.stdout).contains("would yank tag svc:build-1"));

    let applied =
        crate::operations::packyard(&app, &["retention", "apply", "admin/stable", "--json"]).await;
    assert!(applied.status.success(), "{}", combined(&applied));
    let listed: Value = app.json("/v2/admin/stable/svc/tags/list").await;
    assert_eq!(
        listed["tags"],
        serde_json::json!(["build-4", "build-5", "latest", "prod"])
    );
    let old = app
        .get(&format!("/v2/admin/stable/svc/manifests/{}", builds[0].0))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 404);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    packyard::jobs::gc::collect(&app.app, false).await.unwrap();
    let exists = |descriptor: &Value| {
        let key = packyard::storage::BlobKey::from_sha256(
            descriptor["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:"),
        )
        .unwrap();
        let blobs = app.app.blobs.clone();
        async move { blobs.exists(&key).await.unwrap() }
    };
    assert!(
        !exists(&builds[0].1).await,
        "build 1's own layer is collected"
    );
    assert!(exists(&builds[1].1).await, "prod's layer stays");
    assert!(exists(&base).await, "the shared base stays");
}

/// Pushes a Helm chart as an OCI artifact with the `oras` package (what `helm push` sends:
/// the chart config and content media types), monolithically and in chunks, and pulls it back.
const ORAS_SCRIPT: &str = r#"
import sys, oras.client
host, token, chart, config, out = sys.argv[1:]
client = oras.client.OrasClient(hostname=host, insecure=True, auth_backend="basic")
client.auth.set_basic_auth("ci", token)
layer = f"{chart}:application/vnd.cncf.helm.chart.content.v1.tar+gzip"
manifest_config = f"{config}:application/vnd.cncf.helm.config.v1+json"
for tag, chunked in (("0.1.0", False), ("0.1.0-chunked", True)):
    target = f"{host}/admin/charts/demo:{tag}"
    response = client.push(target=target, files=[layer], manifest_config=manifest_config,
                           disable_path_validation=True, do_chunked=chunked, chunk_size=100)
    assert response.status_code == 201, response.text
    print(client.pull(target=target, outdir=f"{out}/{tag}"))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helm_chart_pushed_as_an_oci_artifact_by_oras_comes_back_whole() {
    let app = TestApp::new().await;
    app.create_repo("charts", false).await;
    let work = tempfile::tempdir().unwrap();
    // A chart archive (its bytes only matter as a layer) and its config.
    let chart = work.path().join("demo-0.1.0.tgz");
    let mut archive = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    let chart_yaml = b"apiVersion: v2\nname: demo\nversion: 0.1.0\n".repeat(20);
    let mut header = tar::Header::new_gnu();
    header.set_size(chart_yaml.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    archive
        .append_data(&mut header, "demo/Chart.yaml", &chart_yaml[..])
        .unwrap();
    std::fs::write(&chart, archive.into_inner().unwrap().finish().unwrap()).unwrap();
    let config = work.path().join("config.json");
    std::fs::write(
        &config,
        br#"{"name":"demo","version":"0.1.0","apiVersion":"v2"}"#,
    )
    .unwrap();
    let out = work.path().join("pulled");

    let run = Command::new(crate::python_client::tool("python"))
        .args(["-c", ORAS_SCRIPT, &host(&app), &app.token])
        .arg(&chart)
        .arg(&config)
        .arg(&out)
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(run.status.success(), "oras:\n{}", combined(&run));
    for tag in ["0.1.0", "0.1.0-chunked"] {
        let pulled = out.join(tag).join("demo-0.1.0.tgz");
        assert_eq!(
            std::fs::read(&pulled).unwrap_or_else(|e| panic!("{}: {e}", pulled.display())),
            std::fs::read(&chart).unwrap(),
            "{tag}"
        );
    }
    let manifest: Value = app
        .get("/v2/admin/charts/demo/manifests/0.1.0")
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.cncf.helm.config.v1+json"
    );
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
    );
    let listed = app.json("/api/v1/repos/admin/charts/packages.json").await;
    let row = &listed[0];
    assert_eq!(row["architecture"], "artifact", "{listed}");
    assert_eq!(
        row["image"]["artifact_type"],
        "application/vnd.cncf.helm.config.v1+json"
    );
}

/// podman with its own storage (vfs), run root and configuration, nothing of the host's.
fn podman(state: &std::path::Path, args: &[&str]) -> String {
    let root = state.join("root");
    let runroot = state.join("run");
    let out = Command::new("podman")
        .args([
            "--root",
            root.to_str().unwrap(),
            "--runroot",
            runroot.to_str().unwrap(),
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "none",
        ])
        .args(args)
        .env("XDG_RUNTIME_DIR", state)
        .env("XDG_CONFIG_HOME", state.join("config"))
        .env("REGISTRY_AUTH_FILE", state.join("auth.json"))
        .env("CONTAINERS_REGISTRIES_CONF", state.join("none.conf"))
        .output()
        .expect("podman runs (scripts/test installs it)");
    let text = combined(&out);
    assert!(out.status.success(), "podman {}:\n{text}", args.join(" "));
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_pulls_an_image_skopeo_pushed_and_pushes_it_back_under_another_tag() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("source");
    umoci_image(&source, "1.0");
    let skopeo = Skopeo::new();
    let name = format!("{}/admin/stable/demo", host(&app));
    skopeo.push(
        &app,
        &format!("oci:{}:1.0", source.display()),
        &format!("docker://{name}:1.0"),
    );
    let state = work.path().join("podman");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("none.conf"), "").unwrap();
    let policy = state.join("policy.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    let policy = policy.to_str().unwrap();
    podman(
        &state,
        &[
            "login",
            "--tls-verify=false",
            "-u",
            "ci",
            "-p",
            &app.token,
            &host(&app),
        ],
    );
    podman(
        &state,
        &[
            "pull",
            "--tls-verify=false",
            "--signature-policy",
            policy,
            &format!("{name}:1.0"),
        ],
    );
    podman(
        &state,
        &[
            "tag",
            &format!("{name}:1.0"),
            &format!("{name}:from-podman"),
        ],
    );
    podman(
        &state,
        &[
            "push",
            "--tls-verify=false",
            "--signature-policy",
            policy,
            &format!("{name}:from-podman"),
        ],
    );
    // podman pushes what it unpacked: the same layer contents, checked by their diff ids.
    let inspect = |tag: &str| {
        let text = skopeo.ok(&[
            "inspect",
            "--config",
            "--tls-verify=false",
            &format!("docker://{name}:{tag}"),
        ]);
        let config: Value = serde_json::from_str(&text).unwrap();
        config["rootfs"]["diff_ids"].clone()
    };
    assert_eq!(inspect("from-podman"), inspect("1.0"));
}
