//! Per-registry configuration in the spirit of containerd's
//! `certs.d/<host>/hosts.toml`: for each registry, the mirrors to try first,
//! then the registry's own server, each with its scheme, TLS settings,
//! capabilities and (a Berth addition) credentials.
//!
//! This module owns reading that directory and answering "which endpoints, in
//! which order, for this registry". It must not open connections, read CA
//! files or talk to a registry: the puller does that with what it is given.
//!
//! Differences from containerd, on purpose: a malformed `hosts.toml` is an
//! error naming the file and line (containerd logs it and falls back to
//! certificate files, which hides the mistake); `header`, `client` and
//! `dial_timeout` are accepted and ignored; the `username`/`password`, `token`
//! and `auth` keys are Berth's own.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;
use toml::Spanned;

const HOSTS_FILE: &str = "hosts.toml";
/// The directory whose `hosts.toml` applies to every registry without its own.
const DEFAULT_HOST_DIRECTORY: &str = "_default";
/// `docker.io` is a name, not a server: its registry API answers here.
const DOCKER_HUB_REGISTRY: &str = "docker.io";
const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
/// What an endpoint may do when its file does not say (containerd's default).
const DEFAULT_CAPABILITIES: [&str; 3] = ["pull", "resolve", "push"];

/// One configured endpoint for a registry (the registry itself or a mirror).
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// `scheme://host[:port][/path]`, e.g. `http://127.0.0.1:5000` or
    /// `https://mirror.example`, with no trailing '/'. The API root is
    /// `url + "/v2"` unless `override_path` is set, in which case the URL's
    /// path is the API root itself.
    pub url: String,
    /// The endpoint speaks plain http (its URL's scheme is `http`).
    pub insecure_http: bool,
    /// Do not verify the server's certificate chain or name.
    pub skip_verify: bool,
    /// Extra CA certificates (PEM files) to trust besides the system roots.
    pub ca_files: Vec<PathBuf>,
    /// Lowercase: `pull`, `resolve` (turn a tag into a digest), `push`.
    pub capabilities: Vec<String>,
    pub credentials: Option<Credentials>,
    pub override_path: bool,
}

impl Endpoint {
    /// An endpoint for `url` with default settings: https unless the URL says
    /// `http://`, every capability, no credentials. A URL without a scheme is
    /// taken as https, as containerd does.
    pub fn new(url: &str) -> Endpoint {
        let url =
            normalise_url(url, false).unwrap_or_else(|_| url.trim_end_matches('/').to_string());
        Endpoint {
            insecure_http: url.starts_with("http://"),
            url,
            ..Endpoint::unconfigured_server()
        }
    }

    /// The `host[:port]` part of the URL.
    pub fn host(&self) -> &str {
        let rest = self
            .url
            .split_once("://")
            .map_or(self.url.as_str(), |(_, rest)| rest);
        rest.split('/').next().unwrap_or(rest)
    }

    pub fn has_capability(&self, capability: &str) -> bool {
        self.capabilities
            .iter()
            .any(|c| c.eq_ignore_ascii_case(capability))
    }

    /// The settings a registry's own server has when nothing configures it;
    /// the URL is filled in by [`RegistryConfig::endpoints`].
    fn unconfigured_server() -> Endpoint {
        Endpoint {
            url: String::new(),
            insecure_http: false,
            skip_verify: false,
            ca_files: Vec::new(),
            capabilities: DEFAULT_CAPABILITIES.map(String::from).to_vec(),
            credentials: None,
            override_path: false,
        }
    }
}

