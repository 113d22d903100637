//! The OCI registry at `/v2/` as skopeo and umoci use it, and its protocol edges over HTTP.

mod http;
mod images;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::apt_client::combined;
use crate::support::TestApp;

/// skopeo with its own configuration folders, so nothing of the host's is read or written.
pub struct Skopeo {
    home: tempfile::TempDir,
}

impl Skopeo {
    pub fn new() -> Skopeo {
        let home = tempfile::tempdir().unwrap();
        // containers/image reads registries.conf and policy.json; an empty policy refuses
        // everything, so the test gives one that accepts any image.
        let policy = home.path().join("policy.json");
        std::fs::write(
            &policy,
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )
        .unwrap();
        Skopeo { home }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let policy = self.home.path().join("policy.json");
        let mut all = vec!["--policy", policy.to_str().unwrap()];
        all.extend_from_slice(args);
        Command::new("skopeo")
            .args(&all)
            .env("HOME", self.home.path())
            .env("XDG_RUNTIME_DIR", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("REGISTRY_AUTH_FILE", self.home.path().join("auth.json"))
            .env(
                "CONTAINERS_REGISTRIES_CONF",
                self.home.path().join("none.conf"),
            )
            .output()
            .expect("skopeo runs (scripts/test installs it)")
    }

    /// `skopeo copy` of `source` (an `oci:` layout reference) to `destination` (a
    /// `docker://` reference) with the test's API token.
    pub fn push(&self, app: &TestApp, source: &str, destination: &str) -> String {
        let creds = format!("ci:{}", app.token);
        self.ok(&[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            &creds,
            source,
            destination,
        ])
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let text = combined(&out);
        assert!(out.status.success(), "skopeo {}:\n{text}", args.join(" "));
        text
    }
}

/// `127.0.0.1:PORT`, as image references name the registry.
pub fn host(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// An OCI image layout written by hand: blobs, manifests and `index.json`.
pub struct Layout {
    pub dir: PathBuf,
    manifests: Vec<Value>,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout {
            dir: dir.to_owned(),
            manifests: Vec::new(),
        }
    }

    /// Stores a blob; returns its descriptor.
    pub fn blob(&self, media_type: &str, bytes: &[u8]) -> Value {
        let hex = sha256(bytes);
        std::fs::write(self.dir.join("blobs/sha256").join(&hex), bytes).unwrap();
        json!({ "mediaType": media_type, "digest": format!("sha256:{hex}"), "size": bytes.len() })
    }

    /// A gzipped tar layer holding one file.
    pub fn layer(&self, path: &str, contents: &[u8]) -> Value {
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, path, contents).unwrap();
        let tar = tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        let gz = gz.finish().unwrap();
        let mut descriptor = self.blob("application/vnd.oci.image.layer.v1.tar+gzip", &gz);
        descriptor["diff_id"] = format!("sha256:{}", sha256(&tar)).into();
        descriptor
    }

    /// An image manifest for `os/arch` of `layers`; returns its descriptor.
    pub fn image(&self, arch: &str, layers: &[Value]) -> Value {
        let diff_ids: Vec<&Value> = layers.iter().map(|l| &l["diff_id"]).collect();
        let config = json!({
            "architecture": arch, "os": "linux",
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
            "config": {},
        });
        let config = self.blob(
            "application/vnd.oci.image.config.v1+json",
            &serde_json::to_vec(&config).unwrap(),
        );
        let layers: Vec<Value> = layers
            .iter()
            .map(|l| json!({ "mediaType": l["mediaType"], "digest": l["digest"], "size": l["size"] }))
            .collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config,
            "layers": layers,
        });
        let mut descriptor = self.blob(
            "application/vnd.oci.image.manifest.v1+json",
            &serde_json::to_vec(&manifest).unwrap(),
        );
        descriptor["platform"] = json!({ "os": "linux", "architecture": arch });
        descriptor
    }

    /// An index of `images`; returns its descriptor.
    pub fn index(&self, images: &[Value]) -> Value {
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": images,
        });
        self.blob(
            "application/vnd.oci.image.index.v1+json",
            &serde_json::to_vec(&index).unwrap(),
        )
    }

    /// Names `descriptor` `tag` in `index.json`.
    pub fn tag(&mut self, descriptor: &Value, tag: &str) {
        let mut entry = descriptor.clone();
        entry
            .as_object_mut()
            .unwrap()
            .retain(|k, _| ["mediaType", "digest", "size"].contains(&k.as_str()));
        entry["annotations"] = json!({ "org.opencontainers.image.ref.name": tag });
        self.manifests.push(entry);
        let index = json!({ "schemaVersion": 2, "manifests": self.manifests });
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
    }

    /// The manifest tagged `tag` in a layout (one skopeo wrote, say).
    pub fn read_tagged(dir: &Path, tag: &str) -> Value {
        let index: Value =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        let entry = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .unwrap_or_else(|| panic!("{tag} is not in {}", dir.display()));
        Layout::read_blob(dir, entry["digest"].as_str().unwrap())
    }

    pub fn read_blob(dir: &Path, digest: &str) -> Value {
        serde_json::from_slice(&Layout::blob_bytes(dir, digest)).unwrap()
    }

    pub fn blob_bytes(dir: &Path, digest: &str) -> Vec<u8> {
        let hex = digest.trim_start_matches("sha256:");
        std::fs::read(dir.join("blobs/sha256").join(hex)).unwrap()
    }
}
