//! `CHECKPOINT_RETENTION`: checkpoint images are deleted from the registry once
//! their migration has been over for that long. They hold a container's
//! memory; keeping them only as long as someone may want to look (or roll
//! back) limits what a leaked registry credential exposes. The leader sweeps;
//! the job's record (and its PodMigration) marks each image `deleted`.

use std::sync::Arc;
use std::time::Duration;

use crate::cluster::writer::Writer;
use crate::jobs::{JobStore, ListFilter};

/// How often the leader sweeps: every minute, or sooner for a shorter retention.
pub fn interval(retention: Duration) -> Duration {
    retention.clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// Delete the images of migrations that ended `retention` ago or earlier; how many.
pub async fn sweep(store: &Arc<dyn JobStore>, writer: &Writer, retention: Duration) -> usize {
    let Some(registry) = writer.registry() else { return 0 };
    let now = jiff::Timestamp::now();
    let retention = jiff::SignedDuration::try_from(retention).unwrap_or(jiff::SignedDuration::MAX);
    let mut deleted = 0;
    for job in store.list(&ListFilter { limit: usize::MAX, ..Default::default() }) {
        let Some(end) = job.details.end_time.as_deref().and_then(|t| t.parse::<jiff::Timestamp>().ok()) else {
            continue;
        };
        if now.duration_since(end) < retention || job.details.checkpoint_images.iter().all(|i| i.deleted) {
            continue;
        }
        let mut gone = Vec::new();
        for image in job.details.checkpoint_images.iter().filter(|i| !i.deleted) {
            match registry.delete_image(&image.image).await {
                Ok(()) => gone.push(image.image.clone()),
                Err(e) => {
                    tracing::warn!(job = %job.id, image = %image.image, error = %e, "could not delete a checkpoint image; retrying later")
                }
            }
        }
        if gone.is_empty() {
            continue;
        }
        deleted += gone.len();
        let updated = store.update(&job.id, &mut |j| {
            for i in j.details.checkpoint_images.iter_mut().filter(|i| gone.contains(&i.image)) {
                i.deleted = true;
            }
        });
        if let Some(j) = updated {
            let status = crate::migrations::crd::status_of(&j, Some(writer.leadership().identity()));
            if let Err(e) = writer.migration_status(&j.request.pod_namespace, &j.id, &status).await {
                tracing::warn!(job = %j.id, error = %e, "could not record the deleted checkpoint images");
            }
        }
        tracing::info!(job = %job.id, images = gone.len(), "checkpoint images deleted after CHECKPOINT_RETENTION");
    }
    deleted
}
