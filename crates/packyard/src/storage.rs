//! Blob storage: package files and index files, content-addressed by SHA-256 and never
//! rewritten. The backend is a local folder (the default) or an S3-compatible bucket, both
//! through `object_store`; uploads are staged in the local data folder either way.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::signer::{Method, Signer};
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;

use crate::config::{Config, StorageLocation};
use packyard_formats::digest::{FileDigests, MultiHasher};

/// The key of a blob: its SHA-256, validated as 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobKey(String);

impl BlobKey {
    pub fn from_sha256(hex: &str) -> Result<BlobKey> {
        let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        anyhow::ensure!(valid, "not a SHA-256 digest: {hex:?}");
        Ok(BlobKey(hex.to_owned()))
    }

    pub fn sha256(&self) -> &str {
        &self.0
    }

    /// `blobs/ab/cd/abcd...`: two levels of fan-out keep directories small.
    pub fn path(&self) -> String {
        format!("blobs/{}/{}/{}", &self.0[..2], &self.0[2..4], self.0)
    }
}

/// A blob being read: its total size and a stream of the requested bytes.
pub struct BlobRead {
    pub total_size: u64,
    pub range: Range<u64>,
    pub stream: BoxStream<'static, std::io::Result<Bytes>>,
}

/// Bytes per read when streaming a local blob: large enough that a big file costs few hops to
/// the blocking pool, small enough that many concurrent downloads stay light.
const LOCAL_READ_CHUNK: usize = 256 << 10;

#[derive(Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    tmp_dir: PathBuf,
    /// The folder the local backend maps keys into, where staged files can be linked in place.
    local_root: Option<PathBuf>,
    /// The S3 backend, which can presign download URLs.
    s3: Option<Arc<AmazonS3>>,
    /// Prepended to every key: `s3://bucket/PREFIX`.
    prefix: String,
}

impl Blobs {
    /// The storage `config` names; uploads are staged in `data_dir/tmp` whatever the backend.
    pub fn open(config: &Config) -> Result<Blobs> {
        match config.storage_location()? {
            StorageLocation::Local => Blobs::local(&config.data_dir),
            StorageLocation::S3 { bucket, prefix } => {
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(&bucket)
                    .with_virtual_hosted_style_request(!config.s3_path_style);
                builder = builder
                    .with_retry(object_store::RetryConfig {
                        max_retries: config.s3_retries,
                        retry_timeout: std::time::Duration::from_secs(config.s3_retry_timeout_secs),
                        ..Default::default()
                    })
                    .with_config(
                        object_store::aws::AmazonS3ConfigKey::Client(
                            object_store::ClientConfigKey::Timeout,
                        ),
                        format!("{}s", config.s3_request_timeout_secs.max(1)),
                    );
                if let Some(endpoint) = &config.s3_endpoint {
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"));
                }
                let region = config
                    .s3_region
                    .clone()
                    .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
                    .or_else(|| std::env::var("AWS_REGION").ok())
                    .unwrap_or_else(|| "us-east-1".into());
                builder = builder.with_region(region);
                if let Some(id) = &config.s3_access_key_id {
                    builder = builder.with_access_key_id(id);
                }
                if let Some(secret) = &config.s3_secret_access_key {
                    builder = builder.with_secret_access_key(secret);
                }
                let s3 = Arc::new(builder.build().context("configuring S3 storage")?);
                Ok(Blobs {
                    store: s3.clone(),
                    tmp_dir: tmp_dir(&config.data_dir)?,
                    local_root: None,
                    s3: Some(s3),
                    prefix: if prefix.is_empty() {
                        prefix
                    } else {
                        format!("{prefix}/")
                    },
                })
            }
        }
    }

    /// Blobs under `data_dir/blobs`, uploads staged in `data_dir/tmp`.
    pub fn local(data_dir: &Path) -> Result<Blobs> {
        let tmp_dir = tmp_dir(data_dir)?;
        let store = LocalFileSystem::new_with_prefix(data_dir)
            .with_context(|| format!("opening blob storage in {}", data_dir.display()))?
            .with_automatic_cleanup(true);
        Ok(Blobs {
            store: Arc::new(store),
            tmp_dir,
            local_root: Some(data_dir.to_path_buf()),
            s3: None,
            prefix: String::new(),
        })
    }