/// Credentials for one endpoint. `Debug` never prints the secret.
#[derive(Clone, PartialEq)]
pub enum Credentials {
    Basic { username: String, password: String },
    Bearer(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Basic { username, .. } => formatter
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credentials::Bearer(_) => formatter
                .debug_tuple("Bearer")
                .field(&"<redacted>")
                .finish(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HostsError {
    #[error("reading {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key has the wrong type.
    #[error("{}{}: {message}", .path.display(), line_suffix(.line))]
    Syntax {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    /// Valid TOML whose content makes no sense (unknown capability, bad URL,
    /// conflicting credentials).
    #[error("{}{}: {message}", .path.display(), line_suffix(.line))]
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
}

fn line_suffix(line: &Option<usize>) -> String {
    line.map(|line| format!(":{line}")).unwrap_or_default()
}

/// Every registry's endpoints, from a `certs.d`-style directory and/or set up
/// in code.
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    /// Keyed by lowercase registry host (`docker.io`, `127.0.0.1:5000`) or
    /// `_default`.
    registries: BTreeMap<String, RegistryHosts>,
    /// Registries whose own server is reached over plain http.
    insecure: BTreeSet<String>,
}

/// What one `hosts.toml` says: mirrors in file order, then the server.
#[derive(Debug, Clone)]
struct RegistryHosts {
    mirrors: Vec<Endpoint>,
    /// The registry's own server; an empty URL means "the default for the
    /// registry asked about" (a file without `server`, or `_default`).
    server: Endpoint,
}

impl Default for RegistryHosts {
    fn default() -> Self {
        RegistryHosts {
            mirrors: Vec::new(),
            server: Endpoint::unconfigured_server(),
        }
    }
}

impl RegistryConfig {
    /// Loads every `<dir>/<host>/hosts.toml`. Host directories are named like
    /// `docker.io`, `registry.k8s.io`, `127.0.0.1:5000` (or containerd's
    /// `127.0.0.1_5000_`, which wins if both exist); `_default` applies to any
    /// registry without its own. A host directory without `hosts.toml` is read
    /// Docker's way: its `*.crt` files are CA certificates for the server. A
    /// missing `dir` is an empty configuration.
    pub fn load(dir: &Path) -> Result<RegistryConfig, HostsError> {
        let mut config = RegistryConfig::default();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(config),
            Err(source) => return Err(read_error(dir, source)),
        };
        let mut host_directories = Vec::new();
        for entry in entries {
            let path = entry.map_err(|source| read_error(dir, source))?.path();
            let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
                continue;
            };
            if name.starts_with('.') || !path.is_dir() {
                continue;
            }
            let (registry, port_spelled_out) = registry_for_directory(name);
            host_directories.push((port_spelled_out, name.to_string(), registry, path.clone()));
        }
        // Sorted so the result does not depend on directory order, and the
        // `host_port_` spelling is inserted last and so wins.
        host_directories.sort();
        for (_, _, registry, path) in host_directories {
            let hosts = load_host_directory(&path)?;
            config.registries.insert(registry, hosts);
        }
        Ok(config)
    }

    /// Adds a mirror, tried after the mirrors already configured for
    /// `registry`. Like adding a `[host]` to that registry's own `hosts.toml`:
    /// from then on `_default` no longer applies to it.
    pub fn with_mirror(mut self, registry: &str, endpoint: Endpoint) -> Self {
        self.registries
            .entry(registry.to_ascii_lowercase())
            .or_default()
            .mirrors
            .push(endpoint);
        self
    }

    /// Reaches `registry`'s own server over plain http. A `server` URL given
    /// in its `hosts.toml` keeps the scheme it was written with.
    pub fn with_insecure(mut self, registry: &str) -> Self {
        self.insecure.insert(registry.to_ascii_lowercase());
        self
    }

    /// The endpoints to try, in order, for `registry` (e.g. `docker.io`):
    /// configured mirrors first, then the registry's own server:
    /// `https://<api host>`, or `http://` when the registry is configured
    /// insecure or is this machine (`localhost`, a loopback address such as
    /// `127.0.0.1` or `[::1]`, with any port), as containerd does.
    pub fn endpoints(&self, registry: &str) -> Vec<Endpoint> {
        let key = registry.to_ascii_lowercase();
        let hosts = self
            .registries
            .get(&key)
            .or_else(|| self.registries.get(DEFAULT_HOST_DIRECTORY));
        let (mut endpoints, mut server) = match hosts {
            Some(hosts) => (hosts.mirrors.clone(), hosts.server.clone()),
            None => (Vec::new(), Endpoint::unconfigured_server()),
        };
        if server.url.is_empty() {
            let insecure = self.insecure.contains(&key) || is_localhost(&key);
            let api_host = if key == DOCKER_HUB_REGISTRY {
                DOCKER_HUB_API_HOST
            } else {
                registry
            };
            let scheme = if insecure { "http" } else { "https" };
            server.url = format!("{scheme}://{api_host}");
            server.insecure_http = insecure;
        }
        endpoints.push(server);
        endpoints
    }
}

fn read_error(path: &Path, source: std::io::Error) -> HostsError {
    HostsError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// The registry a host directory configures, and whether its name spelled
/// the port containerd's file-system-safe way (`host_port_`).
fn registry_for_directory(name: &str) -> (String, bool) {
    let port_spelled_out = name
        .strip_suffix('_')
        .and_then(|stem| stem.rsplit_once('_'))
        .filter(|(host, port)| {
            !host.is_empty() && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
        });
    match port_spelled_out {
        Some((host, port)) => (format!("{host}:{port}").to_ascii_lowercase(), true),
        None => (name.to_ascii_lowercase(), false),
    }
}

fn load_host_directory(dir: &Path) -> Result<RegistryHosts, HostsError> {
    let file = dir.join(HOSTS_FILE);
    match std::fs::read_to_string(&file) {
        Ok(text) => parse_hosts_file(&text, dir, &file),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => load_certificate_files(dir),
        Err(source) => Err(read_error(&file, source)),
    }
}

/// Docker's `certs.d` layout: every `*.crt` is a CA for the registry's server.
fn load_certificate_files(dir: &Path) -> Result<RegistryHosts, HostsError> {
    let mut ca_files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|source| read_error(dir, source))? {
        let path = entry.map_err(|source| read_error(dir, source))?.path();
        if path.extension().is_some_and(|extension| extension == "crt") && path.is_file() {
            ca_files.push(path);
        }
    }
    ca_files.sort();
    let mut hosts = RegistryHosts::default();
    hosts.server.ca_files = ca_files;
    Ok(hosts)
}

/// The settings a `[host."<url>"]` block, or the file's top level for the
/// server, may hold. Unknown keys (`header`, `client`, `dial_timeout`, and
/// at top level `server` and `host`) are ignored here.
#[derive(Debug, Default, Deserialize)]
struct HostSettings {
    capabilities: Option<Spanned<Vec<String>>>,
    ca: Option<Spanned<toml::Value>>,
    skip_verify: Option<bool>,
    override_path: Option<bool>,
    username: Option<Spanned<String>>,
    password: Option<Spanned<String>>,
    token: Option<Spanned<String>>,
    /// Docker's `config.json` form: base64 of `username:password`.
    auth: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
struct HostsFileLayout {
    server: Option<Spanned<String>>,
    #[serde(default)]
    host: BTreeMap<Spanned<String>, HostSettings>,
}

/// Reports problems in one file with its path and the line they are on.
struct FileContext<'a> {
    text: &'a str,
    dir: &'a Path,
    path: &'a Path,
}

impl FileContext<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let before = self.text.get(..offset).unwrap_or(self.text);
        before.bytes().filter(|b| *b == b'\n').count() + 1
    }

    fn syntax(&self, error: toml::de::Error) -> HostsError {
        HostsError::Syntax {
            path: self.path.to_path_buf(),
            line: error.span().map(|span| self.line_of(span.start)),
            message: error.message().trim_end().to_string(),
        }
    }

    fn invalid<T>(&self, at: &Spanned<T>, message: String) -> HostsError {
        HostsError::Invalid {
            path: self.path.to_path_buf(),
            line: Some(self.line_of(at.span().start)),
            message,
        }
    }
}

