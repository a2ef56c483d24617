//! Image references (`busybox`, `127.0.0.1:5000/berth/busybox:1.36`,
//! `name@sha256:...`) parsed and normalised the way Kubernetes and containerd
//! do it through docker/distribution's `ParseNormalizedNamed` followed by
//! `TagNameOnly`: Docker Hub names gain `docker.io/` and `library/`, a name
//! with neither tag nor digest gains `:latest`, and a reference with both a tag
//! and a digest keeps both.
//!
//! This module only reads and writes text. It must not look anything up in a
//! registry or the image store, and it must not panic on any input: the text
//! comes straight from a pod spec or a CRI request.

use std::fmt;
use std::str::FromStr;

/// The registry that familiar names (`busybox`, `foo/bar`) belong to.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// Docker Hub's old "index" name, accepted and canonicalised to `docker.io`.
const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";
/// `docker.io` is a name, not a server: its registry API answers here.
const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
/// The namespace of Docker Hub's official images.
const OFFICIAL_REPOSITORY_PREFIX: &str = "library/";
const DEFAULT_TAG: &str = "latest";
/// The longest name (registry, '/' and repository) distribution accepts.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// A tag is one word character followed by at most this many more.
const TAG_LENGTH_MAX: usize = 128;

/// Why a text is not an image reference. The messages are those of
/// docker/distribution and go-digest, which is what Kubernetes users see in
/// `InvalidImageName` events.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid reference format")]
    InvalidFormat,
    #[error("invalid reference format: repository name must be lowercase")]
    NameContainsUppercase,
    #[error("repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")]
    NameTooLong,
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexadecimalName(String),
    #[error("unsupported digest algorithm")]
    UnsupportedDigestAlgorithm,
    #[error("invalid checksum digest length")]
    InvalidDigestLength,
    #[error("invalid checksum digest format")]
    InvalidDigestFormat,
}

