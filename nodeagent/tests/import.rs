//! `berth-nodeagent image import` (the real binary) loading an OCI image
//! archive and a `docker save` archive into a node's image store.

mod support;

use std::process::Command;

use support::registry::TestImage;

fn import(root: &std::path::Path, archive: &std::path::Path) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_berth-nodeagent"))
        .args(["image", "import"])
        .arg(archive)
        .arg("--root")
        .arg(root)
        .output()
        .expect("run berth-nodeagent");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn records(root: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(root.join("images/images.json")).unwrap()).unwrap()
}

#[test]
fn oci_and_docker_archives_import_with_their_names_and_unpacked_layers() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let image = TestImage::layered();

    let oci = dir.path().join("layered.oci.tar");
    image.write_oci_archive(&oci, "example.com/berth/layered:v1");
    let (ok, out, err) = import(&root, &oci);
    assert!(ok, "{out}{err}");
    assert!(out.contains("example.com/berth/layered:v1"), "{out}");

    let docker = dir.path().join("busybox.docker.tar");
    TestImage::busybox().write_docker_archive(&docker, "busybox:1.36");
    let (ok, out, err) = import(&root, &docker);
    assert!(ok, "{out}{err}");
    assert!(out.contains("docker.io/library/busybox:1.36"), "{out}");

    let images = records(&root);
    let layered = &images[image.config_digest()];
    assert_eq!(layered["repo_tags"][0], "example.com/berth/layered:v1");
    assert!(
        layered["repo_digests"][0]
            .as_str()
            .unwrap()
            .ends_with(&image.manifest_digest())
    );
    for diff_id in image.diff_ids() {
        let dir = root
            .join("images/layers")
            .join(diff_id.trim_start_matches("sha256:"));
        assert!(dir.is_dir(), "layer {diff_id} unpacked");
    }
    let busybox = images
        .as_object()
        .unwrap()
        .values()
        .find(|i| i["repo_tags"][0] == "docker.io/library/busybox:1.36")
        .expect("busybox imported");
    let layer = busybox["layers"][0]["diff_id"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    assert!(
        root.join("images/layers")
            .join(layer)
            .join("bin/busybox")
            .is_file()
    );
}

#[test]
fn a_corrupt_or_foreign_archive_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let junk = dir.path().join("junk.tar");
    std::fs::write(&junk, b"definitely not a tar archive").unwrap();
    let (ok, _, err) = import(&root, &junk);
    assert!(!ok);
    assert!(err.starts_with("berth-nodeagent: "), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    // A blob whose content does not match its name is refused.
    let oci = dir.path().join("tampered.tar");
    TestImage::busybox().write_oci_archive(&oci, "x:1");
    let mut bytes = std::fs::read(&oci).unwrap();
    let needle = b"root:x:0:0";
    if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
        bytes[at] = b'R';
        std::fs::write(&oci, &bytes).unwrap();
        let (ok, _, err) = import(&root, &oci);
        assert!(!ok, "a tampered blob must not import");
        assert!(
            err.contains("hashes to") || err.contains("mismatch"),
            "{err}"
        );
    }
}
