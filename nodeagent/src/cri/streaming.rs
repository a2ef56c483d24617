//! The CRI streaming server. Exec, Attach and PortForward answer with a
//! one-time URL on this server (as containerd and CRI-O do); the client
//! (kubelet's proxy, crictl) opens it as a WebSocket speaking Kubernetes'
//! channel protocol (`v5.channel.k8s.io`, `v4.channel.k8s.io`,
//! `channel.k8s.io`): each binary message starts with a channel byte — 0
//! stdin, 1 stdout, 2 stderr, 3 the final metav1.Status, 4 terminal resize
//! (`{"Width":w,"Height":h}`), 255 (v5) close a stream. Port forwarding
//! uses channels 2i (data) and 2i+1 (errors) for the i-th port, each first
//! announcing its port as two little-endian bytes.
//! Owns the tokens and the byte plumbing; which process runs and where is
//! the runtime's business.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{SinkExt, StreamExt};
use proto::cri;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::container::shim::AttachFrame;
use crate::runtime::{ExecTarget, Runtime, RuntimeError};

/// How long a URL stays valid, as kubelet's streaming server.
const TOKEN_TTL: Duration = Duration::from_secs(60);

/// The subprotocols served, preferred first.
pub const PROTOCOLS: [&str; 3] = ["v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"];

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
pub const CLOSE: u8 = 255;

#[derive(Debug, Clone)]
enum Pending {
    Exec(cri::ExecRequest),
    Attach(cri::AttachRequest),
    PortForward(cri::PortForwardRequest),
}

pub struct StreamingServer {
    base_url: String,
    runtime: Arc<Runtime>,
    pending: Mutex<HashMap<String, (Pending, Instant)>>,
}

impl StreamingServer {
    /// Binds `address` (port 0: any free port) and serves in the background.
    pub async fn start(address: SocketAddr, runtime: Arc<Runtime>) -> std::io::Result<Arc<Self>> {
        let listener = tokio::net::TcpListener::bind(address).await?;
        let local = listener.local_addr()?;
        let server = Arc::new(StreamingServer {
            base_url: format!("http://{local}"),
            runtime,
            pending: Mutex::default(),
        });
        let app = axum::Router::new()
            .route("/exec/{token}", get(exec))
            .route("/attach/{token}", get(attach))
            .route("/portforward/{token}", get(port_forward))
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(|| async { "ok" }))
            .route("/metrics", get(metrics))
            .with_state(server.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "streaming server stopped");
            }
        });
        tracing::info!(url = %server.base_url, "CRI streaming server listening");
        Ok(server)
    }

    fn register(&self, kind: &str, request: Pending) -> String {
        let mut bytes = [0u8; 16];
        if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
            let _ = std::io::Read::read_exact(&mut f, &mut bytes);
        }
        let token = hex::encode(bytes);
        let mut pending = self.pending.lock().expect("pending");
        pending.retain(|_, (_, at)| at.elapsed() < TOKEN_TTL);
        pending.insert(token.clone(), (request, Instant::now()));
        format!("{}/{kind}/{token}", self.base_url)
    }

    fn take(&self, token: &str) -> Option<Pending> {
        let (request, at) = self.pending.lock().expect("pending").remove(token)?;
        (at.elapsed() < TOKEN_TTL).then_some(request)
    }

    /// Checks an Exec request and returns its URL.
    pub fn exec_url(&self, request: cri::ExecRequest) -> Result<String, RuntimeError> {
        if request.cmd.is_empty() {
            return Err(RuntimeError::InvalidArgument("exec needs a command".into()));
        }
        check_streams(request.stdin, request.stdout, request.stderr, request.tty)?;
        self.runtime
            .exec_target(&request.container_id, &request.cmd)?;
        Ok(self.register("exec", Pending::Exec(request)))
    }

    pub fn attach_url(&self, request: cri::AttachRequest) -> Result<String, RuntimeError> {
        check_streams(request.stdin, request.stdout, request.stderr, request.tty)?;
        self.runtime.attach_target(&request.container_id)?;
        Ok(self.register("attach", Pending::Attach(request)))
    }

    pub fn port_forward_url(
        &self,
        request: cri::PortForwardRequest,
    ) -> Result<String, RuntimeError> {
        self.runtime.sandbox_netns(&request.pod_sandbox_id)?;
        Ok(self.register("portforward", Pending::PortForward(request)))
    }
}

