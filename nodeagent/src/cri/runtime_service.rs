//! The CRI RuntimeService: a thin tonic adapter over [`Runtime`]. Runtime
//! errors become gRPC codes here and nowhere else.

use std::sync::Arc;

use proto::cri;
use tonic::{Request, Response, Status};

use super::streaming::StreamingServer;
use crate::runtime::{Runtime, RuntimeError};

pub struct RuntimeService {
    pub runtime: Arc<Runtime>,
    pub streaming: Arc<StreamingServer>,
}

/// Runtime errors as gRPC statuses.
pub fn status_of(error: RuntimeError) -> Status {
    match error {
        RuntimeError::NotFound(m) => Status::not_found(m),
        RuntimeError::InvalidArgument(m) => Status::invalid_argument(m),
        RuntimeError::FailedPrecondition(m) => Status::failed_precondition(m),
        RuntimeError::AlreadyExists(m) => Status::already_exists(m),
        RuntimeError::DeadlineExceeded(m) => Status::deadline_exceeded(m),
        RuntimeError::Internal(m) => Status::internal(m),
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn reply<T>(result: Result<T, RuntimeError>) -> Reply<T> {
    result.map(Response::new).map_err(status_of)
}

fn required<T>(value: Option<T>, what: &str) -> Result<T, Status> {
    value.ok_or_else(|| Status::invalid_argument(format!("{what} is required")))
}

#[tonic::async_trait]
impl cri::runtime_service_server::RuntimeService for RuntimeService {
    async fn version(&self, _: Request<cri::VersionRequest>) -> Reply<cri::VersionResponse> {
        Ok(Response::new(cri::VersionResponse {
            version: "0.1.0".into(),
            runtime_name: "berth".into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            runtime_api_version: "v1".into(),
        }))
    }

    async fn run_pod_sandbox(
        &self,
        request: Request<cri::RunPodSandboxRequest>,
    ) -> Reply<cri::RunPodSandboxResponse> {
        let request = request.into_inner();
        let config = required(request.config, "config")?;
        reply(
            self.runtime
                .run_pod_sandbox(config, request.runtime_handler)
                .await
                .map(|pod_sandbox_id| cri::RunPodSandboxResponse { pod_sandbox_id }),
        )
    }

    async fn stop_pod_sandbox(
        &self,
        request: Request<cri::StopPodSandboxRequest>,
    ) -> Reply<cri::StopPodSandboxResponse> {
        let id = request.into_inner().pod_sandbox_id;
        reply(
            self.runtime
                .stop_pod_sandbox(&id)
                .await
                .map(|_| cri::StopPodSandboxResponse {}),
        )
    }

    async fn remove_pod_sandbox(
        &self,
        request: Request<cri::RemovePodSandboxRequest>,
    ) -> Reply<cri::RemovePodSandboxResponse> {
        let id = request.into_inner().pod_sandbox_id;
        reply(
            self.runtime
                .remove_pod_sandbox(&id)
                .await
                .map(|_| cri::RemovePodSandboxResponse {}),
        )
    }

    async fn pod_sandbox_status(
        &self,
        request: Request<cri::PodSandboxStatusRequest>,
    ) -> Reply<cri::PodSandboxStatusResponse> {
        let request = request.into_inner();
        reply(
            self.runtime
                .pod_sandbox_status(&request.pod_sandbox_id, request.verbose)
                .map(|(status, info)| cri::PodSandboxStatusResponse {
                    status: Some(status),
                    info,
                    containers_statuses: Vec::new(),
                    timestamp: 0,
                }),
        )
    }

    async fn list_pod_sandbox(
        &self,
        request: Request<cri::ListPodSandboxRequest>,
    ) -> Reply<cri::ListPodSandboxResponse> {
        let filter = request.into_inner().filter;
        Ok(Response::new(cri::ListPodSandboxResponse {
            items: self.runtime.list_pod_sandbox(filter.as_ref()),
        }))
    }

    async fn create_container(
        &self,
        request: Request<cri::CreateContainerRequest>,
    ) -> Reply<cri::CreateContainerResponse> {
        let request = request.into_inner();
        let config = required(request.config, "config")?;
        reply(
            self.runtime
                .create_container(&request.pod_sandbox_id, config)
                .await
                .map(|container_id| cri::CreateContainerResponse { container_id }),
        )
    }

    async fn start_container(
        &self,
        request: Request<cri::StartContainerRequest>,
    ) -> Reply<cri::StartContainerResponse> {
        let id = request.into_inner().container_id;
        reply(
            self.runtime
                .start_container(&id)
                .await
                .map(|_| cri::StartContainerResponse {}),
        )
    }

    async fn stop_container(
        &self,
        request: Request<cri::StopContainerRequest>,
    ) -> Reply<cri::StopContainerResponse> {
        let request = request.into_inner();
        reply(
            self.runtime
                .stop_container(&request.container_id, request.timeout)
                .await
                .map(|_| cri::StopContainerResponse {}),
        )
    }

    async fn remove_container(
        &self,
        request: Request<cri::RemoveContainerRequest>,
    ) -> Reply<cri::RemoveContainerResponse> {
        let id = request.into_inner().container_id;
        reply(
            self.runtime
                .remove_container(&id)
                .await
                .map(|_| cri::RemoveContainerResponse {}),
        )
    }

    async fn list_containers(
        &self,
        request: Request<cri::ListContainersRequest>,
    ) -> Reply<cri::ListContainersResponse> {
        let filter = request.into_inner().filter;
        Ok(Response::new(cri::ListContainersResponse {
            containers: self.runtime.list_containers(filter.as_ref()),
        }))
    }

    async fn container_status(
        &self,
        request: Request<cri::ContainerStatusRequest>,
    ) -> Reply<cri::ContainerStatusResponse> {
        let request = request.into_inner();
        reply(
            self.runtime
                .container_status(&request.container_id, request.verbose)
                .map(|(status, info)| cri::ContainerStatusResponse {
                    status: Some(status),
                    info,
                }),
        )
    }

    async fn update_container_resources(
        &self,
        request: Request<cri::UpdateContainerResourcesRequest>,
    ) -> Reply<cri::UpdateContainerResourcesResponse> {
        let request = request.into_inner();
        let linux = required(request.linux, "linux resources")?;
        reply(
            self.runtime
                .update_container_resources(&request.container_id, linux)
                .await
                .map(|_| cri::UpdateContainerResourcesResponse {}),
        )
    }

    async fn reopen_container_log(
        &self,
        request: Request<cri::ReopenContainerLogRequest>,
    ) -> Reply<cri::ReopenContainerLogResponse> {
        let id = request.into_inner().container_id;
        reply(
            self.runtime
                .reopen_container_log(&id)
                .await
                .map(|_| cri::ReopenContainerLogResponse {}),
        )
    }

    async fn exec_sync(
        &self,
        request: Request<cri::ExecSyncRequest>,
    ) -> Reply<cri::ExecSyncResponse> {
        let request = request.into_inner();
        reply(
            self.runtime
                .exec_sync(&request.container_id, request.cmd, request.timeout)
                .await
                .map(|o| cri::ExecSyncResponse {
                    stdout: o.stdout,
                    stderr: o.stderr,
                    exit_code: o.exit_code,
                }),
        )
    }

    async fn exec(&self, request: Request<cri::ExecRequest>) -> Reply<cri::ExecResponse> {
        reply(
            self.streaming
                .exec_url(request.into_inner())
                .map(|url| cri::ExecResponse { url }),
        )
    }

    async fn attach(&self, request: Request<cri::AttachRequest>) -> Reply<cri::AttachResponse> {
        reply(
            self.streaming
                .attach_url(request.into_inner())
                .map(|url| cri::AttachResponse { url }),
        )
    }

    async fn port_forward(
        &self,
        request: Request<cri::PortForwardRequest>,
    ) -> Reply<cri::PortForwardResponse> {
        reply(
            self.streaming
                .port_forward_url(request.into_inner())
                .map(|url| cri::PortForwardResponse { url }),
        )
    }

    async fn container_stats(
        &self,
        request: Request<cri::ContainerStatsRequest>,
    ) -> Reply<cri::ContainerStatsResponse> {
        let id = request.into_inner().container_id;
        reply(
            self.runtime
                .container_stats(&id)
                .map(|stats| cri::ContainerStatsResponse { stats: Some(stats) }),
        )
    }

    async fn list_container_stats(
        &self,
        request: Request<cri::ListContainerStatsRequest>,
    ) -> Reply<cri::ListContainerStatsResponse> {
        let filter = request.into_inner().filter;
        Ok(Response::new(cri::ListContainerStatsResponse {
            stats: self.runtime.list_container_stats(filter.as_ref()),
        }))
    }

    async fn pod_sandbox_stats(
        &self,
        request: Request<cri::PodSandboxStatsRequest>,
    ) -> Reply<cri::PodSandboxStatsResponse> {
        let id = request.into_inner().pod_sandbox_id;
        reply(
            self.runtime
                .pod_sandbox_stats(&id)
                .map(|stats| cri::PodSandboxStatsResponse { stats: Some(stats) }),
        )
    }

    async fn list_pod_sandbox_stats(
        &self,
        request: Request<cri::ListPodSandboxStatsRequest>,
    ) -> Reply<cri::ListPodSandboxStatsResponse> {
        let filter = request.into_inner().filter;
        Ok(Response::new(cri::ListPodSandboxStatsResponse {
            stats: self.runtime.list_pod_sandbox_stats(filter.as_ref()),
        }))
    }

    async fn update_runtime_config(
        &self,
        _: Request<cri::UpdateRuntimeConfigRequest>,
    ) -> Reply<cri::UpdateRuntimeConfigResponse> {
        // The pod CIDR arrives here; the networking work will use it.
        Ok(Response::new(cri::UpdateRuntimeConfigResponse {}))
    }

    async fn status(&self, _: Request<cri::StatusRequest>) -> Reply<cri::StatusResponse> {
        let (network_ready, message) = self.runtime.network_status();
        Ok(Response::new(cri::StatusResponse {
            status: Some(cri::RuntimeStatus {
                conditions: vec![
                    cri::RuntimeCondition {
                        r#type: "RuntimeReady".into(),
                        status: true,
                        reason: String::new(),
                        message: String::new(),
                    },
                    cri::RuntimeCondition {
                        r#type: "NetworkReady".into(),
                        status: network_ready,
                        reason: if network_ready {
                            String::new()
                        } else {
                            "NetworkPluginNotReady".into()
                        },
                        message,
                    },
                ],
            }),
            ..Default::default()
        }))
    }

    async fn checkpoint_container(
        &self,
        _: Request<cri::CheckpointContainerRequest>,
    ) -> Reply<cri::CheckpointContainerResponse> {
        Err(Status::unimplemented(
            "checkpointing containers is not supported",
        ))
    }

    type GetContainerEventsStream = std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<cri::ContainerEventResponse, Status>> + Send>,
    >;

    async fn get_container_events(
        &self,
        _: Request<cri::GetEventsRequest>,
    ) -> Reply<Self::GetContainerEventsStream> {
        Err(Status::unimplemented(
            "container events are not supported; poll ListContainers",
        ))
    }

    async fn list_metric_descriptors(
        &self,
        _: Request<cri::ListMetricDescriptorsRequest>,
    ) -> Reply<cri::ListMetricDescriptorsResponse> {
        Ok(Response::new(cri::ListMetricDescriptorsResponse::default()))
    }

    async fn list_pod_sandbox_metrics(
        &self,
        _: Request<cri::ListPodSandboxMetricsRequest>,
    ) -> Reply<cri::ListPodSandboxMetricsResponse> {
        Ok(Response::new(cri::ListPodSandboxMetricsResponse::default()))
    }

    async fn runtime_config(
        &self,
        _: Request<cri::RuntimeConfigRequest>,
    ) -> Reply<cri::RuntimeConfigResponse> {
        Ok(Response::new(cri::RuntimeConfigResponse {
            linux: Some(cri::LinuxRuntimeConfiguration {
                cgroup_driver: cri::CgroupDriver::Cgroupfs as i32,
            }),
        }))
    }
}
