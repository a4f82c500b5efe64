//! `sdi-migration agent`: one per node (a DaemonSet). It watches PodMigrations
//! for checkpoint image requests addressed to its node, turns each archive in
//! the kubelet's checkpoint directory (mounted read-only) into an OCI
//! checkpoint image streamed to the registry, deletes the archive (it holds the
//! container's memory), and answers on the PodMigration. Its only write is that
//! answer (see `cluster::writer::answer_checkpoint_request`).
//!
//! It trusts nothing in a request beyond what its own configuration allows:
//! archives only from its checkpoint directory (a file name, no path), images
//! only into its configured registry and prefix.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use kube::Api;
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;

use super::registry::{Pushed, Registry};
use super::{ANSWER, Archive, CheckpointImage, ImageAnswer, ImageRequest, KUBELET_CHECKPOINT_DIR, REQUEST, oci};
use crate::migrations::crd::PodMigration;

/// How often the agent renews its Lease (its presence, which the engine's pre-check reads).
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(10);
/// A Lease not renewed for this long means no agent.
pub const LEASE_SECONDS: i32 = 30;

/// The name of a node's agent Lease.
pub fn lease_name(node: &str) -> String {
    let name = format!("sdi-migration-agent-{node}");
    name.chars().take(253).collect()
}

/// `sdi-migration agent`: connect, serve until `shutdown`.
pub async fn main(
    args: super::settings::AgentArgs,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), crate::error::StartError> {
    let kubeconfig = Some(PathBuf::from(&args.kubeconfig)).filter(|p| !p.as_os_str().is_empty());
    let stats = std::sync::Arc::new(crate::cluster::ApiStats::default());
    let client = crate::cluster::connect(kubeconfig.as_deref(), stats).await?;
    let registry = args
        .checkpoint
        .registry()
        .map_err(crate::error::StartError::Config)?
        .ok_or_else(|| crate::error::StartError::Config("CHECKPOINT_REGISTRY is required".into()))?;
    let config = AgentConfig {
        node: args.node_name.clone(),
        dir: args.checkpoint_dir.clone(),
        registry,
        namespace: args.checkpoint.checkpoint_agent_namespace.clone(),
    };
    let stop = CancellationToken::new();
    let task = tokio::spawn(run(client, config, stop.clone()));
    shutdown.await;
    stop.cancel();
    let _ = task.await;
    Ok(())
}

/// Renew this node's agent Lease until `stop`.
async fn heartbeat(client: kube::Client, namespace: String, node: String, stop: CancellationToken) {
    loop {
        if let Err(e) =
            crate::cluster::writer::agent_heartbeat(&client, &namespace, &lease_name(&node), &node, LEASE_SECONDS).await
        {
            tracing::warn!(error = %e, "could not renew the agent's Lease");
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(HEARTBEAT) => {}
        }
    }
}

#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The node this agent serves (`NODE_NAME`, from the downward API).
    pub node: String,
    /// The kubelet's checkpoint directory as mounted here.
    pub dir: PathBuf,
    pub registry: Registry,
    /// Where its Lease lives (`CHECKPOINT_AGENT_NAMESPACE`).
    pub namespace: String,
}

