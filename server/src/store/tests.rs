//! The store's tests, run against SQLite and against PostgreSQL. The
//! PostgreSQL run needs `PAAS_TEST_POSTGRES_URL` (scripts/test sets it after
//! starting a server) and is skipped, with a message naming the variable,
//! without it; each test gets a database of its own.

use super::*;
use paas_wire::AppName;
use std::collections::BTreeMap;

pub(crate) async fn sqlite_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    (Store::open(&url).await.unwrap(), dir)
}

/// A store on a new PostgreSQL database, or None (with a message) when no
/// server is named; see [`crate::settings::test_postgres_url`].
pub(crate) async fn postgres_store() -> Option<Store> {
    let admin = crate::settings::test_postgres_url()?;
    let url = create_test_database(&admin).await.unwrap();
    Some(Store::open(&url).await.unwrap())
}

fn app(name: &str) -> AppName {
    AppName::parse(name).unwrap()
}

fn release(image: &str, config: &str) -> NewRelease {
    NewRelease {
        actor: None,
        build_id: None,
        image: Some(image.to_owned()),
        process_types: BTreeMap::from([("web".to_owned(), "serve".to_owned())]),
        sealed_config: config.to_owned(),
        description: format!("deploy {image}"),
        health_path: Some("/health".to_owned()),
        healthchecks: None,
        tasks: None,
        output: None,
    }
}

async fn apps_are_unique_and_deletable(store: Store) {
    let a = store.create_app(&app("alpha")).await.unwrap();
    assert!(matches!(store.create_app(&app("alpha")).await, Err(StoreError::Conflict)));
    store.create_app(&app("beta")).await.unwrap();
    let names: Vec<_> = store.list_apps().await.unwrap().into_iter().map(|a| a.name).collect();
    assert_eq!(names, ["alpha", "beta"]);
    store.append_release(&a.id, &release("img1", "c1")).await.unwrap();
    store.set_formation(&a.id, &BTreeMap::from([("web".to_owned(), 2)])).await.unwrap();
    store.delete_app(&a).await.unwrap();
    assert!(matches!(store.app(&app("alpha")).await, Err(StoreError::NotFound)));
    assert!(store.list_releases(&a.id).await.unwrap().is_empty());
}

async fn releases_count_up_per_app(store: Store) {
    let a = store.create_app(&app("gamma")).await.unwrap();
    let b = store.create_app(&app("delta")).await.unwrap();
    let r1 = store.append_release(&a.id, &release("img1", "c1")).await.unwrap();
    let r2 = store.append_release(&a.id, &release("img2", "c2")).await.unwrap();
    let b1 = store.append_release(&b.id, &release("img3", "c3")).await.unwrap();
    assert_eq!((r1.version, r2.version, b1.version), (1, 2, 1));
    assert_ne!(r1.id, r2.id);
    assert_eq!(store.current_release(&a.id).await.unwrap().unwrap().id, r2.id);
    let listed: Vec<i64> = store.list_releases(&a.id).await.unwrap().iter().map(|r| r.version).collect();
    assert_eq!(listed, [2, 1]);
    assert_eq!(store.release_by_version(&a.id, 1).await.unwrap().image.as_deref(), Some("img1"));
    assert_eq!(store.release_by_id(&a.id, &r2.id).await.unwrap().config, "c2");
    assert_eq!(r2.health_path.as_deref(), Some("/health"));
    assert!(matches!(store.release_by_version(&a.id, 9).await, Err(StoreError::NotFound)));
    assert!(store.referenced_images().await.unwrap().contains(&"img3".to_owned()));
}

async fn concurrent_appends_get_distinct_versions(store: Store) {
    let a = store.create_app(&app("epsilon")).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..4 {
        let (s, id) = (store.clone(), a.id.clone());
        tasks.push(tokio::spawn(async move { s.append_release(&id, &release(&format!("i{i}"), "c")).await }));
    }
    let mut versions = Vec::new();
    for t in tasks {
        versions.push(t.await.unwrap().unwrap().version);
    }
    versions.sort();
    assert_eq!(versions, [1, 2, 3, 4]);
}