fn parse_hosts_file(text: &str, dir: &Path, path: &Path) -> Result<RegistryHosts, HostsError> {
    let file = FileContext { text, dir, path };
    let layout: HostsFileLayout = toml::from_str(text).map_err(|error| file.syntax(error))?;
    let top_level: HostSettings = toml::from_str(text).map_err(|error| file.syntax(error))?;

    // containerd tries hosts in the order the file lists them; the map is
    // sorted by name, so put it back in file order by where each key is.
    let mut hosts: Vec<(Spanned<String>, HostSettings)> = layout.host.into_iter().collect();
    hosts.sort_by_key(|(url, _)| url.span().start);

    let mut mirrors = Vec::with_capacity(hosts.len());
    for (url, settings) in hosts {
        mirrors.push(endpoint_from_settings(&file, Some(&url), settings)?);
    }
    let server = endpoint_from_settings(&file, layout.server.as_ref(), top_level)?;
    Ok(RegistryHosts { mirrors, server })
}

/// Builds an endpoint; with no URL (a file without `server`) the URL is left
/// empty for [`RegistryConfig::endpoints`] to fill in.
fn endpoint_from_settings(
    file: &FileContext<'_>,
    url: Option<&Spanned<String>>,
    settings: HostSettings,
) -> Result<Endpoint, HostsError> {
    let override_path = settings.override_path.unwrap_or(false);
    let mut endpoint = Endpoint::unconfigured_server();
    if let Some(url) = url {
        endpoint.url = normalise_url(url.get_ref(), override_path)
            .map_err(|message| file.invalid(url, message))?;
        endpoint.insecure_http = endpoint.url.starts_with("http://");
    }
    endpoint.override_path = override_path;
    endpoint.skip_verify = settings.skip_verify.unwrap_or(false);
    if let Some(capabilities) = &settings.capabilities {
        endpoint.capabilities = parse_capabilities(capabilities.get_ref())
            .map_err(|message| file.invalid(capabilities, message))?;
    }
    if let Some(ca) = &settings.ca {
        endpoint.ca_files =
            parse_ca_files(ca.get_ref(), file.dir).map_err(|message| file.invalid(ca, message))?;
    }
    endpoint.credentials = parse_credentials(file, &settings)?;
    Ok(endpoint)
}

