//! Test fixture: a real OCI distribution registry on 127.0.0.1, and images the
//! tests build themselves.
//!
//! Owns: starting Debian's `docker-registry` on a free loopback port with its
//! storage in a temp dir (optionally behind htpasswd basic auth), building
//! deterministic image layers from the host's static busybox
//! (`busybox-static`), and pushing them over the Registry HTTP API v2 with a
//! small HTTP/1.1 client of its own.
//!
//! Must not: contact any address other than 127.0.0.1, fetch any image from
//! the internet, or leave anything behind: dropping a [`Registry`] kills its
//! whole process group and removes its directory.

// Each test binary that includes this module uses only part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use flate2::write::GzEncoder;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

const REGISTRY_BINARY: &str = "/usr/bin/docker-registry";
const HOST_BUSYBOX: &str = "/bin/busybox";
const LOOPBACK: &str = "127.0.0.1";
/// Every tar entry gets this mtime and every config this `created`, so that
/// layer, config and manifest digests are the same on every run.
const FIXED_MTIME: u64 = 1_700_000_000;
const FIXED_CREATED: &str = "2023-11-14T22:13:20Z";
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Applets linked into /bin; all exist in Debian's busybox-static 1.35.
const BUSYBOX_APPLETS: &[&str] = &[
    "sh", "ash", "echo", "cat", "sleep", "ls", "id", "hostname", "head", "tail", "dd", "true",
    "false", "env", "mkdir", "rm", "rmdir", "touch", "ps", "wc", "grep", "httpd", "nc", "cp", "mv",
    "ln", "chmod", "chown", "readlink", "stat", "sort", "uname", "whoami", "pwd", "date", "seq",
    "yes", "tee", "test", "[", "kill", "sed", "awk", "find", "xargs", "du", "df", "free", "top",
    "mount", "umount", "wget", "nslookup", "ip", "ping", "printf", "expr", "sync", "groups",
    "pidof", "nproc", "cut", "tr", "basename", "dirname", "timeout", "mktemp", "stty", "tty",
];
const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
                      app:x:1000:1000:app:/home/app:/bin/sh\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nextra:x:2000:app\n";

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// A running `docker-registry` on 127.0.0.1, killed and cleaned up on drop.
pub struct Registry {
    /// "127.0.0.1:PORT"
    pub address: String,
    credentials: Option<(String, String)>,
    // Declared before `directory` so the process is gone before its storage
    // is removed.
    process: RegistryProcess,
    directory: tempfile::TempDir,
}

/// The registry process, in a process group of its own.
struct RegistryProcess {
    child: Child,
}

