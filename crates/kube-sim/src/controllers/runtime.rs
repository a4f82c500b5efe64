//! The simulated container runtime's checkpoint/restore, as CRI-O (with
//! `enable_criu_support`) and containerd ≥ 2.1 do it:
//!
//! - **Process state.** Every running container advances a counter: it is
//!   `base + 1` when the container starts and grows by one per simulated second
//!   while it runs (`base` is 0, or the value a restore brought back). Read it at
//!   `GET /api/v1/nodes/{node}/proxy/sim/state/{namespace}/{pod}/{container}`.
//! - **Checkpoint.** The archive is a real tar in CRI-O's layout: `config.dump`,
//!   `spec.dump`, `checkpoint/` (the "CRIU images": `sim-state.json` holds the
//!   counter, `pages-1.img` stands for memory pages) and `rootfs-diff.tar`,
//!   written to the node's checkpoint directory.
//! - **Restore.** A container whose image lives on one of the registries the
//!   runtimes can reach (`ServerConfig::registries`) is inspected as a runtime
//!   does: the manifest (through an image index if there is one) is pulled, and
//!   when it carries `io.kubernetes.cri-o.annotations.checkpoint.name` the layer
//!   is read and the counter continues from the archive's value. Images on other
//!   registries are ordinary images (never pulled: the simulator is offline).
//!
//! Pulls are blocking HTTP/1.0 over plain TCP with short timeouts: registries
//! are loopback test registries, and HTTP/1.0 keeps the client to a few lines
//! (no chunked bodies, the server closes the connection).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

/// The annotation CRI-O recognises a checkpoint image by.
pub const CHECKPOINT_NAME_ANNOTATION: &str = "io.kubernetes.cri-o.annotations.checkpoint.name";
/// Where the simulated process keeps its state inside the archive.
pub const STATE_FILE: &str = "checkpoint/sim-state.json";
/// Pod annotation: bytes of simulated memory pages in a checkpoint archive (default 4 KiB).
pub const ANN_CHECKPOINT_BYTES: &str = "sim.kube-sim.io/checkpoint-bytes";
const DEFAULT_PAGES: u64 = 4096;

const TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a runtime (`Node.status.nodeInfo.containerRuntimeVersion`) restores
/// checkpoint images: CRI-O (any version with CRIU support), containerd ≥ 2.1.
pub fn runtime_restores(runtime: &str) -> bool {
    let Some((name, version)) = runtime.split_once("://") else { return false };
    let mut parts = version.trim_start_matches('v').split(['.', '-', '+']).map(|p| p.parse::<u64>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    match name {
        "cri-o" => true,
        "containerd" => (major, minor) >= (2, 1),
        _ => false,
    }
}

/// What the archive says about one container.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveInfo {
    pub counter: i64,
}

/// Write a checkpoint archive of one container to `path`; its size in bytes.
#[allow(clippy::too_many_arguments)]
pub fn write_archive(
    path: &Path,
    namespace: &str,
    pod: &str,
    pod_uid: &str,
    container: &str,
    image: &str,
    counter: i64,
    page_bytes: u64,
    time: &str,
) -> std::io::Result<u64> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tar.part");
    {
        let file = std::fs::File::create(&tmp)?;
        let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
        let id = format!("{pod_uid}-{container}");
        let config = json!({
            "id": id, "name": format!("k8s_{container}_{pod}_{namespace}_{pod_uid}_0"),
            "rootfsImage": image, "rootfsImageRef": image, "rootfsImageName": image,
            "runtime": "runc", "createdTime": time, "checkpointedTime": time, "restoredTime": null,
        });
        let spec = json!({
            "ociVersion": "1.0.2",
            "annotations": {
                "io.kubernetes.pod.name": pod, "io.kubernetes.pod.namespace": namespace,
                "io.kubernetes.pod.uid": pod_uid, "io.kubernetes.container.name": container,
                "io.kubernetes.cri-o.ContainerType": "container",
            },
            "process": {"args": ["/sim-app"]},
        });
        let state = json!({"counter": counter, "container": container, "time": time});
        add(&mut tar, "config.dump", &serde_json::to_vec_pretty(&config).unwrap_or_default())?;
        add(&mut tar, "spec.dump", &serde_json::to_vec_pretty(&spec).unwrap_or_default())?;
        add(&mut tar, STATE_FILE, &serde_json::to_vec(&state).unwrap_or_default())?;
        add(&mut tar, "checkpoint/inventory.img", b"sim-criu-inventory")?;
        let mut header = tar::Header::new_gnu();
        header.set_size(page_bytes);
        header.set_mode(0o600);
        header.set_cksum();
        tar.append_data(&mut header, "checkpoint/pages-1.img", std::io::repeat(0).take(page_bytes))?;
        // An empty tar: the container wrote nothing to its root filesystem.
        add(&mut tar, "rootfs-diff.tar", &[0u8; 1024])?;
        tar.into_inner()?.flush()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(std::fs::metadata(path)?.len())
}