/// A normalised image reference. After [`Reference::parse`] the registry is
/// never empty, Docker Hub official images carry `library/`, and at least one
/// of `tag` and `digest` is set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `docker.io`, `registry.k8s.io`, `127.0.0.1:5000`, `[::1]:5000`.
    pub registry: String,
    /// The path inside the registry: `library/busybox`, `berth/busybox`.
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<64 lowercase hex>` (or sha384/sha512), already validated.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses and normalises a reference:
    /// `busybox` → `docker.io/library/busybox:latest`,
    /// `foo/bar` → `docker.io/foo/bar:latest`,
    /// `localhost:5000/x` → `localhost:5000/x:latest`,
    /// `name@sha256:<hex>` keeps the digest and gains no tag,
    /// `name:tag@sha256:<hex>` keeps both.
    ///
    /// The part before the first '/' is the registry when it contains '.' or
    /// ':' or is `localhost`; otherwise the whole text is a Docker Hub path.
    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        if is_identifier(text) {
            return Err(ReferenceError::HexadecimalName(text.to_string()));
        }
        let (registry, remainder) = split_registry(text);
        let path_end = remainder.find([':', '@']).unwrap_or(remainder.len());
        let repository_text = &remainder[..path_end];
        if repository_text.to_lowercase() != repository_text {
            return Err(ReferenceError::NameContainsUppercase);
        }

        // A tag never holds '@' and a repository never holds ':' or '@', so
        // the first '@' starts the digest and the first ':' before it the tag.
        let (name_and_tag, digest) = match remainder.split_once('@') {
            Some((left, digest)) => (left, Some(digest)),
            None => (remainder.as_str(), None),
        };
        let (repository, tag) = match name_and_tag.split_once(':') {
            Some((repository, tag)) => (repository, Some(tag)),
            None => (name_and_tag, None),
        };
        let well_formed = is_valid_domain(registry)
            && is_valid_repository(repository)
            && tag.is_none_or(is_valid_tag)
            && digest.is_none_or(has_digest_shape);
        if !well_formed {
            return Err(ReferenceError::InvalidFormat);
        }
        if registry.len() + 1 + repository.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        if let Some(digest) = digest {
            validate_digest(digest)?;
        }

        let tag = match (tag, digest) {
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (tag, _) => tag.map(str::to_string),
        };
        Ok(Reference {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag,
            digest: digest.map(str::to_string),
        })
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The full normalised form: `docker.io/library/busybox:latest`,
    /// `...@sha256:...`, or `...:tag@sha256:...` when both are present.
    pub fn to_string_full(&self) -> String {
        let mut text = self.name();
        push_tag_and_digest(&mut text, self);
        text
    }

    /// The short form `docker` prints (distribution's `FamiliarString`):
    /// `busybox:latest`, `foo/bar:1`, `127.0.0.1:5000/berth/busybox:1.36`.
    pub fn familiar_string(&self) -> String {
        let mut text = if self.registry == DEFAULT_REGISTRY {
            match self.repository.strip_prefix(OFFICIAL_REPOSITORY_PREFIX) {
                Some(short) if !short.contains('/') => short.to_string(),
                _ => self.repository.clone(),
            }
        } else {
            self.name()
        };
        push_tag_and_digest(&mut text, self);
        text
    }

    /// `registry/repository@digest`: the repo digest form CRI reports in
    /// `repoDigests`. The digest is taken as given.
    pub fn with_digest(&self, digest: &str) -> String {
        format!("{}@{}", self.name(), digest)
    }

    /// The host that serves the registry API: `registry-1.docker.io` for
    /// `docker.io`, otherwise the registry itself.
    pub fn api_host(&self) -> &str {
        if self.registry == DEFAULT_REGISTRY {
            DOCKER_HUB_API_HOST
        } else {
            &self.registry
        }
    }

    /// True when the reference names content by digest, so no tag needs
    /// resolving and the pulled manifest must hash to exactly this digest.
    pub fn is_digest_pinned(&self) -> bool {
        self.digest.is_some()
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.to_string_full())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Reference::parse(text)
    }
}

/// True for a digest this runtime can verify: `sha256:` with 64 lowercase hex
/// digits, `sha384:` with 96, `sha512:` with 128.
pub fn is_valid_digest(text: &str) -> bool {
    validate_digest(text).is_ok()
}

/// go-digest's `Digest.Validate`, for the algorithms Go registers by default.
fn validate_digest(text: &str) -> Result<(), ReferenceError> {
    let (algorithm, encoded) = match text.split_once(':') {
        Some((algorithm, encoded)) if !algorithm.is_empty() && !encoded.is_empty() => {
            (algorithm, encoded)
        }
        _ => return Err(ReferenceError::InvalidDigestFormat),
    };
    let hex_length = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ if has_digest_shape(text) => return Err(ReferenceError::UnsupportedDigestAlgorithm),
        _ => return Err(ReferenceError::InvalidDigestFormat),
    };
    if encoded.len() != hex_length {
        return Err(ReferenceError::InvalidDigestLength);
    }
    if !encoded
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(ReferenceError::InvalidDigestFormat);
    }
    Ok(())
}

fn push_tag_and_digest(text: &mut String, reference: &Reference) {
    if let Some(tag) = &reference.tag {
        text.push(':');
        text.push_str(tag);
    }
    if let Some(digest) = &reference.digest {
        text.push('@');
        text.push_str(digest);
    }
}

/// distribution's `splitDockerDomain` (as Kubernetes has long vendored it):
/// returns the registry and the rest, with Docker Hub names given their
/// `library/` namespace.
fn split_registry(text: &str) -> (&str, String) {
    let (registry, remainder) = match text.split_once('/') {
        Some((first, rest)) if first == "localhost" || first.contains(['.', ':']) => {
            if first == LEGACY_DEFAULT_REGISTRY {
                (DEFAULT_REGISTRY, rest)
            } else {
                (first, rest)
            }
        }
        _ => (DEFAULT_REGISTRY, text),
    };
    if registry == DEFAULT_REGISTRY && !remainder.contains('/') {
        (registry, format!("{OFFICIAL_REPOSITORY_PREFIX}{remainder}"))
    } else {
        (registry, remainder.to_string())
    }
}

/// A bare 64-hex-digit image id, which distribution refuses as a name so it
/// cannot be mistaken for one.
fn is_identifier(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `host[:port]`, where host is a DNS-like name (letters of either case,
/// digits, inner '-', dot-separated) or a bracketed IPv6 address.
fn is_valid_domain(domain: &str) -> bool {
    let (host_is_valid, port) = if let Some(bracketed) = domain.strip_prefix('[') {
        match bracketed.split_once(']') {
            Some((address, port)) => (
                !address.is_empty() && address.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'),
                port,
            ),
            None => return false,
        }
    } else {
        let (host, port) = match domain.find(':') {
            Some(colon) => domain.split_at(colon),
            None => (domain, ""),
        };
        (host.split('.').all(is_valid_domain_component), port)
    };
    let port_is_valid = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
    host_is_valid && port_is_valid
}

fn is_valid_domain_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

/// One or more '/'-separated path components.
fn is_valid_repository(repository: &str) -> bool {
    repository.split('/').all(is_valid_path_component)
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`: lowercase alphanumeric runs
/// joined by one '.', one '_', two '_', or any number of '-'.
fn is_valid_path_component(component: &str) -> bool {
    let is_alphanumeric = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) if is_alphanumeric(first) && is_alphanumeric(last) => {}
        _ => return false,
    }
    bytes
        .split(is_alphanumeric)
        .filter(|separator| !separator.is_empty())
        .all(|separator| {
            matches!(separator, b"." | b"_" | b"__") || separator.iter().all(|b| *b == b'-')
        })
}

