//! Disk: the images of old releases go. Each app keeps the images of its
//! newest `PAAS_KEEP_RELEASES` releases with one, plus the one its dynos
//! run; an image that any kept release (of any app: a promotion shares
//! one) names stays. The rest are untagged (`paas/APP:BUILD`) and removed
//! by ID, never forced: an image something else still names or runs stays
//! and is not marked. Removed images are recorded, so their releases say
//! so and a rollback to one is refused with what to do. The build cache
//! volumes of this instance (labelled when made) whose app is gone go too,
//! and what builds left behind (stopped task containers, dangling
//! dependency images).
//! Runs after each deploy, and as `paas-server gc [--dry-run]`.

use crate::runtime::Runtime;
use crate::store::Store;
use anyhow::Result;
use std::collections::{BTreeMap, HashSet};

/// An image that goes (or would), with the releases that name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub image: String,
    /// `APP vN` of each release naming it.
    pub releases: Vec<String>,
    /// The build tags that name it (`paas/APP:BUILD`).
    pub tags: Vec<String>,
}

/// Which release images go: (app id, app name, version, image, build id)
/// rows newest first per app, the images each app's dynos run, and the
/// images removed already. Pure.
pub fn plan(rows: &[(String, String, i64, String, Option<String>)], running: &HashSet<String>, removed: &HashSet<String>, keep: usize) -> Vec<Removal> {
    let mut kept: HashSet<&str> = running.iter().map(String::as_str).collect();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (app_id, _, _, image, _) in rows {
        let n = seen.entry(app_id).or_default();
        if *n < keep {
            kept.insert(image);
        }
        *n += 1;
    }
    let mut out: BTreeMap<&str, Removal> = BTreeMap::new();
    for (_, app, version, image, build) in rows {
        if kept.contains(image.as_str()) || removed.contains(image) {
            continue;
        }
        let r = out.entry(image).or_insert_with(|| Removal { image: image.clone(), releases: Vec::new(), tags: Vec::new() });
        r.releases.push(format!("{app} v{version}"));
        if let Some(b) = build {
            let tag = crate::runtime::build_image(app, b);
            if !r.tags.contains(&tag) {
                r.tags.push(tag);
            }
        }
    }
    out.into_values().collect()
}

/// What a collection removed (or would).
#[derive(Debug, Default)]
pub struct Swept {
    pub images: Vec<Removal>,
    /// Build cache volumes of this instance whose app is gone.
    pub caches: Vec<String>,
    /// What builds left behind (stopped task containers, dangling
    /// dependency images).
    pub leftovers: crate::runtime::Leftovers,
}

/// Task containers and dangling dependency images are leftovers once made
/// this long ago (a build runs in one for its whole time:
/// `PAAS_BUILD_TIMEOUT` bounds it).
pub const LEFTOVER_AGE: std::time::Duration = std::time::Duration::from_secs(2 * 3600);

/// Plans and (unless `dry_run`) removes old release images, the build
/// caches of apps that are gone, and what builds left behind (task
/// containers and dangling dependency images made over `leftover_age`
/// ago); answers what went (or would).
pub async fn collect(store: &Store, runtime: &dyn Runtime, keep: usize, dry_run: bool, leftover_age: std::time::Duration) -> Result<Swept> {
    let apps: HashSet<String> = store.list_apps().await?.into_iter().map(|a| a.name).collect();
    let mut caches = Vec::new();
    for volume in runtime.build_caches().await? {
        if crate::runtime::build_cache_app(&volume).is_some_and(|app| apps.contains(app)) {
            continue;
        }
        if dry_run || runtime.remove_volume(&volume).await.is_ok() {
            caches.push(volume);
        }
    }
    let mut leftovers = runtime.leftovers(leftover_age).await?;
    if !dry_run {
        let mut gone = crate::runtime::Leftovers::default();
        for (id, name) in leftovers.containers {
            if runtime.stop_dyno(&crate::runtime::DynoId::from(id.clone()), std::time::Duration::from_secs(1)).await.is_ok() {
                gone.containers.push((id, name));
            }
        }
        for image in leftovers.images {
            if let Err(e) = runtime.remove_image(&image).await {
                tracing::warn!(image, error = %format!("{e:#}"), "cannot remove a dangling dependency image");
            }
            if !runtime.image_exists(&image).await.unwrap_or(true) {
                gone.images.push(image);
            }
        }
        leftovers = gone;
    }
    Ok(Swept { images: collect_images(store, runtime, keep, dry_run).await?, caches, leftovers })
}

