"""Pure builder for the kubeconfig the Kubernetes provider and `kubectl` use."""

from __future__ import annotations

import yaml

# gke-gcloud-auth-plugin reads gcloud's own login unless told to use application-default
# credentials (kubernetes/cloud-provider-gcp). ADC is what the Pulumi GCP provider uses, on a
# laptop (`gcloud auth application-default login`) and in CI (google-github-actions/auth),
# so both halves of `pulumi up` run as the same identity from one login.
AUTH_PLUGIN_ARGS = ["--use_application_default_credentials"]


def kubeconfig(context: str, server_host: str, ca_certificate: str | None = None) -> str:
    """A kubeconfig that authenticates through gke-gcloud-auth-plugin (no static credentials).

    `server_host` is the cluster's DNS-based control-plane endpoint (`*.gke.goog`): it
    serves a publicly trusted certificate, so no CA is embedded (pass `ca_certificate` for an
    IP endpoint). Built only from outputs that do not change on cluster updates: a provider
    fed unstable outputs would replace every Kubernetes object on each update.
    """
    cluster: dict[str, object] = {"server": f"https://{server_host}"}
    if ca_certificate:
        cluster["certificate-authority-data"] = ca_certificate
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": cluster}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
            "current-context": context,
            "users": [
                {
                    "name": context,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "gke-gcloud-auth-plugin",
                            "args": list(AUTH_PLUGIN_ARGS),
                            "installHint": "Install gke-gcloud-auth-plugin: gcloud components install gke-gcloud-auth-plugin",
                            "provideClusterInfo": True,
                            "interactiveMode": "Never",
                        }
                    },
                }
            ],
        },
        sort_keys=False,
    )