fn add<W: Write>(tar: &mut tar::Builder<W>, name: &str, data: &[u8]) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o600);
    header.set_cksum();
    tar.append_data(&mut header, name, data)
}

/// Bytes of simulated memory pages for a pod's checkpoint.
pub fn page_bytes(annotations: Option<&std::collections::BTreeMap<String, String>>) -> u64 {
    annotations.and_then(|a| a.get(ANN_CHECKPOINT_BYTES)).and_then(|v| v.trim().parse().ok()).unwrap_or(DEFAULT_PAGES)
}

/// Read the simulated process state out of a tar stream (an archive, or a
/// checkpoint image's layer).
pub fn read_state(reader: impl Read) -> Result<ArchiveInfo, String> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(|e| format!("not a tar archive: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("reading the archive: {e}"))?;
        let path = entry.path().map_err(|e| e.to_string())?.to_string_lossy().trim_start_matches("./").to_string();
        if path == STATE_FILE {
            let mut buf = Vec::new();
            entry.read_to_end(&mut buf).map_err(|e| e.to_string())?;
            let v: Value = serde_json::from_slice(&buf).map_err(|e| format!("{STATE_FILE}: {e}"))?;
            let counter =
                v.get("counter").and_then(Value::as_i64).ok_or_else(|| format!("{STATE_FILE} has no counter"))?;
            return Ok(ArchiveInfo { counter });
        }
    }
    Err(format!("the archive has no {STATE_FILE}"))
}

/// An image reference split as a runtime does: registry host, repository, tag or digest.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRef {
    pub host: String,
    pub repository: String,
    pub reference: String,
}

pub fn parse_image(image: &str) -> Option<ImageRef> {
    let (host, rest) = image.split_once('/')?;
    if !(host.contains('.') || host.contains(':') || host == "localhost") {
        return None;
    }
    let (repository, reference) = match rest.split_once('@') {
        Some((r, d)) => (r.to_string(), d.to_string()),
        None => match rest.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
            _ => (rest.to_string(), "latest".to_string()),
        },
    };
    Some(ImageRef { host: host.to_string(), repository, reference })
}

/// What inspecting an image found.
#[derive(Debug, Clone, PartialEq)]
pub enum Inspected {
    /// An ordinary image (or one on a registry the simulation does not reach).
    Plain,
    /// A checkpoint image of `container`, with the state it carries.
    Checkpoint { container: String, state: ArchiveInfo },
}

/// Inspect `image` as a runtime would before creating the container.
pub fn inspect(image: &str, registries: &[String]) -> Result<Inspected, String> {
    let Some(r) = parse_image(image) else { return Ok(Inspected::Plain) };
    if !registries.iter().any(|h| h == &r.host) {
        return Ok(Inspected::Plain);
    }
    let accept = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
                  application/vnd.docker.distribution.manifest.v2+json";
    let (_, body) = get(&r.host, &format!("/v2/{}/manifests/{}", r.repository, r.reference), accept)?;
    let mut manifest: Value = serde_json::from_slice(&body).map_err(|e| format!("bad manifest of {image}: {e}"))?;
    if manifest.get("manifests").is_some() {
        let first = manifest
            .pointer("/manifests/0/digest")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("image index of {image} lists no manifest"))?
            .to_string();
        let (_, body) = get(&r.host, &format!("/v2/{}/manifests/{first}", r.repository), accept)?;
        manifest = serde_json::from_slice(&body).map_err(|e| format!("bad manifest of {image}: {e}"))?;
    }
    let Some(container) = manifest.pointer("/annotations").and_then(|a| a.get(CHECKPOINT_NAME_ANNOTATION)) else {
        return Ok(Inspected::Plain);
    };
    let container = container.as_str().unwrap_or_default().to_string();
    let layer = manifest.pointer("/layers/0").ok_or_else(|| format!("checkpoint image {image} has no layer"))?;
    let digest = layer.get("digest").and_then(Value::as_str).unwrap_or_default();
    let media = layer.get("mediaType").and_then(Value::as_str).unwrap_or_default();
    let reader = get_stream(&r.host, &format!("/v2/{}/blobs/{digest}", r.repository), "*/*")?;
    let state =
        if media.ends_with("gzip") { read_state(flate2::read::GzDecoder::new(reader)) } else { read_state(reader) }
            .map_err(|e| format!("checkpoint image {image}: {e}"))?;
    Ok(Inspected::Checkpoint { container, state })
}

