//! The manifests in `deploy/` as an operator applies them: the ClusterRole is
//! exactly the calls the service makes (`cluster::rbac::RULES`), the Deployment
//! is hardened and probed, the ConfigMap holds every setting `run --help` lists
//! at its default, and `kubectl apply -k deploy/` works against a live cluster.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_sdi-migration");
const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// Settings that are deliberately not in the ConfigMap: the token comes from the
/// Secret, KUBECONFIG stays unset in a pod (in-cluster configuration), and
/// POD_NAME comes from the Downward API.
/// The checkpoint registry's credentials come from the Secret sdi-migration-registry.
const NOT_IN_CONFIGMAP: &[&str] =
    &["INFLUX_TOKEN", "KUBECONFIG", "POD_NAME", "CHECKPOINT_REGISTRY_USERNAME", "CHECKPOINT_REGISTRY_PASSWORD"];

fn deploy_dir() -> PathBuf {
    Path::new(REPO).join("deploy")
}

/// Every YAML document of every `*.yaml` file in `deploy/`, with its file name.
fn documents() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir())
        .expect("deploy/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in deploy/");
    let mut docs = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let value = Value::deserialize(doc).unwrap_or_else(|e| panic!("{name}: {e}"));
            if !value.is_null() {
                docs.push((name.clone(), value));
            }
        }
    }
    docs
}

/// The one object of `kind` named `name`.
fn object(docs: &[(String, Value)], kind: &str, name: &str) -> Value {
    let found: Vec<&Value> =
        docs.iter().map(|(_, d)| d).filter(|d| d["kind"] == kind && d["metadata"]["name"] == name).collect();
    assert_eq!(found.len(), 1, "expected exactly one {kind} {name} in deploy/, found {}", found.len());
    found[0].clone()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected a list, got {v}"))
        .iter()
        .map(|s| s.as_str().unwrap_or_else(|| panic!("expected a string, got {s}")).to_string())
        .collect()
}

type RuleSet = BTreeSet<(String, String, Vec<String>)>;

/// `cluster::rbac::RULES` as (group, resource, sorted verbs).
fn expected_rules() -> RuleSet {
    let mut set = RuleSet::new();
    for (group, resource, verbs) in sdi_migration::cluster::rbac::RULES {
        let mut verbs: Vec<String> = verbs.iter().map(|v| v.to_string()).collect();
        verbs.sort();
        assert!(set.insert((group.to_string(), resource.to_string(), verbs)), "RULES repeats {group}/{resource}");
    }
    set
}

/// A ClusterRole's `rules` as (group, resource, sorted verbs), checking that each
/// rule names one group and one resource, no wildcards, no resourceNames or URLs.
fn role_rules(role: &Value) -> RuleSet {
    let mut set = RuleSet::new();
    let mut seen = BTreeSet::new();
    for rule in role["rules"].as_array().expect("ClusterRole has rules") {
        let keys: BTreeSet<&str> = rule.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, BTreeSet::from(["apiGroups", "resources", "verbs"]), "unexpected fields in rule {rule}");
        let groups = strings(&rule["apiGroups"]);
        let resources = strings(&rule["resources"]);
        let mut verbs = strings(&rule["verbs"]);
        assert!(groups.len() == 1 && resources.len() == 1, "one rule per (group, resource): {rule}");
        for s in groups.iter().chain(&resources).chain(&verbs) {
            assert!(!s.contains('*'), "wildcard in rule {rule}");
        }
        let n = verbs.len();
        verbs.sort();
        verbs.dedup();
        assert_eq!(verbs.len(), n, "repeated verb in rule {rule}");
        assert!(seen.insert((groups[0].clone(), resources[0].clone())), "two rules for {}/{}", groups[0], resources[0]);
        set.insert((groups[0].clone(), resources[0].clone(), verbs));
    }
    set
}

