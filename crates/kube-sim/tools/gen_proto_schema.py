#!/usr/bin/env python3
"""Generate kube-sim's protobuf schema table (src/protobuf/schema.txt) from the
messages of the k8s-pb crate (kube-rs) and the JSON field names of the recorded
v1.32 OpenAPI v2 document.

k8s-pb's prost structs carry every field's tag and wire type; the OpenAPI
document carries the JSON name of each field (prost's snake_case loses case:
`podIPs` -> `pod_ips`). kube-sim's codec (src/protobuf/) walks this table to
translate between the JSON objects it stores and Kubernetes' protobuf.

Usage (from the repository root):
    python3 crates/kube-sim/tools/gen_proto_schema.py [K8S_PB_SRC_DIR]
K8S_PB_SRC_DIR defaults to the k8s-pb version in Cargo.lock, found with
`cargo metadata`. The test `protobuf::schema::tests::table_matches_k8s_pb`
checks the committed table against k8s-pb's prost types.
"""
import gzip, json, os, re, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
MODULES = [
    "api/core/v1", "api/apps/v1", "api/batch/v1", "api/autoscaling/v1", "api/coordination/v1",
    "api/events/v1", "api/policy/v1", "api/scheduling/v1", "api/storage/v1", "api/rbac/v1",
    "api/authentication/v1", "api/authorization/v1",
    "apiextensions_apiserver/pkg/apis/apiextensions/v1",
    "apimachinery/pkg/apis/meta/v1", "apimachinery/pkg/runtime", "apimachinery/pkg/api/resource",
    "apimachinery/pkg/util/intstr",
]
# OpenAPI definition prefix of each module (JSON names come from there).
def openapi_prefix(mod):
    if mod.startswith("api/"):
        return "io.k8s.api." + mod[4:].replace("/", ".")
    if mod.startswith("apiextensions_apiserver/"):
        return "io.k8s.apiextensions-apiserver." + mod[len("apiextensions_apiserver/"):].replace("/", ".")
    return "io.k8s." + mod.replace("/", ".")

def k8s_pb_dir():
    if len(sys.argv) > 1:
        return sys.argv[1]
    meta = json.loads(subprocess.check_output(
        ["cargo", "metadata", "--format-version", "1", "--offline"], cwd=ROOT))
    for p in meta["packages"]:
        if p["name"] == "k8s-pb":
            return os.path.join(os.path.dirname(p["manifest_path"]), "src")
    sys.exit("k8s-pb is not a dependency of the workspace")

FIELD_ATTR = re.compile(r'#\[prost\((?P<kind>[a-z0-9_]+)(?: = "(?P<arg>[^"]*)")?, (?:(?P<label>optional|repeated|required), )?(?:boxed, )?tag = "(?P<tag>\d+)"\)\]')
FIELD_DECL = re.compile(r'pub (?P<name>(?:r#)?[a-z0-9_]+):\s*(?P<ty>.+),$')
STRUCT = re.compile(r'pub struct (\w+) \{')

def resolve(mod, ty):
    """Rust type path of a message field -> 'module/path.Struct'."""
    ty = ty.strip().rstrip(",").strip()
    for wrap in ("::core::option::Option<", "::prost::alloc::vec::Vec<", "::prost::alloc::boxed::Box<"):
        while ty.startswith(wrap):
            ty = ty[len(wrap):-1].strip().rstrip(",").strip()
    parts = ty.split("::")
    base = mod.split("/")
    while parts and parts[0] == "super":
        base = base[:-1]
        parts = parts[1:]
    if parts and parts[0] == "crate":
        base = []
        parts = parts[1:]
    return "/".join(base + parts[:-1]) + "." + parts[-1]

def join_decls(lines):
    """Put each multi-line field declaration (rustfmt splits long types) on one line."""
    out, acc = [], None
    for line in lines:
        s = line.strip()
        if acc is None and s.startswith("pub ") and ":" in s and not s.endswith(","):
            acc = line.rstrip()
            continue
        if acc is not None:
            acc += s if acc.endswith("<") or acc.endswith(":") and False or s.startswith(">") else " " + s
            if s.endswith(",") and acc.count("<") == acc.count(">"):
                out.append(acc.replace(": ", ": ", 1))
                acc = None
            continue
        out.append(line)
    return out