fn get(host: &str, path: &str, accept: &str) -> Result<(u16, Vec<u8>), String> {
    let mut reader = get_stream(host, path, accept)?;
    let mut body = Vec::new();
    reader.read_to_end(&mut body).map_err(|e| format!("reading http://{host}{path}: {e}"))?;
    Ok((200, body))
}

/// GET over HTTP/1.0, following redirects on the same host; the body as a
/// stream (the server closes the connection at its end). Non-2xx is an error.
fn get_stream(host: &str, path: &str, accept: &str) -> Result<BufReader<TcpStream>, String> {
    let mut path = path.to_string();
    for _ in 0..3 {
        let stream = connect(host)?;
        let mut w = stream.try_clone().map_err(|e| e.to_string())?;
        write!(w, "GET {path} HTTP/1.0\r\nHost: {host}\r\nAccept: {accept}\r\nUser-Agent: kube-sim\r\n\r\n")
            .map_err(|e| format!("http://{host}{path}: {e}"))?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| format!("http://{host}{path}: {e}"))?;
        let code: u16 = line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let mut location = None;
        loop {
            line.clear();
            reader.read_line(&mut line).map_err(|e| e.to_string())?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':')
                && k.eq_ignore_ascii_case("location")
            {
                location = Some(v.trim().to_string());
            }
        }
        match code {
            200..=299 => return Ok(reader),
            301 | 302 | 303 | 307 | 308 => {
                let loc = location.ok_or_else(|| format!("http://{host}{path}: redirect without Location"))?;
                path = match loc.split_once("://") {
                    Some((_, rest)) => rest.find('/').map(|i| rest[i..].to_string()).unwrap_or_else(|| "/".into()),
                    None => loc,
                };
            }
            _ => {
                let mut body = String::new();
                let _ = reader.take(512).read_to_string(&mut body);
                return Err(format!("pulling http://{host}{path}: HTTP {code} {}", body.trim()));
            }
        }
    }
    Err(format!("pulling http://{host}{path}: too many redirects"))
}

fn connect(host: &str) -> Result<TcpStream, String> {
    use std::net::ToSocketAddrs;
    let addr = host
        .to_socket_addrs()
        .map_err(|e| format!("registry {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("registry {host}: no address"))?;
    let s = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("registry {host} unreachable: {e}"))?;
    s.set_read_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtimes_that_restore() {
        assert!(runtime_restores("cri-o://1.31.0"));
        assert!(runtime_restores("containerd://2.1.0"));
        assert!(runtime_restores("containerd://2.2.1"));
        assert!(!runtime_restores("containerd://2.0.5"));
        assert!(!runtime_restores("containerd://1.7.22"));
        assert!(!runtime_restores("docker://24.0.0"));
        assert!(!runtime_restores("garbage"));
    }

    #[test]
    fn archive_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n1/checkpoint-p_default-app-t.tar");
        let size = write_archive(&path, "default", "p", "u", "app", "img", 42, 10_000, "t").unwrap();
        assert!(size > 10_000);
        let names: Vec<String> = tar::Archive::new(std::fs::File::open(&path).unwrap())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().to_string())
            .collect();
        for want in ["config.dump", "spec.dump", STATE_FILE, "checkpoint/pages-1.img", "rootfs-diff.tar"] {
            assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
        }
        assert_eq!(read_state(std::fs::File::open(&path).unwrap()).unwrap().counter, 42);
    }

    #[test]
    fn image_references() {
        let r = parse_image("127.0.0.1:5000/ckpt/app@sha256:abc").unwrap();
        assert_eq!(
            (r.host.as_str(), r.repository.as_str(), r.reference.as_str()),
            ("127.0.0.1:5000", "ckpt/app", "sha256:abc")
        );
        let r = parse_image("localhost/x:1").unwrap();
        assert_eq!(r.reference, "1");
        assert!(parse_image("nginx:1.27").is_none());
        assert_eq!(inspect("registry.k8s.io/pause:3.10", &[]).unwrap(), Inspected::Plain);
    }
}
