//! The OCI checkpoint image, as pure functions: a checkpoint archive becomes
//! one layer holding the archive's contents (the kubelet's archive is an
//! uncompressed tar, so the archive *is* the layer, byte for byte: no copy and
//! no re-packing), an image config, a manifest and an image index.
//!
//! The layout follows what `checkpointctl build` (and buildah `add` + `config
//! --annotation`) produces, which the runtimes restore from:
//! - CRI-O recognises a checkpoint image by the manifest annotation
//!   `io.kubernetes.cri-o.annotations.checkpoint.name` (the container's name);
//! - containerd ≥ 2.1 reads the `org.criu.checkpoint.*` annotations
//!   (container name, rootfs image, pod, runtime, engine), which we put on the
//!   manifest and on the image index.

use std::collections::BTreeMap;

use serde_json::{Value, json};

pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The layer: the archive as it is, an uncompressed tar.
pub const MEDIA_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// CRI-O's annotation: the image restores the container of this name.
pub const CRIO_CHECKPOINT_NAME: &str = "io.kubernetes.cri-o.annotations.checkpoint.name";
pub const CRIU_CONTAINER_NAME: &str = "org.criu.checkpoint.container.name";
pub const CRIU_ROOTFS_IMAGE_NAME: &str = "org.criu.checkpoint.rootfsImageName";
pub const CRIU_POD_NAME: &str = "org.criu.checkpoint.pod.name";
pub const CRIU_POD_NAMESPACE: &str = "org.criu.checkpoint.pod.namespace";
pub const CRIU_RUNTIME_NAME: &str = "org.criu.checkpoint.runtime.name";
pub const CRIU_ENGINE_NAME: &str = "org.criu.checkpoint.engine.name";
pub const CRIU_HOST_ARCH: &str = "org.criu.checkpoint.host.arch";

/// A content descriptor: media type, digest (`sha256:…`) and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: &'static str,
    pub digest: String,
    pub size: u64,
}

impl Descriptor {
    fn json(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

/// What the archive's `config.dump` and `spec.dump` tell about the container.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArchiveMeta {
    pub rootfs_image_name: Option<String>,
    pub runtime: Option<String>,
    pub pod_name: Option<String>,
    pub pod_namespace: Option<String>,
}

impl ArchiveMeta {
    /// From the JSON of `config.dump` and `spec.dump` (either may be missing).
    pub fn from_dumps(config: Option<&Value>, spec: Option<&Value>) -> ArchiveMeta {
        let s = |v: Option<&Value>, p: &str| v.and_then(|v| v.pointer(p)).and_then(Value::as_str).map(str::to_string);
        ArchiveMeta {
            rootfs_image_name: s(config, "/rootfsImageName").or_else(|| s(config, "/rootfsImage")),
            runtime: s(config, "/runtime"),
            pod_name: s(spec, "/annotations/io.kubernetes.pod.name"),
            pod_namespace: s(spec, "/annotations/io.kubernetes.pod.namespace"),
        }
    }
}

/// The annotations a checkpoint image of `container` carries.
pub fn annotations(container: &str, meta: &ArchiveMeta) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    a.insert(CRIO_CHECKPOINT_NAME.to_string(), container.to_string());
    a.insert(CRIU_CONTAINER_NAME.to_string(), container.to_string());
    a.insert(CRIU_ENGINE_NAME.to_string(), "sdi-migration".to_string());
    a.insert(CRIU_HOST_ARCH.to_string(), "amd64".to_string());
    for (k, v) in [
        (CRIU_ROOTFS_IMAGE_NAME, &meta.rootfs_image_name),
        (CRIU_RUNTIME_NAME, &meta.runtime),
        (CRIU_POD_NAME, &meta.pod_name),
        (CRIU_POD_NAMESPACE, &meta.pod_namespace),
    ] {
        if let Some(v) = v {
            a.insert(k.to_string(), v.clone());
        }
    }
    a
}

/// The image config: one layer whose uncompressed digest is the layer's own.
pub fn config(layer: &Descriptor, created: &str) -> Vec<u8> {
    let v = json!({
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
        "history": [{"created": created, "created_by": "sdi-migration agent: checkpoint archive"}],
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

pub fn manifest(config: &Descriptor, layer: &Descriptor, annotations: &BTreeMap<String, String>) -> Vec<u8> {
    let v = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config.json(),
        "layers": [layer.json()],
        "annotations": annotations,
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

/// The index: one linux/amd64 manifest, with the same annotations (containerd
/// reads them from the index).
pub fn index(manifest: &Descriptor, annotations: &BTreeMap<String, String>) -> Vec<u8> {
    let mut m = manifest.json();
    m["platform"] = json!({"architecture": "amd64", "os": "linux"});
    m["annotations"] = json!(annotations);
    let v = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [m],
        "annotations": annotations,
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

/// `sha256:<hex>` of some bytes.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_and_index_carry_the_runtimes_annotations() {
        let meta = ArchiveMeta::from_dumps(
            Some(&json!({"rootfsImageName": "docker.io/library/app:1", "runtime": "runc"})),
            Some(&json!({"annotations": {"io.kubernetes.pod.name": "p", "io.kubernetes.pod.namespace": "ns"}})),
        );
        let ann = annotations("app", &meta);
        let layer = Descriptor { media_type: MEDIA_LAYER_TAR, digest: digest(b"layer"), size: 5 };
        let cfg_bytes = config(&layer, "2026-01-01T00:00:00Z");
        let cfg: Value = serde_json::from_slice(&cfg_bytes).unwrap();
        assert_eq!(cfg["rootfs"]["diff_ids"][0], layer.digest, "uncompressed layer: diff_id = digest");
        let cfg_d = Descriptor { media_type: MEDIA_CONFIG, digest: digest(&cfg_bytes), size: cfg_bytes.len() as u64 };
        let m: Value = serde_json::from_slice(&manifest(&cfg_d, &layer, &ann)).unwrap();
        assert_eq!(m["annotations"][CRIO_CHECKPOINT_NAME], "app");
        assert_eq!(m["annotations"][CRIU_CONTAINER_NAME], "app");
        assert_eq!(m["annotations"][CRIU_ROOTFS_IMAGE_NAME], "docker.io/library/app:1");
        assert_eq!(m["annotations"][CRIU_POD_NAMESPACE], "ns");
        assert_eq!(m["layers"][0]["mediaType"], MEDIA_LAYER_TAR);
        let md = Descriptor { media_type: MEDIA_MANIFEST, digest: digest(b"m"), size: 1 };
        let i: Value = serde_json::from_slice(&index(&md, &ann)).unwrap();
        assert_eq!(i["manifests"][0]["platform"]["os"], "linux");
        assert_eq!(i["annotations"][CRIU_CONTAINER_NAME], "app");
    }

    #[test]
    fn digests_are_sha256() {
        assert_eq!(digest(b""), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
