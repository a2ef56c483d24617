//! Unpacking one OCI image layer (a tar stream, plain, gzip or zstd) into its
//! own directory in the form overlayfs stacks as a lowerdir: OCI whiteouts
//! (`.wh.name`) become 0:0 character devices and opaque markers
//! (`.wh..wh..opq`) become the `trusted.overlay.opaque=y` xattr.
//!
//! A layer can never write outside its directory: `..` that would leave it is
//! refused, no path may pass through a symlink (links are created, never
//! followed), files are opened with O_NOFOLLOW, and hard links must point
//! inside. The caller removes the directory when this fails.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{Mode, SFlag, UtimensatFlags, makedev, mknod, utimensat};
use nix::sys::time::TimeSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// From an OCI or Docker layer media type.
    pub fn from_media_type(media_type: &str) -> Option<Compression> {
        match media_type {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar" => Some(Compression::None),
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
                Some(Compression::Gzip)
            }
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => {
                Some(Compression::Zstd)
            }
            _ => None,
        }
    }

    /// From the first bytes, when the media type says nothing useful.
    pub fn sniff(first_bytes: &[u8]) -> Compression {
        match first_bytes {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            _ => Compression::None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer entry {0:?} escapes the layer directory")]
    Escape(String),
    #[error("layer entry {entry:?} escapes the layer directory through the symlink {symlink:?}")]
    ThroughSymlink { entry: String, symlink: String },
    #[error("hard link {entry:?} points outside the layer ({target:?})")]
    HardLinkOutside { entry: String, target: String },
    #[error("layer entry {entry:?}: unsupported entry type {kind:?}")]
    Unsupported { entry: String, kind: String },
    #[error("layer entry {entry:?}: {source}")]
    Io {
        entry: String,
        source: std::io::Error,
    },
    #[error("reading the layer: {0}")]
    Read(std::io::Error),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct UnpackStats {
    pub entries: u64,
    pub bytes: u64,
    pub whiteouts: u64,
    pub opaque_dirs: u64,
}

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// The entry's path relative to the layer root, with `.`/leading `/` gone
/// and `..` resolved; None when it would leave the root.
fn relative(path: &Path) -> Option<PathBuf> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Some(parts.iter().collect())
}

/// Refuse a destination any of whose parents (inside the root) is a symlink:
/// writing there would follow it.
fn check_parents(root: &Path, relative: &Path, entry: &str) -> Result<(), UnpackError> {
    let mut current = root.to_path_buf();
    let components: Vec<_> = relative.components().collect();
    for component in components.iter().take(components.len().saturating_sub(1)) {
        current.push(component);
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(UnpackError::ThroughSymlink {
                    entry: entry.to_string(),
                    symlink: current
                        .strip_prefix(root)
                        .unwrap_or(&current)
                        .display()
                        .to_string(),
                });
            }
            Ok(_) => {}
            Err(_) => break, // missing: created below as a real directory
        }
    }
    Ok(())
}

fn io(entry: &str) -> impl FnOnce(std::io::Error) -> UnpackError + '_ {
    move |source| UnpackError::Io {
        entry: entry.to_string(),
        source,
    }
}

/// Create missing parent directories (as real directories, 0755).
fn make_parents(root: &Path, relative: &Path, entry: &str) -> Result<(), UnpackError> {
    if let Some(parent) = relative.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(root.join(parent)).map_err(io(entry))?;
    }
    Ok(())
}

