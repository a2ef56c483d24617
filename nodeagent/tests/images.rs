//! The CRI ImageService against a real local registry (Debian's
//! docker-registry on 127.0.0.1, images built from busybox-static), driven by
//! a CRI gRPC client over the unix socket, as kubelet or crictl would.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use proto::cri::image_service_client::ImageServiceClient;
use proto::cri::{
    AuthConfig, ImageFsInfoRequest, ImageSpec, ImageStatusRequest, ListImagesRequest,
    PullImageRequest, RemoveImageRequest,
};
use support::registry::{Registry, TestImage};
use tonic::transport::{Channel, Endpoint};

struct Node {
    root: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn node() -> (Node, ImageServiceClient<Channel>) {
    let root = tempfile::tempdir().unwrap();
    let socket = root.path().join("run/cri.sock");
    let config = berth_nodeagent::cri::CriConfig::new(
        root.path().join("lib"),
        root.path().join("run"),
        socket.clone(),
    );
    let server = tokio::spawn(async move {
        berth_nodeagent::cri::serve(config, std::future::pending())
            .await
            .unwrap();
    });
    for _ in 0..200 {
        if socket.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let path = socket.clone();
    let channel = Endpoint::try_from("http://[::]:50051")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?))
            }
        }))
        .await
        .unwrap();
    (Node { root, server }, ImageServiceClient::new(channel))
}

fn spec(image: &str) -> Option<ImageSpec> {
    Some(ImageSpec {
        image: image.into(),
        ..Default::default()
    })
}

fn pull(image: &str) -> PullImageRequest {
    PullImageRequest {
        image: spec(image),
        ..Default::default()
    }
}