fn check_streams(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> Result<(), RuntimeError> {
    if !(stdin || stdout || stderr) {
        return Err(RuntimeError::InvalidArgument(
            "one of stdin, stdout or stderr must be set".into(),
        ));
    }
    if tty && stderr {
        return Err(RuntimeError::InvalidArgument(
            "tty and stderr cannot both be set".into(),
        ));
    }
    Ok(())
}

fn gone() -> Response {
    (
        axum::http::StatusCode::NOT_FOUND,
        "unknown or expired streaming token\n",
    )
        .into_response()
}

/// The final status message of an exec or attach.
pub fn exit_status(code: Option<i32>) -> Vec<u8> {
    let status = match code {
        Some(0) => serde_json::json!({"metadata": {}, "status": "Success"}),
        Some(code) => serde_json::json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("command terminated with non-zero exit code: exit code {code}"),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        None => serde_json::json!({
            "metadata": {},
            "status": "Failure",
            "message": "the process could not be run",
        }),
    };
    let mut out = vec![ERROR];
    out.extend_from_slice(status.to_string().as_bytes());
    out
}

fn framed(channel: u8, data: &[u8]) -> Message {
    let mut out = Vec::with_capacity(data.len() + 1);
    out.push(channel);
    out.extend_from_slice(data);
    Message::Binary(out.into())
}

#[derive(serde::Deserialize)]
struct TerminalSize {
    #[serde(rename = "Width")]
    width: u16,
    #[serde(rename = "Height")]
    height: u16,
}

/// What a client message asks for.
enum ClientInput {
    Stdin(Vec<u8>),
    CloseStdin,
    Resize(u16, u16),
    Other,
    Closed,
}

fn client_input(message: Option<Result<Message, axum::Error>>) -> ClientInput {
    match message {
        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => ClientInput::Closed,
        Some(Ok(Message::Binary(data))) if !data.is_empty() => match data[0] {
            STDIN => ClientInput::Stdin(data[1..].to_vec()),
            RESIZE => match serde_json::from_slice::<TerminalSize>(&data[1..]) {
                Ok(size) => ClientInput::Resize(size.width, size.height),
                Err(_) => ClientInput::Other,
            },
            CLOSE if data.get(1) == Some(&STDIN) => ClientInput::CloseStdin,
            _ => ClientInput::Other,
        },
        _ => ClientInput::Other,
    }
}

/// Prometheus text: sandboxes and containers by state, pending stream URLs.
async fn metrics(State(server): State<Arc<StreamingServer>>) -> Response {
    let mut out = String::new();
    out.push_str("# HELP berth_cri_pod_sandboxes Pod sandboxes by state.\n# TYPE berth_cri_pod_sandboxes gauge\n");
    let sandboxes = server.runtime.list_pod_sandbox(None);
    for (state, name) in [
        (cri::PodSandboxState::SandboxReady, "ready"),
        (cri::PodSandboxState::SandboxNotready, "notready"),
    ] {
        let n = sandboxes.iter().filter(|s| s.state == state as i32).count();
        out.push_str(&format!(
            "berth_cri_pod_sandboxes{{state=\"{name}\"}} {n}\n"
        ));
    }
    out.push_str(
        "# HELP berth_cri_containers Containers by state.\n# TYPE berth_cri_containers gauge\n",
    );
    let containers = server.runtime.list_containers(None);
    for (state, name) in [
        (cri::ContainerState::ContainerCreated, "created"),
        (cri::ContainerState::ContainerRunning, "running"),
        (cri::ContainerState::ContainerExited, "exited"),
        (cri::ContainerState::ContainerUnknown, "unknown"),
    ] {
        let n = containers
            .iter()
            .filter(|c| c.state == state as i32)
            .count();
        out.push_str(&format!("berth_cri_containers{{state=\"{name}\"}} {n}\n"));
    }
    let pending = server.pending.lock().expect("pending").len();
    out.push_str(&format!(
        "# HELP berth_cri_stream_urls_pending Exec, attach and port-forward URLs not yet used.\n# TYPE berth_cri_stream_urls_pending gauge\nberth_cri_stream_urls_pending {pending}\n"
    ));
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
        .into_response()
}

async fn exec(
    State(server): State<Arc<StreamingServer>>,
    Path(token): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(Pending::Exec(request)) = server.take(&token) else {
        return gone();
    };
    let target = server
        .runtime
        .exec_target(&request.container_id, &request.cmd);
    upgrade
        .protocols(PROTOCOLS)
        .on_upgrade(move |socket| async move {
            match target {
                Ok(target) => run_exec(socket, target, request).await,
                Err(e) => {
                    let mut socket = socket;
                    let _ = socket.send(framed(STDERR, e.to_string().as_bytes())).await;
                    let _ = socket.send(Message::Binary(exit_status(None).into())).await;
                }
            }
        })
}

/// Reads a descriptor on the blocking pool, sending each chunk.
fn pump(fd: OwnedFd, tx: tokio::sync::mpsc::Sender<(u8, Vec<u8>)>, channel: u8) {
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::from(fd);
        let mut buffer = vec![0u8; 32 * 1024];
        loop {
            match std::io::Read::read(&mut file, &mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send((channel, buffer[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    });
}

async fn run_exec(mut socket: WebSocket, target: ExecTarget, request: cri::ExecRequest) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(u8, Vec<u8>)>(16);
    let mut stdin_writer: Option<std::fs::File> = None;
    let mut terminal: Option<OwnedFd> = None;
    let spawned = if request.tty {
        spawn_with_terminal(&target).await.map(|(child, master)| {
            if let Ok(reader) = master.try_clone() {
                pump(reader, tx.clone(), STDOUT);
            }
            if request.stdin
                && let Ok(writer) = master.try_clone()
            {
                stdin_writer = Some(std::fs::File::from(writer));
            }
            terminal = Some(master);
            child
        })
    } else {
        let piped = |on: bool| {
            if on {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            }
        };
        let mut command = target.command(None);
        command
            .stdin(piped(request.stdin))
            .stdout(piped(request.stdout))
            .stderr(piped(request.stderr))
            .kill_on_drop(true);
        command.spawn()
    };
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            let _ = socket.send(framed(STDERR, e.to_string().as_bytes())).await;
            let _ = socket.send(Message::Binary(exit_status(None).into())).await;
            return;
        }
    };
    let mut child_stdin = child.stdin.take();
    if let Some(out) = child.stdout.take() {
        spawn_reader(out, tx.clone(), STDOUT);
    }
    if let Some(err) = child.stderr.take() {
        spawn_reader(err, tx.clone(), STDERR);
    }
    drop(tx);
    let (mut sink, mut stream) = socket.split();
    let mut exit: Option<i32> = None;
    let mut outputs_open = true;
    let mut client_open = true;
    loop {
        if exit.is_some() && (!outputs_open || terminal.is_some()) {
            break;
        }
        tokio::select! {
            chunk = rx.recv(), if outputs_open => match chunk {
                Some((channel, data)) => {
                    if sink.send(framed(channel, &data)).await.is_err() {
                        break;
                    }
                }
                None => outputs_open = false,
            },
            status = child.wait(), if exit.is_none() => {
                exit = Some(status.map(|s| s.code().unwrap_or_else(|| {
                    use std::os::unix::process::ExitStatusExt;
                    128 + s.signal().unwrap_or(0)
                })).unwrap_or(255));
                if terminal.is_some() {
                    // The terminal's reader ends with the last holder of the
                    // slave; give it a moment to drain.
                    let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
                    while let Ok(Some((channel, data))) = tokio::time::timeout_at(deadline, rx.recv()).await {
                        let _ = sink.send(framed(channel, &data)).await;
                    }
                }
            },
            message = stream.next(), if client_open => match client_input(message) {
                ClientInput::Stdin(data) => {
                    if let Some(stdin) = child_stdin.as_mut() {
                        let _ = stdin.write_all(&data).await;
                    } else if let Some(writer) = stdin_writer.as_mut() {
                        let _ = std::io::Write::write_all(writer, &data);
                    }
                }
                ClientInput::CloseStdin => {
                    child_stdin = None;
                    stdin_writer = None;
                }
                ClientInput::Resize(width, height) => {
                    if let Some(t) = &terminal {
                        crate::container::shim::resize(t, width, height);
                    }
                }
                ClientInput::Other => {}
                ClientInput::Closed => {
                    client_open = false;
                    child_stdin = None;
                    stdin_writer = None;
                }
            },
        }
    }
    let _ = sink.send(Message::Binary(exit_status(exit).into())).await;
    let _ = sink.close().await;
}

/// Starts the exec helper with a terminal made inside the container;
/// returns the process and the terminal's master.
async fn spawn_with_terminal(
    target: &ExecTarget,
) -> std::io::Result<(tokio::process::Child, OwnedFd)> {
    let (ours, theirs) = crate::container::console::socket_pair()?;
    let fd = theirs.as_raw_fd();
    let mut command = target.command(Some(fd));
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    // SAFETY: only fcntl, which is async-signal-safe, runs in the child.
    unsafe {
        command.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn()?;
    drop(theirs);
    let master = tokio::task::spawn_blocking(move || {
        crate::container::console::receive_fd(ours.as_raw_fd(), Duration::from_secs(10))
    })
    .await
    .map_err(std::io::Error::other)?
    .map_err(std::io::Error::other)?;
    Ok((child, master))
}

fn spawn_reader(
    mut reader: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    tx: tokio::sync::mpsc::Sender<(u8, Vec<u8>)>,
    channel: u8,
) {
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 32 * 1024];
        while let Ok(n) = reader.read(&mut buffer).await {
            if n == 0 || tx.send((channel, buffer[..n].to_vec())).await.is_err() {
                break;
            }
        }
    });
}

