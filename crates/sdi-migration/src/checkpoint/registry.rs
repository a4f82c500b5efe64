//! A minimal OCI distribution client: what pushing and deleting a checkpoint
//! image needs, nothing more. Blobs are streamed (chunked upload: `POST` to
//! open, one streamed `PATCH`, `PUT ?digest=` to close) with the digest
//! computed while the bytes go out, so memory stays flat whatever the size and
//! the archive is read once. Plain HTTP only for an insecure (e.g. loopback)
//! registry; otherwise TLS with the platform's roots. Basic authentication.

use std::path::Path;
use std::sync::Arc;

use futures::StreamExt;
use parking_lot::Mutex;
use reqwest::StatusCode;

use super::oci::{self, Descriptor};

/// Why talking to the registry failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry {registry} unreachable: {source}")]
    Unreachable {
        registry: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("registry {registry} refused {what}: HTTP {status} {body}")]
    Refused { registry: String, what: String, status: u16, body: String },
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Where checkpoint images go: `host[:port][/prefix]`, e.g. `registry.example:5000/checkpoints`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    pub host: String,
    pub prefix: String,
    /// Plain HTTP (a loopback or otherwise insecure registry).
    pub insecure: bool,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl RegistryConfig {
    /// Parse `CHECKPOINT_REGISTRY`.
    pub fn parse(text: &str, insecure: bool) -> Result<RegistryConfig, String> {
        let t = text.trim().trim_end_matches('/');
        let t = t.strip_prefix("https://").or_else(|| t.strip_prefix("http://")).unwrap_or(t);
        let (host, prefix) = t.split_once('/').unwrap_or((t, ""));
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(format!("{text:?} is not a registry host[:port][/prefix]"));
        }
        if !prefix.split('/').filter(|p| !p.is_empty()).all(valid_component) {
            return Err(format!("{text:?}: repository prefix must be lowercase letters, digits, '.', '_', '-'"));
        }
        Ok(RegistryConfig { host: host.into(), prefix: prefix.into(), insecure, username: None, password: None })
    }

    /// The repository for a pod's checkpoint images: `<prefix>/<namespace>/<pod>`.
    pub fn repository(&self, namespace: &str, pod: &str) -> String {
        let parts: Vec<&str> = [self.prefix.as_str(), namespace, pod].into_iter().filter(|p| !p.is_empty()).collect();
        parts.join("/")
    }

    /// Whether `reference` (`host/repo@digest`) points into this registry and prefix.
    pub fn owns(&self, repository: &str) -> bool {
        self.prefix.is_empty() || repository.starts_with(&format!("{}/", self.prefix))
    }
}

/// Repository path components as the distribution spec allows them.
fn valid_component(c: &str) -> bool {
    !c.is_empty()
        && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && c.as_bytes()[0].is_ascii_alphanumeric()
}

#[derive(Debug, Clone)]
pub struct Registry {
    config: RegistryConfig,
    http: reqwest::Client,
}

/// A pushed checkpoint image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// `host/repository@sha256:…` of the image index: what the pod runs.
    pub reference: String,
    pub repository: String,
    pub index_digest: String,
    pub manifest_digest: String,
    /// Bytes of the layer (the archive).
    pub bytes: u64,
}

