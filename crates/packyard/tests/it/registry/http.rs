//! The registry's protocol edges over plain HTTP, where the clients tested elsewhere do not
//! go: chunked uploads with ranges (and one out of order), session status and cancel, digest
//! mismatches, manifests naming missing blobs, `Accept` that excludes a manifest's type, tag
//! pagination, the referrers API, the catalog, cross-repository mounts and blob ranges.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::sha256;
use crate::support::TestApp;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

struct Registry<'a> {
    app: &'a TestApp,
}

impl Registry<'_> {
    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            self.app.url(path)
        };
        self.app
            .client()
            .request(method, url)
            .basic_auth("ci", Some(&self.app.token))
    }

    /// Starts an upload session for `name`.
    async fn start(&self, name: &str) -> reqwest::Response {
        self.request(Method::POST, &format!("/v2/{name}/blobs/uploads/"))
            .send()
            .await
            .unwrap()
    }

    /// Uploads a blob monolithically; returns its digest.
    async fn blob(&self, name: &str, bytes: &[u8]) -> String {
        let digest = format!("sha256:{}", sha256(bytes));
        let response = self
            .request(
                Method::POST,
                &format!("/v2/{name}/blobs/uploads/?digest={digest}"),
            )
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "{:?}",
            response.text().await
        );
        digest
    }

    /// Pushes a manifest; returns the response.
    async fn manifest(&self, name: &str, reference: &str, manifest: &Value) -> reqwest::Response {
        self.request(Method::PUT, &format!("/v2/{name}/manifests/{reference}"))
            .header("content-type", OCI_MANIFEST)
            .body(serde_json::to_vec(manifest).unwrap())
            .send()
            .await
            .unwrap()
    }

    /// An artifact manifest of `layer` with the empty config, optionally naming a subject.
    async fn artifact(&self, name: &str, layer: &str, subject: Option<&Value>) -> Value {
        let config = self.blob(name, b"{}").await;
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.sbom",
            "config": { "mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2 },
            "layers": [{ "mediaType": "text/plain", "digest": layer, "size": 10 }],
        });
        if let Some(subject) = subject {
            manifest["subject"] = subject.clone();
        }
        manifest
    }
}