fn rule_set(rules: &[(&str, &str, &[&str])]) -> RuleSet {
    rules
        .iter()
        .map(|(g, r, v)| {
            let mut v: Vec<String> = v.iter().map(|v| v.to_string()).collect();
            v.sort();
            (g.to_string(), r.to_string(), v)
        })
        .collect()
}

#[test]
fn the_agent_roles_are_exactly_the_calls_the_agent_makes() {
    use sdi_migration::cluster::rbac::{AGENT_NAMESPACE_RULES, AGENT_RULES};
    let docs = documents();
    let role = object(&docs, "ClusterRole", "sdi-migration-agent");
    assert_eq!(role_rules(&role), rule_set(AGENT_RULES), "deploy/agent.yaml ClusterRole vs AGENT_RULES");
    let role = object(&docs, "Role", "sdi-migration-agent");
    assert_eq!(role["metadata"]["namespace"], "kube-system");
    assert_eq!(role_rules(&role), rule_set(AGENT_NAMESPACE_RULES), "deploy/agent.yaml Role vs AGENT_NAMESPACE_RULES");
    let ds = object(&docs, "DaemonSet", "sdi-migration-agent");
    let spec = &ds["spec"]["template"]["spec"];
    assert_eq!(spec["serviceAccountName"], "sdi-migration-agent");
    assert_eq!(spec["containers"][0]["args"], json!(["agent"]));
    assert_eq!(spec["volumes"][0]["hostPath"]["path"], "/var/lib/kubelet/checkpoints");
    let sc = &spec["containers"][0]["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
}

#[test]
fn the_cluster_role_is_exactly_the_calls_the_service_makes() {
    let docs = documents();
    let role = object(&docs, "ClusterRole", "sdi-migration");
    assert_eq!(role["apiVersion"], "rbac.authorization.k8s.io/v1");
    assert!(!role.to_string().contains('*'), "no wildcards anywhere in the ClusterRole: {role}");
    let have = role_rules(&role);
    let want = expected_rules();
    let missing: Vec<_> = want.difference(&have).collect();
    let extra: Vec<_> = have.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "deploy/clusterrole.yaml differs from cluster::rbac::RULES\n  missing: {missing:?}\n  extra: {extra:?}"
    );

    let binding = object(&docs, "ClusterRoleBinding", "sdi-migration");
    assert_eq!(
        binding["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "sdi-migration"})
    );
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "sdi-migration", "namespace": "kube-system"}])
    );
    let sa = object(&docs, "ServiceAccount", "sdi-migration");
    assert_eq!(sa["metadata"]["namespace"], "kube-system");
}

