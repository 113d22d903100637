//! The Helm chart `deploy/helm/packyard`, rendered by Helm's own engine (helm-python-sdk binds
//! Helm's Go SDK; no cluster is needed), linted, and every rendered object validated against
//! the Kubernetes schemas (kubernetes-validate), in both its shapes: the scaled one (web, api
//! and worker Deployments on PostgreSQL and S3, the migration Job as a hook) and the single
//! one (one replica on SQLite and a PersistentVolumeClaim).

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::python_client::venv;

const SECRET_KEY: &str = "cGFja3lhcmQtaGVsbS10ZXN0LXNlY3JldC1rZXktMzI=";

struct Rendered {
    lint: Value,
    objects: Vec<Value>,
}

/// Renders the chart with `values`; the error output when Helm refuses.
fn render(values: Value) -> Result<Rendered, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(venv().join("bin/python"))
        .arg(root.join("tests/it/helm_chart.py"))
        .arg(root.join("../../deploy/helm/packyard"))
        .arg(values.to_string())
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut objects = Vec::new();
    for entry in report["objects"].as_array().unwrap() {
        let problems = entry["problems"].as_array().unwrap();
        let object = &entry["object"];
        if object["kind"] == "ServiceMonitor" {
            // A custom resource: Kubernetes has no schema for it (checked by hand below).
            assert_eq!(problems.len(), 1, "{problems:?}");
        } else {
            assert!(
                problems.is_empty(),
                "{} {} does not validate: {problems:?}",
                object["kind"],
                object["metadata"]["name"]
            );
        }
        objects.push(object.clone());
    }
    Ok(Rendered {
        lint: report["lint"].clone(),
        objects,
    })
}

impl Rendered {
    fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.objects.iter().filter(|o| o["kind"] == kind).collect()
    }

    fn named(&self, kind: &str, name: &str) -> &Value {
        self.objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    }

    fn lint_is_clean(&self) {
        assert_eq!(self.lint["errors"], json!([]), "{}", self.lint);
        for message in self.lint["messages"].as_array().unwrap() {
            // 1 is INFO ("icon is recommended"); warnings and errors are 2 and up.
            assert!(message["severity"].as_i64() <= Some(1), "{message}");
        }
    }

    /// The ConfigMap's packyard.toml, loaded by Packyard's own configuration loader.
    fn config(&self) -> packyard::config::Config {
        let toml = self.named("ConfigMap", "pk-packyard-config")["data"]["packyard.toml"]
            .as_str()
            .unwrap()
            .to_owned();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("packyard.toml");
        std::fs::write(&file, &toml).unwrap();
        packyard::config::Config::load(Some(&file), &Default::default())
            .unwrap_or_else(|e| panic!("packyard.toml does not load: {e:#}\n{toml}"))
    }
}

