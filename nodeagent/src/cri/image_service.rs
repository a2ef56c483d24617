//! The CRI ImageService: a thin tonic adapter over [`ImageManager`]. Image
//! errors become gRPC codes here and nowhere else.

use std::collections::HashMap;
use std::sync::Arc;

use proto::cri::{
    self, FilesystemIdentifier, FilesystemUsage, ImageFsInfoRequest, ImageFsInfoResponse,
    ImageStatusRequest, ImageStatusResponse, ListImagesRequest, ListImagesResponse,
    PullImageRequest, PullImageResponse, RemoveImageRequest, RemoveImageResponse, UInt64Value,
};
use tonic::{Request, Response, Status};

use crate::image::{ImageError, ImageManager, ImageRecord, PullAuth};

pub struct ImageService {
    pub images: Arc<ImageManager>,
    /// The runtime whose containers pin images (None: images only).
    pub runtime: Option<Arc<crate::runtime::Runtime>>,
}

/// Image errors as gRPC statuses.
pub fn status_of(error: ImageError) -> Status {
    match &error {
        ImageError::InvalidReference(..) => Status::invalid_argument(error.to_string()),
        ImageError::NotFound(_) => Status::not_found(error.to_string()),
        ImageError::Pull { .. } | ImageError::Layer { .. } => {
            Status::unavailable(error.to_string())
        }
        ImageError::Store(_) => Status::internal(error.to_string()),
    }
}

fn requested_image(spec: Option<&cri::ImageSpec>) -> Result<String, Status> {
    spec.map(|s| s.image.clone())
        .filter(|i| !i.is_empty())
        .ok_or_else(|| Status::invalid_argument("image reference is required"))
}

/// The CRI view of an image record (uid/username from the config's User).
pub fn to_cri(image: &ImageRecord) -> cri::Image {
    let (uid, username) = match image
        .config
        .user
        .as_deref()
        .map(|u| u.split(':').next().unwrap_or(u))
    {
        Some(user) => match user.parse::<i64>() {
            Ok(uid) => (Some(cri::Int64Value { value: uid }), String::new()),
            Err(_) => (None, user.to_string()),
        },
        None => (Some(cri::Int64Value { value: 0 }), String::new()),
    };
    cri::Image {
        id: image.id.clone(),
        repo_tags: image.repo_tags.clone(),
        repo_digests: image.repo_digests.clone(),
        size: image.size,
        uid,
        username,
        spec: Some(cri::ImageSpec {
            image: image.id.clone(),
            ..Default::default()
        }),
        pinned: image.pinned,
    }
}

#[tonic::async_trait]
impl cri::image_service_server::ImageService for ImageService {
    async fn list_images(
        &self,
        request: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        let filter = request
            .into_inner()
            .filter
            .and_then(|f| f.image)
            .map(|i| i.image)
            .filter(|i| !i.is_empty());
        let images = match filter {
            Some(wanted) => self.images.find(&wanted).into_iter().collect(),
            None => self.images.list(),
        };
        Ok(Response::new(ListImagesResponse {
            images: images.iter().map(to_cri).collect(),
        }))
    }

    async fn image_status(
        &self,
        request: Request<ImageStatusRequest>,
    ) -> Result<Response<ImageStatusResponse>, Status> {
        let request = request.into_inner();
        let wanted = requested_image(request.image.as_ref())?;
        // An absent image is a successful answer with no image, as CRI specifies.
        let Some(image) = self.images.find(&wanted) else {
            return Ok(Response::new(ImageStatusResponse::default()));
        };
        let mut info = HashMap::new();
        if request.verbose {
            let layers: Vec<_> = image
                .layers
                .iter()
                .map(|l| serde_json::json!({"digest": l.digest, "diffID": l.diff_id, "mediaType": l.media_type, "size": l.size}))
                .collect();
            info.insert(
                "info".to_string(),
                serde_json::json!({"imageSpec": {"config": {
                    "User": image.config.user, "Env": image.config.env, "Entrypoint": image.config.entrypoint,
                    "Cmd": image.config.cmd, "WorkingDir": image.config.working_dir, "Labels": image.config.labels,
                    "StopSignal": image.config.stop_signal,
                }}, "layers": layers})
                .to_string(),
            );
        }
        Ok(Response::new(ImageStatusResponse {
            image: Some(to_cri(&image)),
            info,
        }))
    }

    async fn pull_image(
        &self,
        request: Request<PullImageRequest>,
    ) -> Result<Response<PullImageResponse>, Status> {
        let request = request.into_inner();
        let reference = requested_image(request.image.as_ref())?;
        let auth = request
            .auth
            .map(|a| PullAuth {
                username: Some(a.username),
                password: Some(a.password),
                auth: Some(a.auth),
                registry_token: Some(a.registry_token),
                identity_token: Some(a.identity_token),
            })
            .unwrap_or_default();
        tracing::info!(%reference, "pulling image");
        let image = self
            .images
            .pull(&reference, auth)
            .await
            .map_err(status_of)?;
        Ok(Response::new(PullImageResponse {
            image_ref: image.id,
        }))
    }

    async fn remove_image(
        &self,
        request: Request<RemoveImageRequest>,
    ) -> Result<Response<RemoveImageResponse>, Status> {
        let reference = requested_image(request.into_inner().image.as_ref())?;
        // Containers run on the image's layers: it stays while one exists.
        if let (Some(runtime), Some(image)) = (&self.runtime, self.images.find(&reference)) {
            let users = runtime.containers_using_image(&image.id);
            if !users.is_empty() {
                return Err(Status::failed_precondition(format!(
                    "image {reference} is in use by container {}",
                    users.join(", ")
                )));
            }
        }
        self.images.remove(&reference).map_err(status_of)?;
        Ok(Response::new(RemoveImageResponse {}))
    }

    async fn image_fs_info(
        &self,
        _: Request<ImageFsInfoRequest>,
    ) -> Result<Response<ImageFsInfoResponse>, Status> {
        let (bytes, inodes) = self.images.usage();
        let usage = FilesystemUsage {
            timestamp: jiff::Timestamp::now().as_nanosecond() as i64,
            fs_id: Some(FilesystemIdentifier {
                mountpoint: self.images.root().display().to_string(),
            }),
            used_bytes: Some(UInt64Value { value: bytes }),
            inodes_used: Some(UInt64Value { value: inodes }),
        };
        Ok(Response::new(ImageFsInfoResponse {
            image_filesystems: vec![usage],
            container_filesystems: vec![],
        }))
    }
}