async fn builds_formation_tokens(store: Store) {
    let a = store.create_app(&app("zeta")).await.unwrap();
    let b = store.create_build(&a.id, "abc123").await.unwrap();
    assert_eq!(b.status, "pending");
    let types = BTreeMap::from([("web".to_owned(), "run".to_owned())]);
    store.finish_build(&b.id, BuildStatus::Succeeded, Some("img"), &types, "out\n").await.unwrap();
    let got = store.build(&a.id, &b.id).await.unwrap();
    assert_eq!((got.status.as_str(), got.image.as_deref(), got.output.as_str()), ("succeeded", Some("img"), "out\n"));
    assert_eq!(got.process_types().unwrap(), types);
    let pending = store.create_build(&a.id, "def456").await.unwrap();
    assert_eq!(store.fail_interrupted_builds().await.unwrap(), 1);
    assert_eq!(store.build(&a.id, &pending.id).await.unwrap().status, "failed");

    store.set_formation(&a.id, &BTreeMap::from([("web".to_owned(), 2), ("worker".to_owned(), 1)])).await.unwrap();
    store.set_formation(&a.id, &BTreeMap::from([("web".to_owned(), 3)])).await.unwrap();
    assert_eq!(
        store.formation(&a.id).await.unwrap(),
        BTreeMap::from([("web".to_owned(), 3), ("worker".to_owned(), 1)])
    );

    assert_eq!(store.token_count().await.unwrap(), 0);
    let token = store.create_token("admin").await.unwrap();
    assert_eq!(store.verify_token(&token).await.unwrap().map(|t| t.name).as_deref(), Some("admin"));
    assert!(store.verify_token("paas_wrong").await.unwrap().is_none());
    assert_eq!(store.token_count().await.unwrap(), 1);
    // A described token that expires; one expired already; revoking.
    let later = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let (row, ci) = store.create_token_with(&NewToken { name: "ci", description: Some("GitHub Actions"), expires_at: Some(&later), ..Default::default() }).await.unwrap();
    assert_eq!(store.verify_token(&ci).await.unwrap().map(|t| t.what().to_owned()).as_deref(), Some("GitHub Actions"));
    let (_, old) = store.create_token_with(&NewToken { name: "old", expires_at: Some("2020-01-01T00:00:00Z"), ..Default::default() }).await.unwrap();
    assert!(store.verify_token(&old).await.unwrap().is_none(), "expired");
    store.touch_token(&row.id).await.unwrap();
    let revoked = store.revoke_token(&row.id).await.unwrap().unwrap();
    assert!(revoked.revoked_at.is_some() && revoked.last_used_at.is_some());
    assert!(store.verify_token(&ci).await.unwrap().is_none(), "revoked");
    assert!(!store.token(&row.id).await.unwrap().unwrap().active_at(&now()));
    assert_eq!(store.tokens(None).await.unwrap().len(), 3, "revoked and expired tokens stay listed");
    assert!(store.revoke_token("no-such-id").await.unwrap().is_none());

    let id = store.instance_id().await.unwrap();
    assert_eq!(store.instance_id().await.unwrap(), id, "the instance id is made once");
}

async fn addons_attachments_and_backups(store: Store) {
    let owner = store.create_app(&app("owner")).await.unwrap();
    let other = store.create_app(&app("other")).await.unwrap();
    let a = store.create_addon("postgresql-oak-1234", &owner.id, "postgresql", "17", "").await.unwrap();
    assert_eq!(a.state, "provisioning");
    assert!(matches!(store.create_addon("postgresql-oak-1234", &other.id, "redis", "8", "").await, Err(StoreError::Conflict)));
    store.set_addon_credentials(&a.id, "sealed").await.unwrap();
    store.set_addon_state(&a.id, "provisioned", None).await.unwrap();
    store.attach_addon(&a.id, &owner.id, "DATABASE").await.unwrap();
    store.attach_addon(&a.id, &other.id, "SHARED").await.unwrap();
    assert!(matches!(store.attach_addon(&a.id, &other.id, "AGAIN").await, Err(StoreError::Conflict)), "one attachment per app");
    let b = store.create_addon("redis-fern-5678", &other.id, "redis", "8", "").await.unwrap();
    assert!(matches!(store.attach_addon(&b.id, &other.id, "SHARED").await, Err(StoreError::Conflict)), "one name per app");
    let mut names: Vec<String> = store.attachments_of_addon(&a.id).await.unwrap().into_iter().map(|t| format!("{}:{}", t.app_name, t.name)).collect();
    // In order of attaching; two in one millisecond, by app name.
    names.sort();
    assert_eq!(names, ["other:SHARED", "owner:DATABASE"]);
    assert_eq!(store.app_addons(&other.id).await.unwrap().len(), 2, "its own and the one attached");
    let found = store.addon("postgresql-oak-1234").await.unwrap().unwrap();
    assert_eq!((found.state.as_str(), found.credentials.as_str()), ("provisioned", "sealed"));

    let b1 = store.start_backup(&a.id, "manual").await.unwrap();
    store.finish_backup(&b1.id, Ok((123, "abc", None))).await.unwrap();
    let b2 = store.start_backup(&a.id, "scheduled").await.unwrap();
    assert_eq!((b1.number, b2.number), (1, 2));
    store.finish_backup(&b2.id, Err("the service is not running")).await.unwrap();
    let listed = store.backups(&a.id).await.unwrap();
    assert_eq!((listed[0].number, listed[0].state.as_str(), listed[0].reason.as_deref()), (2, "failed", Some("the service is not running")));
    assert_eq!((listed[1].size, listed[1].sha256.as_deref()), (Some(123), Some("abc")));
    let b3 = store.start_backup(&a.id, "manual").await.unwrap();
    assert_eq!(store.fail_unfinished_backups().await.unwrap(), 1);
    assert_eq!(store.backups(&a.id).await.unwrap()[0].id, b3.id);
    store.set_backup_schedule(&a.id, Some("02:30"), Some(7)).await.unwrap();
    let scheduled = store.addon_by_id(&a.id).await.unwrap().unwrap();
    assert_eq!((scheduled.backup_at.as_deref(), scheduled.backup_retain), (Some("02:30"), Some(7)));
    assert!(scheduled.backup_since.is_some());

    store.detach_addon(&a.id, &other.id).await.unwrap();
    assert_eq!(store.attachments_of_app(&other.id).await.unwrap().len(), 0);
    store.delete_addon(&a.id).await.unwrap();
    assert!(store.addon("postgresql-oak-1234").await.unwrap().is_none());
    // Deleting an app takes its attachments.
    store.attach_addon(&b.id, &other.id, "REDIS").await.unwrap();
    store.delete_app(&other).await.unwrap();
    assert!(store.attachments_of_addon(&b.id).await.unwrap().is_empty());
}