/// Run until `stop` is cancelled.
pub async fn run(client: kube::Client, config: AgentConfig, stop: CancellationToken) {
    let api: Api<PodMigration> = Api::all(client.clone());
    let mut events = std::pin::pin!(watcher(api, watcher::Config::default()));
    // request id → its worker's cancellation.
    let mut working: HashMap<String, CancellationToken> = HashMap::new();
    tokio::spawn(heartbeat(client.clone(), config.namespace.clone(), config.node.clone(), stop.clone()));
    tracing::info!(node = %config.node, dir = %config.dir.display(), registry = %config.registry.config().host, "checkpoint agent started");
    loop {
        let ev = tokio::select! {
            _ = stop.cancelled() => break,
            ev = events.next() => ev,
        };
        let Some(ev) = ev else { break };
        let objects = match ev {
            Ok(watcher::Event::Apply(m) | watcher::Event::InitApply(m)) => vec![(m, true)],
            Ok(watcher::Event::Delete(m)) => vec![(m, false)],
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "watching PodMigrations");
                continue;
            }
        };
        for (m, present) in objects {
            if let Some(abandoned) = abandoned_request(&m, &config.node, present) {
                let config = config.clone();
                tokio::spawn(async move { delete_archives(&config, &abandoned.archives).await });
            }
            let request = pending_request(&m, &config.node);
            // A request withdrawn (or its object gone) while its push runs: stop it.
            let live: Option<&str> = if present { request.as_ref().map(|r| r.id.as_str()) } else { None };
            let key_prefix = format!(
                "{}/{}/",
                m.metadata.namespace.as_deref().unwrap_or_default(),
                m.metadata.name.as_deref().unwrap_or_default()
            );
            working.retain(|key, token| {
                let stale = key.starts_with(&key_prefix) && Some(&key[key_prefix.len()..]) != live;
                if stale {
                    token.cancel();
                }
                !stale && !token.is_cancelled()
            });
            let Some(request) = request.filter(|_| present) else { continue };
            let key = format!("{key_prefix}{}", request.id);
            if working.contains_key(&key) {
                continue;
            }
            let token = stop.child_token();
            working.insert(key, token.clone());
            let (client, config) = (client.clone(), config.clone());
            let ns = m.metadata.namespace.clone().unwrap_or_default();
            let name = m.metadata.name.clone().unwrap_or_default();
            tokio::spawn(async move {
                let answer = serve(&config, &request, &token).await;
                if token.is_cancelled() {
                    return;
                }
                if let Err(e) =
                    crate::cluster::writer::answer_checkpoint_request(&client, &ns, &name, &request.id, &answer).await
                {
                    tracing::warn!(migration = %name, error = %e, "could not answer; deleting the images pushed");
                    delete_all(&config.registry, &answer.images).await;
                }
                token.cancel();
            });
        }
    }
}

/// The request on `m` for `node` that has no answer yet (withdrawn or not).
fn unanswered_request(m: &PodMigration, node: &str) -> Option<ImageRequest> {
    let a = m.metadata.annotations.as_ref()?;
    let request: ImageRequest = serde_json::from_str(a.get(REQUEST)?).ok()?;
    if request.node != node {
        return None;
    }
    let answered =
        a.get(ANSWER).and_then(|s| serde_json::from_str::<ImageAnswer>(s).ok()).is_some_and(|ans| ans.id == request.id);
    (!answered).then_some(request)
}

/// The request on `m` for `node` still waiting for this agent's images.
pub fn pending_request(m: &PodMigration, node: &str) -> Option<ImageRequest> {
    unanswered_request(m, node).filter(|r| !r.withdrawn)
}

/// A request for `node` nobody will take images from: withdrawn, or its
/// PodMigration deleted (`present` false) before an answer. Its archives are
/// deleted even if this agent never started on it — they hold the container's
/// memory. (Deleting them again is harmless.)
pub fn abandoned_request(m: &PodMigration, node: &str, present: bool) -> Option<ImageRequest> {
    unanswered_request(m, node).filter(|r| r.withdrawn || !present)
}

