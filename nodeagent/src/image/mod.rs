//! Images on this node: pulling from OCI registries (through the configured
//! endpoints: mirrors first, then the registry itself), the content store of
//! blobs by digest, each layer unpacked once into its own overlay-ready
//! directory (verified against the config's diff_id), and the image records
//! CRI's ImageService lists. Two pulls of one reference at once share one
//! download. It runs no containers.

pub mod content;
pub mod hosts;
pub mod reference;
pub mod unpack;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use futures::future::{BoxFuture, FutureExt, Shared};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use self::content::{ContentError, ContentStore};
use self::hosts::{Credentials, Endpoint, RegistryConfig};
use self::reference::Reference;
use self::unpack::Compression;

#[derive(Debug, thiserror::Error, Clone)]
pub enum ImageError {
    #[error("invalid image reference {0:?}: {1}")]
    InvalidReference(String, String),
    #[error("image {0:?} not found")]
    NotFound(String),
    #[error("pulling {reference}: {message}")]
    Pull { reference: String, message: String },
    #[error("layer {digest}: {message}")]
    Layer { digest: String, message: String },
    #[error("image store: {0}")]
    Store(String),
}

fn store_error(error: impl std::fmt::Display) -> ImageError {
    ImageError::Store(error.to_string())
}

impl From<ContentError> for ImageError {
    fn from(error: ContentError) -> Self {
        store_error(error)
    }
}

/// One layer of an image.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LayerRecord {
    /// The (compressed) blob's digest.
    pub digest: String,
    /// The uncompressed tar's digest (rootfs.diff_ids): names the unpacked directory.
    pub diff_id: String,
    pub media_type: String,
    pub size: u64,
}

/// What the runtime needs of an image's configuration.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct ImageConfig {
    pub user: Option<String>,
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    pub volumes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageRecord {
    /// The config blob's digest: the image ID.
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub layers: Vec<LayerRecord>,
    pub config: ImageConfig,
    /// Sum of the compressed layer sizes.
    pub size: u64,
    pub pinned: bool,
}

/// Authentication for one pull, from CRI's AuthConfig.
#[derive(Debug, Clone, Default)]
pub struct PullAuth {
    pub username: Option<String>,
    pub password: Option<String>,
    pub auth: Option<String>,
    pub registry_token: Option<String>,
    pub identity_token: Option<String>,
}

impl PullAuth {
    fn registry_auth(&self) -> Option<oci_client::secrets::RegistryAuth> {
        use base64::Engine;
        use oci_client::secrets::RegistryAuth;
        if let Some(token) = self
            .registry_token
            .clone()
            .or(self.identity_token.clone())
            .filter(|t| !t.is_empty())
        {
            return Some(RegistryAuth::Bearer(token));
        }
        if let (Some(user), Some(password)) = (&self.username, &self.password)
            && !user.is_empty()
        {
            return Some(RegistryAuth::Basic(user.clone(), password.clone()));
        }
        let decoded = self
            .auth
            .as_deref()
            .filter(|a| !a.is_empty())
            .and_then(|a| base64::engine::general_purpose::STANDARD.decode(a).ok())
            .and_then(|bytes| String::from_utf8(bytes).ok())?;
        let (user, password) = decoded.split_once(':')?;
        Some(RegistryAuth::Basic(user.to_string(), password.to_string()))
    }
}

/// An image found in an archive, its blobs already in the content store.
struct StagedImage {
    name: Option<String>,
    manifest_digest: Option<String>,
    config_digest: String,
    /// (digest, media type, size)
    layers: Vec<(String, String, u64)>,
}

type PullFuture = Shared<BoxFuture<'static, Result<ImageRecord, ImageError>>>;

pub struct ImageManager {
    root: PathBuf,
    content: ContentStore,
    registries: RegistryConfig,
    images: Mutex<BTreeMap<String, ImageRecord>>,
    in_flight: Mutex<HashMap<String, PullFuture>>,
}

const LAYER_MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// Reads through and hashes what it reads (the uncompressed layer: diff_id).
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