async fn users_roles_sessions_and_audit(store: Store) {
    // Tokens of no one (made before users existed) become the first admin's.
    let before = store.create_token("admin").await.unwrap();
    assert!(store.verify_token(&before).await.unwrap().unwrap().user_id.is_none());
    let admin = store.first_admin("root@example.com").await.unwrap();
    assert!(admin.is_admin());
    assert_eq!(store.verify_token(&before).await.unwrap().unwrap().user_id.as_deref(), Some(admin.id.as_str()));
    assert_eq!(store.first_admin("other@example.com").await.unwrap().id, admin.id, "made once");
    let token = store.create_token("later").await.unwrap();
    assert_eq!(store.verify_token(&token).await.unwrap().unwrap().user_id.as_deref(), Some(admin.id.as_str()));
    let (row, user) = store.verify_token_user(&token).await.unwrap().unwrap();
    let user = user.unwrap();
    assert_eq!((row.name.as_str(), user.email.as_str(), user.is_admin()), ("later", "root@example.com", true));
    assert!(store.verify_token_user("paas_wrong").await.unwrap().is_none());

    let alice = store.create_user("Alice@Example.com", Some("$argon2id$x"), false).await.unwrap();
    assert_eq!(alice.email, "alice@example.com");
    assert!(matches!(store.create_user("alice@example.com", None, false).await, Err(StoreError::Conflict)));
    assert_eq!(store.user_by_email("ALICE@example.com").await.unwrap().unwrap().id, alice.id);
    let shop = store.create_app(&app("shop")).await.unwrap();
    assert_eq!(store.app_role(&shop.id, &alice.id).await.unwrap(), None);
    store.set_app_role(&shop.id, &alice.id, "viewer").await.unwrap();
    store.set_app_role(&shop.id, &alice.id, "admin").await.unwrap();
    assert_eq!(store.app_role(&shop.id, &alice.id).await.unwrap().as_deref(), Some("admin"));
    assert_eq!(store.apps_only_admin_of(&alice.id).await.unwrap(), vec!["shop".to_owned()]);
    store.set_app_role(&shop.id, &admin.id, "admin").await.unwrap();
    assert!(store.apps_only_admin_of(&alice.id).await.unwrap().is_empty());
    assert_eq!(store.app_roles(&shop.id).await.unwrap().len(), 2);
    assert_eq!(store.apps_of_user(&alice.id).await.unwrap(), vec![shop.id.clone()]);
    let (found, role) = store.app_with_role("shop", &alice.id).await.unwrap().unwrap();
    assert_eq!((found.id.as_str(), role.as_deref()), (shop.id.as_str(), Some("admin")));
    assert_eq!(store.app_with_role("shop", "someone-else").await.unwrap().unwrap().1, None);
    assert!(store.app_with_role("nope", &alice.id).await.unwrap().is_none());

    // A deploy token goes with its app.
    let (deploy, _) = store
        .create_token_with(&NewToken { name: "deploy", user_id: Some(&alice.id), app_id: Some(&shop.id), role: Some("deploy"), ..Default::default() })
        .await
        .unwrap();
    store.create_session("k1", &alice.id, Some(&deploy.id), "c", "2999-01-01T00:00:00.000Z").await.unwrap();
    store.create_session("k2", &alice.id, None, "c", "2999-01-01T00:00:00.000Z").await.unwrap();
    store.create_session("old", &alice.id, None, "c", "2000-01-01T00:00:00.000Z").await.unwrap();
    assert!(store.session("old").await.unwrap().is_none(), "expired");
    assert_eq!(store.session("k2").await.unwrap().unwrap().user_id, alice.id);
    store.delete_app(&shop).await.unwrap();
    assert!(store.token(&deploy.id).await.unwrap().is_none());
    assert!(store.session("k1").await.unwrap().is_none());
    assert!(store.apps_of_user(&alice.id).await.unwrap().is_empty());

    // Removing a user takes their sessions and tokens.
    let (mine, _) = store.create_token_with(&NewToken { name: "api", user_id: Some(&alice.id), ..Default::default() }).await.unwrap();
    store.delete_user(&alice.id).await.unwrap();
    assert!(store.user(&alice.id).await.unwrap().is_none());
    assert!(store.token(&mine.id).await.unwrap().is_none());
    assert!(store.session("k2").await.unwrap().is_none());

    // The audit log: appended, read newest first, pruned by age.
    for (i, at) in ["2020-01-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z"].into_iter().enumerate() {
        let e = AuditRow {
            id: new_id(),
            at: at.to_owned(),
            actor: "root@example.com".into(),
            user_id: Some(admin.id.clone()),
            address: Some("127.0.0.1".into()),
            action: format!("config.set{i}"),
            app: Some("shop".into()),
            detail: "PATCH /apps/shop/config-vars".into(),
            status: 200,
        };
        store.append_audit(&e).await.unwrap();
    }
    let events = store.audit(Some("shop"), 10).await.unwrap();
    assert_eq!(events.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["config.set1", "config.set0"]);
    assert!(store.audit(Some("other"), 10).await.unwrap().is_empty());
    assert_eq!(store.prune_audit("2025-01-01T00:00:00.000Z").await.unwrap(), 1);
    assert_eq!(store.audit(None, 10).await.unwrap().len(), 1);
}