/// The API's callers are checked through `system:auth-delegator`; users get
/// aggregated roles for PodMigrations and a role for exactly the non-resource
/// URLs the API guards (`sdi_core::access`); a NetworkPolicy fences the port.
#[test]
fn access_to_the_api_is_declared_for_users_and_the_network() {
    let docs = documents();
    let delegator = object(&docs, "ClusterRoleBinding", "sdi-migration-auth-delegator");
    assert_eq!(
        delegator["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
               "name": sdi_migration::cluster::rbac::DELEGATED_AUTH_ROLE})
    );
    assert_eq!(
        delegator["subjects"],
        json!([{"kind": "ServiceAccount", "name": "sdi-migration", "namespace": "kube-system"}])
    );

    let edit = object(&docs, "ClusterRole", "sdi-migration-edit");
    assert_eq!(edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"], "true");
    let verbs: BTreeSet<String> = strings(&edit["rules"][0]["verbs"]).into_iter().collect();
    assert!(verbs.contains("create") && verbs.contains("delete"), "{edit}");
    assert_eq!(strings(&edit["rules"][0]["resources"]), ["podmigrations"]);
    let view = object(&docs, "ClusterRole", "sdi-migration-view");
    assert_eq!(view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"], "true");
    let verbs: BTreeSet<String> = strings(&view["rules"][0]["verbs"]).into_iter().collect();
    assert_eq!(verbs, ["get", "list", "watch"].map(String::from).into_iter().collect());

    // (verb, URL) granted by the operator and metrics roles == what the API asks for.
    let mut granted = BTreeSet::new();
    for name in ["sdi-migration-operator", "sdi-migration-metrics-reader"] {
        for rule in object(&docs, "ClusterRole", name)["rules"].as_array().unwrap() {
            for url in strings(&rule["nonResourceURLs"]) {
                for verb in strings(&rule["verbs"]) {
                    granted.insert((verb, url.clone()));
                }
            }
        }
    }
    let wanted: BTreeSet<(String, String)> =
        sdi_core::access::non_resource_urls().map(|(v, u)| (v.to_string(), u.to_string())).collect();
    assert_eq!(granted, wanted, "deploy/user-roles.yaml vs sdi_core::access");

    let np = object(&docs, "NetworkPolicy", "sdi-migration-api");
    assert_eq!(np["metadata"]["namespace"], "kube-system");
    assert_eq!(np["spec"]["podSelector"], json!({"matchLabels": {"app": "sdi-migration"}}));
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress"]));
    let ingress = &np["spec"]["ingress"][0];
    assert_eq!(ingress["ports"], json!([{"protocol": "TCP", "port": 8080}]));
    assert!(ingress["from"][0]["namespaceSelector"].is_object(), "admits chosen namespaces only: {np}");
}

#[test]
fn the_deployment_runs_two_hardened_probed_replicas() {
    let docs = documents();
    let d = object(&docs, "Deployment", "sdi-migration");
    assert_eq!(d["apiVersion"], "apps/v1");
    assert_eq!(d["metadata"]["namespace"], "kube-system");
    let spec = &d["spec"];
    assert_eq!(spec["replicas"], 2, "a standby replica takes the Lease when the leader goes");
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}),
        "one replica at a time, never none"
    );
    let anti =
        &spec["template"]["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0];
    assert_eq!(anti["podAffinityTerm"]["topologyKey"], "kubernetes.io/hostname");
    assert_eq!(anti["podAffinityTerm"]["labelSelector"]["matchLabels"], json!({"app": "sdi-migration"}));
    let pdb = object(&docs, "PodDisruptionBudget", "sdi-migration");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(pdb["spec"]["selector"]["matchLabels"], json!({"app": "sdi-migration"}));
    assert_eq!(spec["selector"]["matchLabels"], json!({"app": "sdi-migration"}));
    let pod = &spec["template"]["spec"];
    assert_eq!(spec["template"]["metadata"]["labels"]["app"], "sdi-migration");
    assert_eq!(pod["serviceAccountName"], "sdi-migration");
    assert_eq!(pod["terminationGracePeriodSeconds"], 180, "SHUTDOWN_GRACE (30 s) plus the undo bound (120 s)");

    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(c["image"], "sdi-migration:0.1.0");
    assert_eq!(c["args"], json!(["run"]));
    assert_eq!(c["envFrom"], json!([{"configMapRef": {"name": "sdi-migration-config"}}]));
    let env: BTreeMap<String, Value> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e["valueFrom"].clone()))
        .collect();
    assert_eq!(
        env["INFLUX_TOKEN"],
        json!({"secretKeyRef": {"name": "sdi-migration-influxdb", "key": "token", "optional": true}})
    );
    assert_eq!(env["POD_NAME"]["fieldRef"]["fieldPath"], "metadata.name");
    assert_eq!(c["ports"].as_array().unwrap().len(), 1);
    assert_eq!(c["ports"][0]["name"], "http");
    assert_eq!(c["ports"][0]["containerPort"], 8080);

    for (probe, path) in [("livenessProbe", "/health"), ("readinessProbe", "/ready")] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe}");
        assert_eq!(get["port"], "http", "{probe}");
    }
    if !c["startupProbe"].is_null() {
        assert_eq!(c["startupProbe"]["httpGet"]["path"], "/health");
    }

    assert_eq!(
        c["resources"],
        json!({"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}})
    );

    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["runAsUser"], 65532);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert!(sc["capabilities"]["add"].is_null(), "no capabilities added");
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert!(sc["privileged"].is_null() || sc["privileged"] == false);
    // A pod-level context, when present, must not contradict the container's.
    let psc = &pod["securityContext"];
    if !psc.is_null() {
        assert_ne!(psc["runAsNonRoot"], false);
        assert!(psc["runAsUser"].is_null() || psc["runAsUser"] == 65532);
    }
    assert!(pod["hostNetwork"].is_null() || pod["hostNetwork"] == false);
}