impl Drop for RegistryProcess {
    fn drop(&mut self) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).expect("pid fits in i32"));
        // The whole group, so nothing the registry started outlives the test.
        let _ = killpg(pid, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// A response from the registry, read in full.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body parsed as JSON; panics with the body if it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "registry answered {} with a body that is not JSON ({error}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

impl Registry {
    /// Start a registry; `basic_auth: Some((user, password))` makes it require
    /// HTTP basic auth (htpasswd with bcrypt, as docker-registry's htpasswd
    /// auth needs). Waits until /v2/ answers.
    pub fn start(basic_auth: Option<(&str, &str)>) -> Registry {
        assert!(
            Path::new(REGISTRY_BINARY).exists(),
            "{REGISTRY_BINARY} is missing: install Debian's docker-registry package"
        );
        let directory = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()
            .expect("create the registry's temp dir");
        let storage = directory.path().join("storage");
        fs::create_dir(&storage).expect("create the registry's storage dir");
        let auth_section = match basic_auth {
            Some((user, password)) => {
                let htpasswd = directory.path().join("htpasswd");
                fs::write(&htpasswd, htpasswd_line(user, password)).expect("write htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                    yaml_string(&htpasswd)
                )
            }
            None => String::new(),
        };
        let credentials = basic_auth.map(|(user, password)| (user.to_owned(), password.to_owned()));

        // The free port is found by binding port 0 and letting it go, so
        // another process can take it before the registry does; retry then.
        let mut failures = Vec::new();
        for _ in 0..5 {
            let address = format!("{LOOPBACK}:{}", free_loopback_port());
            let config = directory.path().join("config.yml");
            fs::write(&config, registry_config(&address, &storage, &auth_section))
                .expect("write the registry's config");
            let log_path = directory.path().join("registry.log");
            let process = spawn_registry(&config, &log_path);
            match wait_until_serving(process, &address, &log_path) {
                Ok(process) => {
                    return Registry {
                        address,
                        credentials,
                        process,
                        directory,
                    };
                }
                Err(failure) => failures.push(failure),
            }
        }
        panic!(
            "docker-registry did not start:\n{}",
            failures.join("\n---\n")
        );
    }

    /// Push an image built from `image` to `repository:tag`; returns the
    /// manifest digest ("sha256:...").
    pub fn push(&self, repository: &str, tag: &str, image: &TestImage) -> String {
        self.upload_layers(repository, image);
        let config = image.config_json(Architecture::Amd64);
        self.upload_blob(repository, &sha256_digest(&config), &config);
        let manifest = image.manifest_json(&config);
        self.put_manifest(repository, tag, image.format.manifest(), &manifest)
    }

    /// Push an image index (a Docker manifest list for
    /// `docker_media_types()` images) to `repository:tag` listing a bogus
    /// linux/arm64 manifest first and then `image`'s linux/amd64 manifest;
    /// both manifests are pushed by digest. Returns the index digest. The
    /// arm64 manifest has the same layers but its own config (architecture
    /// arm64, env BERTH_TEST_PLATFORM=linux/arm64), so a client that takes
    /// the first entry instead of resolving linux/amd64 gets a different
    /// image ID.
    pub fn push_index(&self, repository: &str, tag: &str, image: &TestImage) -> String {
        self.upload_layers(repository, image);
        let mut descriptors = Vec::new();
        for architecture in [Architecture::Arm64, Architecture::Amd64] {
            let config = image.config_json(architecture);
            self.upload_blob(repository, &sha256_digest(&config), &config);
            let manifest = image.manifest_json(&config);
            let digest = sha256_digest(&manifest);
            self.put_manifest(repository, &digest, image.format.manifest(), &manifest);
            descriptors.push(json!({
                "mediaType": image.format.manifest(),
                "digest": digest,
                "size": manifest.len(),
                "platform": architecture.platform(),
            }));
        }
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": image.format.index(),
            "manifests": descriptors,
        }))
        .expect("serialise the index");
        self.put_manifest(repository, tag, image.format.index(), &index)
    }

    /// "127.0.0.1:PORT/<repository>:<tag>"
    pub fn reference(&self, repository: &str, tag: &str) -> String {
        format!("{}/{repository}:{tag}", self.address)
    }

    /// The (user, password) the registry requires, if any.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(user, password)| (user.as_str(), password.as_str()))
    }

    /// The registry's process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }

    /// The temp dir holding config, htpasswd, log and storage.
    pub fn directory(&self) -> &Path {
        self.directory.path()
    }

    /// What the registry has logged so far, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.directory.path().join("registry.log")).unwrap_or_default()
    }

    /// How many times each blob (by digest, any repository) was downloaded:
    /// successful GETs of /v2/<repository>/blobs/<digest>, read from the
    /// registry's access log. Waits until the log stops growing, since the
    /// registry writes a line just after the client has its response.
    pub fn blob_downloads(&self) -> BTreeMap<String, usize> {
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut log = self.log();
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let later = self.log();
            if later == log || Instant::now() > deadline {
                break;
            }
            log = later;
        }
        let mut downloads = BTreeMap::new();
        for line in log.lines() {
            // 127.0.0.1 - - [date] "GET /v2/repo/blobs/sha256:... HTTP/1.1" 200 1234 "" ""
            let Some((_, request)) = line.split_once("\"GET /v2/") else {
                continue;
            };
            let Some((uri, response)) = request.split_once(" HTTP/1.1\" ") else {
                continue;
            };
            let Some((_, digest)) = uri.rsplit_once("/blobs/") else {
                continue;
            };
            if response.starts_with("200 ") || response.starts_with("206 ") {
                *downloads.entry(digest.to_owned()).or_insert(0) += 1;
            }
        }
        downloads
    }

    /// GET `target` (e.g. "/v2/busybox/manifests/latest") with the
    /// registry's credentials, if it has any, and `accept` as Accept header.
    pub fn get(&self, target: &str, accept: &str) -> HttpResponse {
        self.request("GET", target, &[("Accept", accept)], &[])
    }

    /// GET `target` without credentials.
    pub fn get_anonymous(&self, target: &str) -> HttpResponse {
        send_request(&self.address, "GET", target, &[], &[])
            .unwrap_or_else(|error| panic!("GET {target} on {}: {error}", self.address))
    }

    /// GET `target` with the given basic-auth credentials.
    pub fn get_as(&self, target: &str, user: &str, password: &str) -> HttpResponse {
        let authorization = basic_authorization(user, password);
        send_request(
            &self.address,
            "GET",
            target,
            &[("Authorization", &authorization)],
            &[],
        )
        .unwrap_or_else(|error| panic!("GET {target} on {}: {error}", self.address))
    }

    fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        let authorization = self
            .credentials()
            .map(|(user, password)| basic_authorization(user, password));
        let mut all_headers = headers.to_vec();
        if let Some(authorization) = &authorization {
            all_headers.push(("Authorization", authorization));
        }
        send_request(&self.address, method, target, &all_headers, body).unwrap_or_else(|error| {
            panic!(
                "{method} {target} on {}: {error}\nregistry log:\n{}",
                self.address,
                self.log()
            )
        })
    }

    fn upload_layers(&self, repository: &str, image: &TestImage) {
        for layer in &image.layers {
            self.upload_blob(repository, &layer.digest, &layer.blob);
        }
    }

    /// Monolithic upload: POST for an upload location, then one PUT with the
    /// digest. Skipped when the repository already has the blob.
    fn upload_blob(&self, repository: &str, digest: &str, blob: &[u8]) {
        let existing = self.request(
            "HEAD",
            &format!("/v2/{repository}/blobs/{digest}"),
            &[],
            &[],
        );
        if existing.status == 200 {
            return;
        }
        let started = self.request(
            "POST",
            &format!("/v2/{repository}/blobs/uploads/"),
            &[],
            &[],
        );
        assert_eq!(
            started.status,
            202,
            "starting a blob upload to {repository}: {}",
            String::from_utf8_lossy(&started.body)
        );
        let location = started
            .header("Location")
            .expect("upload response has a Location");
        let target = self.loopback_target(location);
        let separator = if target.contains('?') { '&' } else { '?' };
        let finished = self.request(
            "PUT",
            &format!("{target}{separator}digest={digest}"),
            &[("Content-Type", "application/octet-stream")],
            blob,
        );
        assert_eq!(
            finished.status,
            201,
            "finishing the upload of {digest} to {repository}: {}",
            String::from_utf8_lossy(&finished.body)
        );
    }

    fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        manifest: &[u8],
    ) -> String {
        let response = self.request(
            "PUT",
            &format!("/v2/{repository}/manifests/{reference}"),
            &[("Content-Type", media_type)],
            manifest,
        );
        assert_eq!(
            response.status,
            201,
            "putting {media_type} {repository}:{reference}: {}",
            String::from_utf8_lossy(&response.body)
        );
        let digest = sha256_digest(manifest);
        assert_eq!(
            response.header("Docker-Content-Digest"),
            Some(digest.as_str()),
            "the registry's digest of {repository}:{reference}"
        );
        digest
    }

    /// The path and query of an upload location, which docker-registry
    /// sends as an absolute URL; refuses any host but this registry's.
    fn loopback_target(&self, location: &str) -> String {
        let path = location
            .strip_prefix(&format!("http://{}", self.address))
            .unwrap_or(location);
        assert!(
            path.starts_with('/'),
            "the registry sent an upload location off {}: {location}",
            self.address
        );
        path.to_owned()
    }
}