async fn attach(
    State(server): State<Arc<StreamingServer>>,
    Path(token): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(Pending::Attach(request)) = server.take(&token) else {
        return gone();
    };
    let target = server.runtime.attach_target(&request.container_id);
    upgrade
        .protocols(PROTOCOLS)
        .on_upgrade(move |mut socket| async move {
            let (path, _tty, container_stdin) = match target {
                Ok(t) => t,
                Err(e) => {
                    let _ = socket.send(framed(STDERR, e.to_string().as_bytes())).await;
                    let _ = socket.send(Message::Binary(exit_status(None).into())).await;
                    return;
                }
            };
            let shim = match tokio::net::UnixStream::connect(&path).await {
                Ok(s) => s,
                Err(e) => {
                    let message = format!("connecting to the container's shim: {e}");
                    let _ = socket.send(framed(STDERR, message.as_bytes())).await;
                    let _ = socket.send(Message::Binary(exit_status(None).into())).await;
                    return;
                }
            };
            run_attach(socket, shim, request, container_stdin).await;
        })
}

async fn run_attach(
    socket: WebSocket,
    shim: tokio::net::UnixStream,
    request: cri::AttachRequest,
    container_stdin: bool,
) {
    let (mut shim_read, mut shim_write) = shim.into_split();
    let (mut sink, mut stream) = socket.split();
    let mut pending = Vec::new();
    let mut buffer = vec![0u8; 32 * 1024];
    loop {
        tokio::select! {
            read = shim_read.read(&mut buffer) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    pending.extend_from_slice(&buffer[..n]);
                    for (kind, data) in AttachFrame::decode(&mut pending) {
                        let wanted = match kind {
                            AttachFrame::STDOUT => request.stdout,
                            AttachFrame::STDERR => request.stderr,
                            _ => false,
                        };
                        if wanted && sink.send(framed(kind, &data)).await.is_err() {
                            return;
                        }
                    }
                }
            },
            message = stream.next() => {
                let frame = match client_input(message) {
                    ClientInput::Stdin(data) if request.stdin && container_stdin => {
                        Some(AttachFrame::encode(AttachFrame::STDIN, &data))
                    }
                    ClientInput::CloseStdin if request.stdin && container_stdin => {
                        Some(AttachFrame::encode(AttachFrame::STDIN, &[]))
                    }
                    ClientInput::Resize(w, h) => {
                        let mut payload = w.to_be_bytes().to_vec();
                        payload.extend_from_slice(&h.to_be_bytes());
                        Some(AttachFrame::encode(AttachFrame::RESIZE, &payload))
                    }
                    // Detaching leaves the container running.
                    ClientInput::Closed => return,
                    _ => None,
                };
                if let Some(frame) = frame
                    && shim_write.write_all(&frame).await.is_err()
                {
                    break;
                }
            },
        }
    }
    let _ = sink
        .send(Message::Binary(exit_status(Some(0)).into()))
        .await;
    let _ = sink.close().await;
}