#[test]
fn the_service_secret_and_kustomization_fit_together() {
    let docs = documents();
    let svc = object(&docs, "Service", "sdi-migration");
    assert_eq!(svc["metadata"]["namespace"], "kube-system");
    assert_eq!(svc["spec"]["selector"], json!({"app": "sdi-migration"}));
    let ports = svc["spec"]["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0]["port"], 8080);
    assert_eq!(ports[0]["targetPort"], "http");

    let secret = object(&docs, "Secret", "sdi-migration-influxdb");
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(secret["stringData"], json!({"token": "<replace-with-influxdb-token>"}), "a placeholder, never a token");
    assert!(secret["data"].is_null());

    // Every namespaced object lives in kube-system.
    for (file, doc) in &docs {
        let kind = doc["kind"].as_str().unwrap_or_default();
        if ["ServiceAccount", "ConfigMap", "Secret", "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"]
            .contains(&kind)
        {
            assert_eq!(doc["metadata"]["namespace"], "kube-system", "{file}: {kind}");
        }
    }

    // kustomization.yaml lists every other manifest, and only those.
    let k = docs.iter().find(|(f, _)| f == "kustomization.yaml").map(|(_, d)| d).expect("deploy/kustomization.yaml");
    assert_eq!(k["namespace"], "kube-system");
    let listed: BTreeSet<String> = strings(&k["resources"]).into_iter().collect();
    let files: BTreeSet<String> =
        docs.iter().map(|(f, _)| f.clone()).filter(|f| f != "kustomization.yaml" && f != "secret.yaml").collect();
    assert_eq!(listed, files, "kustomization.yaml resources vs the files in deploy/ (all but the Secret)");
    let labelled = k["commonLabels"]["app.kubernetes.io/name"] == "sdi-migration"
        || k["labels"]
            .as_array()
            .is_some_and(|l| l.iter().any(|l| l["pairs"]["app.kubernetes.io/name"] == "sdi-migration"));
    assert!(labelled, "kustomization labels app.kubernetes.io/name: sdi-migration");
}

/// (variable, default) for every `[env: NAME=…]` of `sdi-migration run --help`;
/// the default is `None` for settings whose default is hidden (unset).
fn help_variables() -> Vec<(String, Option<String>)> {
    // A clean environment: clap shows current values in `[env: NAME=value]`.
    let out = std::process::Command::new(BIN).args(["run", "--help"]).env_clear().output().unwrap();
    assert!(out.status.success(), "run --help: {}", String::from_utf8_lossy(&out.stderr));
    let help = String::from_utf8(out.stdout).unwrap();
    let mut vars = Vec::new();
    let mut pending: Option<String> = None;
    for line in help.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("[env: ") {
            if let Some(name) = pending.take() {
                vars.push((name, None));
            }
            let name = rest.split(['=', ']']).next().unwrap();
            pending = Some(name.to_string());
        } else if let Some(rest) = line.strip_prefix("[default: ") {
            if let Some(name) = pending.take() {
                vars.push((name, Some(rest.strip_suffix(']').unwrap().to_string())));
            }
        } else if line.starts_with('-')
            && let Some(name) = pending.take()
        {
            vars.push((name, None));
        }
    }
    if let Some(name) = pending {
        vars.push((name, None));
    }
    vars
}