fn container(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

/// What every Packyard container has: the configuration file, the probes, no root.
fn check_container(deployment: &Value) {
    let c = container(deployment);
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    assert!(c["env"].as_array().unwrap().iter().any(|e| {
        e["name"] == "PACKYARD_CONFIG" && e["value"] == "/etc/packyard/packyard.toml"
    }));
    assert!(c["resources"]["requests"]["cpu"].is_string());
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let mounts: Vec<&str> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    assert!(mounts.contains(&"/var/lib/packyard") && mounts.contains(&"/etc/packyard"));
}

fn ingress_backends(rendered: &Rendered) -> Vec<(String, String)> {
    rendered.named("Ingress", "pk-packyard")["spec"]["rules"][0]["http"]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["path"].as_str().unwrap().to_owned(),
                p["backend"]["service"]["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_scaled_chart_runs_each_role_behind_an_ingress_that_routes_the_api() {
    let rendered = render(json!({
        "publicUrl": "https://packages.example.org",
        "s3": {"bucket": "pkgs", "prefix": "prod", "endpoint": "https://s3.internal"},
        "secrets": {"secretKey": SECRET_KEY, "databaseUrl": "postgres://packyard@db/packyard",
                    "awsAccessKeyId": "AKIA", "awsSecretAccessKey": "s3cret", "metricsToken": "m"},
        "config": {"max_upload_bytes": 1073741824_u64, "index_grace_secs": 600},
        "roles": {"web": {"autoscaling": {"enabled": true}}},
        "serviceMonitor": {"enabled": true},
    }))
    .unwrap();
    rendered.lint_is_clean();

    let deployments = rendered.of_kind("Deployment");
    assert_eq!(deployments.len(), 3);
    for role in ["web", "api", "worker"] {
        let deployment = rendered.named("Deployment", &format!("pk-packyard-{role}"));
        check_container(deployment);
        assert_eq!(
            strings(&container(deployment)["args"]),
            ["serve", "--role", role]
        );
        // The Service of the role selects exactly its pods.
        let service = rendered.named("Service", &format!("pk-packyard-{role}"));
        let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
        for (key, value) in service["spec"]["selector"].as_object().unwrap() {
            assert_eq!(&pod_labels[key], value, "{role}: {key}");
        }
        assert_eq!(pod_labels["app.kubernetes.io/component"], role);
        let pdb = rendered.named("PodDisruptionBudget", &format!("pk-packyard-{role}"));
        assert_eq!(
            pdb["spec"]["selector"]["matchLabels"],
            service["spec"]["selector"]
        );
        // Uploads in flight are staged on a scratch volume.
        let volumes = &deployment["spec"]["template"]["spec"]["volumes"];
        assert!(
            volumes
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["name"] == "data" && v["emptyDir"].is_object())
        );
    }
    // The autoscaled role leaves its replicas to the HorizontalPodAutoscaler.
    assert!(rendered.named("Deployment", "pk-packyard-web")["spec"]["replicas"].is_null());
    assert_eq!(
        rendered.named("Deployment", "pk-packyard-api")["spec"]["replicas"],
        2
    );
    let hpas = rendered.of_kind("HorizontalPodAutoscaler");
    assert_eq!(hpas.len(), 1);
    assert_eq!(hpas[0]["spec"]["scaleTargetRef"]["name"], "pk-packyard-web");

    assert_eq!(
        ingress_backends(&rendered),
        [
            ("/api/".to_owned(), "pk-packyard-api".to_owned()),
            ("/".to_owned(), "pk-packyard-web".to_owned())
        ]
    );

    // The migration runs before anything else of a release, after its configuration and
    // secrets (hooks too, with a lower weight).
    let job = rendered.named("Job", "pk-packyard-migrate");
    assert_eq!(
        strings(&job["spec"]["template"]["spec"]["containers"][0]["args"]),
        ["migrate"]
    );
    let hook = |object: &Value| {
        let annotations = &object["metadata"]["annotations"];
        (
            annotations["helm.sh/hook"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            annotations["helm.sh/hook-weight"]
                .as_str()
                .unwrap_or("0")
                .parse::<i64>()
                .unwrap(),
        )
    };
    let (job_hook, job_weight) = hook(job);
    assert_eq!(job_hook, "pre-install,pre-upgrade");
    for needed in [
        rendered.named("ConfigMap", "pk-packyard-config"),
        rendered.named("Secret", "pk-packyard-secrets"),
    ] {
        let (needed_hook, weight) = hook(needed);
        assert_eq!(needed_hook, job_hook);
        assert!(weight < job_weight);
    }

    let secret = &rendered.named("Secret", "pk-packyard-secrets")["stringData"];
    assert_eq!(secret["PACKYARD_SECRET_KEY"], SECRET_KEY);
    assert_eq!(
        secret["PACKYARD_DATABASE_URL"],
        "postgres://packyard@db/packyard"
    );
    assert_eq!(secret["AWS_SECRET_ACCESS_KEY"], "s3cret");

    let config = rendered.config();
    assert_eq!(config.storage, "s3://pkgs/prod");
    assert_eq!(config.s3_endpoint.as_deref(), Some("https://s3.internal"));
    assert_eq!(
        config.public_url.as_deref(),
        Some("https://packages.example.org")
    );
    assert_eq!(config.max_upload_bytes, 1 << 30);
    assert_eq!(config.index_grace_secs, 600);
    assert_eq!(config.listen.to_string(), "0.0.0.0:8080");

    let monitor = &rendered.of_kind("ServiceMonitor")[0]["spec"];
    assert_eq!(monitor["endpoints"][0]["path"], "/metrics");
    assert_eq!(monitor["endpoints"][0]["port"], "http");
    assert_eq!(
        monitor["endpoints"][0]["authorization"]["credentials"]["key"],
        "PACKYARD_METRICS_TOKEN"
    );
}

#[test]
fn the_single_chart_runs_every_role_in_one_replica_on_a_volume() {
    let rendered = render(json!({"mode": "single"})).unwrap();
    rendered.lint_is_clean();
    let deployments = rendered.of_kind("Deployment");
    assert_eq!(deployments.len(), 1);
    let deployment = deployments[0];
    check_container(deployment);
    assert_eq!(
        strings(&container(deployment)["args"]),
        ["serve", "--role", "all"]
    );
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    let claim = rendered.named("PersistentVolumeClaim", "pk-packyard-data");
    assert_eq!(
        claim["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    let volumes = &deployment["spec"]["template"]["spec"]["volumes"];
    assert!(volumes.as_array().unwrap().iter().any(|v| {
        v["name"] == "data" && v["persistentVolumeClaim"]["claimName"] == "pk-packyard-data"
    }));
    assert!(
        rendered.of_kind("Job").is_empty(),
        "serve migrates SQLite at start-up"
    );
    assert!(rendered.of_kind("PodDisruptionBudget").is_empty());
    assert_eq!(
        ingress_backends(&rendered),
        [("/".to_owned(), "pk-packyard-all".to_owned())]
    );
    assert_eq!(rendered.config().storage, "local");
}

#[test]
fn the_scaled_chart_refuses_to_render_without_the_shared_secret() {
    let refused = render(json!({"secrets": {"databaseUrl": "postgres://db/p"}}))
        .err()
        .unwrap();
    assert!(refused.contains("secrets.secretKey"), "{refused}");
    let refused = render(json!({"secrets": {"secretKey": SECRET_KEY}}))
        .err()
        .unwrap();
    assert!(refused.contains("secrets.databaseUrl"), "{refused}");
    // A Secret managed elsewhere is enough.
    let rendered = render(json!({"secrets": {"existingSecret": "packyard-prod"}})).unwrap();
    assert!(rendered.of_kind("Secret").is_empty());
    let env = &container(rendered.named("Deployment", "pk-packyard-api"))["env"];
    assert!(env.as_array().unwrap().iter().any(|e| {
        e["name"] == "PACKYARD_SECRET_KEY"
            && e["valueFrom"]["secretKeyRef"]["name"] == "packyard-prod"
    }));
}