/// Delete the archives of a request; ones already gone are fine.
async fn delete_archives(config: &AgentConfig, archives: &[Archive]) {
    for a in archives {
        if let Ok(p) = local_archive(&config.dir, &a.path) {
            match tokio::fs::remove_file(&p).await {
                Ok(()) => tracing::info!(archive = %p.display(), "archive deleted"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(archive = %p.display(), error = %e, "could not delete the archive"),
            }
        }
    }
}

/// The archive's file here, if the kubelet's path is one this agent may read.
pub fn local_archive(dir: &Path, kubelet_path: &str) -> Result<PathBuf, String> {
    let name = kubelet_path
        .strip_prefix(KUBELET_CHECKPOINT_DIR)
        .and_then(|r| r.strip_prefix('/'))
        .filter(|n| !n.is_empty() && !n.contains('/') && *n != "." && *n != "..")
        .ok_or_else(|| format!("{kubelet_path:?} is not an archive in {KUBELET_CHECKPOINT_DIR}"))?;
    Ok(dir.join(name))
}

/// `config.dump` and `spec.dump` of an archive (seeking past the memory pages).
fn archive_meta(path: &Path) -> Result<oci::ArchiveMeta, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut archive = tar::Archive::new(file);
    let (mut config, mut spec) = (None, None);
    for entry in archive.entries_with_seek().map_err(|e| format!("{}: not a tar archive: {e}", path.display()))? {
        let mut entry = entry.map_err(|e| format!("{}: {e}", path.display()))?;
        let name = entry.path().map(|p| p.to_string_lossy().trim_start_matches("./").to_string()).unwrap_or_default();
        let slot = match name.as_str() {
            "config.dump" => &mut config,
            "spec.dump" => &mut spec,
            _ => continue,
        };
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut (&mut entry).take(1 << 20), &mut buf).map_err(|e| e.to_string())?;
        *slot = serde_json::from_slice::<serde_json::Value>(&buf).ok();
        if config.is_some() && spec.is_some() {
            break;
        }
    }
    if config.is_none() {
        return Err(format!("{} has no config.dump: not a container checkpoint archive", path.display()));
    }
    Ok(oci::ArchiveMeta::from_dumps(config.as_ref(), spec.as_ref()))
}

use std::io::Read as _;

/// Build and push every archive of a request; the archives are deleted
/// whatever happens (they hold memory), and on failure or withdrawal so is
/// every image already pushed.
pub async fn serve(config: &AgentConfig, request: &ImageRequest, stop: &CancellationToken) -> ImageAnswer {
    let mut answer = ImageAnswer { id: request.id.clone(), node: config.node.clone(), images: Vec::new(), error: None };
    let mut pushed: Vec<Pushed> = Vec::new();
    let result = tokio::select! {
        r = push_all(config, request, &mut pushed) => r,
        _ = stop.cancelled() => Err("the request was withdrawn during the push".to_string()),
    };
    delete_archives(config, &request.archives).await;
    match result {
        Ok(()) => {
            answer.images = pushed
                .iter()
                .zip(&request.archives)
                .map(|(p, a)| CheckpointImage {
                    container: a.container.clone(),
                    image: p.reference.clone(),
                    bytes: p.bytes,
                    deleted: false,
                })
                .collect();
        }
        Err(e) => {
            tracing::warn!(request = %request.id, error = %e, "checkpoint images not pushed");
            for p in &pushed {
                if let Err(e) = config.registry.delete_pushed(p).await {
                    tracing::warn!(image = %p.reference, error = %e, "could not delete a pushed image");
                }
            }
            answer.error = Some(e);
        }
    }
    answer
}

async fn push_all(config: &AgentConfig, request: &ImageRequest, pushed: &mut Vec<Pushed>) -> Result<(), String> {
    if !config.registry.config().owns(&request.repository) {
        return Err(format!(
            "repository {} is outside this agent's registry prefix {:?}",
            request.repository,
            config.registry.config().prefix
        ));
    }
    let mut checked: Vec<(&Archive, PathBuf, oci::ArchiveMeta)> = Vec::new();
    for a in &request.archives {
        let path = local_archive(&config.dir, &a.path)?;
        let size = tokio::fs::metadata(&path)
            .await
            .map_err(|e| format!("archive {} not found on {} ({e})", a.path, config.node))?
            .len();
        if size > request.max_bytes {
            return Err(format!(
                "checkpoint archive of {} is {size} bytes, over CHECKPOINT_MAX_BYTES ({})",
                a.container, request.max_bytes
            ));
        }
        let p = path.clone();
        let meta = tokio::task::spawn_blocking(move || archive_meta(&p)).await.map_err(|e| e.to_string())??;
        checked.push((a, path, meta));
    }
    for (a, path, meta) in checked {
        let tag = super::tag(&request.tag, &a.container);
        let p = config
            .registry
            .push_checkpoint(&request.repository, &tag, &a.container, &path, &meta)
            .await
            .map_err(|e| format!("pushing the checkpoint image of {}: {e}", a.container))?;
        tracing::info!(image = %p.reference, bytes = p.bytes, "checkpoint image pushed");
        pushed.push(p);
    }
    Ok(())
}