/// The `port=N` pairs of a query string, in order.
fn query_ports(query: Option<&str>) -> Result<Vec<u16>, String> {
    query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.strip_prefix("port="))
        .map(|p| p.parse::<u16>().map_err(|_| format!("invalid port {p:?}")))
        .collect()
}

async fn port_forward(
    State(server): State<Arc<StreamingServer>>,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(Pending::PortForward(request)) = server.take(&token) else {
        return gone();
    };
    let mut ports = match query_ports(query.as_deref()) {
        Ok(ports) => ports,
        Err(e) => return (axum::http::StatusCode::BAD_REQUEST, e).into_response(),
    };
    if ports.is_empty() {
        ports = request
            .port
            .iter()
            .filter_map(|p| u16::try_from(*p).ok())
            .collect();
    }
    if ports.is_empty() {
        return (axum::http::StatusCode::BAD_REQUEST, "no port to forward\n").into_response();
    }
    let netns = server.runtime.sandbox_netns(&request.pod_sandbox_id);
    upgrade
        .protocols(["v4.channel.k8s.io", "portforward.k8s.io", "channel.k8s.io"])
        .on_upgrade(move |socket| async move {
            match netns {
                Ok(netns) => run_port_forward(socket, netns, ports).await,
                Err(e) => {
                    let mut socket = socket;
                    let _ = socket.send(framed(1, e.to_string().as_bytes())).await;
                }
            }
        })
}

