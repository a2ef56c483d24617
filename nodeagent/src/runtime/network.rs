//! The seam between sandboxes and pod networking. A sandbox calls `setup`
//! once its network namespace exists and `teardown` before it goes; the
//! networking work (bridge, veth, IPAM, port mappings) plugs in here.
//! `LoopbackOnly` is the plugin until then: the pod has `lo` and nothing
//! else, so no packet can leave the machine.

use std::path::Path;

use proto::cri;

pub trait PodNetwork: Send + Sync + std::fmt::Debug {
    /// Connects the sandbox's namespace; returns the pod IP if it has one.
    fn setup(
        &self,
        sandbox_id: &str,
        netns: &Path,
        config: &cri::PodSandboxConfig,
    ) -> Result<Option<String>, String>;
    /// Disconnects it; must succeed when called twice or after a failed setup.
    fn teardown(&self, sandbox_id: &str, netns: &Path) -> Result<(), String>;
    /// For the CRI NetworkReady condition: (ready, message).
    fn status(&self) -> (bool, String);
}

#[derive(Debug, Default)]
pub struct LoopbackOnly;

impl PodNetwork for LoopbackOnly {
    fn setup(
        &self,
        _: &str,
        _: &Path,
        _: &cri::PodSandboxConfig,
    ) -> Result<Option<String>, String> {
        Ok(None)
    }

    fn teardown(&self, _: &str, _: &Path) -> Result<(), String> {
        Ok(())
    }

    fn status(&self) -> (bool, String) {
        (true, "pods get a loopback interface only".into())
    }
}
