"""Renders deploy/helm/packyard with Helm's own engine (the helm-python-sdk binding of Helm's Go
SDK), lints it, and validates every rendered object against the Kubernetes schemas
(kubernetes-validate). Prints, as JSON: the lint messages and the objects, each with the
problems its validation found. The integration test (helm.rs) decides what is wrong.

usage: helm_chart.py CHART VALUES_JSON
"""

import json
import sys

import helm_python as helm
import kubernetes_validate
import yaml

KUBE_VERSION = "1.31.0"


def main() -> None:
    chart_dir, values = sys.argv[1], json.loads(sys.argv[2])
    lint = helm.lint(chart_dir, values, strict=True, kube_version=KUBE_VERSION)
    rendered = helm.Chart.load(chart_dir).render(
        values, name="pk", namespace="packyard", is_install=True
    )
    objects = []
    for template, text in sorted(rendered.items()):
        if template.endswith("NOTES.txt"):
            continue
        for document in yaml.safe_load_all(text):
            if not document:
                continue
            problems = []
            try:
                kubernetes_validate.validate(document, KUBE_VERSION, strict=True)
            except kubernetes_validate.SchemaNotFoundError as e:
                # Custom resources (ServiceMonitor): no schema in Kubernetes itself.
                problems.append(f"no schema: {e}")
            except kubernetes_validate.ValidationError as e:
                problems.append(f"{e.message} at {list(e.path)}")
            objects.append({"template": template, "object": document, "problems": problems})
    json.dump({"lint": lint, "objects": objects}, sys.stdout)


if __name__ == "__main__":
    main()