    fn path(&self, key: &BlobKey) -> object_store::path::Path {
        object_store::path::Path::from(format!("{}{}", self.prefix, key.path()))
    }

    /// A URL that lets its holder GET the blob for `expires_in` without credentials, when the
    /// backend can make one (S3); `None` for local storage.
    pub async fn presigned_get(
        &self,
        key: &BlobKey,
        expires_in: std::time::Duration,
    ) -> Result<Option<String>> {
        let Some(s3) = &self.s3 else {
            return Ok(None);
        };
        let url = s3
            .signed_url(Method::GET, &self.path(key), expires_in)
            .await?;
        Ok(Some(url.into()))
    }

    /// The file a blob is kept in, when storage is a local folder.
    pub fn local_path(&self, key: &BlobKey) -> Option<PathBuf> {
        self.local_root.as_ref().map(|root| root.join(key.path()))
    }

    /// Where uploads are staged while they are hashed and checked.
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp_dir
    }

    /// Asks the store about a blob that does not exist: an answer means it is reachable.
    pub async fn ping(&self) -> Result<()> {
        let nothing = BlobKey::from_sha256(&"0".repeat(64))?;
        self.exists(&nothing).await.map(drop)
    }

    pub async fn exists(&self, key: &BlobKey) -> Result<bool> {
        Ok(self.size(key).await?.is_some())
    }

    /// The places in `keys` of the blobs that do not exist. Locally one blocking thread looks
    /// at every file; elsewhere `PUTS_IN_FLIGHT` requests run at once. A rebuild checks
    /// thousands of blobs under the write lock, and asking about all at once would start a
    /// blocking thread for each (and keep them, with their memory, for a while after).
    pub async fn missing(&self, keys: &[BlobKey]) -> Result<Vec<usize>> {
        if let Some(root) = self.local_root.clone() {
            let paths: Vec<PathBuf> = keys.iter().map(|key| root.join(key.path())).collect();
            return tokio::task::spawn_blocking(move || {
                let mut gone = Vec::new();
                for (i, path) in paths.iter().enumerate() {
                    match std::fs::metadata(path) {
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => gone.push(i),
                        Err(e) => {
                            return Err(anyhow::Error::new(e)
                                .context(format!("looking for {}", path.display())));
                        }
                    }
                }
                Ok(gone)
            })
            .await?;
        }
        let mut gone = Vec::new();
        for (n, batch) in keys.chunks(PUTS_IN_FLIGHT).enumerate() {
            let asked = futures::future::try_join_all(batch.iter().map(|key| self.exists(key)));
            let answers = asked.await?;
            let first = n * PUTS_IN_FLIGHT;
            gone.extend(
                (answers.iter().enumerate())
                    .filter(|(_, exists)| !**exists)
                    .map(|(i, _)| first + i),
            );
        }
        Ok(gone)
    }

    /// The stored size of a blob, or `None` when it does not exist.
    pub async fn size(&self, key: &BlobKey) -> Result<Option<u64>> {
        match self.store.head(&self.path(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// For the check inside a write transaction after a `put_file` or `put_bytes` outside it:
    /// stores the blob again only if the collector took it in between. A blob still there is
    /// the one the earlier call stored and synced, so it is not synced twice.
    pub async fn put_file_again(&self, key: &BlobKey, file: &Path) -> Result<()> {
        match self.exists(key).await? {
            true => Ok(()),
            false => self.put_file(key, file).await,
        }
    }

    /// As `put_file_again`, for a blob held in memory.
    pub async fn put_bytes_again(&self, key: &BlobKey, data: Bytes) -> Result<()> {
        match self.exists(key).await? {
            true => Ok(()),
            false => self.put_bytes(key, data).await,
        }
    }

    pub async fn put_bytes(&self, key: &BlobKey, data: Bytes) -> Result<()> {
        // A blob another writer has just stored may not be synced yet: sync it here too.
        if self.exists(key).await? {
            self.sync_local(key).await?;
        } else {
            self.store
                .put(&self.path(key), PutPayload::from(data))
                .await?;
            self.sync_local(key).await?;
        }
        Ok(())
    }

    /// Stores blobs held in memory, each durable when this returns, as `put_bytes` does one.
    /// On the local backend the files are written first and put on stable storage together:
    /// a few by syncing each file and each folder that names one once, many (a rebuild's
    /// thousand chunks) by syncing the filesystem once, which costs one flush rather than
    /// five syncs a blob.
    pub async fn put_many(&self, blobs: &[(BlobKey, Bytes)]) -> Result<()> {
        // Locally a blob another writer has just stored may not be synced yet: it is synced
        // below with the others.
        for batch in blobs.chunks(PUTS_IN_FLIGHT) {
            futures::future::try_join_all(batch.iter().map(|(key, bytes)| async move {
                match self.local_root {
                    Some(_) => self.put_unsynced(key, bytes.clone()).await,
                    None => self.put_bytes(key, bytes.clone()).await,
                }
            }))
            .await?;
        }
        let Some(root) = self.local_root.clone() else {
            return Ok(());
        };
        let paths: Vec<PathBuf> = blobs.iter().map(|(key, _)| root.join(key.path())).collect();
        tokio::task::spawn_blocking(move || sync_together(&root, &paths))
            .await?
            .context("syncing blobs")
    }

    /// Writes a blob unless it exists, leaving it to the caller to sync.
    async fn put_unsynced(&self, key: &BlobKey, data: Bytes) -> Result<()> {
        if !self.exists(key).await? {
            self.store
                .put(&self.path(key), PutPayload::from(data))
                .await?;
        }
        Ok(())
    }

    /// Puts a new local blob, and the directory entries that name it, on stable storage, so
    /// the row that refers to it (committed next) never outlives it in a power loss. S3
    /// acknowledges a write once it is durable.
    async fn sync_local(&self, key: &BlobKey) -> Result<()> {
        let Some(root) = self.local_root.clone() else {
            return Ok(());
        };
        let path = root.join(key.path());
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::File::open(&path)?.sync_all()?;
            let mut dir = path.parent();
            while let Some(d) = dir {
                std::fs::File::open(d)?.sync_all()?;
                if d == root {
                    break;
                }
                dir = d.parent();
            }
            Ok(())
        })
        .await?
        .with_context(|| format!("syncing blob {}", key.sha256()))
    }

    /// Stores a local file: on the local backend by hard-linking the staged file into place
    /// (no second copy of a large upload), elsewhere by uploading it in parts so memory does
    /// not grow with its size.
    pub async fn put_file(&self, key: &BlobKey, file: &Path) -> Result<()> {
        if self.exists(key).await? {
            return self.sync_local(key).await;
        }
        if let Some(root) = &self.local_root {
            let dest = root.join(key.path());
            if let Some(parent) = dest.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            match tokio::fs::hard_link(file, &dest).await {
                Ok(()) => return self.sync_local(key).await,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return self.sync_local(key).await;
                }
                // Another filesystem (a separate tmp mount): fall back to copying.
                Err(_) => {}
            }
        }
        let mut source = tokio::fs::File::open(file).await?;
        let upload = self.store.put_multipart(&self.path(key)).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, 8 << 20);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = source.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            // At most two parts in flight: memory stays near 16 MiB whatever the file's size.
            writer.wait_for_capacity(2).await?;
            writer.write(&buf[..n]);
        }
        writer.finish().await?;
        self.sync_local(key).await
    }

    /// Reads a blob, or the bytes `range` of it; `None` when it does not exist.
    pub async fn get(&self, key: &BlobKey, range: Option<Range<u64>>) -> Result<Option<BlobRead>> {
        if let Some(root) = &self.local_root {
            return read_local(&root.join(key.path()), range).await;
        }
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..Default::default()
        };
        match self.store.get_opts(&self.path(key), options).await {
            Ok(result) => Ok(Some(BlobRead {
                total_size: result.meta.size,
                range: result.range.clone(),
                stream: result.into_stream().map_err(std::io::Error::other).boxed(),
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Copies a blob into the local file `dest`, hashing it on the way; `None` when the blob
    /// does not exist.
    pub async fn download_to(&self, key: &BlobKey, dest: &Path) -> Result<Option<FileDigests>> {
        use futures::StreamExt;
        use tokio::io::AsyncWriteExt;
        let Some(mut read) = self.get(key, None).await? else {
            return Ok(None);
        };
        let mut file = tokio::io::BufWriter::new(tokio::fs::File::create(dest).await?);
        let mut hasher = MultiHasher::default();
        while let Some(chunk) = read.stream.next().await {
            let chunk = chunk?;
            hasher.update(&chunk);
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        Ok(Some(hasher.finish()))
    }

    pub async fn get_bytes(&self, key: &BlobKey) -> Result<Bytes> {
        Ok(self.store.get(&self.path(key)).await?.bytes().await?)
    }

    pub async fn delete(&self, key: &BlobKey) -> Result<()> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Blobs written at once by `put_many`.
const PUTS_IN_FLIGHT: usize = 16;

/// More blobs than this are put on stable storage by syncing their filesystem.
const SYNCFS_OVER: usize = 16;

/// Puts the files at `paths` under `root`, and the folders that name them up to `root`, on
/// stable storage: each once, or, for many, the whole filesystem in one call.
fn sync_together(root: &Path, paths: &[PathBuf]) -> std::io::Result<()> {
    if paths.len() > SYNCFS_OVER {
        return rustix::fs::syncfs(std::fs::File::open(root)?).map_err(std::io::Error::from);
    }
    let mut folders = std::collections::BTreeSet::new();
    for path in paths {
        std::fs::File::open(path)?.sync_all()?;
        let mut dir = path.parent();
        while let Some(d) = dir {
            folders.insert(d.to_path_buf());
            if d == root {
                break;
            }
            dir = d.parent();
        }
    }
    // Each folder once, its children before it (a reversed sorted order).
    for folder in folders.iter().rev() {
        std::fs::File::open(folder)?.sync_all()?;
    }
    Ok(())
}

/// Creates `path` holding `bytes`, readable by its owner only, whole and on stable storage
/// when this returns, or not at all: written and synced under a temporary name, then linked
/// into place (`AlreadyExists` when another process was first) and its directory synced.
pub fn create_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let staged = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        rand::random::<u64>()
    ));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&staged)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::hard_link(&staged, path)
    })();
    let _ = std::fs::remove_file(&staged);
    written?;
    std::fs::File::open(dir)?.sync_all()
}