/// `[\w][\w.-]{0,127}`.
fn is_valid_tag(tag: &str) -> bool {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    match bytes.split_first() {
        Some((first, rest)) => {
            is_word(*first)
                && bytes.len() <= TAG_LENGTH_MAX
                && rest.iter().all(|b| is_word(*b) || *b == b'.' || *b == b'-')
        }
        None => false,
    }
}

/// distribution's digest pattern, checked before the algorithm is known:
/// `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`.
fn has_digest_shape(digest: &str) -> bool {
    let Some((algorithm, encoded)) = digest.split_once(':') else {
        return false;
    };
    let algorithm_is_valid = algorithm.split(['-', '_', '+', '.']).all(|component| {
        let bytes = component.as_bytes();
        bytes.first().is_some_and(u8::is_ascii_alphabetic)
            && bytes.iter().all(u8::is_ascii_alphanumeric)
    });
    algorithm_is_valid && encoded.len() >= 32 && encoded.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA256: &str = "sha256:7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa";

    fn full(text: &str) -> String {
        match Reference::parse(text) {
            Ok(reference) => reference.to_string_full(),
            Err(error) => panic!("{text:?} should parse: {error}"),
        }
    }

    #[test]
    fn normalises_names_as_kubernetes_does() {
        let table = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("library/busybox", "docker.io/library/busybox:latest"),
            ("docker.io/busybox", "docker.io/library/busybox:latest"),
            (
                "docker.io/library/busybox",
                "docker.io/library/busybox:latest",
            ),
            (
                "index.docker.io/busybox",
                "docker.io/library/busybox:latest",
            ),
            ("index.docker.io/foo/bar:2", "docker.io/foo/bar:2"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("foo/bar:1", "docker.io/foo/bar:1"),
            ("foo/bar/baz", "docker.io/foo/bar/baz:latest"),
            ("localhost/x", "localhost/x:latest"),
            ("localhost:5000/x", "localhost:5000/x:latest"),
            (
                "127.0.0.1:5000/berth/busybox:1.36",
                "127.0.0.1:5000/berth/busybox:1.36",
            ),
            ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
            ("[::1]:5000/x:v1", "[::1]:5000/x:v1"),
            ("Example.COM/x", "Example.COM/x:latest"),
            ("foo/a_b__c.d---e", "docker.io/foo/a_b__c.d---e:latest"),
            ("a-b.example:443/x", "a-b.example:443/x:latest"),
            ("localhost:5000", "docker.io/library/localhost:5000"),
            ("busybox:V1_x.y-z", "docker.io/library/busybox:V1_x.y-z"),
        ];
        for (text, expected) in table {
            assert_eq!(full(text), expected, "normalising {text:?}");
        }
    }

    #[test]
    fn splits_registry_repository_tag_and_digest() {
        let reference = Reference::parse("127.0.0.1:5000/berth/busybox:1.36").unwrap();
        assert_eq!(
            reference,
            Reference {
                registry: "127.0.0.1:5000".into(),
                repository: "berth/busybox".into(),
                tag: Some("1.36".into()),
                digest: None,
            }
        );
        assert!(!reference.is_digest_pinned());
    }

    #[test]
    fn digest_reference_gains_no_tag() {
        let reference = Reference::parse(&format!("busybox@{SHA256}")).unwrap();
        assert_eq!(reference.tag, None);
        assert_eq!(reference.digest.as_deref(), Some(SHA256));
        assert!(reference.is_digest_pinned());
        assert_eq!(
            reference.to_string_full(),
            format!("docker.io/library/busybox@{SHA256}")
        );
    }

    #[test]
    fn tag_and_digest_are_both_kept() {
        let reference = Reference::parse(&format!("busybox:1.36@{SHA256}")).unwrap();
        assert_eq!(reference.tag.as_deref(), Some("1.36"));
        assert_eq!(reference.digest.as_deref(), Some(SHA256));
        assert_eq!(
            reference.to_string(),
            format!("docker.io/library/busybox:1.36@{SHA256}")
        );
        let on_local_registry = format!("localhost:5000/a/b:v2@{SHA256}");
        assert_eq!(full(&on_local_registry), on_local_registry);
    }

    #[test]
    fn sha512_digests_are_accepted() {
        let digest = format!("sha512:{}", "ab".repeat(64));
        assert_eq!(
            full(&format!("x@{digest}")),
            format!("docker.io/library/x@{digest}")
        );
    }

    #[test]
    fn rejects_uppercase_repository_with_kubernetes_message() {
        for text in ["Busybox", "foo/Bar", "localhost:5000/Foo", "busybox/UP:tag"] {
            let error = Reference::parse(text).unwrap_err();
            assert_eq!(error, ReferenceError::NameContainsUppercase, "{text:?}");
            assert_eq!(
                error.to_string(),
                "invalid reference format: repository name must be lowercase"
            );
        }
        // Upper case is a tag's right.
        assert!(Reference::parse("busybox:UPPER").is_ok());
    }

    #[test]
    fn rejects_malformed_text_as_invalid_reference_format() {
        let invalid = [
            "",
            "a//b",
            "busybox:",
            "busybox@",
            "/busybox",
            "busybox/",
            "localhost/",
            ":tag",
            "@sha256:abc",
            "busy box",
            "busybox:tag:more",
            "-busybox",
            "busybox-",
            "a..b",
            "a___b",
            "a._b",
            "example.com:/x",
            "example.com:port/x",
            "-example.com/x",
            "[::1/x",
            "[]:5000/x",
            "::1/x",
            "busybox:-tag",
            "busybox:.tag",
            "busybox@sha256:abc",
            "busybox@sha256:",
            "busybox@:0123456789abcdef0123456789abcdef",
            "busybóx",
            "busybox:tag@sha256:short",
        ];
        for text in invalid {
            assert_eq!(
                Reference::parse(text),
                Err(ReferenceError::InvalidFormat),
                "{text:?} should be an invalid format"
            );
        }
        assert_eq!(
            ReferenceError::InvalidFormat.to_string(),
            "invalid reference format"
        );
    }

    #[test]
    fn rejects_bad_digests_with_go_digest_messages() {
        let cases = [
            (
                format!("busybox@sha256:{}", "a".repeat(63)),
                ReferenceError::InvalidDigestLength,
            ),
            (
                format!("busybox@sha256:{}", "a".repeat(65)),
                ReferenceError::InvalidDigestLength,
            ),
            (
                format!("busybox@sha256:{}", "A".repeat(64)),
                ReferenceError::InvalidDigestFormat,
            ),
            (
                format!("busybox@md5:{}", "a".repeat(32)),
                ReferenceError::UnsupportedDigestAlgorithm,
            ),
            (
                format!("busybox@SHA256:{}", "a".repeat(64)),
                ReferenceError::UnsupportedDigestAlgorithm,
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(Reference::parse(&text), Err(expected), "{text:?}");
        }
        assert_eq!(
            ReferenceError::InvalidDigestLength.to_string(),
            "invalid checksum digest length"
        );
    }

    #[test]
    fn rejects_bare_image_ids_as_names() {
        let id = "a".repeat(64);
        let error = Reference::parse(&id).unwrap_err();
        assert_eq!(error, ReferenceError::HexadecimalName(id.clone()));
        assert!(
            error
                .to_string()
                .contains("cannot specify 64-byte hexadecimal strings")
        );
        // Any other length is an ordinary (if odd) name.
        assert!(Reference::parse(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn tags_are_limited_to_128_characters() {
        assert!(Reference::parse(&format!("busybox:{}", "t".repeat(128))).is_ok());
        assert_eq!(
            Reference::parse(&format!("busybox:{}", "t".repeat(129))),
            Err(ReferenceError::InvalidFormat)
        );
    }

    #[test]
    fn names_are_limited_to_255_characters_registry_included() {
        // "docker.io/library/" is 18 characters.
        let longest = "a".repeat(NAME_TOTAL_LENGTH_MAX - 18);
        assert!(Reference::parse(&longest).is_ok());
        assert_eq!(
            Reference::parse(&format!("{longest}a")),
            Err(ReferenceError::NameTooLong)
        );
        let tagged = format!("{longest}:{}", "t".repeat(128));
        assert!(Reference::parse(&tagged).is_ok(), "the tag does not count");
    }

    #[test]
    fn round_trips_through_the_full_form() {
        let texts = [
            "busybox".to_string(),
            "foo/bar:1".to_string(),
            "index.docker.io/busybox".to_string(),
            "127.0.0.1:5000/berth/busybox:1.36".to_string(),
            "[::1]:5000/x".to_string(),
            format!("busybox@{SHA256}"),
            format!("registry.k8s.io/pause:3.10@{SHA256}"),
        ];
        for text in texts {
            let reference = Reference::parse(&text).unwrap();
            let again = Reference::parse(&reference.to_string_full()).unwrap();
            assert_eq!(again, reference, "{text:?}");
            let from_familiar = Reference::parse(&reference.familiar_string()).unwrap();
            assert_eq!(from_familiar, reference, "{text:?} familiar");
            assert_eq!(text.parse::<Reference>().unwrap(), reference);
        }
    }

    #[test]
    fn familiar_string_drops_docker_hub_defaults_only() {
        assert_eq!(
            Reference::parse("busybox").unwrap().familiar_string(),
            "busybox:latest"
        );
        assert_eq!(
            Reference::parse("foo/bar:1").unwrap().familiar_string(),
            "foo/bar:1"
        );
        assert_eq!(
            Reference::parse("library/a/b").unwrap().familiar_string(),
            "library/a/b:latest"
        );
        assert_eq!(
            Reference::parse("localhost:5000/library/x")
                .unwrap()
                .familiar_string(),
            "localhost:5000/library/x:latest"
        );
    }

    #[test]
    fn repo_digest_form_drops_the_tag() {
        let reference = Reference::parse("127.0.0.1:5000/berth/busybox:1.36").unwrap();
        assert_eq!(
            reference.with_digest(SHA256),
            format!("127.0.0.1:5000/berth/busybox@{SHA256}")
        );
    }

    #[test]
    fn docker_hub_is_served_by_registry_1() {
        assert_eq!(
            Reference::parse("busybox").unwrap().api_host(),
            "registry-1.docker.io"
        );
        assert_eq!(
            Reference::parse("index.docker.io/x/y").unwrap().api_host(),
            "registry-1.docker.io"
        );
        assert_eq!(
            Reference::parse("localhost:5000/x").unwrap().api_host(),
            "localhost:5000"
        );
        assert_eq!(
            Reference::parse("registry.k8s.io/pause")
                .unwrap()
                .api_host(),
            "registry.k8s.io"
        );
    }

    #[test]
    fn digest_validation_matches_the_supported_algorithms() {
        assert!(is_valid_digest(SHA256));
        assert!(is_valid_digest(&format!("sha384:{}", "0".repeat(96))));
        assert!(is_valid_digest(&format!("sha512:{}", "f".repeat(128))));
        for bad in [
            "",
            "sha256",
            "sha256:",
            ":abc",
            "sha256:ABC",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "sha512:0123",
        ] {
            assert!(!is_valid_digest(bad), "{bad:?}");
        }
        assert!(!is_valid_digest(&SHA256.to_uppercase()));
        assert!(!is_valid_digest(&format!("{SHA256}0")));
    }

    #[test]
    fn never_panics_on_any_short_text() {
        // Every text of up to four characters over an alphabet of the
        // grammar's delimiters and a few awkward characters.
        let alphabet = ['a', 'A', '0', '.', '_', '-', ':', '/', '@', '[', ']', 'é'];
        let mut texts = Vec::new();
        let mut frontier = vec![String::new()];
        for _ in 0..4 {
            frontier = frontier
                .iter()
                .flat_map(|text| alphabet.iter().map(move |c| format!("{text}{c}")))
                .collect();
            texts.extend(frontier.iter().cloned());
        }
        for text in &texts {
            if let Ok(reference) = Reference::parse(text) {
                assert_eq!(
                    Reference::parse(&reference.to_string_full()).as_ref(),
                    Ok(&reference)
                );
            }
        }
        assert!(texts.len() > 20_000);
    }
}