fn registry_config(address: &str, storage: &Path, auth_section: &str) -> String {
    format!(
        "version: 0.1\n\
         log:\n  level: info\n  formatter: text\n\
         storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n  \
         maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: {address}\n  secret: berth-test-registry\n\
         {auth_section}",
        storage = yaml_string(storage),
    )
}

/// A double-quoted YAML scalar; JSON string syntax is valid YAML.
fn yaml_string(path: &Path) -> String {
    serde_json::to_string(path.to_str().expect("temp paths are UTF-8")).expect("quote a path")
}

/// An htpasswd line as `htpasswd -B` writes it. Cost 4, the least bcrypt
/// allows, because the registry checks the hash on every request.
fn htpasswd_line(user: &str, password: &str) -> String {
    let hash = bcrypt::hash_with_result(password, 4)
        .expect("bcrypt the password")
        .format_for_version(bcrypt::Version::TwoY);
    format!("{user}:{hash}\n")
}

fn basic_authorization(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

fn free_loopback_port() -> u16 {
    TcpListener::bind((LOOPBACK, 0))
        .and_then(|listener| listener.local_addr())
        .expect("bind a free port on 127.0.0.1")
        .port()
}

fn spawn_registry(config: &Path, log_path: &Path) -> RegistryProcess {
    use std::os::unix::process::CommandExt as _;

    let log = fs::File::create(log_path).expect("create the registry log");
    let mut command = Command::new(REGISTRY_BINARY);
    command
        .arg("serve")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone the log file"))
        .stderr(log)
        .process_group(0);
    // REGISTRY_* variables override the config file; a stray one must not
    // move the registry off loopback or its temp dir.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("REGISTRY_") {
            command.env_remove(name);
        }
    }
    RegistryProcess {
        child: command.spawn().expect("spawn docker-registry"),
    }
}