def camel(snake):
    p = snake.split("_")
    return p[0] + "".join(x[:1].upper() + x[1:] for x in p[1:])

def norm(s):
    return re.sub(r"[^a-z0-9]", "", s.lower())

def mark_inline(out, defs_norm):
    """Go structs embedded with `json:",inline"` (Probe's ProbeHandler, Volume's
    VolumeSource, ...) are a field in protobuf but flattened into the parent in
    JSON. Such a field has no JSON property of its own, and every field of its
    message is a property of the parent. Their JSON name becomes "-"."""
    fields_of, current = {}, None
    for line in out:
        if line.startswith("M "):
            current = line[2:]
            fields_of[current] = []
        elif line.startswith("F "):
            fields_of[current].append(line.split(" ")[2])
    res, current, props = [], None, set()
    for line in out:
        if line.startswith("M "):
            current = line[2:]
            mod, _, st = current.rpartition(".")
            props = set((defs_norm.get((openapi_prefix(mod), st.lower())) or {}).get("properties", {}))
        elif line.startswith("F ") and props:
            p = line.split(" ")
            if p[3] == "o" and p[2] not in props and p[4] in fields_of:
                inner = fields_of[p[4]]
                if inner and sum(f in props for f in inner) * 2 > len(inner):
                    p[2] = "-"
                    line = " ".join(p)
        res.append(line)
    return res

def main():
    src = k8s_pb_dir()
    with gzip.open(os.path.join(ROOT, "testdata/k8s-reference/v1.32/openapi/v2.json.gz")) as f:
        defs = json.load(f)["definitions"]
    defs_norm = {}
    for name, d in defs.items():
        pkg, _, kind = name.rpartition(".")
        defs_norm[(pkg, kind.lower())] = d
    out = ["# Generated by crates/kube-sim/tools/gen_proto_schema.py from k8s-pb and the v1.32 OpenAPI v2",
           "# document. Do not edit. M <message>; F <tag> <json name> <label o|r|m> <type> [<map value type>]"]
    for mod in MODULES:
        path = os.path.join(src, mod, "mod.rs")
        lines = join_decls(open(path).read().splitlines())
        prefix = openapi_prefix(mod)
        struct = None
        attr = None
        in_struct = False
        for line in lines:
            s = line.strip()
            m = STRUCT.match(s)
            if m and not line.startswith(" "):
                struct = m.group(1)
                in_struct = True
                props = (defs_norm.get((prefix, struct.lower())) or {}).get("properties", {})
                by_norm = {norm(k): k for k in props}
                out.append(f"M {mod}.{struct}")
                continue
            if not in_struct:
                continue
            if line.startswith("}"):
                in_struct = False
                continue
            m = FIELD_ATTR.match(s)
            if m:
                attr = m
                continue
            m = FIELD_DECL.match(s)
            if m and attr:
                rust = m.group("name").removeprefix("r#")
                json_name = by_norm.get(norm(rust), camel(rust))
                kind, arg, label, tag = attr.group("kind"), attr.group("arg"), attr.group("label"), attr.group("tag")
                if kind == "btree_map" or kind == "map":
                    k, v = [x.strip() for x in arg.split(",")]
                    if v == "message":
                        ty = m.group("ty")
                        inner = ty[ty.index(",") + 1:ty.rindex(">")].strip().rstrip(",")
                        v = resolve(mod, inner)
                    out.append(f"F {tag} {json_name} m {k} {v}")
                else:
                    if kind == "bytes":
                        kind = "bytes"
                    if kind == "message":
                        kind = resolve(mod, m.group("ty"))
                    lab = "r" if label == "repeated" else "o"
                    out.append(f"F {tag} {json_name} {lab} {kind}")
                attr = None
    out = mark_inline(out, defs_norm)
    dest = os.path.join(ROOT, "crates/kube-sim/src/protobuf/schema.txt")
    with open(dest, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"{dest}: {sum(1 for l in out if l.startswith('M '))} messages, {sum(1 for l in out if l.startswith('F '))} fields")

main()