/// Connects to 127.0.0.1:port inside a network namespace: a short-lived
/// thread joins the namespace, and the socket stays in it.
pub async fn connect_in_netns(
    netns: Option<PathBuf>,
    port: u16,
) -> std::io::Result<tokio::net::TcpStream> {
    let stream = tokio::task::spawn_blocking(move || {
        std::thread::spawn(move || -> std::io::Result<std::net::TcpStream> {
            if let Some(path) = netns {
                let file = std::fs::File::open(&path)?;
                // SAFETY: setns on an open namespace file, on this thread only.
                if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            let stream = std::net::TcpStream::connect_timeout(
                &SocketAddr::from(([127, 0, 0, 1], port)),
                Duration::from_secs(5),
            )?;
            stream.set_nonblocking(true)?;
            Ok(stream)
        })
        .join()
        .map_err(|_| std::io::Error::other("netns thread panicked"))?
    })
    .await
    .map_err(std::io::Error::other)??;
    tokio::net::TcpStream::from_std(stream)
}

async fn run_port_forward(socket: WebSocket, netns: Option<PathBuf>, ports: Vec<u16>) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(u8, Vec<u8>)>(16);
    let mut writers: HashMap<u8, tokio::net::tcp::OwnedWriteHalf> = HashMap::new();
    for (i, port) in ports.iter().enumerate() {
        let data = (2 * i) as u8;
        let error = data + 1;
        let announce = port.to_le_bytes();
        if sink.send(framed(data, &announce)).await.is_err()
            || sink.send(framed(error, &announce)).await.is_err()
        {
            return;
        }
        match connect_in_netns(netns.clone(), *port).await {
            Ok(conn) => {
                let (read, write) = conn.into_split();
                writers.insert(data, write);
                spawn_reader(read, tx.clone(), data);
            }
            Err(e) => {
                let message = format!("error forwarding port {port} to pod: {e}");
                let _ = sink.send(framed(error, message.as_bytes())).await;
            }
        }
    }
    drop(tx);
    let mut open = writers.len();
    loop {
        tokio::select! {
            chunk = rx.recv() => match chunk {
                Some((channel, data)) => {
                    if sink.send(framed(channel, &data)).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            message = stream.next() => match message {
                Some(Ok(Message::Binary(data))) if data.len() > 1 => {
                    if let Some(w) = writers.get_mut(&data[0])
                        && w.write_all(&data[1..]).await.is_err()
                    {
                        writers.remove(&data[0]);
                        open -= 1;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                _ => {}
            },
        }
        if open == 0 {
            break;
        }
    }
    let _ = sink.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_follow_kubernetes() {
        let ok: serde_json::Value = serde_json::from_slice(&exit_status(Some(0))[1..]).unwrap();
        assert_eq!(ok["status"], "Success");
        let failed = exit_status(Some(3));
        assert_eq!(failed[0], ERROR);
        let failed: serde_json::Value = serde_json::from_slice(&failed[1..]).unwrap();
        assert_eq!(failed["reason"], "NonZeroExitCode");
        assert_eq!(failed["details"]["causes"][0]["message"], "3");
    }

    #[test]
    fn ports_come_from_the_query() {
        assert_eq!(
            query_ports(Some("port=80&port=443")).unwrap(),
            vec![80, 443]
        );
        assert_eq!(query_ports(None).unwrap(), Vec::<u16>::new());
        assert!(query_ports(Some("port=http")).is_err());
    }

    #[test]
    fn stream_choices_are_checked() {
        assert!(check_streams(false, false, false, false).is_err());
        assert!(check_streams(true, true, true, true).is_err());
        assert!(check_streams(true, true, false, true).is_ok());
    }

    #[test]
    fn client_messages_decode_by_channel() {
        let msg = |b: &[u8]| Some(Ok(Message::Binary(b.to_vec().into())));
        assert!(matches!(client_input(msg(&[0, b'x'])), ClientInput::Stdin(d) if d == b"x"));
        assert!(matches!(
            client_input(msg(b"\x04{\"Width\":80,\"Height\":24}")),
            ClientInput::Resize(80, 24)
        ));
        assert!(matches!(
            client_input(msg(&[255, 0])),
            ClientInput::CloseStdin
        ));
        assert!(matches!(client_input(None), ClientInput::Closed));
    }
}