async fn a_store_a_newer_server_migrated_is_refused(store: Store) {
    store.migrate().await.expect("its own schema again is fine");
    let newer = Store::schema() + 1;
    sqlx::query("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES ($1, 'from a newer server', TRUE, $2, 0)")
        .bind(newer)
        .bind(vec![0u8; 48])
        .execute(&store.pool)
        .await
        .unwrap();
    let refused = store.migrate().await.unwrap_err().to_string();
    assert!(refused.contains(&format!("migrated by a newer paas-server (schema {newer}")) && refused.contains("run that version"), "{refused}");
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                let (store, _dir) = super::sqlite_store().await;
                super::$name(store).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                if let Some(store) = super::postgres_store().await {
                    super::$name(store).await;
                }
            })*
        }
    };
}

both_backends!(
    apps_are_unique_and_deletable,
    releases_count_up_per_app,
    concurrent_appends_get_distinct_versions,
    builds_formation_tokens,
    addons_attachments_and_backups,
    users_roles_sessions_and_audit,
    a_store_a_newer_server_migrated_is_refused,
);

/// The embedded migrations are what sqlx reads from the `migrations/`
/// folder (the code path `sqlx::migrate!`, which embedded them before,
/// used): same versions, descriptions, checksums and transaction choice, so
/// a store an earlier server migrated validates unchanged.
#[tokio::test]
async fn embedded_migrations_match_the_folder_as_sqlx_reads_it() {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let read = Migrator::new(folder).await.unwrap();
    let embedded = Migrator::new(Embedded).await.unwrap();
    let key = |m: &Migration| (m.version, m.description.to_string(), m.checksum.to_vec(), m.no_tx);
    assert_eq!(embedded.iter().map(key).collect::<Vec<_>>(), read.iter().map(key).collect::<Vec<_>>());
    assert!(embedded.iter().count() >= 21, "every migration is embedded");
    assert_eq!(Store::schema(), read.iter().map(|m| m.version).max().unwrap());
}