fn tmp_dir(data_dir: &Path) -> Result<PathBuf> {
    let tmp_dir = data_dir.join("tmp");
    std::fs::create_dir_all(&tmp_dir).with_context(|| format!("creating {}", tmp_dir.display()))?;
    Ok(tmp_dir)
}

/// Streams a local blob in large reads (`object_store` reads local files 8 KiB at a time, each
/// a hop to the blocking pool).
async fn read_local(path: &Path, range: Option<Range<u64>>) -> Result<Option<BlobRead>> {
    use tokio::io::AsyncSeekExt;
    let mut file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let total_size = file.metadata().await?.len();
    let range = match range {
        Some(r) => {
            anyhow::ensure!(
                r.start <= r.end && r.end <= total_size,
                "range {r:?} is outside a blob of {total_size} bytes"
            );
            r
        }
        None => 0..total_size,
    };
    if range.start > 0 {
        file.seek(std::io::SeekFrom::Start(range.start)).await?;
    }
    let limited = file.take(range.end - range.start);
    let stream = tokio_util::io::ReaderStream::with_capacity(limited, LOCAL_READ_CHUNK).boxed();
    Ok(Some(BlobRead {
        total_size,
        range,
        stream,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(n: usize) -> (BlobKey, Bytes) {
        let bytes = Bytes::from(format!("blob {n}"));
        let key = BlobKey::from_sha256(&packyard_formats::digest::sha256_hex(&bytes)).unwrap();
        (key, bytes)
    }

    #[tokio::test]
    async fn put_many_stores_a_few_blobs_and_many_alike_with_those_already_there() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::local(dir.path()).unwrap();
        // A few are synced one by one, more than `SYNCFS_OVER` with their filesystem.
        for (few, count) in [(true, 3), (false, SYNCFS_OVER * 2)] {
            let offset = if few { 0 } else { 100 };
            let batch: Vec<_> = (offset..offset + count).map(blob).collect();
            blobs
                .put_bytes(&batch[0].0, batch[0].1.clone())
                .await
                .unwrap();
            blobs.put_many(&batch).await.unwrap();
            for (key, bytes) in &batch {
                assert_eq!(&blobs.get_bytes(key).await.unwrap(), bytes);
                let stored = dir.path().join(key.path());
                assert!(stored.is_file(), "{} {few}", stored.display());
            }
        }
    }
}