async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["errors"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", response.headers()))
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_uploads_take_ranges_in_order_and_refuse_others() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    let registry = Registry { app: &app };
    let name = "admin/stable/chunked";
    let data: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8).collect();

    let start = registry.start(name).await;
    assert_eq!(start.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&start, "range"), "0-0", "an empty session says 0-0");
    assert_eq!(
        header(&start, "docker-distribution-api-version"),
        "registry/2.0"
    );
    let location = header(&start, "location");
    let uuid = header(&start, "docker-upload-uuid");
    assert!(location.ends_with(&uuid), "{location}");

    let patch = |range: &str, bytes: &[u8]| {
        registry
            .request(Method::PATCH, &location)
            .header("content-range", range)
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
    };
    let first = patch("0-99", &data[..100]).await.unwrap();
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&first, "range"), "0-99");
    // Out of order: the session holds 100 bytes, so the next chunk must start at 100.
    let skipped = patch("200-299", &data[200..]).await.unwrap();
    assert_eq!(skipped.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&skipped, "range"), "0-99");
    let repeated = patch("0-99", &data[..100]).await.unwrap();
    assert_eq!(repeated.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let second = patch("100-199", &data[100..200]).await.unwrap();
    assert_eq!(header(&second, "range"), "0-199");

    let status = registry
        .request(Method::GET, &location)
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&status, "range"), "0-199");

    // The last chunk comes with the PUT; a wrong digest is refused and ends the session.
    let digest = format!("sha256:{}", sha256(&data));
    let wrong = format!("sha256:{}", sha256(b"something else"));
    let refused = registry
        .request(Method::PUT, &format!("{location}?digest={wrong}"))
        .body(data[200..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(refused).await, "DIGEST_INVALID");
    let ended = registry
        .request(Method::GET, &location)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(ended).await, "BLOB_UPLOAD_UNKNOWN");
    let nothing = app
        .get(&format!("/v2/{name}/blobs/{wrong}"))
        .send()
        .await
        .unwrap();
    assert_eq!(nothing.status(), StatusCode::NOT_FOUND);

    // Again, streamed in one PATCH without a range, then finished.
    let start = registry.start(name).await;
    let location = header(&start, "location");
    let streamed = registry
        .request(Method::PATCH, &location)
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(header(&streamed, "range"), "0-299");
    let done = registry
        .request(Method::PUT, &format!("{location}?digest={digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::CREATED);
    assert_eq!(header(&done, "docker-content-digest"), digest);
    assert_eq!(
        header(&done, "location"),
        format!("/v2/{name}/blobs/{digest}")
    );

    let head = app
        .client()
        .head(app.url(&format!("/v2/{name}/blobs/{digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(&head, "content-length"), "300");
    assert_eq!(header(&head, "docker-content-digest"), digest);
    // On S3, a blob goes out as a redirect to a presigned URL (which clients follow).
    if app.storage.is_some() {
        let direct = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let redirect = direct
            .get(app.url(&format!("/v2/{name}/blobs/{digest}")))
            .send()
            .await
            .unwrap();
        assert_eq!(redirect.status(), StatusCode::FOUND);
        assert!(header(&redirect, "location").contains("X-Amz-Signature="));
    }
    let part = app
        .get(&format!("/v2/{name}/blobs/{digest}"))
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes().await.unwrap().as_ref(), &data[10..20]);

    // A cancelled session is gone.
    let start = registry.start(name).await;
    let location = header(&start, "location");
    let cancel = registry
        .request(Method::DELETE, &location)
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), StatusCode::NO_CONTENT);
    let gone = registry
        .request(Method::GET, &location)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    // Sessions are the image's: another image cannot write into one.
    let start = registry.start(name).await;
    let foreign = header(&start, "location").replace("/chunked/", "/other/");
    let refused = registry
        .request(Method::PATCH, &foreign)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_are_checked_negotiated_listed_and_referred_to() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    app.create_repo("other", false).await;
    let registry = Registry { app: &app };
    let name = "admin/stable/app";
    let layer = registry.blob(name, b"0123456789").await;

    // A manifest naming a blob the image lacks is refused, and nothing is stored.
    let missing = format!("sha256:{}", sha256(b"not uploaded"));
    let mut manifest = registry.artifact(name, &layer, None).await;
    manifest["layers"][0]["digest"] = missing.clone().into();
    let refused = registry.manifest(name, "broken", &manifest).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN", "{body}");
    assert_eq!(body["errors"][0]["detail"]["digest"], missing.as_str());
    let none = app
        .get(&format!("/v2/{name}/manifests/broken"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), StatusCode::NOT_FOUND);
    // Pushed by a digest it does not have: refused.
    let manifest = registry.artifact(name, &layer, None).await;
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = format!("sha256:{}", sha256(&bytes));
    let wrong = registry
        .manifest(name, &format!("sha256:{}", sha256(b"x")), &manifest)
        .await;
    assert_eq!(error_code(wrong).await, "DIGEST_INVALID");

    for tag in ["b", "a", "c"] {
        let pushed = registry.manifest(name, tag, &manifest).await;
        assert_eq!(pushed.status(), StatusCode::CREATED);
        assert_eq!(header(&pushed, "docker-content-digest"), digest);
    }
    // Stored byte for byte, served with its media type; an Accept without it is refused.
    let got = app
        .get(&format!("/v2/{name}/manifests/a"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(header(&got, "content-type"), OCI_MANIFEST);
    assert_eq!(header(&got, "docker-content-digest"), digest);
    assert_eq!(got.bytes().await.unwrap().as_ref(), bytes.as_slice());
    let docker_only = app
        .get(&format!("/v2/{name}/manifests/a"))
        .header(
            "accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(docker_only.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(docker_only).await, "MANIFEST_UNKNOWN");

    // Tags in lexical order, a page at a time.
    let page = app
        .get(&format!("/v2/{name}/tags/list?n=2"))
        .send()
        .await
        .unwrap();
    let link = header(&page, "link");
    assert_eq!(
        link,
        format!("</v2/{name}/tags/list?n=2&last=b>; rel=\"next\"")
    );
    let body: Value = page.json().await.unwrap();
    assert_eq!(body, json!({ "name": name, "tags": ["a", "b"] }));
    let rest: Value = app.json(&format!("/v2/{name}/tags/list?n=2&last=b")).await;
    assert_eq!(rest["tags"], json!(["c"]));

    // Referrers: an artifact whose subject is the manifest.
    let subject = json!({ "mediaType": OCI_MANIFEST, "digest": digest, "size": bytes.len() });
    let signature = registry.artifact(name, &layer, Some(&subject)).await;
    let pushed = registry
        .manifest(
            name,
            &format!(
                "sha256:{}",
                sha256(&serde_json::to_vec(&signature).unwrap())
            ),
            &signature,
        )
        .await;
    assert_eq!(pushed.status(), StatusCode::CREATED);
    assert_eq!(header(&pushed, "oci-subject"), digest);
    let referrers: Value = app.json(&format!("/v2/{name}/referrers/{digest}")).await;
    assert_eq!(
        referrers["manifests"].as_array().unwrap().len(),
        1,
        "{referrers}"
    );
    assert_eq!(
        referrers["manifests"][0]["artifactType"],
        "application/vnd.example.sbom"
    );
    let filtered = app
        .get(&format!(
            "/v2/{name}/referrers/{digest}?artifactType=application/x-none"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&filtered, "oci-filters-applied"), "artifactType");
    let filtered: Value = filtered.json().await.unwrap();
    assert_eq!(filtered["manifests"], json!([]));

    // Mounting the layer into another repository's image, then the catalog lists both.
    let mounted = registry
        .request(
            Method::POST,
            &format!("/v2/admin/other/copy/blobs/uploads/?mount={layer}&from={name}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(mounted.status(), StatusCode::CREATED);
    let served = app
        .get(&format!("/v2/admin/other/copy/blobs/{layer}"))
        .send()
        .await
        .unwrap();
    assert_eq!(served.bytes().await.unwrap().as_ref(), b"0123456789");
    // A blob that is not in the source image is not mounted: a session starts instead.
    let not_there = registry
        .request(
            Method::POST,
            &format!("/v2/admin/other/copy/blobs/uploads/?mount={missing}&from={name}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(not_there.status(), StatusCode::ACCEPTED);
    let copy = registry.artifact("admin/other/copy", &layer, None).await;
    assert_eq!(
        registry
            .manifest("admin/other/copy", "1", &copy)
            .await
            .status(),
        StatusCode::CREATED
    );
    let catalog: Value = registry
        .request(Method::GET, "/v2/_catalog")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        catalog["repositories"],
        json!(["admin/other/copy", "admin/stable/app"])
    );

    // Deleting a tag leaves the manifest; deleting the manifest takes its tags.
    let untag = registry
        .request(Method::DELETE, &format!("/v2/{name}/manifests/c"))
        .send()
        .await
        .unwrap();
    assert_eq!(untag.status(), StatusCode::ACCEPTED);
    let by_digest = app
        .get(&format!("/v2/{name}/manifests/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_digest.status(), StatusCode::OK);
    let delete = registry
        .request(Method::DELETE, &format!("/v2/{name}/manifests/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::ACCEPTED);
    let tags: Value = app.json(&format!("/v2/{name}/tags/list")).await;
    assert_eq!(tags["tags"], json!([]));

    // Names outside the grammar, and blob deletion, are refused with their codes.
    let bad = app
        .get("/v2/admin/stable/Upper/tags/list")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(bad).await, "NAME_INVALID");
    let blob_delete = registry
        .request(Method::DELETE, &format!("/v2/{name}/blobs/{layer}"))
        .send()
        .await
        .unwrap();
    assert_eq!(blob_delete.status(), StatusCode::METHOD_NOT_ALLOWED);
}