/// Remove whatever is at `path` (without following it), unless it is a
/// directory and `keep_dir` is set.
fn clear(path: &Path, keep_dir: bool, entry: &str) -> Result<(), UnpackError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() && keep_dir => Ok(()),
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path).map_err(io(entry)),
        Ok(_) => std::fs::remove_file(path).map_err(io(entry)),
        Err(_) => Ok(()),
    }
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) -> std::io::Result<()> {
    let path = CString::new(path.as_os_str().as_bytes())?;
    let name = CString::new(name)?;
    // SAFETY: NUL-terminated path and name, and a value pointer/length pair from a slice.
    let rc = unsafe {
        nix::libc::lsetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Unpack `layer` into `target`, an empty directory that becomes this layer's
/// overlay lowerdir. On error the caller deletes `target`.
pub fn unpack(
    layer: impl Read,
    compression: Compression,
    target: &Path,
) -> Result<UnpackStats, UnpackError> {
    let reader: Box<dyn Read> = match compression {
        Compression::None => Box::new(layer),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(layer)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(layer).map_err(UnpackError::Read)?)
        }
    };
    let mut archive = tar::Archive::new(reader);
    let mut stats = UnpackStats::default();
    // Directory metadata is applied last, so read-only directories still get their files.
    let mut directories: Vec<(PathBuf, u32, u64, u64, i64)> = Vec::new();
    let root_user = is_root();
    for entry in archive.entries().map_err(UnpackError::Read)? {
        let mut entry = entry.map_err(UnpackError::Read)?;
        let raw = entry.path().map_err(UnpackError::Read)?.into_owned();
        let name = raw.display().to_string();
        let relative = relative(&raw).ok_or_else(|| UnpackError::Escape(name.clone()))?;
        if relative.as_os_str().is_empty() {
            continue; // the layer root itself
        }
        check_parents(target, &relative, &name)?;
        make_parents(target, &relative, &name)?;
        stats.entries += 1;
        let header = entry.header().clone();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let uid = header.uid().unwrap_or(0);
        let gid = header.gid().unwrap_or(0);
        let mtime = header.mtime().unwrap_or(0) as i64;
        let file_name = relative
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();

        // OCI whiteouts into overlay form.
        if file_name == OPAQUE {
            let dir = target.join(relative.parent().unwrap_or(Path::new("")));
            std::fs::create_dir_all(&dir).map_err(io(&name))?;
            set_xattr(&dir, "trusted.overlay.opaque", b"y").map_err(io(&name))?;
            stats.opaque_dirs += 1;
            continue;
        }
        if let Some(hidden) = file_name.strip_prefix(WHITEOUT_PREFIX) {
            let path = target.join(relative.with_file_name(hidden));
            clear(&path, false, &name)?;
            mknod(&path, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0)).map_err(|e| {
                UnpackError::Io {
                    entry: name.clone(),
                    source: e.into(),
                }
            })?;
            stats.whiteouts += 1;
            continue;
        }

        let path = target.join(&relative);
        let kind = header.entry_type();
        match kind {
            tar::EntryType::Directory => {
                clear(&path, true, &name)?;
                std::fs::create_dir_all(&path).map_err(io(&name))?;
                directories.push((path.clone(), mode, uid, gid, mtime));
                // Owner now (mode and time after the files are in).
                if root_user {
                    std::os::unix::fs::lchown(&path, Some(uid as u32), Some(gid as u32))
                        .map_err(io(&name))?;
                }
                continue;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                clear(&path, false, &name)?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .custom_flags(nix::libc::O_NOFOLLOW)
                    .mode(0o600)
                    .open(&path)
                    .map_err(io(&name))?;
                stats.bytes += std::io::copy(&mut entry, &mut file).map_err(io(&name))?;
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(UnpackError::Read)?
                    .ok_or_else(|| UnpackError::Unsupported {
                        entry: name.clone(),
                        kind: "symlink without target".into(),
                    })?;
                clear(&path, false, &name)?;
                // The target is stored as written: a symlink is never followed here.
                std::os::unix::fs::symlink(&link, &path).map_err(io(&name))?;
            }
            tar::EntryType::Link => {
                let link = entry
                    .link_name()
                    .map_err(UnpackError::Read)?
                    .ok_or_else(|| UnpackError::Unsupported {
                        entry: name.clone(),
                        kind: "hard link without target".into(),
                    })?;
                // Absolute targets are relative to the layer root, as Docker treats them.
                let outside = || UnpackError::HardLinkOutside {
                    entry: name.clone(),
                    target: link.display().to_string(),
                };
                let inside = relative_link(&link).ok_or_else(outside)?;
                check_parents(target, &inside, &name)?;
                let source = target.join(&inside);
                match std::fs::symlink_metadata(&source) {
                    Ok(meta) if meta.file_type().is_symlink() || meta.is_dir() => {
                        return Err(outside());
                    }
                    Ok(_) => {}
                    Err(_) => return Err(outside()),
                }
                clear(&path, false, &name)?;
                std::fs::hard_link(&source, &path).map_err(io(&name))?;
                continue;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                let flag = match kind {
                    tar::EntryType::Char => SFlag::S_IFCHR,
                    tar::EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                clear(&path, false, &name)?;
                mknod(
                    &path,
                    flag,
                    Mode::from_bits_truncate(mode),
                    makedev(major as u64, minor as u64),
                )
                .map_err(|e| UnpackError::Io {
                    entry: name.clone(),
                    source: e.into(),
                })?;
            }
            tar::EntryType::XGlobalHeader
            | tar::EntryType::XHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => continue,
            other => {
                return Err(UnpackError::Unsupported {
                    entry: name,
                    kind: format!("{other:?}"),
                });
            }
        }
        // Owner, mode, time and xattrs of a non-directory, never following it.
        let is_symlink = matches!(kind, tar::EntryType::Symlink);
        if root_user {
            std::os::unix::fs::lchown(&path, Some(uid as u32), Some(gid as u32))
                .map_err(io(&name))?;
        }
        if !is_symlink {
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode))
                .map_err(io(&name))?;
        }
        let time = TimeSpec::new(mtime, 0);
        let _ = utimensat(
            nix::fcntl::AT_FDCWD,
            &path,
            &time,
            &time,
            UtimensatFlags::NoFollowSymlink,
        );
        if let Ok(Some(extensions)) = entry.pax_extensions() {
            for extension in extensions.flatten() {
                if let Ok(key) = extension.key()
                    && let Some(attribute) = key.strip_prefix("SCHILY.xattr.")
                    && let Err(error) = set_xattr(&path, attribute, extension.value_bytes())
                {
                    tracing::debug!(entry = %name, attribute, %error, "xattr not kept");
                }
            }
        }
    }
    // Deepest first, so a parent's mtime is not disturbed by its children.
    directories.sort_by_key(|(path, ..)| std::cmp::Reverse(path.components().count()));
    for (path, mode, _, _, mtime) in directories {
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .map_err(io(&path.display().to_string()))?;
        let time = TimeSpec::new(mtime, 0);
        let _ = utimensat(
            nix::fcntl::AT_FDCWD,
            &path,
            &time,
            &time,
            UtimensatFlags::NoFollowSymlink,
        );
    }
    Ok(stats)
}