fn parse_capabilities(names: &[String]) -> Result<Vec<String>, String> {
    let mut capabilities: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        let name = name.to_ascii_lowercase();
        if !DEFAULT_CAPABILITIES.contains(&name.as_str()) {
            return Err(format!(
                "unknown capability {name:?} (expected pull, resolve or push)"
            ));
        }
        if !capabilities.contains(&name) {
            capabilities.push(name);
        }
    }
    Ok(capabilities)
}

/// `ca = "file"` or `ca = ["file", ...]`; relative paths are relative to the
/// host directory, as containerd resolves them.
fn parse_ca_files(value: &toml::Value, dir: &Path) -> Result<Vec<PathBuf>, String> {
    let expected = || "ca must be a path or a list of paths".to_string();
    let paths: Vec<&str> = match value {
        toml::Value::String(path) => vec![path.as_str()],
        toml::Value::Array(paths) => paths
            .iter()
            .map(|path| path.as_str().ok_or_else(expected))
            .collect::<Result<_, _>>()?,
        _ => return Err(expected()),
    };
    Ok(paths.into_iter().map(|path| dir.join(path)).collect())
}

fn parse_credentials(
    file: &FileContext<'_>,
    settings: &HostSettings,
) -> Result<Option<Credentials>, HostsError> {
    let HostSettings {
        username,
        password,
        token,
        auth,
        ..
    } = settings;
    if let Some(token) = token {
        if username.is_some() || password.is_some() || auth.is_some() {
            return Err(file.invalid(
                token,
                "token cannot be combined with username, password or auth".to_string(),
            ));
        }
        if token.get_ref().is_empty() {
            return Err(file.invalid(token, "token is empty".to_string()));
        }
        return Ok(Some(Credentials::Bearer(token.get_ref().clone())));
    }
    if let Some(auth) = auth {
        if username.is_some() || password.is_some() {
            return Err(file.invalid(
                auth,
                "auth cannot be combined with username or password".to_string(),
            ));
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.get_ref().trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        return match decoded.as_deref().and_then(|text| text.split_once(':')) {
            Some((username, password)) if !username.is_empty() => Ok(Some(Credentials::Basic {
                username: username.to_string(),
                password: password.to_string(),
            })),
            _ => Err(file.invalid(
                auth,
                "auth must be base64 of \"username:password\"".to_string(),
            )),
        };
    }
    match (username, password) {
        (None, None) => Ok(None),
        (Some(username), Some(password)) if !username.get_ref().is_empty() => {
            Ok(Some(Credentials::Basic {
                username: username.get_ref().clone(),
                password: password.get_ref().clone(),
            }))
        }
        (Some(username), Some(_)) => Err(file.invalid(username, "username is empty".to_string())),
        (Some(username), None) => {
            Err(file.invalid(username, "username needs a password".to_string()))
        }
        (None, Some(password)) => {
            Err(file.invalid(password, "password needs a username".to_string()))
        }
    }
}

/// `scheme://authority[/path]` with a default scheme of https, a cleaned path
/// without trailing '/', and a final `/v2` dropped unless the path is the API
/// root itself (`override_path`): the puller appends `/v2`.
fn normalise_url(raw: &str, override_path: bool) -> Result<String, String> {
    let (scheme, rest) = match raw.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => ("https".to_string(), raw),
    };
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "unsupported scheme {scheme:?} in {raw:?} (expected http or https)"
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, ""),
    };
    let is_bad = |c: char| c.is_whitespace() || c.is_control() || matches!(c, '@' | '?' | '#');
    if authority.is_empty() || authority.contains(is_bad) || path.contains(is_bad) {
        return Err(format!(
            "invalid endpoint {raw:?} (expected scheme://host[:port][/path])"
        ));
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            segment => segments.push(segment),
        }
    }
    if !override_path && segments.last() == Some(&"v2") {
        segments.pop();
    }
    let mut url = format!("{scheme}://{authority}");
    for segment in segments {
        url.push('/');
        url.push_str(segment);
    }
    Ok(url)
}

