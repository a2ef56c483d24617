//! Test helpers shared by the API server's integration tests: a real etcd
//! process and a real berth-apiserver process on loopback ports, each killed
//! and its directory removed when dropped (also when a test fails), and a
//! kubectl runner pointed at the server.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (the listener is closed before returning).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free port")
}

/// An etcd server of its own, with its data in a temporary directory.
pub struct Etcd {
    child: Child,
    pub endpoint: String,
    _dir: tempfile::TempDir,
    command: Vec<std::ffi::OsString>,
    client_port: u16,
}

impl Etcd {
    /// etcd for tests: fsync off, since the tests check semantics, not durability.
    pub fn start() -> Etcd {
        Self::start_with(true)
    }

    /// etcd as in production (fsync on), for benchmarks.
    pub fn start_durable() -> Etcd {
        Self::start_with(false)
    }

    fn start_with(unsafe_no_fsync: bool) -> Etcd {
        let dir = tempfile::tempdir().expect("tempdir");
        let client = free_port();
        let peer = free_port();
        let endpoint = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let binary = which_etcd();
        let mut command = Command::new(binary);
        if unsafe_no_fsync {
            command.arg("--unsafe-no-fsync");
        }
        command
            .arg("--name")
            .arg("berth-test")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--listen-client-urls")
            .arg(&endpoint)
            .arg("--advertise-client-urls")
            .arg(&endpoint)
            .arg("--listen-peer-urls")
            .arg(&peer_url)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer_url)
            .arg("--initial-cluster")
            .arg(format!("berth-test={peer_url}"));
        let argv: Vec<std::ffi::OsString> = std::iter::once(command.get_program().to_owned())
            .chain(command.get_args().map(|a| a.to_owned()))
            .collect();
        let child = spawn_logged(&argv, dir.path());
        let etcd = Etcd {
            child,
            endpoint,
            _dir: dir,
            command: argv,
            client_port: client,
        };
        etcd.wait_listening();
        etcd
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.client_port)).is_err() {
            assert!(Instant::now() < deadline, "etcd did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kill etcd and start it again on the same data directory and ports.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn_logged(&self.command, self._dir.path());
        self.wait_listening();
    }
}

fn spawn_logged(argv: &[std::ffi::OsString], dir: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("etcd.log"))
        .expect("etcd log");
    Command::new(&argv[0])
        .args(&argv[1..])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start etcd (run scripts/setup.sh to install etcd-server)")
}

fn which_etcd() -> PathBuf {
    for candidate in ["/usr/bin/etcd", "/usr/local/bin/etcd"] {
        if std::path::Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    "etcd".into()
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Which store the API server under test uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Etcd,
}

/// A berth-apiserver process of its own, on a free port, with its own data dir.
pub struct ApiServer {
    child: Child,
    pub dir: tempfile::TempDir,
    pub url: String,
    pub kubeconfig: PathBuf,
    etcd: Option<Etcd>,
    backend: Backend,
}

impl ApiServer {
    pub fn start(backend: Backend) -> ApiServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let etcd = (backend == Backend::Etcd).then(Etcd::start);
        let mut server = ApiServer {
            child: spawn_apiserver(dir.path(), etcd.as_ref()),
            kubeconfig: dir.path().join("data/kubeconfig"),
            url: String::new(),
            dir,
            etcd,
            backend,
        };
        server.url = server.wait_ready();
        server
    }

    /// Kill the server with SIGKILL and start it again on the same data.
    pub fn kill9_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.kubeconfig);
        self.child = spawn_apiserver(self.dir.path(), self.etcd.as_ref());
        self.url = self.wait_ready();
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    fn wait_ready(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(&self.kubeconfig)
                && let Some(line) = text.lines().find(|l| l.trim_start().starts_with("server:"))
            {
                return line
                    .trim_start()
                    .trim_start_matches("server:")
                    .trim()
                    .to_string();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self.dir.path().join("apiserver.log"))
                    .unwrap_or_default();
                panic!("berth-apiserver exited with {status}:\n{log}");
            }
            assert!(Instant::now() < deadline, "berth-apiserver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Run a kubectl binary against this server; returns (success, stdout, stderr).
    pub fn kubectl_with(&self, binary: &str, args: &[&str]) -> (bool, String, String) {
        self.kubectl_env(binary, args, &[])
    }

    pub fn kubectl_env(
        &self,
        binary: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> (bool, String, String) {
        let output = Command::new(binary)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.dir.path().join("kube-cache"))
            .env("HOME", self.dir.path())
            .envs(env.iter().copied())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// kubectl 1.32 (the dispatcher picks the built-in 1.32 for this server).
    pub fn kubectl(&self, args: &[&str]) -> (bool, String, String) {
        self.kubectl_with("kubectl", args)
    }

    /// kubectl that must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let (success, stdout, stderr) = self.kubectl(args);
        assert!(
            success,
            "kubectl {args:?} failed:\nstdout: {stdout}\nstderr: {stderr}"
        );
        stdout
    }

    /// kubectl that must fail; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let (success, stdout, stderr) = self.kubectl(args);
        assert!(
            !success,
            "kubectl {args:?} should have failed:\nstdout: {stdout}"
        );
        stderr
    }

    /// Write a file into the server's scratch dir and return its path.
    pub fn file(&self, name: &str, contents: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write test file");
        path.to_string_lossy().into_owned()
    }
}

fn spawn_apiserver(dir: &std::path::Path, etcd: Option<&Etcd>) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("apiserver.log"))
        .expect("apiserver log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_berth-apiserver"));
    command
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--port")
        .arg("0")
        .stdout(Stdio::null())
        .stderr(log);
    if let Some(etcd) = etcd {
        command.arg("--etcd-servers").arg(&etcd.endpoint);
    }
    command.spawn().expect("start berth-apiserver")
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