/// Delete images by reference (an answer nobody will read).
pub async fn delete_all(registry: &Registry, images: &[CheckpointImage]) {
    for i in images {
        if let Err(e) = registry.delete_image(&i.image).await {
            tracing::warn!(image = %i.image, error = %e, "could not delete a checkpoint image");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_only_from_the_checkpoint_directory() {
        let dir = Path::new("/host/ckpt");
        assert_eq!(
            local_archive(dir, "/var/lib/kubelet/checkpoints/checkpoint-p_ns-c-t.tar").unwrap(),
            PathBuf::from("/host/ckpt/checkpoint-p_ns-c-t.tar")
        );
        for bad in [
            "/etc/shadow",
            "/var/lib/kubelet/checkpoints/../x",
            "/var/lib/kubelet/checkpoints/a/b",
            "/var/lib/kubelet/checkpoints/",
        ] {
            assert!(local_archive(dir, bad).is_err(), "{bad}");
        }
    }

    fn migration(request: Option<&ImageRequest>, answer: Option<&str>) -> PodMigration {
        let mut annotations = std::collections::BTreeMap::new();
        if let Some(r) = request {
            annotations.insert(REQUEST.to_string(), serde_json::to_string(r).unwrap());
        }
        if let Some(id) = answer {
            let a = ImageAnswer { id: id.into(), node: "w1".into(), images: Vec::new(), error: None };
            annotations.insert(ANSWER.to_string(), serde_json::to_string(&a).unwrap());
        }
        let req: crate::jobs::model::MigrationRequest = serde_json::from_value(serde_json::json!({
            "pod_name": "p", "pod_namespace": "default", "source_node": "w1", "target_node": "w2"}))
        .unwrap();
        let mut m = PodMigration::new("m", &req, "api");
        m.metadata.annotations = Some(annotations);
        m
    }

    #[test]
    fn withdrawn_or_orphaned_requests_are_abandoned_and_never_served() {
        let r = ImageRequest {
            id: "r1".into(),
            node: "w1".into(),
            repository: "ckpt/default/p".into(),
            tag: "m".into(),
            max_bytes: 1 << 30,
            archives: vec![Archive { container: "c".into(), path: format!("{KUBELET_CHECKPOINT_DIR}/a.tar") }],
            withdrawn: false,
        };
        let live = migration(Some(&r), None);
        assert_eq!(pending_request(&live, "w1"), Some(r.clone()));
        assert_eq!(pending_request(&live, "w2"), None, "another node's request");
        assert_eq!(abandoned_request(&live, "w1", true), None);
        assert_eq!(abandoned_request(&live, "w1", false), Some(r.clone()), "its PodMigration was deleted");

        let withdrawn = migration(Some(&r.withdrawn()), None);
        assert_eq!(pending_request(&withdrawn, "w1"), None);
        assert_eq!(abandoned_request(&withdrawn, "w1", true).map(|a| a.archives), Some(r.archives.clone()));

        let answered = migration(Some(&r), Some("r1"));
        assert_eq!(pending_request(&answered, "w1"), None);
        assert_eq!(abandoned_request(&answered, "w1", false), None, "answered: the archives are gone already");
        let stale_answer = migration(Some(&r), Some("r0"));
        assert_eq!(pending_request(&stale_answer, "w1"), Some(r.clone()), "an answer to an earlier request");
        assert_eq!(pending_request(&migration(None, None), "w1"), None);

        // Old engines wrote no `withdrawn`; it reads as false and is not written when false.
        let text = serde_json::to_string(&r).unwrap();
        assert!(!text.contains("withdrawn"), "{text}");
        assert!(serde_json::to_string(&r.withdrawn()).unwrap().contains(r#""withdrawn":true"#));
    }
}