fn layer_dir(node: &Node, diff_id: &str) -> PathBuf {
    node.root
        .path()
        .join("lib/images/layers")
        .join(diff_id.trim_start_matches("sha256:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_list_status_and_remove_an_image() {
    let registry = Registry::start(None);
    registry.push("berth/busybox", "latest", &TestImage::busybox());
    let (node, mut client) = node().await;
    let reference = registry.reference("berth/busybox", "latest");
    let pulled = client
        .pull_image(pull(&reference))
        .await
        .unwrap()
        .into_inner();
    assert!(pulled.image_ref.starts_with("sha256:"));

    let listed = client
        .list_images(ListImagesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.images.len(), 1);
    let image = &listed.images[0];
    assert_eq!(image.id, pulled.image_ref);
    assert_eq!(image.repo_tags, std::slice::from_ref(&reference));
    assert!(image.repo_digests[0].contains("@sha256:"));
    assert!(image.size > 0);

    // Found by its short name without a tag, and by a prefix of its ID.
    let short = reference.trim_end_matches(":latest");
    let status = client
        .image_status(ImageStatusRequest {
            image: spec(short),
            verbose: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.image.unwrap().id, pulled.image_ref);
    let info: serde_json::Value = serde_json::from_str(&status.info["info"]).unwrap();
    assert_eq!(info["imageSpec"]["config"]["Cmd"][0], "sh");
    let diff_id = info["layers"][0]["diffID"].as_str().unwrap().to_string();
    let rootfs = layer_dir(&node, &diff_id);
    assert!(
        rootfs.join("bin/busybox").is_file(),
        "layer unpacked at {}",
        rootfs.display()
    );
    assert_eq!(
        std::fs::read_link(rootfs.join("bin/sh")).unwrap(),
        PathBuf::from("busybox")
    );
    let by_id = client
        .image_status(ImageStatusRequest {
            image: spec(&pulled.image_ref[..19]),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(by_id.image.is_some());

    let fs = client
        .image_fs_info(ImageFsInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(fs.image_filesystems[0].used_bytes.as_ref().unwrap().value > 1_000_000);

    client
        .remove_image(RemoveImageRequest {
            image: spec(&reference),
        })
        .await
        .unwrap();
    assert!(
        client
            .list_images(ListImagesRequest::default())
            .await
            .unwrap()
            .into_inner()
            .images
            .is_empty()
    );
    assert!(!rootfs.exists(), "unused layer removed");
    // Removing again, and asking about a missing image, are not errors.
    client
        .remove_image(RemoveImageRequest {
            image: spec(&reference),
        })
        .await
        .unwrap();
    let missing = client
        .image_status(ImageStatusRequest {
            image: spec(&reference),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(missing.image.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whiteouts_and_opaque_directories_become_overlay_form() {
    let registry = Registry::start(None);
    registry.push("berth/layered", "v1", &TestImage::layered());
    let (node, mut client) = node().await;
    let reference = registry.reference("berth/layered", "v1");
    client.pull_image(pull(&reference)).await.unwrap();
    let status = client
        .image_status(ImageStatusRequest {
            image: spec(&reference),
            verbose: true,
        })
        .await
        .unwrap()
        .into_inner();
    let info: serde_json::Value = serde_json::from_str(&status.info["info"]).unwrap();
    let layers = info["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    let top = layer_dir(&node, layers[2]["diffID"].as_str().unwrap());
    use std::os::unix::fs::FileTypeExt;
    let whiteout = std::fs::symlink_metadata(top.join("data/remove")).unwrap();
    assert!(
        whiteout.file_type().is_char_device(),
        "whiteout is a 0:0 char device"
    );
    assert!(!top.join("data/.wh.remove").exists());
    let opaque = nix_getxattr(&top.join("data/dir"), "trusted.overlay.opaque");
    assert_eq!(opaque.as_deref(), Some(&b"y"[..]));
    assert!(top.join("data/dir/c").is_file());
}

fn nix_getxattr(path: &std::path::Path, name: &str) -> Option<Vec<u8>> {
    let path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    let name = std::ffi::CString::new(name).ok()?;
    let mut buffer = vec![0u8; 64];
    // SAFETY: valid NUL-terminated strings and a buffer of the length passed.
    let n = unsafe {
        libc_getxattr(
            path.as_ptr(),
            name.as_ptr(),
            buffer.as_mut_ptr().cast(),
            buffer.len(),
        )
    };
    (n >= 0).then(|| {
        buffer.truncate(n as usize);
        buffer
    })
}

unsafe extern "C" {
    #[link_name = "getxattr"]
    fn libc_getxattr(
        path: *const std::ffi::c_char,
        name: *const std::ffi::c_char,
        value: *mut std::ffi::c_void,
        size: usize,
    ) -> isize;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexes_docker_manifests_and_basic_auth() {
    let open = Registry::start(None);
    open.push_index("berth/multi", "latest", &TestImage::busybox());
    open.push(
        "berth/docker",
        "v2",
        &TestImage::busybox().docker_media_types(),
    );
    let locked = Registry::start(Some(("berth", "s3cret")));
    locked.push("berth/private", "v1", &TestImage::non_root());
    let (_node, mut client) = node().await;

    let multi = client
        .pull_image(pull(&open.reference("berth/multi", "latest")))
        .await
        .unwrap()
        .into_inner();
    let docker = client
        .pull_image(pull(&open.reference("berth/docker", "v2")))
        .await
        .unwrap()
        .into_inner();
    // The index resolves to the linux/amd64 manifest: the same busybox image.
    assert_eq!(multi.image_ref, docker.image_ref);

    let private = locked.reference("berth/private", "v1");
    let refused = client.pull_image(pull(&private)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused}");
    let mut with_auth = pull(&private);
    with_auth.auth = Some(AuthConfig {
        username: "berth".into(),
        password: "s3cret".into(),
        ..Default::default()
    });
    let pulled = client.pull_image(with_auth).await.unwrap().into_inner();
    let status = client
        .image_status(ImageStatusRequest {
            image: spec(&pulled.image_ref),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.image.unwrap().username, "app");

    let bad = client
        .pull_image(pull("Not A Reference"))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_of_one_image_share_the_download() {
    let registry = Registry::start(None);
    registry.push("berth/big", "v1", &TestImage::large(8));
    let (_node, client) = node().await;
    let reference = registry.reference("berth/big", "v1");
    let (mut a, mut b) = (client.clone(), client.clone());
    let (x, y) = tokio::join!(
        a.pull_image(pull(&reference)),
        b.pull_image(pull(&reference))
    );
    assert_eq!(
        x.unwrap().into_inner().image_ref,
        y.unwrap().into_inner().image_ref
    );
    let downloads = registry.blob_downloads();
    assert!(!downloads.is_empty());
    for (digest, count) in &downloads {
        assert_eq!(*count, 1, "blob {digest} downloaded {count} times");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malicious_layer_is_refused_and_writes_nothing_outside() {
    let registry = Registry::start(None);
    registry.push("berth/evil", "v1", &TestImage::malicious());
    let (node, mut client) = node().await;
    let before: Vec<_> = std::fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let error = client
        .pull_image(pull(&registry.reference("berth/evil", "v1")))
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::Unavailable, "{error}");
    assert!(
        error.message().contains("escape") || error.message().contains("outside"),
        "{error}"
    );
    let after: Vec<_> = std::fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let escaped: Vec<_> = after
        .iter()
        .filter(|n| !before.contains(n) && n.to_string_lossy().starts_with("berth-escape"))
        .collect();
    assert!(escaped.is_empty(), "{escaped:?}");
    let layers = std::fs::read_dir(node.root.path().join("lib/images/layers"))
        .unwrap()
        .count();
    assert_eq!(layers, 0, "no half-unpacked layer is kept");
    assert!(!node.root.path().join("lib/images/escape-relative").exists());
    assert!(
        client
            .list_images(ListImagesRequest::default())
            .await
            .unwrap()
            .into_inner()
            .images
            .is_empty()
    );
}
