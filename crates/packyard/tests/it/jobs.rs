//! The job queue and the collector, driven directly against the database.

use packyard::db::{self, generations::Target};
use packyard::formats::PackageFormat;

use crate::fixtures::{BOOKWORM, JAMMY};
use crate::support::TestApp;

async fn enqueue(app: &TestApp, repository_id: i64, distro: i64) {
    let mut tx = app.app.db.begin_write().await.unwrap();
    db::jobs::enqueue(
        &mut tx,
        PackageFormat::Deb.publish_job(),
        &Target::apt(repository_id, distro),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn queued_jobs_coalesce_per_target_and_one_worker_builds_a_target_at_a_time() {
    let app = TestApp::builder().without_workers().start().await;
    for _ in 0..5 {
        enqueue(&app, 1, BOOKWORM).await;
    }
    enqueue(&app, 1, JAMMY).await;
    assert_eq!(
        db::jobs::pending(&app.app.db).await.unwrap(),
        2,
        "one queued job per target"
    );

    let first = db::jobs::claim(&app.app.db, 60).await.unwrap().unwrap();
    // While it runs, a new push queues exactly one more run of the same target...
    enqueue(&app, 1, first.distro_version_id).await;
    enqueue(&app, 1, first.distro_version_id).await;
    // ...which nobody may claim until the running one is done.
    let second = db::jobs::claim(&app.app.db, 60).await.unwrap().unwrap();
    assert_ne!(second.distro_version_id, first.distro_version_id);
    assert!(db::jobs::claim(&app.app.db, 60).await.unwrap().is_none());
    db::jobs::complete(&app.app.db, &first).await.unwrap();
    let third = db::jobs::claim(&app.app.db, 60).await.unwrap().unwrap();
    assert_eq!(third.distro_version_id, first.distro_version_id);
}

#[tokio::test]
async fn failed_jobs_wait_for_their_backoff_and_expired_leases_are_taken_over() {
    let app = TestApp::builder().without_workers().start().await;
    enqueue(&app, 1, BOOKWORM).await;
    let job = db::jobs::claim(&app.app.db, 60).await.unwrap().unwrap();
    assert_eq!(job.attempts, 1);
    db::jobs::retry_later(&app.app.db, &job, "boom", 3600)
        .await
        .unwrap();
    assert!(
        db::jobs::claim(&app.app.db, 60).await.unwrap().is_none(),
        "not before its backoff"
    );
    let error: String = app
        .app
        .db
        .scalar_text("SELECT last_error FROM jobs")
        .await
        .unwrap();
    assert_eq!(error, "boom");

    // A worker that died holding a lease: the job runs again once the lease has expired.
    app.app
        .db
        .execute_sql("UPDATE jobs SET run_at = 0")
        .await
        .unwrap();
    let taken = db::jobs::claim(&app.app.db, 0).await.unwrap().unwrap();
    assert_eq!(taken.attempts, 2);
    let again = db::jobs::claim(&app.app.db, 60).await.unwrap().unwrap();
    assert_eq!(again.id, taken.id);
    assert_eq!(again.attempts, 3);
}

#[tokio::test]
async fn the_collector_removes_superseded_generations_and_unreferenced_blobs_after_the_grace() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    app.push_deb("stable", "hello", "1.0", "amd64").await;
    app.wait_for_jobs().await;
    app.push_deb("stable", "other", "1.0", "amd64").await;
    app.wait_for_jobs().await;
    assert_eq!(
        app.destroy("stable", "debian/bookworm", "hello_1.0_amd64.deb")
            .await,
        200
    );
    app.wait_for_jobs().await;
    let generations = || async {
        db::generations::count(&app.app.db, &Target::apt(1, BOOKWORM))
            .await
            .unwrap()
    };
    assert_eq!(generations().await, 3);

    // Within the grace period nothing goes.
    let collection = packyard::jobs::gc::collect(&app.app, false).await.unwrap();
    assert_eq!((collection.blobs, collection.generations), (0, 0));
    let pool = "/admin/stable/debian/pool/bookworm/main/h/hello/hello_1.0_amd64.deb";
    assert_eq!(
        app.status(pool).await,
        200,
        "a destroyed package stays downloadable during the grace"
    );

    // Index files are kept in segments, a blob each; those of old generations go with them
    // unless the current one shares them.
    let db = &app.app.db;
    let every_segment = segment_blobs(db, "").await;
    let current_segments = segment_blobs(
        db,
        "JOIN publish_targets t ON t.current_generation_id = s.generation_id",
    )
    .await;
    assert!(every_segment.len() > current_segments.len());

    // Age everything past the grace period.
    app.app
        .db
        .execute_sql("UPDATE generations SET superseded_at = superseded_at - 7200")
        .await
        .unwrap();
    app.app
        .db
        .execute_sql(
            "UPDATE packages SET deleted_at = deleted_at - 7200 WHERE deleted_at IS NOT NULL",
        )
        .await
        .unwrap();
    // A dry run says what would go and removes nothing.
    let preview = packyard::jobs::gc::collect(&app.app, true).await.unwrap();
    assert_eq!((preview.generations, preview.packages), (2, 1));
    assert!(preview.blobs >= 2 && preview.bytes > 0, "{preview:?}");
    assert_eq!(generations().await, 3, "a dry run deletes nothing");
    let collected = packyard::jobs::gc::collect(&app.app, false).await.unwrap();
    assert_eq!(
        (
            collected.generations,
            collected.packages,
            collected.blobs,
            collected.bytes
        ),
        (
            preview.generations,
            preview.packages,
            preview.blobs,
            preview.bytes
        )
    );
    let deleted = collected.blobs;
    assert!(
        deleted >= 2,
        "the old Packages.gz files and the destroyed package's blob: {deleted}"
    );
    assert_eq!(
        generations().await,
        1,
        "only the current generation is kept"
    );
    assert_eq!(app.status(pool).await, 404);
    for digest in &every_segment {
        let key = packyard::storage::BlobKey::from_sha256(digest).unwrap();
        assert_eq!(
            app.app.blobs.exists(&key).await.unwrap(),
            current_segments.contains(digest),
            "segment {digest}"
        );
    }

    // What is current is untouched, and apt-visible files still resolve.
    let current = app
        .get("/admin/stable/debian/dists/bookworm/main/binary-amd64/Packages.gz")
        .send()
        .await
        .unwrap();
    assert_eq!(current.status(), 200);
    let other = app
        .get("/admin/stable/debian/pool/bookworm/main/o/other/other_1.0_amd64.deb")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
}

/// The blobs of index file segments, of the generations `join` selects.
async fn segment_blobs(db: &db::Db, join: &str) -> Vec<String> {
    let sql = format!(
        "SELECT s.blob_sha256 FROM generation_file_segments s {join} GROUP BY s.blob_sha256"
    );
    match db {
        db::Db::Sqlite(pool, _) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(pool)
            .await
            .unwrap(),
        db::Db::Postgres(pool) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(pool)
            .await
            .unwrap(),
    }
}

/// SQLite hands out the highest id plus one unless told otherwise; package ids must never
/// come back once the collector removed the row that had them.
#[tokio::test]
async fn package_ids_are_never_reused_after_the_collector_removes_the_highest_row() {
    let app = TestApp::new().await;
    app.create_repo("stable", false).await;
    app.push_deb("stable", "first", "1.0", "amd64").await;
    app.push_deb("stable", "second", "1.0", "amd64").await;
    app.wait_for_jobs().await;
    let ids = async |condition: &str| -> Vec<i64> {
        let sql = format!("SELECT CAST(id AS TEXT) FROM packages WHERE {condition} ORDER BY id");
        let texts = app.app.db.texts(&sql).await.unwrap();
        texts.iter().map(|t| t.parse().unwrap()).collect()
    };
    let removed = ids("name = 'second'").await[0];
    assert_eq!(ids("TRUE").await.last(), Some(&removed), "the highest id");
    assert_eq!(
        app.destroy("stable", "debian/bookworm", "second_1.0_amd64.deb")
            .await,
        200
    );
    app.wait_for_jobs().await;
    let mut tx = app.app.db.begin_write().await.unwrap();
    let collected = db::generations::collect(&mut tx, -60).await.unwrap();
    tx.commit().await.unwrap();
    assert!(collected.packages >= 1);
    assert!(
        ids(&format!("id = {removed}")).await.is_empty(),
        "the row is gone"
    );

    app.push_deb("stable", "third", "1.0", "amd64").await;
    let third = ids("name = 'third'").await[0];
    assert!(
        third > removed,
        "id {third} was handed out again after {removed}"
    );
}

/// A segmented index file that changed only at its end stores the segments past those of its
/// base generation; the base stays while a generation takes segments from it.
#[tokio::test]
async fn a_file_changed_at_its_end_stores_only_the_segments_past_its_base() {
    use packyard::db::generations::{self, Build, IndexFile, NewGeneration, Segment};

    let app = TestApp::builder().without_workers().start().await;
    app.create_repo("stable", false).await;
    let db = &app.app.db;
    let repository_id = db
        .scalar_i64("SELECT id FROM repositories WHERE name = 'stable'")
        .await
        .unwrap();
    let target = Target::apt(repository_id, BOOKWORM);
    let segment = |n: usize| Segment {
        blob_sha256: format!("{n:064x}"),
        size: 10 + n as i64,
    };
    let file = |path: &str, gunzip: bool, segments: &[Segment]| IndexFile {
        path: path.to_owned(),
        size: 1,
        md5: String::new(),
        sha1: String::new(),
        sha256: "e".repeat(64),
        sha512: String::new(),
        blob_sha256: "e".repeat(64),
        gunzip,
        segments: segments.to_vec(),
    };
    let gz = "main/binary-amd64/Packages.gz";
    let plain = "main/binary-amd64/Packages";
    let publish_files = |files: Vec<IndexFile>, rebuild: bool| {
        let target = target.clone();
        async move {
            let build = Build::new("test", None).rebuilding(rebuild);
            let generation = NewGeneration {
                target: &target,
                documents: &[],
                files: &files,
                changed_chunks: &[],
                live_chunks: &[],
                written_chunks: &[],
                newly_indexed: &[],
                build: &build,
            };
            let mut tx = db.begin_write().await.unwrap();
            let (id, _) = generations::publish(&mut tx, &generation).await.unwrap();
            tx.commit().await.unwrap();
            // Every file reads back whole, whatever rows hold it.
            for file in &files {
                let served = generations::current_file(db, &target, &file.path)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(served.segments, file.segments, "{} of {id}", file.path);
            }
            id
        }
    };
    let publish = |segments: Vec<Segment>, rebuild: bool| {
        let files = vec![file(gz, false, &segments), file(plain, true, &segments)];
        publish_files(files, rebuild)
    };
    let stored = |id: i64| async move {
        let sql =
            format!("SELECT COUNT(*) FROM generation_file_segments WHERE generation_id = {id}");
        db.scalar_i64(&sql).await
    };
    let base_of_any = |id: i64| async move {
        let sql = format!(
            "SELECT COALESCE(MAX(segments_base), 0) FROM generation_files WHERE generation_id = {id}"
        );
        db.scalar_i64(&sql).await
    };
    let base_of = |id: i64| async move {
        let sql = format!(
            "SELECT COALESCE(segments_base, 0) FROM generation_files
             WHERE generation_id = {id} AND path = '{gz}'"
        );
        db.scalar_i64(&sql).await
    };

    let first: Vec<Segment> = (0..20).map(segment).collect();
    let g1 = publish(first.clone(), false).await;
    assert_eq!(
        (stored(g1).await.unwrap(), base_of(g1).await.unwrap()),
        (20, 0)
    );
    // The last segment changed, then one more was added: both store what is past the first.
    let mut grown = first[..19].to_vec();
    grown.push(segment(100));
    let g2 = publish(grown.clone(), false).await;
    assert_eq!(
        (stored(g2).await.unwrap(), base_of(g2).await.unwrap()),
        (1, g1)
    );
    grown.push(segment(101));
    let g3 = publish(grown.clone(), false).await;
    assert_eq!(
        (stored(g3).await.unwrap(), base_of(g3).await.unwrap()),
        (2, g1)
    );
    // The current generation's blobs include those it takes from its base.
    let current = generations::current_blobs(db, &target).await.unwrap();
    assert!(grown.iter().all(|s| current.contains(&s.blob_sha256)));
    // Changed at its start, or rebuilt, the file is stored whole.
    let mut changed = grown.clone();
    changed[0] = segment(200);
    let g4 = publish(changed.clone(), false).await;
    assert_eq!(
        (stored(g4).await.unwrap(), base_of(g4).await.unwrap()),
        (21, 0)
    );
    let g5 = publish(changed.clone(), true).await;
    assert_eq!(
        (stored(g5).await.unwrap(), base_of(g5).await.unwrap()),
        (21, 0)
    );

    // Past the grace period, the base stays while a generation takes segments from it.
    db.execute_sql("UPDATE generations SET superseded_at = superseded_at - 7200")
        .await
        .unwrap();
    let left = || db.texts("SELECT CAST(id AS TEXT) FROM generations ORDER BY id");
    packyard::jobs::gc::collect(&app.app, false).await.unwrap();
    assert_eq!(left().await.unwrap(), [g1.to_string(), g5.to_string()]);
    packyard::jobs::gc::collect(&app.app, false).await.unwrap();
    assert_eq!(left().await.unwrap(), [g5.to_string()]);
    let g6 = publish(changed.clone(), false).await;
    assert_eq!(
        (stored(g6).await.unwrap(), base_of(g6).await.unwrap()),
        (0, g5)
    );

    // A YUM data file's name carries its digest: its base is the file of the same name past it.
    let addressed = |digest: char, segments: &[Segment]| {
        let path = format!("repodata/{}-primary.xml.gz", digest.to_string().repeat(64));
        file(&path, false, segments)
    };
    let g7 = publish_files(vec![addressed('a', &changed)], false).await;
    assert_eq!(stored(g7).await.unwrap(), 21);
    let mut longer = changed.clone();
    longer.push(segment(300));
    let g8 = publish_files(vec![addressed('b', &longer)], false).await;
    assert_eq!(stored(g8).await.unwrap(), 1);
    let based = db
        .scalar_text(&format!(
            "SELECT segments_base_path FROM generation_files WHERE generation_id = {g8}"
        ))
        .await
        .unwrap();
    assert_eq!(based, addressed('a', &[]).path);
    longer.push(segment(301));
    let g9 = publish_files(vec![addressed('c', &longer)], false).await;
    assert_eq!(
        (stored(g9).await.unwrap(), base_of_any(g9).await.unwrap()),
        (2, g7)
    );
}