impl ImageManager {
    /// Open the image store under `root` (content, layers, image records).
    pub fn open(root: &Path, registries: RegistryConfig) -> Result<Arc<Self>, ImageError> {
        let content = ContentStore::open(&root.join("content"))?;
        std::fs::create_dir_all(root.join("layers")).map_err(store_error)?;
        let images = match std::fs::read(root.join("images.json")) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(store_error)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(store_error(e)),
        };
        // Unpacks interrupted by a crash leave temporary directories: drop them.
        if let Ok(entries) = std::fs::read_dir(root.join("layers")) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        Ok(Arc::new(Self {
            root: root.to_path_buf(),
            content,
            registries,
            images: Mutex::new(images),
            in_flight: Mutex::new(HashMap::new()),
        }))
    }

    fn save(&self, images: &BTreeMap<String, ImageRecord>) -> Result<(), ImageError> {
        let path = self.root.join("images.json");
        let temp = self.root.join("images.json.tmp");
        let bytes = serde_json::to_vec_pretty(images).map_err(store_error)?;
        let mut file = std::fs::File::create(&temp).map_err(store_error)?;
        std::io::Write::write_all(&mut file, &bytes).map_err(store_error)?;
        file.sync_all().map_err(store_error)?;
        std::fs::rename(&temp, &path).map_err(store_error)
    }

    /// The directory a layer is unpacked into.
    pub fn layer_dir(&self, diff_id: &str) -> Result<PathBuf, ImageError> {
        Ok(self.root.join("layers").join(content::sha256_hex(diff_id)?))
    }

    /// The unpacked layer directories of an image, lowest first.
    pub fn layer_dirs(&self, image: &ImageRecord) -> Result<Vec<PathBuf>, ImageError> {
        image
            .layers
            .iter()
            .map(|l| self.layer_dir(&l.diff_id))
            .collect()
    }

    pub fn list(&self) -> Vec<ImageRecord> {
        self.images
            .lock()
            .map(|i| i.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Find an image by ID (full or "sha256:" prefix of at least 12 hex), repo tag or
    /// repo digest, in any of the forms Kubernetes allows ("busybox", "docker.io/library/busybox:latest").
    pub fn find(&self, text: &str) -> Option<ImageRecord> {
        let images = self.images.lock().ok()?;
        if let Some(image) = images.get(text) {
            return Some(image.clone());
        }
        let normalized = Reference::parse(text).ok().map(|r| r.to_string_full());
        let id_prefix = text.strip_prefix("sha256:").unwrap_or(text);
        images
            .values()
            .find(|image| {
                let by_name = normalized
                    .as_ref()
                    .is_some_and(|n| image.repo_tags.contains(n) || image.repo_digests.contains(n));
                let by_id = id_prefix.len() >= 12
                    && id_prefix.bytes().all(|b| b.is_ascii_hexdigit())
                    && image
                        .id
                        .trim_start_matches("sha256:")
                        .starts_with(id_prefix);
                by_name || by_id
            })
            .cloned()
    }

    /// Pull `reference`; concurrent pulls of the same reference share one download.
    pub async fn pull(
        self: &Arc<Self>,
        text: &str,
        auth: PullAuth,
    ) -> Result<ImageRecord, ImageError> {
        let reference = Reference::parse(text)
            .map_err(|e| ImageError::InvalidReference(text.to_string(), e.to_string()))?;
        let key = reference.to_string_full();
        let future = {
            let mut in_flight = self.in_flight.lock().map_err(store_error)?;
            match in_flight.get(&key) {
                Some(existing) => existing.clone(),
                None => {
                    let manager = self.clone();
                    let reference = reference.clone();
                    let future = async move { manager.pull_uncached(&reference, &auth).await }
                        .boxed()
                        .shared();
                    in_flight.insert(key.clone(), future.clone());
                    future
                }
            }
        };
        let result = future.await;
        if let Ok(mut in_flight) = self.in_flight.lock() {
            in_flight.remove(&key);
        }
        result
    }

    fn client_for(endpoint: &Endpoint) -> oci_client::Client {
        let protocol = if endpoint.url.starts_with("http://") {
            oci_client::client::ClientProtocol::Http
        } else {
            oci_client::client::ClientProtocol::Https
        };
        let mut extra_root_certificates = Vec::new();
        for path in &endpoint.ca_files {
            match std::fs::read(path) {
                Ok(data) => extra_root_certificates.push(oci_client::client::Certificate {
                    encoding: oci_client::client::CertificateEncoding::Pem,
                    data,
                }),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "registry CA file unreadable")
                }
            }
        }
        oci_client::Client::new(oci_client::client::ClientConfig {
            protocol,
            accept_invalid_certificates: endpoint.skip_verify,
            extra_root_certificates,
            platform_resolver: Some(Box::new(oci_client::client::linux_amd64_resolver)),
            ..Default::default()
        })
    }

    async fn pull_uncached(
        &self,
        reference: &Reference,
        auth: &PullAuth,
    ) -> Result<ImageRecord, ImageError> {
        let full = reference.to_string_full();
        let mut failures = Vec::new();
        for endpoint in self.registries.endpoints(&reference.registry) {
            match self.pull_from(reference, &endpoint, auth).await {
                Ok(image) => return Ok(image),
                Err(error) => {
                    tracing::warn!(reference = %full, endpoint = %endpoint.url, %error, "pull from endpoint failed");
                    failures.push(format!("{}: {error}", endpoint.url));
                }
            }
        }
        Err(ImageError::Pull {
            reference: full,
            message: if failures.is_empty() {
                "no registry endpoint configured".into()
            } else {
                failures.join("; ")
            },
        })
    }

    async fn pull_from(
        &self,
        reference: &Reference,
        endpoint: &Endpoint,
        auth: &PullAuth,
    ) -> Result<ImageRecord, ImageError> {
        let full = reference.to_string_full();
        let pull_error = |message: String| ImageError::Pull {
            reference: full.clone(),
            message,
        };
        let host = endpoint
            .url
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_string();
        let target = match (&reference.digest, &reference.tag) {
            (Some(digest), _) => oci_client::Reference::with_digest(
                host,
                reference.repository.clone(),
                digest.clone(),
            ),
            (None, tag) => oci_client::Reference::with_tag(
                host,
                reference.repository.clone(),
                tag.clone().unwrap_or_else(|| "latest".into()),
            ),
        };
        let registry_auth = auth
            .registry_auth()
            .or_else(|| match &endpoint.credentials {
                Some(Credentials::Basic { username, password }) => Some(
                    oci_client::secrets::RegistryAuth::Basic(username.clone(), password.clone()),
                ),
                Some(Credentials::Bearer(token)) => {
                    Some(oci_client::secrets::RegistryAuth::Bearer(token.clone()))
                }
                None => None,
            })
            .unwrap_or(oci_client::secrets::RegistryAuth::Anonymous);
        let client = Self::client_for(endpoint);
        let (manifest, manifest_digest) = client
            .pull_image_manifest(&target, &registry_auth)
            .await
            .map_err(|e| pull_error(e.to_string()))?;
        if let Some(pinned) = &reference.digest
            && pinned != &manifest_digest
        {
            // Pinned to an index digest: the platform manifest differs, which is fine;
            // oci-client has already verified what it fetched by the digest asked for.
            tracing::debug!(reference = %full, %manifest_digest, "pulled platform manifest of a pinned index");
        }

        // Config: fetched (digest-verified by the client), stored, parsed.
        let config_digest = manifest.config.digest.clone();
        let mut config_bytes = Vec::new();
        client
            .pull_blob(&target, &manifest.config, &mut config_bytes)
            .await
            .map_err(|e| pull_error(format!("config {config_digest}: {e}")))?;
        self.content.put(&config_bytes, &config_digest)?;
        let config: serde_json::Value = serde_json::from_slice(&config_bytes)
            .map_err(|e| pull_error(format!("config {config_digest} is not JSON: {e}")))?;
        let diff_ids: Vec<String> = config
            .pointer("/rootfs/diff_ids")
            .and_then(|d| d.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if diff_ids.len() != manifest.layers.len() {
            return Err(pull_error(format!(
                "config lists {} layers, manifest {}",
                diff_ids.len(),
                manifest.layers.len()
            )));
        }

        let mut layers = Vec::new();
        for (descriptor, diff_id) in manifest.layers.iter().zip(&diff_ids) {
            if !LAYER_MEDIA_TYPES.contains(&descriptor.media_type.as_str()) {
                return Err(pull_error(format!(
                    "unsupported layer media type {}",
                    descriptor.media_type
                )));
            }
            if !self.content.contains(&descriptor.digest) {
                let mut stream = client
                    .pull_blob_stream(&target, descriptor)
                    .await
                    .map_err(|e| pull_error(format!("layer {}: {e}", descriptor.digest)))?;
                let mut ingest = self.content.ingest()?;
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk
                        .map_err(|e| pull_error(format!("layer {}: {e}", descriptor.digest)))?;
                    ingest.write(&chunk)?;
                }
                // Our own digest check: the blob is stored only if it is what the manifest names.
                self.content.commit(ingest, &descriptor.digest)?;
            }
            self.unpack_layer(&descriptor.digest, &descriptor.media_type, diff_id)
                .await?;
            layers.push(LayerRecord {
                digest: descriptor.digest.clone(),
                diff_id: diff_id.clone(),
                media_type: descriptor.media_type.clone(),
                size: descriptor.size.max(0) as u64,
            });
        }

        let image_config = parse_config(&config);
        let repo_digest = reference.with_digest(&manifest_digest);
        let tag = reference.tag.is_some().then(|| reference.to_string_full());
        let mut images = self.images.lock().map_err(store_error)?;
        // A tag moves to the image just pulled.
        if let Some(tag) = &tag {
            for image in images.values_mut() {
                image.repo_tags.retain(|t| t != tag);
            }
        }
        let record = images
            .entry(config_digest.clone())
            .or_insert_with(|| ImageRecord {
                id: config_digest.clone(),
                repo_tags: vec![],
                repo_digests: vec![],
                layers: layers.clone(),
                config: image_config.clone(),
                size: layers.iter().map(|l| l.size).sum(),
                pinned: false,
            });
        if let Some(tag) = tag
            && !record.repo_tags.contains(&tag)
        {
            record.repo_tags.push(tag);
        }
        if !record.repo_digests.contains(&repo_digest) {
            record.repo_digests.push(repo_digest);
        }
        let record = record.clone();
        self.save(&images)?;
        Ok(record)
    }

    /// Unpack one stored layer blob into its directory, once, verifying the
    /// uncompressed stream against `diff_id`.
    async fn unpack_layer(
        &self,
        digest: &str,
        media_type: &str,
        diff_id: &str,
    ) -> Result<(), ImageError> {
        let target = self.layer_dir(diff_id)?;
        if target.is_dir() {
            return Ok(());
        }
        let blob = self.content.path(digest)?;
        let layers = self.root.join("layers");
        let digest = digest.to_string();
        let diff_id = diff_id.to_string();
        let media_type = media_type.to_string();
        tokio::task::spawn_blocking(move || {
            unpack_verified(&blob, &media_type, &diff_id, &layers, &target, &digest)
        })
        .await
        .map_err(store_error)?
    }

    /// Load every image in an OCI image archive (an `oci-layout` tar with
    /// index.json) or a `docker save` tar (manifest.json) into the store.
    /// Blobs are verified by digest, layers unpacked and checked against the
    /// config's diff_ids, exactly as for a pull.
    pub async fn import_archive(
        self: &Arc<Self>,
        path: &Path,
    ) -> Result<Vec<ImageRecord>, ImageError> {
        let manager = self.clone();
        let path = path.to_path_buf();
        let staged = tokio::task::spawn_blocking(move || manager.stage_archive(&path))
            .await
            .map_err(store_error)??;
        let mut records = Vec::new();
        for image in staged {
            records.push(self.record_staged(image).await?);
        }
        Ok(records)
    }

    /// Read the archive once: blobs into the content store (by their computed
    /// digest), small JSON documents kept in memory; then resolve the images.
    fn stage_archive(&self, path: &Path) -> Result<Vec<StagedImage>, ImageError> {
        let bad = |message: String| ImageError::Store(format!("{}: {message}", path.display()));
        let file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
        let mut head = [0u8; 4];
        let n = std::fs::File::open(path)
            .and_then(|mut f| f.read(&mut head))
            .unwrap_or(0);
        let reader: Box<dyn Read> = match Compression::sniff(&head[..n]) {
            Compression::Gzip => Box::new(flate2::read::GzDecoder::new(file)),
            Compression::Zstd => {
                Box::new(zstd::stream::read::Decoder::new(file).map_err(|e| bad(e.to_string()))?)
            }
            Compression::None => Box::new(file),
        };
        let mut archive = tar::Archive::new(reader);
        let mut documents: HashMap<String, Vec<u8>> = HashMap::new();
        let mut blobs: HashMap<String, String> = HashMap::new();
        for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
            let mut entry = entry.map_err(|e| bad(e.to_string()))?;
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let name = entry
                .path()
                .map_err(|e| bad(e.to_string()))?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            if name.ends_with(".json") || name == "oci-layout" || name == "repositories" {
                let mut bytes = Vec::new();
                entry
                    .read_to_end(&mut bytes)
                    .map_err(|e| bad(e.to_string()))?;
                documents.insert(name, bytes);
                continue;
            }
            // A blob: stream it in, hashing as it goes.
            let mut ingest = self.content.ingest()?;
            let mut hasher = Sha256::new();
            let mut buffer = vec![0u8; 1 << 16];
            loop {
                let read = entry.read(&mut buffer).map_err(|e| bad(e.to_string()))?;
                if read == 0 {
                    break;
                }
                hasher.update(&buffer[..read]);
                ingest.write(&buffer[..read])?;
            }
            let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
            if let Some(hex) = name.strip_prefix("blobs/sha256/")
                && digest != format!("sha256:{hex}")
            {
                return Err(bad(format!("blob {name} hashes to {digest}")));
            }
            self.content.commit(ingest, &digest)?;
            blobs.insert(name, digest);
        }
        let document = |name: &str| -> Result<serde_json::Value, ImageError> {
            let bytes = match documents.get(name) {
                Some(bytes) => bytes.clone(),
                None => match blobs.get(name) {
                    Some(digest) => self.content.read(digest)?,
                    None => return Err(bad(format!("{name} is missing"))),
                },
            };
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("{name}: {e}")))
        };
        if documents.contains_key("index.json") {
            let index = document("index.json")?;
            let mut staged = Vec::new();
            let mut pending: Vec<(serde_json::Value, Option<String>)> = index["manifests"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|d| (d, None))
                .collect();
            while let Some((descriptor, inherited_name)) = pending.pop() {
                let digest = descriptor["digest"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let name = descriptor["annotations"]["io.containerd.image.name"]
                    .as_str()
                    .or(descriptor["annotations"]["org.opencontainers.image.ref.name"].as_str())
                    .map(str::to_string)
                    .or(inherited_name);
                let manifest: serde_json::Value =
                    serde_json::from_slice(&self.content.read(&digest)?)
                        .map_err(|e| bad(e.to_string()))?;
                if let Some(children) = manifest["manifests"].as_array() {
                    // A nested index: take its linux/amd64 image (or the only one).
                    let chosen = children
                        .iter()
                        .find(|c| {
                            c["platform"]["os"] == "linux"
                                && c["platform"]["architecture"] == "amd64"
                        })
                        .or(children.first());
                    if let Some(child) = chosen {
                        pending.push((child.clone(), name));
                    }
                    continue;
                }
                staged.push(StagedImage {
                    name,
                    manifest_digest: Some(digest),
                    config_digest: manifest["config"]["digest"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    layers: manifest["layers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|l| {
                            (
                                l["digest"].as_str().unwrap_or_default().to_string(),
                                l["mediaType"]
                                    .as_str()
                                    .unwrap_or("application/vnd.oci.image.layer.v1.tar")
                                    .to_string(),
                                l["size"].as_u64().unwrap_or(0),
                            )
                        })
                        .collect(),
                });
            }
            return Ok(staged);
        }
        if documents.contains_key("manifest.json") {
            let manifest = document("manifest.json")?;
            let mut staged = Vec::new();
            for image in manifest.as_array().into_iter().flatten() {
                let config_path = image["Config"].as_str().unwrap_or_default();
                let config_bytes = match documents.get(config_path) {
                    Some(bytes) => bytes.clone(),
                    None => self.content.read(
                        blobs
                            .get(config_path)
                            .ok_or_else(|| bad(format!("{config_path} is missing")))?,
                    )?,
                };
                let config_digest = content::digest_of(&config_bytes);
                self.content.put(&config_bytes, &config_digest)?;
                let mut layers = Vec::new();
                for layer in image["Layers"].as_array().into_iter().flatten() {
                    let layer_path = layer.as_str().unwrap_or_default();
                    let digest = blobs
                        .get(layer_path)
                        .ok_or_else(|| bad(format!("{layer_path} is missing")))?
                        .clone();
                    let size = self.content.size(&digest)?;
                    // docker save layers are plain tars (sniffed again when unpacked).
                    layers.push((
                        digest,
                        "application/vnd.oci.image.layer.v1.tar".to_string(),
                        size,
                    ));
                }
                let tags: Vec<String> = image["RepoTags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect();
                if tags.is_empty() {
                    staged.push(StagedImage {
                        name: None,
                        manifest_digest: None,
                        config_digest: config_digest.clone(),
                        layers: layers.clone(),
                    });
                }
                for tag in tags {
                    staged.push(StagedImage {
                        name: Some(tag),
                        manifest_digest: None,
                        config_digest: config_digest.clone(),
                        layers: layers.clone(),
                    });
                }
            }
            return Ok(staged);
        }
        Err(bad(
            "neither an OCI image archive (index.json) nor a docker save archive (manifest.json)"
                .into(),
        ))
    }

    async fn record_staged(&self, image: StagedImage) -> Result<ImageRecord, ImageError> {
        let config_bytes = self.content.read(&image.config_digest)?;
        let config: serde_json::Value =
            serde_json::from_slice(&config_bytes).map_err(store_error)?;
        let diff_ids = strings(config.pointer("/rootfs/diff_ids"));
        if diff_ids.len() != image.layers.len() {
            return Err(store_error(format!(
                "image config lists {} layers, manifest {}",
                diff_ids.len(),
                image.layers.len()
            )));
        }
        let mut layers = Vec::new();
        for ((digest, media_type, size), diff_id) in image.layers.iter().zip(&diff_ids) {
            // Sniff rather than trust a docker save "tar" that may be compressed.
            let media_type = if media_type.ends_with(".tar") || media_type.ends_with("v1.tar") {
                let mut head = [0u8; 4];
                let n = std::fs::File::open(self.content.path(digest)?)
                    .and_then(|mut f| f.read(&mut head))
                    .unwrap_or(0);
                match Compression::sniff(&head[..n]) {
                    Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip".to_string(),
                    Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd".to_string(),
                    Compression::None => media_type.clone(),
                }
            } else {
                media_type.clone()
            };
            self.unpack_layer(digest, &media_type, diff_id).await?;
            layers.push(LayerRecord {
                digest: digest.clone(),
                diff_id: diff_id.clone(),
                media_type,
                size: *size,
            });
        }
        let reference = image.name.as_deref().and_then(|n| Reference::parse(n).ok());
        let mut images = self.images.lock().map_err(store_error)?;
        let tag = reference
            .as_ref()
            .filter(|r| r.tag.is_some())
            .map(|r| r.to_string_full());
        if let Some(tag) = &tag {
            for other in images.values_mut() {
                other.repo_tags.retain(|t| t != tag);
            }
        }
        let record = images
            .entry(image.config_digest.clone())
            .or_insert_with(|| ImageRecord {
                id: image.config_digest.clone(),
                repo_tags: vec![],
                repo_digests: vec![],
                layers: layers.clone(),
                config: parse_config(&config),
                size: layers.iter().map(|l| l.size).sum(),
                pinned: false,
            });
        if let Some(tag) = tag
            && !record.repo_tags.contains(&tag)
        {
            record.repo_tags.push(tag);
        }
        if let (Some(reference), Some(digest)) = (&reference, &image.manifest_digest) {
            let repo_digest = reference.with_digest(digest);
            if !record.repo_digests.contains(&repo_digest) {
                record.repo_digests.push(repo_digest);
            }
        }
        let record = record.clone();
        self.save(&images)?;
        Ok(record)
    }

    /// Remove an image record; its blobs and layers go when no image uses them.
    pub fn remove(&self, text: &str) -> Result<(), ImageError> {
        let Some(image) = self.find(text) else {
            // Removing an absent image is not an error in CRI.
            return Ok(());
        };
        let mut images = self.images.lock().map_err(store_error)?;
        images.remove(&image.id);
        self.save(&images)?;
        let used: std::collections::HashSet<String> = images
            .values()
            .flat_map(|i| {
                i.layers
                    .iter()
                    .flat_map(|l| [l.digest.clone(), l.diff_id.clone()])
            })
            .chain(images.keys().cloned())
            .collect();
        for layer in &image.layers {
            if !used.contains(&layer.digest) {
                self.content.remove(&layer.digest)?;
            }
            if !used.contains(&layer.diff_id) {
                let dir = self.layer_dir(&layer.diff_id)?;
                if dir.exists() {
                    std::fs::remove_dir_all(&dir).map_err(store_error)?;
                }
            }
        }
        self.content.remove(&image.id)?;
        Ok(())
    }

    /// Bytes and inodes used by the image store (for ImageFsInfo).
    pub fn usage(&self) -> (u64, u64) {
        fn walk(path: &Path, bytes: &mut u64, inodes: &mut u64) {
            let Ok(entries) = std::fs::read_dir(path) else {
                return;
            };
            for entry in entries.flatten() {
                let Ok(meta) = entry.path().symlink_metadata() else {
                    continue;
                };
                *inodes += 1;
                *bytes += meta.len();
                if meta.is_dir() {
                    walk(&entry.path(), bytes, inodes);
                }
            }
        }
        let (mut bytes, mut inodes) = (0, 0);
        walk(&self.root, &mut bytes, &mut inodes);
        (bytes, inodes)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

fn unpack_verified(
    blob: &Path,
    media_type: &str,
    diff_id: &str,
    layers: &Path,
    target: &Path,
    digest: &str,
) -> Result<(), ImageError> {
    let layer_error = |message: String| ImageError::Layer {
        digest: digest.to_string(),
        message,
    };
    let file = std::fs::File::open(blob).map_err(|e| layer_error(e.to_string()))?;
    let mut head = [0u8; 4];
    let compression = Compression::from_media_type(media_type).unwrap_or_else(|| {
        let mut probe = std::fs::File::open(blob).ok();
        let n = probe
            .as_mut()
            .and_then(|f| f.read(&mut head).ok())
            .unwrap_or(0);
        Compression::sniff(&head[..n])
    });
    let reader: Box<dyn Read> = match compression {
        Compression::None => Box::new(std::io::BufReader::new(file)),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file))),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(file).map_err(|e| layer_error(e.to_string()))?,
        ),
    };
    let mut hashing = HashingReader {
        inner: reader,
        hasher: Sha256::new(),
    };
    let temp = layers.join(format!(".tmp-{}", content::sha256_hex(diff_id)?));
    let _ = std::fs::remove_dir_all(&temp);
    std::fs::create_dir_all(&temp).map_err(|e| layer_error(e.to_string()))?;
    let outcome = unpack::unpack(&mut hashing, Compression::None, &temp)
        .map_err(|e| layer_error(e.to_string()))
        .and_then(|_| {
            // The tar reader may stop before the end padding: hash the rest too.
            std::io::copy(&mut hashing, &mut std::io::sink())
                .map_err(|e| layer_error(e.to_string()))?;
            let actual = format!(
                "sha256:{}",
                hex::encode(std::mem::take(&mut hashing.hasher).finalize())
            );
            if actual != diff_id {
                return Err(layer_error(format!(
                    "uncompressed content hashes to {actual}, config says {diff_id}"
                )));
            }
            Ok(())
        });
    match outcome {
        Ok(()) => std::fs::rename(&temp, target).map_err(|e| layer_error(e.to_string())),
        Err(error) => {
            let _ = std::fs::remove_dir_all(&temp);
            Err(error)
        }
    }
}

fn strings(value: Option<&serde_json::Value>) -> Vec<String> {
    value
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The parts of an OCI image config the runtime uses.
pub fn parse_config(config: &serde_json::Value) -> ImageConfig {
    let c = config.get("config").cloned().unwrap_or_default();
    ImageConfig {
        user: c
            .get("User")
            .and_then(|u| u.as_str())
            .filter(|u| !u.is_empty())
            .map(str::to_string),
        env: strings(c.get("Env")),
        entrypoint: strings(c.get("Entrypoint")),
        cmd: strings(c.get("Cmd")),
        working_dir: c
            .get("WorkingDir")
            .and_then(|w| w.as_str())
            .filter(|w| !w.is_empty())
            .map(str::to_string),
        labels: c
            .get("Labels")
            .and_then(|l| l.as_object())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default(),
        stop_signal: c
            .get("StopSignal")
            .and_then(|s| s.as_str())
            .map(str::to_string),
        volumes: c
            .get("Volumes")
            .and_then(|v| v.as_object())
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
    }
}