/// A hard link target as a path inside the layer (absolute = from the root).
fn relative_link(link: &Path) -> Option<PathBuf> {
    let inside = relative(link)?;
    (!inside.as_os_str().is_empty()).then_some(inside)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        build(&mut builder);
        builder.into_inner().unwrap()
    }

    fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(size);
        header.set_mode(mode);
        header.set_mtime(1_700_000_000);
        header
    }

    /// Append with a raw, unsanitised name (the tar crate refuses `..` in set_path).
    fn raw(
        builder: &mut tar::Builder<Vec<u8>>,
        kind: tar::EntryType,
        name: &str,
        link: Option<&str>,
        data: &[u8],
    ) {
        let mut h = header(kind, data.len() as u64, 0o644);
        let bytes = name.as_bytes();
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        if let Some(link) = link {
            let bytes = link.as_bytes();
            h.as_old_mut().linkname[..bytes.len()].copy_from_slice(bytes);
        }
        h.set_cksum();
        builder.append(&h, data).unwrap();
    }

    #[test]
    fn files_directories_symlinks_and_hard_links_round_trip() {
        let tarball = layer(|b| {
            raw(b, tar::EntryType::Directory, "bin/", None, b"");
            let mut h = header(tar::EntryType::Regular, 5, 0o755);
            h.set_path("bin/tool").unwrap();
            h.set_cksum();
            b.append(&h, &b"hello"[..]).unwrap();
            raw(b, tar::EntryType::Symlink, "bin/alias", Some("tool"), b"");
            raw(b, tar::EntryType::Link, "bin/hard", Some("bin/tool"), b"");
            raw(b, tar::EntryType::Symlink, "abs", Some("/etc/passwd"), b"");
        });
        let dir = tempfile::tempdir().unwrap();
        let stats = unpack(&tarball[..], Compression::None, dir.path()).unwrap();
        assert_eq!(stats.entries, 5);
        assert_eq!(
            std::fs::read(dir.path().join("bin/tool")).unwrap(),
            b"hello"
        );
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = std::fs::metadata(dir.path().join("bin/tool")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o755);
        assert_eq!(meta.mtime(), 1_700_000_000);
        assert_eq!(meta.nlink(), 2, "hard link shares the inode");
        assert_eq!(
            std::fs::read_link(dir.path().join("bin/alias")).unwrap(),
            PathBuf::from("tool")
        );
        // An absolute symlink is stored as written, inside the layer.
        assert_eq!(
            std::fs::read_link(dir.path().join("abs")).unwrap(),
            PathBuf::from("/etc/passwd")
        );
    }

    #[test]
    fn gzip_and_zstd_layers_unpack() {
        let tarball = layer(|b| raw(b, tar::EntryType::Regular, "a", None, b"x"));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tarball).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&tarball[..], 3).unwrap();
        for (bytes, compression) in [(gz, Compression::Gzip), (zst, Compression::Zstd)] {
            assert_eq!(Compression::sniff(&bytes), compression);
            let dir = tempfile::tempdir().unwrap();
            unpack(&bytes[..], compression, dir.path()).unwrap();
            assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"x");
        }
        assert_eq!(
            Compression::from_media_type("application/vnd.oci.image.layer.v1.tar+zstd"),
            Some(Compression::Zstd)
        );
        assert_eq!(
            Compression::from_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            Some(Compression::Gzip)
        );
        assert_eq!(Compression::from_media_type("text/plain"), None);
    }

    #[test]
    fn escaping_entries_are_refused_and_nothing_is_written_outside() {
        let outer = tempfile::tempdir().unwrap();
        let target = outer.path().join("layer");
        std::fs::create_dir(&target).unwrap();
        let sentinel = outer.path().join("sentinel");
        std::fs::write(&sentinel, b"untouched").unwrap();
        let cases: Vec<Vec<u8>> = vec![
            layer(|b| raw(b, tar::EntryType::Regular, "../escape", None, b"x")),
            layer(|b| {
                raw(
                    b,
                    tar::EntryType::Symlink,
                    "evil",
                    Some(outer.path().to_str().unwrap()),
                    b"",
                );
                raw(
                    b,
                    tar::EntryType::Regular,
                    "evil/sentinel",
                    None,
                    b"overwritten",
                );
            }),
            layer(|b| raw(b, tar::EntryType::Link, "hl", Some("../../outside"), b"")),
            layer(|b| {
                raw(b, tar::EntryType::Symlink, "up", Some(".."), b"");
                raw(b, tar::EntryType::Link, "hl", Some("up/sentinel"), b"");
            }),
        ];
        for tarball in cases {
            let error = unpack(&tarball[..], Compression::None, &target).unwrap_err();
            let text = error.to_string();
            assert!(
                text.contains("escapes") || text.contains("outside"),
                "{text}"
            );
        }
        assert_eq!(std::fs::read(&sentinel).unwrap(), b"untouched");
        let names: Vec<_> = std::fs::read_dir(outer.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 2, "nothing new beside the layer: {names:?}");
    }

    #[test]
    fn absolute_paths_land_inside_the_layer() {
        let tarball = layer(|b| raw(b, tar::EntryType::Regular, "/etc/passwd", None, b"root"));
        let dir = tempfile::tempdir().unwrap();
        unpack(&tarball[..], Compression::None, dir.path()).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("etc/passwd")).unwrap(),
            b"root"
        );
    }

    #[test]
    fn later_entries_replace_earlier_ones_and_read_only_dirs_get_their_files() {
        let tarball = layer(|b| {
            raw(b, tar::EntryType::Regular, "f", None, b"first");
            raw(b, tar::EntryType::Regular, "f", None, b"second");
            let mut h = header(tar::EntryType::Directory, 0, 0o555);
            h.set_path("ro/").unwrap();
            h.set_cksum();
            b.append(&h, &b""[..]).unwrap();
            raw(b, tar::EntryType::Regular, "ro/inside", None, b"ok");
        });
        let dir = tempfile::tempdir().unwrap();
        unpack(&tarball[..], Compression::None, dir.path()).unwrap();
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"second");
        assert_eq!(std::fs::read(dir.path().join("ro/inside")).unwrap(), b"ok");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(dir.path().join("ro"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o555
        );
    }

    #[test]
    fn whiteouts_become_overlay_devices_and_opaque_xattrs() {
        if !is_root() {
            eprintln!("skipped: overlay whiteouts need root (mknod, trusted.* xattrs)");
            return;
        }
        let tarball = layer(|b| {
            raw(b, tar::EntryType::Regular, "data/.wh.gone", None, b"");
            raw(
                b,
                tar::EntryType::Regular,
                "data/dir/.wh..wh..opq",
                None,
                b"",
            );
            raw(b, tar::EntryType::Regular, "data/dir/c", None, b"c");
        });
        let dir = tempfile::tempdir().unwrap();
        let stats = unpack(&tarball[..], Compression::None, dir.path()).unwrap();
        assert_eq!((stats.whiteouts, stats.opaque_dirs), (1, 1));
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let meta = std::fs::symlink_metadata(dir.path().join("data/gone")).unwrap();
        assert!(meta.file_type().is_char_device());
        assert_eq!(meta.rdev(), 0);
        assert!(!dir.path().join("data/.wh.gone").exists());
        let path = CString::new(dir.path().join("data/dir").as_os_str().as_bytes()).unwrap();
        let name = CString::new("trusted.overlay.opaque").unwrap();
        let mut value = [0u8; 4];
        // SAFETY: valid C strings and buffer.
        let n = unsafe {
            nix::libc::lgetxattr(
                path.as_ptr(),
                name.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        assert_eq!(&value[..n as usize], b"y");
    }

    #[test]
    fn a_truncated_layer_is_an_error_not_a_panic() {
        let tarball = layer(|b| raw(b, tar::EntryType::Regular, "big", None, &[7u8; 4096]));
        for cut in [10, 600, 1000] {
            let dir = tempfile::tempdir().unwrap();
            let _ = unpack(&tarball[..cut], Compression::None, dir.path());
        }
        let dir = tempfile::tempdir().unwrap();
        assert!(unpack(&b"\x1f\x8bnot gzip"[..], Compression::Gzip, dir.path()).is_err());
    }
}