#[test]
fn the_config_map_holds_every_setting_at_its_default() {
    let vars = help_variables();
    assert!(vars.len() >= 20, "parsed too few variables from run --help: {vars:?}");
    for must in ["INFLUX_URL", "POLICY_ENGINE_URL", "MIGRATION_CHECK_INTERVAL", "RESOURCE_PRESSURE_THRESHOLD"] {
        assert!(vars.iter().any(|(n, _)| n == must), "{must} missing from run --help: {vars:?}");
    }
    let docs = documents();
    let cm = object(&docs, "ConfigMap", "sdi-migration-config");
    assert_eq!(cm["metadata"]["namespace"], "kube-system");
    let data: BTreeMap<String, String> = cm["data"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_else(|| panic!("{k}: value must be a string, got {v}")).into()))
        .collect();

    let mut problems = Vec::new();
    for (name, default) in &vars {
        if NOT_IN_CONFIGMAP.contains(&name.as_str()) {
            if data.contains_key(name) {
                problems.push(format!("{name} must not be in the ConfigMap"));
            }
            continue;
        }
        match (data.get(name), default) {
            (None, _) => problems.push(format!("{name} is missing")),
            (Some(v), Some(d)) if v != d => problems.push(format!("{name}: {v:?}, but the default is {d:?}")),
            (Some(v), None) if !v.is_empty() => {
                problems.push(format!("{name}: {v:?}, but the default is unset (\"\")"))
            }
            _ => {}
        }
    }
    for name in data.keys() {
        if !vars.iter().any(|(n, _)| n == name) {
            problems.push(format!("{name} is not a setting of `sdi-migration run`"));
        }
    }
    assert!(problems.is_empty(), "deploy/configmap.yaml vs `sdi-migration run --help`:\n  {}", problems.join("\n  "));
}

/// kubectl: `$KUBECTL`, else the first on `PATH`, else `/usr/bin/kubectl`.
use common::kubectl::{find_kubectl, kubectl_ok};

