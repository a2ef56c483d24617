//! The content store: blobs (manifests, configs, compressed layers) kept by
//! digest under `<root>/blobs/sha256/<hex>`. A blob is written to a temporary
//! file, its digest checked, then renamed into place, so a blob that is there
//! is always complete and correct. It knows nothing about images.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("invalid digest {0:?}")]
    InvalidDigest(String),
    #[error("digest mismatch for {expected}: content hashes to {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("blob {0} not found")]
    NotFound(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ContentError {
    let context = context.into();
    move |source| ContentError::Io { context, source }
}

/// The hex part of a sha256 digest, validated.
pub fn sha256_hex(digest: &str) -> Result<&str, ContentError> {
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        .ok_or_else(|| ContentError::InvalidDigest(digest.to_string()))?;
    Ok(hex)
}

pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

/// A blob being written: bytes go to a temporary file and a running hash.
pub struct Ingest {
    file: std::fs::File,
    temp: PathBuf,
    hasher: Sha256,
    size: u64,
}

impl Ingest {
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), ContentError> {
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
        self.file
            .write_all(bytes)
            .map_err(io(format!("writing {}", self.temp.display())))
    }
}

impl ContentStore {
    pub fn open(root: &Path) -> Result<Self, ContentError> {
        let store = Self {
            root: root.to_path_buf(),
        };
        for dir in [store.blobs_dir(), store.ingest_dir()] {
            std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
        }
        // Half-written blobs of a crashed pull are never valid: drop them.
        if let Ok(entries) = std::fs::read_dir(store.ingest_dir()) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(store)
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    fn ingest_dir(&self) -> PathBuf {
        self.root.join("ingest")
    }

    pub fn path(&self, digest: &str) -> Result<PathBuf, ContentError> {
        Ok(self.blobs_dir().join(sha256_hex(digest)?))
    }

    pub fn contains(&self, digest: &str) -> bool {
        self.path(digest).map(|p| p.is_file()).unwrap_or(false)
    }

    pub fn read(&self, digest: &str) -> Result<Vec<u8>, ContentError> {
        let path = self.path(digest)?;
        std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ContentError::NotFound(digest.to_string()),
            _ => ContentError::Io {
                context: format!("reading {}", path.display()),
                source: e,
            },
        })
    }

    pub fn size(&self, digest: &str) -> Result<u64, ContentError> {
        let path = self.path(digest)?;
        std::fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|_| ContentError::NotFound(digest.to_string()))
    }

    /// Start writing a blob (to a unique temporary file).
    pub fn ingest(&self) -> Result<Ingest, ContentError> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let temp = self.ingest_dir().join(format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let file =
            std::fs::File::create(&temp).map_err(io(format!("creating {}", temp.display())))?;
        Ok(Ingest {
            file,
            temp,
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Finish an ingest: verify its digest and move it into place (fsynced).
    pub fn commit(&self, mut ingest: Ingest, expected: &str) -> Result<u64, ContentError> {
        let target = self.path(expected)?;
        let actual = format!(
            "sha256:{}",
            hex::encode(std::mem::take(&mut ingest.hasher).finalize())
        );
        if actual != expected {
            let _ = std::fs::remove_file(&ingest.temp);
            return Err(ContentError::DigestMismatch {
                expected: expected.to_string(),
                actual,
            });
        }
        ingest
            .file
            .sync_all()
            .map_err(io(format!("syncing {}", ingest.temp.display())))?;
        std::fs::rename(&ingest.temp, &target)
            .map_err(io(format!("storing {}", target.display())))?;
        Ok(ingest.size)
    }

    /// Store bytes already in memory under their digest (which must match).
    pub fn put(&self, bytes: &[u8], expected: &str) -> Result<(), ContentError> {
        if self.contains(expected) {
            return Ok(());
        }
        let mut ingest = self.ingest()?;
        ingest.write(bytes)?;
        self.commit(ingest, expected).map(|_| ())
    }

    pub fn remove(&self, digest: &str) -> Result<(), ContentError> {
        match std::fs::remove_file(self.path(digest)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ContentError::Io {
                context: format!("removing blob {digest}"),
                source: e,
            }),
        }
    }

    /// Every blob digest in the store.
    pub fn list(&self) -> Vec<String> {
        std::fs::read_dir(self.blobs_dir())
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.file_name().to_str().map(|n| format!("sha256:{n}")))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_is_stored_only_under_its_true_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let digest = digest_of(b"hello");
        store.put(b"hello", &digest).unwrap();
        assert_eq!(store.read(&digest).unwrap(), b"hello");
        assert_eq!(store.size(&digest).unwrap(), 5);
        let wrong = digest_of(b"other");
        assert!(matches!(
            store.put(b"hello", &wrong),
            Err(ContentError::DigestMismatch { .. })
        ));
        assert!(!store.contains(&wrong));
        assert_eq!(store.list(), vec![digest.clone()]);
        store.remove(&digest).unwrap();
        assert!(matches!(
            store.read(&digest),
            Err(ContentError::NotFound(_))
        ));
    }

    #[test]
    fn malformed_digests_are_refused() {
        for bad in ["sha256:xyz", "md5:abc", "sha256:../../etc/passwd", ""] {
            assert!(sha256_hex(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn leftover_ingests_are_cleared_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let mut ingest = store.ingest().unwrap();
        ingest.write(b"partial").unwrap();
        drop(ingest);
        ContentStore::open(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("ingest"))
                .unwrap()
                .count(),
            0
        );
    }
}
