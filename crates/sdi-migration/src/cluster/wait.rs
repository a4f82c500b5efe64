//! Waiting for an object to reach a state — on a watch, never by polling.
//!
//! The watcher re-lists and resumes after dropped connections and API errors
//! (with backoff), so a flaky API server delays a wait but cannot end it early
//! or leave it hanging: the caller's deadline bounds it.

use std::fmt::Debug;

use futures::StreamExt;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use sdi_core::error::Category;
use serde::de::DeserializeOwned;

use crate::error::Error;

/// What a check says about the object's current state (`None`: it does not exist).
#[derive(Debug)]
pub enum Check<T> {
    Wait,
    Done(T),
    Fail(Error),
}

/// Watch `name` until `check` says `Done` (→ `Ok`) or `Fail` (→ `Err`).
pub async fn until<K, T>(api: &Api<K>, name: &str, mut check: impl FnMut(Option<&K>) -> Check<T>) -> Result<T, Error>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = watcher(api.clone(), config).default_backoff().boxed();
    // During a (re-)list, the object is absent unless the list contains it.
    let mut listing: Option<K> = None;
    while let Some(event) = stream.next().await {
        let verdict = match event {
            Ok(watcher::Event::Init) => {
                listing = None;
                continue;
            }
            Ok(watcher::Event::InitApply(obj)) => {
                listing = Some(obj);
                continue;
            }
            Ok(watcher::Event::InitDone) => check(listing.take().as_ref()),
            Ok(watcher::Event::Apply(obj)) => check(Some(&obj)),
            Ok(watcher::Event::Delete(_)) => check(None),
            // Errors are retried by the backoff; the deadline is the caller's.
            Err(e) => {
                tracing::debug!(name, error = %e, "watch interrupted; resuming");
                continue;
            }
        };
        match verdict {
            Check::Wait => {}
            Check::Done(t) => return Ok(t),
            Check::Fail(why) => return Err(why),
        }
    }
    Err(Error::new(Category::ApiUnavailable, format!("watch on {name} ended unexpectedly")))
}
