//! Container images: a 200 MiB image of 10 layers pushed and pulled by skopeo, against
//! Debian's `docker-registry` (distribution 2.8) storing on the same disk, in MiB per second.
//! Each sample is a new image (fresh random layers), so nothing is skipped as already there;
//! the two registries take turns going first. The median of the samples is reported.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::service::{Server, free_port};
use super::{Row, Unit};

const LAYERS: usize = 10;
const LAYER_MIB: usize = 20;
const SAMPLES: usize = 5;

/// `docker-registry serve` on a folder of its own, killed when dropped.
struct Distribution {
    child: Child,
    port: u16,
}

impl Distribution {
    fn start(dir: &Path) -> Result<Distribution> {
        let port = free_port()?;
        std::fs::create_dir_all(dir.join("storage"))?;
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: 127.0.0.1:{port}\n",
                dir.join("storage").display()
            ),
        )?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting docker-registry (apt-get install docker-registry)")?;
        let registry = Distribution { child, port };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(30),
                "docker-registry did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(registry)
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes an OCI layout holding one image of `LAYERS` uncompressed layers of random bytes.
fn write_image(dir: &Path) -> Result<()> {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs)?;
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let store = |bytes: &[u8]| -> Result<String> {
        let hex = hex::encode(Sha256::digest(bytes));
        std::fs::write(blobs.join(&hex), bytes)?;
        Ok(format!("sha256:{hex}"))
    };
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    let mut data = vec![0u8; LAYER_MIB << 20];
    for i in 0..LAYERS {
        rand::thread_rng().fill_bytes(&mut data);
        let mut tar = tar::Builder::new(Vec::with_capacity(data.len() + 4096));
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, format!("layer-{i}.bin"), &data[..])?;
        let tar = tar.into_inner()?;
        let digest = store(&tar)?;
        diff_ids.push(digest.clone());
        layers.push(json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": digest, "size": tar.len(),
        }));
    }
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": { "type": "layers", "diff_ids": diff_ids }, "config": {},
    }))?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": store(&config)?, "size": config.len(),
        },
        "layers": layers,
    }))?;
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": store(&manifest)?, "size": manifest.len(),
            "annotations": { "org.opencontainers.image.ref.name": "bench" },
        }],
    });
    std::fs::File::create(dir.join("index.json"))?.write_all(&serde_json::to_vec(&index)?)?;
    Ok(())
}

/// Runs one `skopeo copy`; how long it took.
fn skopeo_copy(home: &Path, args: &[&str]) -> Result<Duration> {
    let started = Instant::now();
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .arg("copy")
        .args(args)
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", home)
        .env("REGISTRY_AUTH_FILE", home.join("auth.json"))
        .output()
        .context("running skopeo (apt-get install skopeo)")?;
    let elapsed = started.elapsed();
    anyhow::ensure!(
        out.status.success(),
        "skopeo copy {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(elapsed)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

pub fn images(work: &Path) -> Result<Vec<Row>> {
    let dir = work.join("images");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let (server, _) = Server::start(&dir.join("packyard"))?;
    let token = server.with_repository()?;
    let registry = Distribution::start(&dir.join("distribution"))?;
    let ours = server.url("").trim_start_matches("http://").to_owned();
    let theirs = format!("127.0.0.1:{}", registry.port);
    let creds = format!("bench:{token}");
    let mib = (LAYERS * LAYER_MIB) as f64;

    let (mut push, mut pull) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
    for sample in 0..SAMPLES {
        let layout = dir.join(format!("image-{sample}"));
        write_image(&layout)?;
        let source = format!("oci:{}:bench", layout.display());
        let packyard_ref = format!("docker://{ours}/bench/bench/app:{sample}");
        let registry_ref = format!("docker://{theirs}/bench/app:{sample}");
        let pulled: PathBuf = dir.join("pulled");
        let push_packyard = || {
            skopeo_copy(
                &dir,
                &[
                    "--dest-tls-verify=false",
                    "--dest-creds",
                    &creds,
                    &source,
                    &packyard_ref,
                ],
            )
        };
        let push_registry =
            || skopeo_copy(&dir, &["--dest-tls-verify=false", &source, &registry_ref]);
        let pull_from = |reference: &str, creds: Option<&str>| -> Result<Duration> {
            let _ = std::fs::remove_dir_all(&pulled);
            let destination = format!("dir:{}", pulled.display());
            let mut args = vec!["--src-tls-verify=false"];
            if let Some(creds) = creds {
                args.extend(["--src-creds", creds]);
            }
            args.extend([reference, destination.as_str()]);
            skopeo_copy(&dir, &args)
        };
        // Take turns going first, so neither always finds the page cache warm.
        if sample % 2 == 0 {
            push.0.push(push_packyard()?);
            push.1.push(push_registry()?);
            pull.0.push(pull_from(&packyard_ref, Some(&creds))?);
            pull.1.push(pull_from(&registry_ref, None)?);
        } else {
            push.1.push(push_registry()?);
            push.0.push(push_packyard()?);
            pull.1.push(pull_from(&registry_ref, None)?);
            pull.0.push(pull_from(&packyard_ref, Some(&creds))?);
        }
        std::fs::remove_dir_all(&layout)?;
    }
    let rate = |times: &[Duration]| median(times.iter().map(|t| mib / t.as_secs_f64()).collect());
    drop(registry);
    drop(server);
    std::fs::remove_dir_all(&dir)?;
    let row = |scenario: &str, ours: &[Duration], theirs: &[Duration]| {
        Row {
            scenario: scenario.into(),
            format: "oci".into(),
            packages: 1,
            packyard: rate(ours),
            unit: Unit::MibPerSecond,
            reference: Vec::new(),
        }
        .against("docker-registry 2.8 (distribution)", rate(theirs))
    };
    Ok(vec![
        row(
            "skopeo copy of a 200 MiB image of 10 layers to the registry",
            &push.0,
            &push.1,
        ),
        row(
            "skopeo copy of a 200 MiB image of 10 layers from the registry",
            &pull.0,
            &pull.1,
        ),
    ])
}
