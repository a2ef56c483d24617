//! Resolves the user a container runs as from the image's USER, the CRI
//! security context and the image's own /etc/passwd and /etc/group, as
//! containerd does. Reads files through the rootfs without following links
//! out of it; owns no state.

use std::path::Path;

use crate::container::fs::secure_join;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

#[derive(Debug, Clone, PartialEq)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn read(rootfs: &Path, path: &str) -> String {
    secure_join(rootfs, Path::new(path))
        .ok()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default()
}

fn passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() >= 6).then(|| {
                Some(PasswdEntry {
                    name: f[0].to_string(),
                    uid: f[2].parse().ok()?,
                    gid: f[3].parse().ok()?,
                    home: f[5].to_string(),
                })
            })?
        })
        .collect()
}

fn groups(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() >= 3).then(|| {
                Some(GroupEntry {
                    name: f[0].to_string(),
                    gid: f[2].parse().ok()?,
                    members: f
                        .get(3)
                        .map(|m| {
                            m.split(',')
                                .filter(|s| !s.is_empty())
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default(),
                })
            })?
        })
        .collect()
}

/// What the CRI security context asks for.
#[derive(Debug, Clone, Default)]
pub struct UserRequest {
    pub run_as_user: Option<i64>,
    pub run_as_username: Option<String>,
    pub run_as_group: Option<i64>,
    pub supplemental_groups: Vec<i64>,
}

/// The user for a container: the request's uid or name, else the image's
/// USER (`name`, `uid`, `name:group`, `uid:gid`), else root.
pub fn resolve(
    rootfs: &Path,
    image_user: Option<&str>,
    request: &UserRequest,
) -> Result<ResolvedUser, String> {
    let users = passwd(&read(rootfs, "/etc/passwd"));
    let group_list = groups(&read(rootfs, "/etc/group"));
    let (user_part, group_part): (String, Option<String>) = if let Some(uid) = request.run_as_user {
        (uid.to_string(), None)
    } else if let Some(name) = request.run_as_username.as_deref().filter(|n| !n.is_empty()) {
        (name.to_string(), None)
    } else {
        match image_user.filter(|u| !u.is_empty()) {
            Some(u) => match u.split_once(':') {
                Some((user, group)) => (user.to_string(), Some(group.to_string())),
                None => (u.to_string(), None),
            },
            None => ("0".to_string(), None),
        }
    };
    let entry = match user_part.parse::<u32>() {
        Ok(uid) => users
            .iter()
            .find(|e| e.uid == uid)
            .cloned()
            .or(Some(PasswdEntry {
                name: String::new(),
                uid,
                gid: 0,
                home: "/".into(),
            })),
        Err(_) => Some(
            users
                .iter()
                .find(|e| e.name == user_part)
                .cloned()
                .ok_or_else(|| format!("no user {user_part:?} in the image's /etc/passwd"))?,
        ),
    }
    .expect("set above");
    let mut gid = entry.gid;
    if let Some(group) = group_part {
        gid = match group.parse::<u32>() {
            Ok(g) => g,
            Err(_) => group_list
                .iter()
                .find(|g| g.name == group)
                .map(|g| g.gid)
                .ok_or_else(|| format!("no group {group:?} in the image's /etc/group"))?,
        };
    }
    if let Some(g) = request.run_as_group {
        gid = u32::try_from(g).map_err(|_| format!("invalid runAsGroup {g}"))?;
    }
    let mut additional: Vec<u32> = Vec::new();
    if !entry.name.is_empty() {
        additional.extend(
            group_list
                .iter()
                .filter(|g| g.members.contains(&entry.name))
                .map(|g| g.gid),
        );
    }
    for g in &request.supplemental_groups {
        additional.push(u32::try_from(*g).map_err(|_| format!("invalid supplemental group {g}"))?);
    }
    additional.retain(|g| *g != gid);
    additional.sort_unstable();
    additional.dedup();
    Ok(ResolvedUser {
        uid: entry.uid,
        gid,
        additional_gids: additional,
        home: Some(entry.home).filter(|h| !h.is_empty()),
        name: Some(entry.name).filter(|n| !n.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\napp:x:1000:\nwheel:x:10:app,other\naudio:x:29:app\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn image_user_names_resolve_through_passwd_and_group() {
        let root = rootfs();
        let u = resolve(root.path(), Some("app"), &UserRequest::default()).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert_eq!(u.additional_gids, vec![10, 29]);
        assert_eq!(u.home.as_deref(), Some("/home/app"));
        let u = resolve(root.path(), Some("app:wheel"), &UserRequest::default()).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 10));
        let u = resolve(root.path(), Some("1234:5678"), &UserRequest::default()).unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids.len()), (1234, 5678, 0));
        assert!(resolve(root.path(), Some("ghost"), &UserRequest::default()).is_err());
    }

    #[test]
    fn the_security_context_wins_over_the_image() {
        let root = rootfs();
        let request = UserRequest {
            run_as_user: Some(1000),
            run_as_group: Some(3000),
            supplemental_groups: vec![4000],
            ..Default::default()
        };
        let u = resolve(root.path(), Some("root"), &request).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 3000));
        assert_eq!(u.additional_gids, vec![10, 29, 4000]);
        let u = resolve(root.path(), None, &UserRequest::default()).unwrap();
        assert_eq!((u.uid, u.gid), (0, 0));
    }
}