impl Registry {
    pub fn new(config: RegistryConfig) -> Result<Registry, String> {
        crate::policy::init_tls();
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build the registry client: {e}"))?;
        Ok(Registry { config, http })
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    fn base(&self) -> String {
        let scheme = if self.config.insecure { "http" } else { "https" };
        format!("{scheme}://{}", self.config.host)
    }

    fn name(&self) -> String {
        self.config.host.clone()
    }

    fn auth(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.config.username {
            Some(u) => rb.basic_auth(u, self.config.password.as_ref()),
            None => rb,
        }
    }

    fn unreachable(&self, source: reqwest::Error) -> RegistryError {
        RegistryError::Unreachable { registry: self.name(), source }
    }

    async fn expect(
        &self,
        resp: reqwest::Response,
        what: &str,
        ok: &[u16],
    ) -> Result<reqwest::Response, RegistryError> {
        if ok.contains(&resp.status().as_u16()) {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default().chars().take(300).collect::<String>();
        Err(RegistryError::Refused { registry: self.name(), what: what.into(), status, body: body.trim().into() })
    }

    /// `GET /v2/`: reachable, and our credentials accepted.
    pub async fn ping(&self) -> Result<(), RegistryError> {
        let resp = self
            .auth(self.http.get(format!("{}/v2/", self.base())))
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        self.expect(resp, "the API version check (GET /v2/)", &[200]).await.map(|_| ())
    }

    /// Absolute URL of an upload `Location` (registries may answer a path).
    fn location(&self, resp: &reqwest::Response) -> Result<String, RegistryError> {
        let loc = resp.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if loc.is_empty() {
            return Err(RegistryError::Refused {
                registry: self.name(),
                what: "a blob upload (no Location)".into(),
                status: resp.status().as_u16(),
                body: String::new(),
            });
        }
        Ok(if loc.starts_with("http://") || loc.starts_with("https://") {
            loc.into()
        } else {
            format!("{}{loc}", self.base())
        })
    }

    async fn open_upload(&self, repo: &str) -> Result<String, RegistryError> {
        let resp = self
            .auth(self.http.post(format!("{}/v2/{repo}/blobs/uploads/", self.base())))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let resp = self.expect(resp, "starting a blob upload", &[202]).await?;
        self.location(&resp)
    }

    async fn close_upload(&self, location: &str, digest: &str, body: Vec<u8>) -> Result<(), RegistryError> {
        let sep = if location.contains('?') { '&' } else { '?' };
        let resp = self
            .auth(self.http.put(format!("{location}{sep}digest={digest}")))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        self.expect(resp, "completing a blob upload", &[201]).await.map(|_| ())
    }

    /// Push a small blob held in memory (config).
    pub async fn push_bytes(
        &self,
        repo: &str,
        media_type: &'static str,
        bytes: Vec<u8>,
    ) -> Result<Descriptor, RegistryError> {
        let digest = oci::digest(&bytes);
        let size = bytes.len() as u64;
        let location = self.open_upload(repo).await?;
        self.close_upload(&location, &digest, bytes).await?;
        Ok(Descriptor { media_type, digest, size })
    }

    /// Stream a file as a blob; its digest is computed on the way out.
    pub async fn push_file(
        &self,
        repo: &str,
        media_type: &'static str,
        path: &Path,
    ) -> Result<Descriptor, RegistryError> {
        let io = |source| RegistryError::Io { path: path.display().to_string(), source };
        let file = tokio::fs::File::open(path).await.map_err(io)?;
        let location = self.open_upload(repo).await?;
        let hasher = Arc::new(Mutex::new((ring::digest::Context::new(&ring::digest::SHA256), 0u64)));
        let h = hasher.clone();
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 1024 * 1024).map(move |chunk| {
            if let Ok(c) = &chunk {
                let mut g = h.lock();
                g.0.update(c);
                g.1 += c.len() as u64;
            }
            chunk
        });
        let resp = self
            .auth(self.http.patch(&location))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let resp = self.expect(resp, "a blob upload", &[202]).await?;
        let location = self.location(&resp)?;
        let (ctx, size) = {
            let g = hasher.lock();
            (g.0.clone(), g.1)
        };
        let digest = format!("sha256:{}", oci::hex(ctx.finish().as_ref()));
        self.close_upload(&location, &digest, Vec::new()).await?;
        Ok(Descriptor { media_type, digest, size })
    }

    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &'static str,
        bytes: Vec<u8>,
    ) -> Result<Descriptor, RegistryError> {
        let digest = oci::digest(&bytes);
        let size = bytes.len() as u64;
        let resp = self
            .auth(self.http.put(format!("{}/v2/{repo}/manifests/{reference}", self.base())))
            .header(reqwest::header::CONTENT_TYPE, media_type)
            .body(bytes)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        self.expect(resp, &format!("manifest {repo}:{reference}"), &[201]).await?;
        Ok(Descriptor { media_type, digest, size })
    }