/// One worker with room for the service's requests.
const SCENARIO: &str = r#"
name: deploy
defaults: {startupSeconds: 1, shutdownSeconds: 1, heartbeatSeconds: 2}
nodes:
  - name: worker-1
    capacity: {cpu: 2, memory: 4Gi, pods: 20}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_k_deploys_it_to_a_cluster() {
    find_kubectl();
    let sim = kube_sim::Cluster::new();
    let scenario = kube_sim::scenario::parse("deploy.yaml", SCENARIO)
        .unwrap_or_else(|e| panic!("scenario: {}", e.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")));
    sim.load_scenario(&scenario).unwrap();
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, server.kubeconfig()).unwrap();
    let cache = dir.path().join("cache");
    let deploy = deploy_dir();
    let deploy = deploy.to_str().unwrap();

    let resources =
        kubectl_ok(&kc, &cache, &["api-resources", "--api-group=rbac.authorization.k8s.io", "-o", "name"]).await;
    for kind in ["clusterroles.rbac.authorization.k8s.io", "clusterrolebindings.rbac.authorization.k8s.io"] {
        assert!(resources.lines().any(|l| l == kind), "kube-sim does not serve {kind}:\n{resources}");
    }

    let applied = kubectl_ok(&kc, &cache, &["apply", "-k", deploy]).await;
    for object in [
        "serviceaccount/sdi-migration created",
        "clusterrole.rbac.authorization.k8s.io/sdi-migration created",
        "clusterrolebinding.rbac.authorization.k8s.io/sdi-migration created",
        "configmap/sdi-migration-config created",
        "service/sdi-migration created",
        "deployment.apps/sdi-migration created",
        "serviceaccount/sdi-migration-agent created",
        "role.rbac.authorization.k8s.io/sdi-migration-agent created",
        "daemonset.apps/sdi-migration-agent created",
    ] {
        assert!(applied.lines().any(|l| l == object), "`{object}` missing from apply -k:\n{applied}");
    }

    // The Secret is applied once, on its own; then it holds the operator's token.
    let secret_file = format!("{deploy}/secret.yaml");
    let created = kubectl_ok(&kc, &cache, &["apply", "-f", &secret_file]).await;
    assert!(created.contains("secret/sdi-migration-influxdb created"), "{created}");
    kubectl_ok(
        &kc,
        &cache,
        &[
            "patch",
            "secret",
            "sdi-migration-influxdb",
            "-n",
            "kube-system",
            "-p",
            r#"{"stringData":{"token":"real-token"}}"#,
        ],
    )
    .await;

    let names = kubectl_ok(
        &kc,
        &cache,
        &["get", "deployment,serviceaccount,service,configmap,secret", "-n", "kube-system", "-o", "name"],
    )
    .await;
    for name in [
        "deployment.apps/sdi-migration",
        "serviceaccount/sdi-migration",
        "service/sdi-migration",
        "configmap/sdi-migration-config",
        "secret/sdi-migration-influxdb",
    ] {
        assert!(names.lines().any(|l| l == name), "{name} not in the cluster:\n{names}");
    }

    let role: Value =
        serde_json::from_str(&kubectl_ok(&kc, &cache, &["get", "clusterrole", "sdi-migration", "-o", "json"]).await)
            .unwrap();
    assert_eq!(role_rules(&role), expected_rules(), "the ClusterRole in the cluster");
    assert_eq!(role["metadata"]["labels"]["app.kubernetes.io/name"], "sdi-migration", "kustomize labels");
    let binding: Value = serde_json::from_str(
        &kubectl_ok(&kc, &cache, &["get", "clusterrolebinding", "sdi-migration", "-o", "json"]).await,
    )
    .unwrap();
    assert_eq!(binding["subjects"][0]["namespace"], "kube-system");

    // The Deployment's two pods are created and scheduled (kube-sim's kubelet does
    // not run the image: the pods just become Running).
    let pod =
        common::wait_for(Duration::from_secs(60), "the Deployment's pods to be scheduled and Running", || async {
            let list: Value = serde_json::from_str(
                &kubectl_ok(
                    &kc,
                    &cache,
                    &["get", "pods", "-n", "kube-system", "-l", "app=sdi-migration", "-o", "json"],
                )
                .await,
            )
            .unwrap();
            let items = list["items"].as_array().unwrap();
            assert!(items.len() <= 2, "two replicas, got {}", items.len());
            let running =
                items.iter().filter(|p| p["spec"]["nodeName"].is_string() && p["status"]["phase"] == "Running");
            match running.collect::<Vec<_>>().as_slice() {
                [a, _] => Ok((*a).clone()),
                _ => Err(list.to_string()),
            }
        })
        .await;
    assert_eq!(pod["spec"]["nodeName"], "worker-1");
    assert_eq!(pod["spec"]["serviceAccountName"], "sdi-migration");
    assert_eq!(pod["metadata"]["labels"]["app.kubernetes.io/name"], "sdi-migration");
    assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/health");

    // Applying again (an upgrade) changes nothing, and leaves the token alone.
    let again = kubectl_ok(&kc, &cache, &["apply", "-k", deploy]).await;
    for line in again.lines() {
        // A PodDisruptionBudget's selector has patch strategy "replace": kubectl's
        // computed patch is never empty, so a real cluster says "configured" too.
        let expected = if line.starts_with("poddisruptionbudget") { " configured" } else { " unchanged" };
        assert!(line.ends_with(expected), "a second apply -k: `{line}`:\n{again}");
    }
    let objects = documents().iter().filter(|(f, _)| f != "kustomization.yaml" && f != "secret.yaml").count();
    assert_eq!(again.lines().count(), objects, "one line per object of the kustomization: {again}");
    let secret: Value = serde_json::from_str(
        &kubectl_ok(&kc, &cache, &["get", "secret", "sdi-migration-influxdb", "-n", "kube-system", "-o", "json"]).await,
    )
    .unwrap();
    assert_eq!(secret["data"]["token"], "cmVhbC10b2tlbg==", "the token survives an upgrade: {secret}");

    server.shutdown().await;
    sim.stop();
}