/// This machine, which containerd reaches over plain http by default:
/// `localhost` or a loopback address, with or without a port.
fn is_localhost(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once(']').map_or(registry, |(host, _)| host),
        None => match registry.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => registry,
        },
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_hosts(root: &Path, host: &str, text: &str) -> PathBuf {
        let dir = root.join(host);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(HOSTS_FILE);
        std::fs::write(&file, text).unwrap();
        file
    }

    fn urls(endpoints: &[Endpoint]) -> Vec<&str> {
        endpoints
            .iter()
            .map(|endpoint| endpoint.url.as_str())
            .collect()
    }

    #[test]
    fn sends_registry_k8s_io_and_docker_io_to_a_local_mirror() {
        let root = tempfile::tempdir().unwrap();
        write_hosts(
            root.path(),
            "docker.io",
            r#"
server = "https://registry-1.docker.io"

[host."http://127.0.0.1:5000"]
  capabilities = ["pull", "resolve"]
"#,
        );
        write_hosts(
            root.path(),
            "registry.k8s.io",
            r#"
server = "https://registry.k8s.io"

[host."http://127.0.0.1:5000"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
  ca = ["/path/ca.crt", "relative.crt"]
  [host."http://127.0.0.1:5000".header]
    x-custom = "ignored"
"#,
        );
        let config = RegistryConfig::load(root.path()).unwrap();

        let docker = config.endpoints("docker.io");
        assert_eq!(
            urls(&docker),
            ["http://127.0.0.1:5000", "https://registry-1.docker.io"]
        );
        assert!(docker[0].insecure_http);
        assert_eq!(docker[0].capabilities, ["pull", "resolve"]);
        assert!(!docker[1].insecure_http);
        assert_eq!(docker[1].capabilities, ["pull", "resolve", "push"]);

        let k8s = config.endpoints("registry.k8s.io");
        assert_eq!(
            urls(&k8s),
            ["http://127.0.0.1:5000", "https://registry.k8s.io"]
        );
        let mirror = &k8s[0];
        assert!(mirror.skip_verify);
        assert_eq!(
            mirror.ca_files,
            [
                PathBuf::from("/path/ca.crt"),
                root.path().join("registry.k8s.io").join("relative.crt")
            ]
        );
        assert_eq!(mirror.host(), "127.0.0.1:5000");
        assert!(mirror.has_capability("resolve") && !mirror.has_capability("push"));

        // Registries without a directory are left alone.
        assert_eq!(urls(&config.endpoints("quay.io")), ["https://quay.io"]);
    }

    #[test]
    fn default_directory_applies_to_registries_without_their_own() {
        let root = tempfile::tempdir().unwrap();
        write_hosts(
            root.path(),
            "_default",
            "[host.\"http://127.0.0.1:5000\"]\n",
        );
        write_hosts(
            root.path(),
            "docker.io",
            "[host.\"https://mirror.example\"]\n",
        );
        let config = RegistryConfig::load(root.path()).unwrap();

        assert_eq!(
            urls(&config.endpoints("quay.io")),
            ["http://127.0.0.1:5000", "https://quay.io"]
        );
        assert_eq!(
            urls(&config.endpoints("docker.io")),
            ["https://mirror.example", "https://registry-1.docker.io"]
        );
        // The server a `_default` file leaves unset is the asked registry's.
        assert_eq!(
            urls(&config.endpoints("localhost:5001")),
            ["http://127.0.0.1:5000", "http://localhost:5001"]
        );
    }

    #[test]
    fn mirrors_are_tried_in_file_order_then_the_server() {
        let root = tempfile::tempdir().unwrap();
        write_hosts(
            root.path(),
            "example.com",
            r#"
[host."https://zzz.example"]
[host."https://aaa.example"]
  capabilities = ["pull"]
[host."https://mmm.example"]
"#,
        );
        let config = RegistryConfig::load(root.path())
            .unwrap()
            .with_mirror("example.com", Endpoint::new("http://127.0.0.1:5000"));
        assert_eq!(
            urls(&config.endpoints("example.com")),
            [
                "https://zzz.example",
                "https://aaa.example",
                "https://mmm.example",
                "http://127.0.0.1:5000",
                "https://example.com",
            ]
        );
    }

    #[test]
    fn server_key_replaces_the_default_server_and_top_level_settings_apply_to_it() {
        let root = tempfile::tempdir().unwrap();
        write_hosts(
            root.path(),
            "registry.example",
            r#"
server = "registry-backend.example:8443/"
skip_verify = true
ca = "ca.crt"
username = "puller"
password = "secret"
capabilities = ["PULL", "resolve"]
"#,
        );
        let config = RegistryConfig::load(root.path()).unwrap();
        let endpoints = config.endpoints("registry.example");
        assert_eq!(endpoints.len(), 1);
        let server = &endpoints[0];
        assert_eq!(server.url, "https://registry-backend.example:8443");
        assert!(server.skip_verify && !server.insecure_http);
        assert_eq!(
            server.ca_files,
            [root.path().join("registry.example/ca.crt")]
        );
        assert_eq!(server.capabilities, ["pull", "resolve"]);
        assert_eq!(
            server.credentials,
            Some(Credentials::Basic {
                username: "puller".into(),
                password: "secret".into()
            })
        );
    }

    #[test]
    fn credentials_come_from_username_password_token_or_auth() {
        let root = tempfile::tempdir().unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:pa:ss");
        write_hosts(
            root.path(),
            "127.0.0.1:5000",
            &format!(
                r#"
[host."http://127.0.0.1:5000"]
  username = "berth"
  password = "hunter2"
[host."https://token.example"]
  token = "opaque-token"
[host."https://auth.example"]
  auth = "{auth}"
"#
            ),
        );
        let config = RegistryConfig::load(root.path()).unwrap();
        let endpoints = config.endpoints("127.0.0.1:5000");
        let credentials: Vec<_> = endpoints.iter().map(|e| e.credentials.clone()).collect();
        assert_eq!(
            credentials,
            [
                Some(Credentials::Basic {
                    username: "berth".into(),
                    password: "hunter2".into()
                }),
                Some(Credentials::Bearer("opaque-token".into())),
                Some(Credentials::Basic {
                    username: "alice".into(),
                    password: "pa:ss".into()
                }),
                None,
            ]
        );
        let printed = format!("{config:?}");
        assert!(printed.contains("berth"));
        for secret in ["hunter2", "opaque-token", "pa:ss"] {
            assert!(!printed.contains(secret), "Debug leaks {secret}");
        }
    }

    #[test]
    fn conflicting_or_incomplete_credentials_are_errors_with_their_line() {
        let cases = [
            (
                "[host.\"https://a\"]\ntoken = \"t\"\nusername = \"u\"\n",
                2,
                "token cannot",
            ),
            (
                "[host.\"https://a\"]\n\nusername = \"u\"\n",
                3,
                "needs a password",
            ),
            ("password = \"p\"\n", 1, "needs a username"),
            (
                "[host.\"https://a\"]\nauth = \"!!notbase64\"\n",
                2,
                "base64",
            ),
            ("[host.\"https://a\"]\ntoken = \"\"\n", 2, "token is empty"),
        ];
        for (text, line, fragment) in cases {
            let root = tempfile::tempdir().unwrap();
            let file = write_hosts(root.path(), "example.com", text);
            let error = RegistryConfig::load(root.path()).unwrap_err();
            let message = error.to_string();
            assert!(
                message.starts_with(&format!("{}:{line}: ", file.display())),
                "{message}"
            );
            assert!(message.contains(fragment), "{message}");
        }
    }

    #[test]
    fn malformed_toml_names_the_file_and_line() {
        let root = tempfile::tempdir().unwrap();
        let file = write_hosts(
            root.path(),
            "docker.io",
            "server = \"https://registry-1.docker.io\"\n[host.\"http://127.0.0.1:5000\"\ncapabilities = [\"pull\"]\n",
        );
        let error = RegistryConfig::load(root.path()).unwrap_err();
        assert!(matches!(&error, HostsError::Syntax { path, line: Some(2), .. } if *path == file));
        assert!(
            error
                .to_string()
                .starts_with(&format!("{}:2: ", file.display())),
            "{error}"
        );

        let wrong_type = write_hosts(
            root.path(),
            "docker.io",
            "\n\n[host.\"https://a\"]\nskip_verify = \"yes\"\n",
        );
        let error = RegistryConfig::load(root.path()).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with(&format!("{}:4: ", wrong_type.display())),
            "{error}"
        );
    }

    #[test]
    fn unknown_capabilities_and_schemes_are_refused() {
        let root = tempfile::tempdir().unwrap();
        write_hosts(
            root.path(),
            "a.example",
            "[host.\"https://m\"]\ncapabilities = [\"pull\", \"fly\"]\n",
        );
        let error = RegistryConfig::load(root.path()).unwrap_err().to_string();
        assert!(error.contains(":2: unknown capability \"fly\""), "{error}");

        let root = tempfile::tempdir().unwrap();
        write_hosts(root.path(), "a.example", "server = \"ftp://mirror\"\n");
        let error = RegistryConfig::load(root.path()).unwrap_err().to_string();
        assert!(error.contains(":1: unsupported scheme \"ftp\""), "{error}");

        let root = tempfile::tempdir().unwrap();
        write_hosts(root.path(), "a.example", "[host.\"https://\"]\n");
        assert!(RegistryConfig::load(root.path()).is_err());

        let root = tempfile::tempdir().unwrap();
        write_hosts(root.path(), "a.example", "ca = 3\n");
        let error = RegistryConfig::load(root.path()).unwrap_err().to_string();
        assert!(error.contains("ca must be a path"), "{error}");
    }

    #[test]
    fn this_machine_is_reached_over_plain_http_by_default() {
        let config = RegistryConfig::default();
        for registry in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.0.0.1",
            "[::1]:5000",
            "[::1]",
            "127.0.0.2:80",
        ] {
            let endpoints = config.endpoints(registry);
            assert_eq!(
                urls(&endpoints),
                [format!("http://{registry}")],
                "{registry}"
            );
            assert!(endpoints[0].insecure_http);
        }
        for (registry, url) in [
            ("docker.io", "https://registry-1.docker.io"),
            ("registry.k8s.io", "https://registry.k8s.io"),
            ("10.0.0.1:5000", "https://10.0.0.1:5000"),
            ("localhost.example:5000", "https://localhost.example:5000"),
        ] {
            let endpoints = config.endpoints(registry);
            assert_eq!(urls(&endpoints), [url]);
            assert!(!endpoints[0].insecure_http);
        }
    }

    #[test]
    fn insecure_registries_use_http_for_their_own_server_only() {
        let config = RegistryConfig::default()
            .with_insecure("Registry.Example:5000")
            .with_mirror(
                "registry.example:5000",
                Endpoint::new("https://mirror.example/"),
            );
        let endpoints = config.endpoints("registry.example:5000");
        assert_eq!(
            urls(&endpoints),
            ["https://mirror.example", "http://registry.example:5000"]
        );
        assert!(!endpoints[0].insecure_http && endpoints[1].insecure_http);
        assert_eq!(
            urls(&config.endpoints("other.example")),
            ["https://other.example"]
        );
    }

    #[test]
    fn missing_directory_is_an_empty_configuration() {
        let root = tempfile::tempdir().unwrap();
        let config = RegistryConfig::load(&root.path().join("absent")).unwrap();
        assert_eq!(
            urls(&config.endpoints("docker.io")),
            ["https://registry-1.docker.io"]
        );
    }

    #[test]
    fn port_may_be_spelled_the_containerd_way_in_directory_names() {
        let root = tempfile::tempdir().unwrap();
        write_hosts(
            root.path(),
            "127.0.0.1:5000",
            "[host.\"http://plain.example\"]\n",
        );
        write_hosts(
            root.path(),
            "127.0.0.1_5000_",
            "[host.\"http://underscored.example\"]\n",
        );
        write_hosts(
            root.path(),
            "my_registry",
            "[host.\"http://not-a-port.example\"]\n",
        );
        let config = RegistryConfig::load(root.path()).unwrap();
        assert_eq!(
            urls(&config.endpoints("127.0.0.1:5000")),
            ["http://underscored.example", "http://127.0.0.1:5000"]
        );
        assert_eq!(
            urls(&config.endpoints("my_registry")),
            ["http://not-a-port.example", "https://my_registry"]
        );
    }

    #[test]
    fn directory_without_hosts_toml_reads_docker_certificate_files() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("registry.example");
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["b.crt", "a.crt", "client.cert", "client.key"] {
            std::fs::write(dir.join(name), "pem").unwrap();
        }
        let config = RegistryConfig::load(root.path()).unwrap();
        let endpoints = config.endpoints("registry.example");
        assert_eq!(urls(&endpoints), ["https://registry.example"]);
        assert_eq!(
            endpoints[0].ca_files,
            [dir.join("a.crt"), dir.join("b.crt")]
        );
    }

    #[test]
    fn endpoint_urls_are_normalised() {
        let cases = [
            ("mirror.example", false, "https://mirror.example"),
            (
                "HTTP://mirror.example:5000/",
                false,
                "http://mirror.example:5000",
            ),
            ("https://mirror.example/v2", false, "https://mirror.example"),
            (
                "https://mirror.example/v2/",
                false,
                "https://mirror.example",
            ),
            (
                "https://mirror.example//a/./b/../c",
                false,
                "https://mirror.example/a/c",
            ),
            (
                "https://mirror.example/custom/v2",
                true,
                "https://mirror.example/custom/v2",
            ),
        ];
        for (raw, override_path, expected) in cases {
            assert_eq!(
                normalise_url(raw, override_path).as_deref(),
                Ok(expected),
                "{raw}"
            );
        }
        for bad in [
            "",
            "https://",
            "ftp://x",
            "https://user@x",
            "https://x y",
            "https://x?q",
        ] {
            assert!(normalise_url(bad, false).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn override_path_keeps_the_path_as_the_api_root() {
        let root = tempfile::tempdir().unwrap();
        write_hosts(
            root.path(),
            "docker.io",
            "[host.\"https://artifactory.example/api/docker/v2\"]\noverride_path = true\n",
        );
        let config = RegistryConfig::load(root.path()).unwrap();
        let mirror = &config.endpoints("docker.io")[0];
        assert_eq!(mirror.url, "https://artifactory.example/api/docker/v2");
        assert!(mirror.override_path);
        assert_eq!(mirror.host(), "artifactory.example");
    }

    #[test]
    fn ignores_containerd_keys_berth_does_not_use() {
        let root = tempfile::tempdir().unwrap();
        write_hosts(
            root.path(),
            "docker.io",
            r#"
[host."https://m.example"]
  client = [["/c.cert", "/c.key"]]
  dial_timeout = "5s"
  [host."https://m.example".header]
    x-one = "1"
    x-many = ["a", "b"]
"#,
        );
        let config = RegistryConfig::load(root.path()).unwrap();
        assert_eq!(
            urls(&config.endpoints("docker.io")),
            ["https://m.example", "https://registry-1.docker.io"]
        );
    }
}