    /// Delete a manifest (or index) by digest; gone already is fine. Blobs are
    /// reclaimed by the registry's garbage collection.
    pub async fn delete_manifest(&self, repo: &str, digest: &str) -> Result<(), RegistryError> {
        let resp = self
            .auth(self.http.delete(format!("{}/v2/{repo}/manifests/{digest}", self.base())))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(()),
            _ => self.expect(resp, &format!("deleting {repo}@{digest}"), &[200, 202]).await.map(|_| ()),
        }
    }

    /// Delete a pushed image by reference: the manifests its index lists, then the index.
    pub async fn delete_image(&self, reference: &str) -> Result<(), RegistryError> {
        let Some((repo, digest)) = split_reference(&self.config.host, reference) else { return Ok(()) };
        let resp = self
            .auth(self.http.get(format!("{}/v2/{repo}/manifests/{digest}", self.base())))
            .header(reqwest::header::ACCEPT, format!("{}, {}", oci::MEDIA_INDEX, oci::MEDIA_MANIFEST))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        let resp = self.expect(resp, &format!("reading {repo}@{digest}"), &[200]).await?;
        let index: serde_json::Value = resp.json().await.unwrap_or_default();
        for m in index.get("manifests").and_then(serde_json::Value::as_array).into_iter().flatten() {
            if let Some(d) = m.get("digest").and_then(serde_json::Value::as_str) {
                self.delete_manifest(repo, d).await?;
            }
        }
        self.delete_manifest(repo, digest).await
    }

    /// Build and push the checkpoint image of `container` from its archive.
    pub async fn push_checkpoint(
        &self,
        repo: &str,
        tag: &str,
        container: &str,
        archive: &Path,
        meta: &oci::ArchiveMeta,
    ) -> Result<Pushed, RegistryError> {
        let layer = self.push_file(repo, oci::MEDIA_LAYER_TAR, archive).await?;
        let created = jiff::Timestamp::now().to_string();
        let config = self.push_bytes(repo, oci::MEDIA_CONFIG, oci::config(&layer, &created)).await?;
        let annotations = oci::annotations(container, meta);
        let manifest_bytes = oci::manifest(&config, &layer, &annotations);
        let manifest_digest = oci::digest(&manifest_bytes);
        let manifest = self.put_manifest(repo, &manifest_digest, oci::MEDIA_MANIFEST, manifest_bytes).await?;
        let index = self.put_manifest(repo, tag, oci::MEDIA_INDEX, oci::index(&manifest, &annotations)).await?;
        Ok(Pushed {
            reference: format!("{}/{repo}@{}", self.config.host, index.digest),
            repository: repo.into(),
            index_digest: index.digest,
            manifest_digest: manifest.digest,
            bytes: layer.size,
        })
    }

    /// Delete both manifests of a pushed image.
    pub async fn delete_pushed(&self, p: &Pushed) -> Result<(), RegistryError> {
        self.delete_manifest(&p.repository, &p.index_digest).await?;
        self.delete_manifest(&p.repository, &p.manifest_digest).await
    }
}

/// `host/repo@digest` → (repo, digest), when on `host`.
pub fn split_reference<'a>(host: &str, reference: &'a str) -> Option<(&'a str, &'a str)> {
    let rest = reference.strip_prefix(host)?.strip_prefix('/')?;
    rest.split_once('@')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_settings_parse() {
        let r = RegistryConfig::parse("127.0.0.1:5000/checkpoints", true).unwrap();
        assert_eq!((r.host.as_str(), r.prefix.as_str()), ("127.0.0.1:5000", "checkpoints"));
        assert_eq!(r.repository("default", "slam"), "checkpoints/default/slam");
        assert!(r.owns("checkpoints/default/slam"));
        assert!(!r.owns("elsewhere/x"));
        assert!(RegistryConfig::parse("reg.example/Bad", false).is_err());
        assert!(RegistryConfig::parse("", false).is_err());
        assert_eq!(split_reference("h:1", "h:1/a/b@sha256:x"), Some(("a/b", "sha256:x")));
    }
}