/// The plan as the store stands now.
async fn planned(store: &Store, keep: usize) -> Result<Vec<Removal>> {
    let rows = store.release_images().await?;
    let mut running = HashSet::new();
    for app in store.list_apps().await? {
        if let Some(image) = store.desired_release(&app.id).await?.and_then(|r| r.image) {
            running.insert(image);
        }
    }
    Ok(plan(&rows, &running, &store.removed_images().await?, keep))
}

async fn collect_images(store: &Store, runtime: &dyn Runtime, keep: usize, dry_run: bool) -> Result<Vec<Removal>> {
    let first = planned(store, keep).await?;
    if dry_run {
        return Ok(first);
    }
    let mut gone = Vec::new();
    for r in first {
        // Planned again just before: a rollback or a promotion made since
        // may name the image again.
        if !planned(store, keep).await?.iter().any(|p| p.image == r.image) {
            continue;
        }
        for tag in &r.tags {
            if let Err(e) = runtime.remove_image(tag).await {
                tracing::warn!(tag, error = %format!("{e:#}"), "cannot untag an old release's image");
            }
        }
        if let Err(e) = runtime.remove_image(&r.image).await {
            tracing::warn!(image = %r.image, error = %format!("{e:#}"), "cannot remove an old release's image");
        }
        // Kept by the engine (another tag names it, a container runs it):
        // not marked, its releases keep their image.
        if !runtime.image_exists(&r.image).await.unwrap_or(true) {
            store.mark_image_removed(&r.image).await?;
            tracing::info!(image = %r.image, releases = ?r.releases, "old release image removed");
            gone.push(r);
        }
    }
    Ok(gone)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(app: &str, v: i64, image: &str) -> (String, String, i64, String, Option<String>) {
        (format!("id-{app}"), app.to_owned(), v, image.to_owned(), Some(format!("build-{image}")))
    }

    #[test]
    fn each_app_keeps_its_newest_images_the_running_one_and_any_kept_elsewhere() {
        // Newest first per app; shop's v4 and v3 share an image (a config change).
        let rows = vec![
            row("blog", 2, "b2"),
            row("blog", 1, "s1"),
            row("shop", 4, "s3"),
            row("shop", 3, "s3"),
            row("shop", 2, "s2"),
            row("shop", 1, "s1"),
        ];
        let none = HashSet::new();
        let planned = plan(&rows, &none, &none, 2);
        assert_eq!(planned.iter().map(|r| r.image.as_str()).collect::<Vec<_>>(), ["s2"], "s1 is one of blog's newest two");
        assert_eq!(planned[0].releases, ["shop v2"]);
        assert_eq!(planned[0].tags, ["paas/shop:build-s2"]);
        let running: HashSet<String> = ["s2".to_owned()].into();
        assert!(plan(&rows, &running, &none, 2).is_empty(), "the running image stays");
        let one = plan(&rows, &none, &none, 1);
        assert_eq!(one.iter().map(|r| r.image.as_str()).collect::<Vec<_>>(), ["s1", "s2"]);
        assert_eq!(one[0].releases, ["blog v1", "shop v1"]);
        let removed: HashSet<String> = ["s1".to_owned()].into();
        assert_eq!(plan(&rows, &none, &removed, 1).len(), 1, "what is gone is not planned again");
    }
}
