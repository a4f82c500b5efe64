"""The Python `kubernetes` client (PyPI) against kube-sim: typed CRUD, a
strategic merge patch, a label-selected list, a bounded watch, scale and
delete. Prints one line per check; exits non-zero on the first failure."""
import sys

from kubernetes import client, config, watch

config.load_kube_config(config_file=sys.argv[1])
core = client.CoreV1Api()
apps = client.AppsV1Api()
batch = client.BatchV1Api()

ns = "py"
core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
assert ns in [n.metadata.name for n in core.list_namespace().items]
print("ok namespace")

core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm", labels={"app": "py"}), data={"a": "1"}))
core.patch_namespaced_config_map("cm", ns, {"data": {"b": "2"}})
cm = core.read_namespaced_config_map("cm", ns)
assert cm.data == {"a": "1", "b": "2"}, cm.data
assert [c.metadata.name for c in core.list_namespaced_config_map(ns, label_selector="app=py").items] == ["cm"]
print("ok configmap")

dep = client.V1Deployment(
    metadata=client.V1ObjectMeta(name="web"),
    spec=client.V1DeploymentSpec(
        replicas=2,
        selector=client.V1LabelSelector(match_labels={"app": "web"}),
        template=client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(labels={"app": "web"}),
            spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="nginx:1.27")]),
        ),
    ),
)
apps.create_namespaced_deployment(ns, dep)
w = watch.Watch()
for ev in w.stream(apps.list_namespaced_deployment, ns, timeout_seconds=30):
    s = ev["object"].status
    if s.ready_replicas == 2:
        w.stop()
        break
else:
    sys.exit("deployment never became ready")
print("ok deployment ready (watch)")

apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 3}})
assert apps.read_namespaced_deployment_scale("web", ns).spec.replicas == 3
print("ok scale")

job = client.V1Job(
    metadata=client.V1ObjectMeta(name="j"),
    spec=client.V1JobSpec(template=client.V1PodTemplateSpec(spec=client.V1PodSpec(
        restart_policy="Never", containers=[client.V1Container(name="c", image="busybox")]))),
)
batch.create_namespaced_job(ns, job)
w = watch.Watch()
for ev in w.stream(batch.list_namespaced_job, ns, timeout_seconds=30):
    conds = ev["object"].status.conditions or []
    if any(c.type == "Complete" and c.status == "True" for c in conds):
        w.stop()
        break
else:
    sys.exit("job never completed")
print("ok job complete")

try:
    core.read_namespaced_pod("nope", ns)
    sys.exit("a missing pod was found")
except client.ApiException as e:
    assert e.status == 404, e.status
print("ok 404")

core.delete_namespace(ns)
print("ok delete")