/// Ready means: the registry logged that it listens on `address` (so the
/// port is ours, not another process's), is still running, and /v2/ answers
/// 200 or, with auth, 401.
fn wait_until_serving(
    mut process: RegistryProcess,
    address: &str,
    log_path: &Path,
) -> Result<RegistryProcess, String> {
    let listening = format!("listening on {address}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = fs::read_to_string(log_path).unwrap_or_default();
        if let Some(status) = process.child.try_wait().expect("poll docker-registry") {
            return Err(format!(
                "docker-registry on {address} exited with {status}:\n{log}"
            ));
        }
        if log.contains(&listening)
            && let Ok(response) = send_request(address, "GET", "/v2/", &[], &[])
            && matches!(response.status, 200 | 401)
        {
            return Ok(process);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "docker-registry on {address} did not answer in 30s:\n{log}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One HTTP/1.1 request on a fresh connection to `address`, which must be on
/// 127.0.0.1; reads the whole response.
fn send_request(
    address: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<HttpResponse> {
    assert!(
        address.starts_with("127.0.0.1:"),
        "the registry fixture only talks to 127.0.0.1, not {address}"
    );
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    stream.set_write_timeout(Some(Duration::from_secs(120)))?;
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw, method == "HEAD")
}

fn parse_response(raw: &[u8], no_body: bool) -> io::Result<HttpResponse> {
    let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_owned());
    let head_end = find(raw, b"\r\n\r\n").ok_or_else(|| invalid("response has no header end"))?;
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| invalid("header not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let mut response = HttpResponse {
        status,
        headers,
        body: Vec::new(),
    };
    let rest = &raw[head_end + 4..];
    if no_body || matches!(status, 204 | 304) {
        return Ok(response);
    }
    response.body = if response
        .header("Transfer-Encoding")
        .is_some_and(|encoding| encoding.eq_ignore_ascii_case("chunked"))
    {
        decode_chunked(rest).ok_or_else(|| invalid("bad chunked body"))?
    } else if let Some(length) = response.header("Content-Length") {
        let length: usize = length.parse().map_err(|_| invalid("bad Content-Length"))?;
        rest.get(..length)
            .ok_or_else(|| invalid("body shorter than Content-Length"))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(response)
}

fn decode_chunked(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = find(rest, b"\r\n")?;
        let size_field = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size_hex = size_field.split(';').next()?.trim();
        let size = usize::from_str_radix(size_hex, 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// An image the tests build: layers (each a list of entries) and config.
pub struct TestImage {
    layers: Vec<Layer>,
    /// The config's `config` object: Env, Cmd, Entrypoint, User, WorkingDir.
    config: Value,
    format: ManifestFormat,
    escape_path: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ManifestFormat {
    Oci,
    DockerSchema2,
}

impl ManifestFormat {
    fn manifest(self) -> &'static str {
        match self {
            ManifestFormat::Oci => OCI_MANIFEST,
            ManifestFormat::DockerSchema2 => DOCKER_MANIFEST,
        }
    }

    fn index(self) -> &'static str {
        match self {
            ManifestFormat::Oci => OCI_INDEX,
            ManifestFormat::DockerSchema2 => DOCKER_MANIFEST_LIST,
        }
    }

    fn config(self) -> &'static str {
        match self {
            ManifestFormat::Oci => OCI_CONFIG,
            ManifestFormat::DockerSchema2 => DOCKER_CONFIG,
        }
    }

    fn layer(self, compression: Compression) -> &'static str {
        match (self, compression) {
            (ManifestFormat::Oci, Compression::None) => OCI_LAYER_TAR,
            (ManifestFormat::Oci, Compression::Gzip) => OCI_LAYER_GZIP,
            (ManifestFormat::Oci, Compression::Zstd) => OCI_LAYER_ZSTD,
            (ManifestFormat::DockerSchema2, Compression::None) => DOCKER_LAYER_TAR,
            (ManifestFormat::DockerSchema2, Compression::Gzip) => DOCKER_LAYER_GZIP,
            (ManifestFormat::DockerSchema2, Compression::Zstd) => {
                unreachable!("docker_media_types() recompresses zstd layers with gzip")
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

#[derive(Clone, Copy)]
enum Architecture {
    Amd64,
    Arm64,
}

impl Architecture {
    fn name(self) -> &'static str {
        match self {
            Architecture::Amd64 => "amd64",
            Architecture::Arm64 => "arm64",
        }
    }

    fn platform(self) -> Value {
        match self {
            Architecture::Amd64 => json!({"architecture": "amd64", "os": "linux"}),
            Architecture::Arm64 => json!({"architecture": "arm64", "os": "linux", "variant": "v8"}),
        }
    }
}

/// One layer: its uncompressed tar and the blob pushed for it, with their
/// digests worked out once (hashing a large layer is slow in debug builds).
struct Layer {
    tar: Vec<u8>,
    diff_id: String,
    compression: Compression,
    blob: Vec<u8>,
    digest: String,
    created_by: String,
}

impl Layer {
    fn new(created_by: &str, entries: &[Entry], compression: Compression) -> Layer {
        let tar = tar_archive(entries);
        let blob = compress(&tar, compression);
        Layer {
            diff_id: sha256_digest(&tar),
            digest: sha256_digest(&blob),
            tar,
            compression,
            blob,
            created_by: created_by.to_owned(),
        }
    }

    fn recompress(&mut self, compression: Compression) {
        self.compression = compression;
        self.blob = compress(&self.tar, compression);
        self.digest = sha256_digest(&self.blob);
    }
}

/// A tar entry, written exactly as given (no name sanitising).
struct Entry {
    path: String,
    kind: EntryKind,
    mode: u32,
    owner: (u64, u64),
}

enum EntryKind {
    Directory,
    File(Vec<u8>),
    Symlink(String),
    Hardlink(String),
}

fn directory(path: &str, mode: u32) -> Entry {
    Entry {
        path: path.to_owned(),
        kind: EntryKind::Directory,
        mode,
        owner: (0, 0),
    }
}

fn file(path: &str, mode: u32, contents: impl Into<Vec<u8>>) -> Entry {
    Entry {
        path: path.to_owned(),
        kind: EntryKind::File(contents.into()),
        mode,
        owner: (0, 0),
    }
}

fn symlink(path: &str, target: &str) -> Entry {
    Entry {
        path: path.to_owned(),
        kind: EntryKind::Symlink(target.to_owned()),
        mode: 0o777,
        owner: (0, 0),
    }
}

fn hardlink(path: &str, target: &str) -> Entry {
    Entry {
        path: path.to_owned(),
        kind: EntryKind::Hardlink(target.to_owned()),
        mode: 0o644,
        owner: (0, 0),
    }
}

impl Entry {
    fn owned_by(mut self, uid: u64, gid: u64) -> Entry {
        self.owner = (uid, gid);
        self
    }
}

/// Writes every header by hand: the `tar` crate's `set_path` would refuse
/// or rewrite the hostile names that `TestImage::malicious` needs.
fn tar_archive(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_ustar();
        set_raw_field(&mut header.as_old_mut().name, &entry.path);
        header.set_mode(entry.mode);
        header.set_uid(entry.owner.0);
        header.set_gid(entry.owner.1);
        header.set_mtime(FIXED_MTIME);
        let contents: &[u8] = match &entry.kind {
            EntryKind::Directory => {
                header.set_entry_type(tar::EntryType::Directory);
                &[]
            }
            EntryKind::File(contents) => {
                header.set_entry_type(tar::EntryType::Regular);
                contents
            }
            EntryKind::Symlink(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                set_raw_field(&mut header.as_old_mut().linkname, target);
                &[]
            }
            EntryKind::Hardlink(target) => {
                header.set_entry_type(tar::EntryType::Link);
                set_raw_field(&mut header.as_old_mut().linkname, target);
                &[]
            }
        };
        header.set_size(contents.len() as u64);
        header.set_cksum();
        builder
            .append(&header, contents)
            .expect("append a tar entry");
    }
    builder.into_inner().expect("finish a tar archive")
}

fn set_raw_field(field: &mut [u8; 100], value: &str) {
    assert!(
        value.len() <= field.len(),
        "tar name {value:?} is longer than the 100 bytes this fixture writes"
    );
    field.fill(0);
    field[..value.len()].copy_from_slice(value.as_bytes());
}

fn compress(tar: &[u8], compression: Compression) -> Vec<u8> {
    match compression {
        Compression::None => tar.to_vec(),
        Compression::Gzip => {
            // GzEncoder writes mtime 0 and no file name: the output depends
            // on the input only.
            let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(tar).expect("gzip a layer");
            encoder.finish().expect("gzip a layer")
        }
        Compression::Zstd => zstd::encode_all(tar, 3).expect("zstd a layer"),
    }
}

/// Deterministic bytes that no compressor can shrink (xorshift64*).
fn incompressible_bytes(seed: u64, length: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut bytes = Vec::with_capacity(length + 8);
    while bytes.len() < length {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        bytes.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    bytes.truncate(length);
    bytes
}

/// A name no earlier run can have left behind.
fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn default_config() -> Value {
    json!({
        "Env": [DEFAULT_PATH],
        "Cmd": ["sh"],
        "WorkingDir": "/",
    })
}

impl TestImage {
    /// One layer: /bin/busybox (copied from the host's /bin/busybox) plus
    /// symlinks to it for the applets in `BUSYBOX_APPLETS` (sh, echo, cat,
    /// sleep, ls, id, hostname, head, dd, true, false, env, mkdir, rm, touch,
    /// ps, wc, grep, httpd, nc, ...); /etc/passwd (root, nobody:65534,
    /// app:1000 with home /home/app), /etc/group (root, nogroup, app:1000,
    /// extra:2000 with member app), /root (0700), /tmp (1777), /home/app
    /// (owned 1000:1000). No /proc, /sys, /dev or /etc/hosts: the runtime
    /// makes its mount points, as with the official busybox image. Config:
    /// Env PATH=..., Cmd ["sh"], WorkingDir "/".
    pub fn busybox() -> TestImage {
        let busybox = fs::read(HOST_BUSYBOX).unwrap_or_else(|error| {
            panic!("read {HOST_BUSYBOX} (Debian's busybox-static): {error}")
        });
        let mut entries = vec![
            directory("bin/", 0o755),
            file("bin/busybox", 0o755, busybox),
        ];
        for applet in BUSYBOX_APPLETS {
            entries.push(symlink(&format!("bin/{applet}"), "busybox"));
        }
        entries.extend([
            directory("etc/", 0o755),
            file("etc/passwd", 0o644, PASSWD),
            file("etc/group", 0o644, GROUP),
            directory("home/", 0o755),
            directory("home/app/", 0o755).owned_by(1000, 1000),
            directory("root/", 0o700),
            directory("tmp/", 0o1777),
        ]);
        TestImage {
            layers: vec![Layer::new(
                "busybox-static, /etc/passwd, /etc/group",
                &entries,
                Compression::Gzip,
            )],
            config: default_config(),
            format: ManifestFormat::Oci,
            escape_path: None,
        }
    }

    /// busybox() plus two more layers. Layer 2 (gzip) adds /data/keep,
    /// /data/remove, /data/dir/a, /data/dir/b and /etc/motd. Layer 3 (zstd)
    /// deletes /data/remove with a whiteout (data/.wh.remove), makes
    /// /data/dir opaque (data/dir/.wh..wh..opq) holding only /data/dir/c, and
    /// adds /data/new. The merged view: /data/keep, /data/dir/c, /data/new,
    /// /etc/motd.
    pub fn layered() -> TestImage {
        let mut image = TestImage::busybox();
        image.layers.push(Layer::new(
            "add /data and /etc/motd",
            &[
                directory("data/", 0o755),
                file("data/keep", 0o644, "keep\n"),
                file("data/remove", 0o644, "remove\n"),
                directory("data/dir/", 0o755),
                file("data/dir/a", 0o644, "a\n"),
                file("data/dir/b", 0o644, "b\n"),
                directory("etc/", 0o755),
                file("etc/motd", 0o644, "welcome to berth\n"),
            ],
            Compression::Gzip,
        ));
        image.layers.push(Layer::new(
            "remove /data/remove, replace /data/dir, add /data/new",
            &[
                directory("data/", 0o755),
                file("data/.wh.remove", 0o644, ""),
                directory("data/dir/", 0o755),
                file("data/dir/.wh..wh..opq", 0o644, ""),
                file("data/dir/c", 0o644, "c\n"),
                file("data/new", 0o644, "new\n"),
            ],
            Compression::Zstd,
        ));
        image
    }

    /// busybox() with config User "app" (1000:1000 through /etc/passwd,
    /// supplementary group extra:2000 through /etc/group), WorkingDir
    /// /home/app, Env PATH and GREETING=hello, Entrypoint ["sh","-c"], Cmd
    /// ["id -u; id -G"] (prints "1000" then "1000 2000").
    pub fn non_root() -> TestImage {
        let mut image = TestImage::busybox();
        image.config = json!({
            "User": "app",
            "WorkingDir": "/home/app",
            "Env": [DEFAULT_PATH, "GREETING=hello"],
            "Entrypoint": ["sh", "-c"],
            "Cmd": ["id -u; id -G"],
        });
        image
    }

    /// busybox() plus `megabytes` MiB of incompressible, deterministic data
    /// split over 4 gzip layers (/large/part-0 .. /large/part-3).
    pub fn large(megabytes: usize) -> TestImage {
        let mut image = TestImage::busybox();
        let total = megabytes * 1024 * 1024;
        let parts = 4;
        for part in 0..parts {
            let length = total / parts + if part == 0 { total % parts } else { 0 };
            let data = incompressible_bytes(part as u64 + 1, length);
            image.layers.push(Layer::new(
                &format!("add /large/part-{part}"),
                &[
                    directory("large/", 0o755),
                    file(&format!("large/part-{part}"), 0o644, data),
                ],
                Compression::Gzip,
            ));
        }
        image
    }

    /// Push with Docker schema2 media types: manifest
    /// application/vnd.docker.distribution.manifest.v2+json, config
    /// application/vnd.docker.container.image.v1+json, layers
    /// application/vnd.docker.image.rootfs.diff.tar.gzip, and a manifest
    /// list from `push_index`. Docker has no zstd layer type, so zstd layers
    /// are recompressed with gzip (same tar, same diff_id).
    pub fn docker_media_types(mut self) -> TestImage {
        self.format = ManifestFormat::DockerSchema2;
        for layer in &mut self.layers {
            if layer.compression == Compression::Zstd {
                layer.recompress(Compression::Gzip);
            }
        }
        self
    }

    /// Every layer as a plain, uncompressed tar
    /// (application/vnd.oci.image.layer.v1.tar, or
    /// application/vnd.docker.image.rootfs.diff.tar with docker media types).
    pub fn uncompressed(mut self) -> TestImage {
        for layer in &mut self.layers {
            layer.recompress(Compression::None);
        }
        self
    }

    /// A malicious single-layer image, its tar headers written by hand:
    /// a file "../escape-relative"; a file "/abs-file" (which must land
    /// inside the layer); a symlink "evil" -> "/" followed by a file
    /// "evil/tmp/berth-escape-<unique>"; a hard link "hl" -> "../../outside".
    /// See `escape_path` for the host file a naive unpacker would write.
    pub fn malicious() -> TestImage {
        let escape_name = format!("berth-escape-{}", unique_suffix());
        let entries = [
            file("../escape-relative", 0o644, "escaped through ..\n"),
            file("/abs-file", 0o644, "absolute name, inside the layer\n"),
            symlink("evil", "/"),
            file(
                &format!("evil/tmp/{escape_name}"),
                0o644,
                "escaped through a symlink\n",
            ),
            hardlink("hl", "../../outside"),
        ];
        TestImage {
            layers: vec![Layer::new("malicious", &entries, Compression::Gzip)],
            config: default_config(),
            format: ManifestFormat::Oci,
            escape_path: Some(Path::new("/tmp").join(escape_name)),
        }
    }

    /// For `malicious()`: the host path that following the "evil" symlink
    /// would write, /tmp/berth-escape-<unique>; it must never exist.
    pub fn escape_path(&self) -> Option<&Path> {
        self.escape_path.as_deref()
    }

    /// The digests of the layer blobs, in manifest order.
    pub fn layer_digests(&self) -> Vec<String> {
        self.layers
            .iter()
            .map(|layer| layer.digest.clone())
            .collect()
    }

    /// The digests of the uncompressed layer tars (the config's diff_ids).
    pub fn diff_ids(&self) -> Vec<String> {
        self.layers
            .iter()
            .map(|layer| layer.diff_id.clone())
            .collect()
    }

    /// The layer media types, in manifest order.
    pub fn layer_media_types(&self) -> Vec<&'static str> {
        self.layers
            .iter()
            .map(|layer| self.format.layer(layer.compression))
            .collect()
    }

    /// The uncompressed tar of layer `index`.
    pub fn layer_tar(&self, index: usize) -> &[u8] {
        &self.layers[index].tar
    }

    /// The digest of the linux/amd64 config: the image ID a runtime reports.
    pub fn config_digest(&self) -> String {
        sha256_digest(&self.config_json(Architecture::Amd64))
    }

    /// The digest of the linux/amd64 manifest, as `push` returns it.
    pub fn manifest_digest(&self) -> String {
        sha256_digest(&self.manifest_json(&self.config_json(Architecture::Amd64)))
    }

    /// The manifest media type `push` uses.
    pub fn manifest_media_type(&self) -> &'static str {
        self.format.manifest()
    }

    /// Write this image as an OCI image archive (oci-layout, index.json naming
    /// it `name`, blobs/sha256/...), as `docker buildx --output type=oci` or
    /// `skopeo copy oci-archive:` make.
    pub fn write_oci_archive(&self, path: &Path, name: &str) {
        let config = self.config_json(Architecture::Amd64);
        let manifest = self.manifest_json(&config);
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{
                "mediaType": self.format.manifest(),
                "digest": sha256_digest(&manifest),
                "size": manifest.len(),
                "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name},
            }],
        }))
        .expect("serialise an index");
        let mut files: Vec<(String, Vec<u8>)> = vec![
            (
                "oci-layout".into(),
                br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
            ),
            ("index.json".into(), index),
        ];
        for blob in [config, manifest]
            .into_iter()
            .chain(self.layers.iter().map(|l| l.blob.clone()))
        {
            let digest = sha256_digest(&blob);
            files.push((
                format!("blobs/sha256/{}", digest.trim_start_matches("sha256:")),
                blob,
            ));
        }
        write_archive(path, &files);
    }

    /// Write this image as `docker save` does (manifest.json with RepoTags,
    /// <config>.json, <layer>/layer.tar uncompressed).
    pub fn write_docker_archive(&self, path: &Path, tag: &str) {
        let config = self.config_json(Architecture::Amd64);
        let config_name = format!(
            "{}.json",
            sha256_digest(&config).trim_start_matches("sha256:")
        );
        let mut files: Vec<(String, Vec<u8>)> = vec![(config_name.clone(), config)];
        let mut layer_paths = Vec::new();
        for layer in &self.layers {
            let path = format!("{}/layer.tar", layer.diff_id.trim_start_matches("sha256:"));
            files.push((path.clone(), layer.tar.clone()));
            layer_paths.push(path);
        }
        let manifest = serde_json::to_vec(
            &json!([{"Config": config_name, "RepoTags": [tag], "Layers": layer_paths}]),
        )
        .expect("serialise manifest.json");
        files.push(("manifest.json".into(), manifest));
        write_archive(path, &files);
    }

    fn config_json(&self, architecture: Architecture) -> Vec<u8> {
        let mut config = self.config.clone();
        if let Architecture::Arm64 = architecture {
            config["Env"]
                .as_array_mut()
                .expect("config Env is a list")
                .push(json!("BERTH_TEST_PLATFORM=linux/arm64"));
        }
        let history: Vec<Value> = self
            .layers
            .iter()
            .map(|layer| json!({"created": FIXED_CREATED, "created_by": layer.created_by}))
            .collect();
        serde_json::to_vec(&json!({
            "created": FIXED_CREATED,
            "architecture": architecture.name(),
            "os": "linux",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": self.diff_ids()},
            "history": history,
        }))
        .expect("serialise an image config")
    }

    fn manifest_json(&self, config: &[u8]) -> Vec<u8> {
        let layers: Vec<Value> = self
            .layers
            .iter()
            .map(|layer| {
                json!({
                    "mediaType": self.format.layer(layer.compression),
                    "digest": layer.digest,
                    "size": layer.blob.len(),
                })
            })
            .collect();
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": self.format.manifest(),
            "config": {
                "mediaType": self.format.config(),
                "digest": sha256_digest(config),
                "size": config.len(),
            },
            "layers": layers,
        }))
        .expect("serialise a manifest")
    }
}

/// A plain tar of `files` (name, contents) with fixed metadata.
fn write_archive(path: &Path, files: &[(String, Vec<u8>)]) {
    let mut builder = tar::Builder::new(std::fs::File::create(path).expect("create archive"));
    for (name, contents) in files {
        let mut header = tar::Header::new_ustar();
        header.set_path(name).expect("archive entry name");
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        builder
            .append(&header, contents.as_slice())
            .expect("append to archive");
    }
    builder.finish().expect("finish archive");
}
