//! Path resolution inside a container's root filesystem. A path from a spec
//! or an image is resolved component by component with every symlink read
//! as if the rootfs were `/`, so neither `..` nor a symlink in the image can
//! name a host path. Owns no state; must not follow links itself.

use std::path::{Component, Path, PathBuf};

const MAX_SYMLINKS: usize = 255;

/// `root` joined with `unsafe_path`, every symlink along the way resolved
/// within `root`. Components that do not exist are appended as they are.
pub fn secure_join(root: &Path, unsafe_path: &Path) -> std::io::Result<PathBuf> {
    let mut resolved = PathBuf::new(); // relative to root
    let mut pending: Vec<std::ffi::OsString> = components(unsafe_path);
    pending.reverse();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&part);
        let full = root.join(&candidate);
        match std::fs::symlink_metadata(&full) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(std::io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = std::fs::read_link(&full)?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                let mut more = components(&target);
                more.reverse();
                pending.extend(more);
            }
            _ => resolved = candidate,
        }
    }
    Ok(root.join(resolved))
}

fn components(path: &Path) -> Vec<std::ffi::OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn dotdot_and_symlinks_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        symlink("/etc", root.join("abs")).unwrap();
        symlink("../../../../etc", root.join("etc/rel")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        assert_eq!(
            secure_join(root, Path::new("/../../x")).unwrap(),
            root.join("x")
        );
        assert_eq!(
            secure_join(root, Path::new("/abs/passwd")).unwrap(),
            root.join("etc/passwd")
        );
        assert_eq!(
            secure_join(root, Path::new("etc/rel/hosts")).unwrap(),
            root.join("etc/hosts")
        );
        assert!(secure_join(root, Path::new("/loop/x")).is_err());
        assert_eq!(
            secure_join(root, Path::new("/new/dir")).unwrap(),
            root.join("new/dir")
        );
    }
}
