//! CRI Exec, Attach and PortForward through the agent's streaming server:
//! the URL each RPC returns is opened as a WebSocket speaking Kubernetes'
//! channel protocol (v4.channel.k8s.io), as kubelet's proxy and crictl do.

mod support;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use proto::cri::{self, runtime_service_client::RuntimeServiceClient};
use support::agent::Node;
use support::registry::{Registry, TestImage};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tonic::transport::Channel;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The CRI answers with an http:// URL; WebSocket clients dial it as ws://.
fn ws(url: &str) -> String {
    url.replacen("http://", "ws://", 1)
}

async fn open(url: &str, protocol: &str) -> Socket {
    let mut request = ws(url).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket");
    assert_eq!(
        response.headers()["Sec-WebSocket-Protocol"]
            .to_str()
            .unwrap(),
        protocol
    );
    socket
}

async fn send(socket: &mut Socket, channel: u8, data: &[u8]) {
    let mut frame = vec![channel];
    frame.extend_from_slice(data);
    socket.send(Message::Binary(frame.into())).await.unwrap();
}

/// A plain HTTP/1.0 GET; returns the whole response.
async fn http_get(address: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    out
}

/// Collects channel output until the status (channel 3) or the end.
async fn collect(socket: &mut Socket, until: impl Fn(&[Vec<u8>; 5]) -> bool) -> [Vec<u8>; 5] {
    let mut out: [Vec<u8>; 5] = Default::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, socket.next()).await {
        if let Message::Binary(data) = message
            && !data.is_empty()
            && (data[0] as usize) < out.len()
        {
            out[data[0] as usize].extend_from_slice(&data[1..]);
            if until(&out) {
                break;
            }
        }
    }
    out
}

struct Fixture {
    _registry: Registry,
    node: Node,
    client: RuntimeServiceClient<Channel>,
    image: String,
    sandbox_id: String,
    sandbox: cri::PodSandboxConfig,
}

async fn fixture() -> Fixture {
    let registry = Registry::start(None);
    registry.push("berth/busybox", "latest", &TestImage::busybox());
    let image = registry.reference("berth/busybox", "latest");
    let node = Node::new();
    node.pull(&image).await;
    let mut client = node.runtime().await;
    let sandbox = cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: "stream".into(),
            uid: "uid-stream".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "stream".into(),
        log_directory: node.dir.path().join("logs").display().to_string(),
        ..Default::default()
    };
    let sandbox_id = support::agent::run_sandbox(&mut client, &sandbox).await;
    Fixture {
        _registry: registry,
        node,
        client,
        image,
        sandbox_id,
        sandbox,
    }
}

impl Fixture {
    async fn run(&mut self, name: &str, command: &[&str], stdin: bool, tty: bool) -> String {
        let id = self
            .client
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: self.sandbox_id.clone(),
                config: Some(cri::ContainerConfig {
                    metadata: Some(cri::ContainerMetadata {
                        name: name.into(),
                        attempt: 0,
                    }),
                    image: Some(cri::ImageSpec {
                        image: self.image.clone(),
                        ..Default::default()
                    }),
                    command: command.iter().map(|s| s.to_string()).collect(),
                    log_path: format!("{name}.log"),
                    stdin,
                    tty,
                    ..Default::default()
                }),
                sandbox_config: Some(self.sandbox.clone()),
            })
            .await
            .unwrap()
            .into_inner()
            .container_id;
        self.client
            .start_container(cri::StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .unwrap();
        id
    }

    async fn exec_url(&mut self, id: &str, cmd: &[&str], tty: bool) -> String {
        self.client
            .exec(cri::ExecRequest {
                container_id: id.into(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                tty,
                stdin: true,
                stdout: true,
                stderr: !tty,
            })
            .await
            .unwrap()
            .into_inner()
            .url
    }

    /// Attaches to a container's stdin and stdout.
    async fn attach(&mut self, id: &str, tty: bool) -> Socket {
        let url = self
            .client
            .attach(cri::AttachRequest {
                container_id: id.into(),
                stdin: true,
                stdout: true,
                tty,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .url;
        open(&url, "v4.channel.k8s.io").await
    }

    async fn teardown(mut self) {
        self.client
            .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: self.sandbox_id.clone(),
            })
            .await
            .unwrap();
        assert!(self.node.mounts().is_empty());
    }
}

fn status(out: &[Vec<u8>; 5]) -> serde_json::Value {
    serde_json::from_slice(&out[3]).unwrap_or(serde_json::Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_with_stdin_and_with_a_terminal() {
    let mut f = fixture().await;
    let id = f.run("main", &["sleep", "1000"], false, false).await;

    // Pipes: stdin in, stdout and stderr apart, the exit code in the status.
    let url = f
        .exec_url(
            &id,
            &["sh", "-c", "read x; echo got $x; echo err >&2; exit 7"],
            false,
        )
        .await;
    let mut socket = open(&url, "v4.channel.k8s.io").await;
    send(&mut socket, 0, b"hi\n").await;
    let out = collect(&mut socket, |o| !o[3].is_empty()).await;
    assert_eq!(String::from_utf8_lossy(&out[1]), "got hi\n");
    assert_eq!(String::from_utf8_lossy(&out[2]), "err\n");
    let s = status(&out);
    assert_eq!(s["reason"], "NonZeroExitCode", "{s}");
    assert_eq!(s["details"]["causes"][0]["message"], "7");

    // The streaming server also answers health and metrics.
    let base = url
        .split("/exec/")
        .next()
        .unwrap()
        .trim_start_matches("http://");
    let metrics = http_get(base, "/metrics").await;
    assert!(
        metrics.contains("berth_cri_containers{state=\"running\"} 1"),
        "{metrics}"
    );
    assert!(http_get(base, "/healthz").await.ends_with("ok"));

    // A URL is good for one connection only.
    let reuse = tokio_tungstenite::connect_async(ws(&url)).await;
    assert!(reuse.is_err());

    // A terminal: the process sees a tty, and resizes reach it.
    let url = f
        .exec_url(&id, &["sh", "-c", "read go; tty; stty size"], true)
        .await;
    let mut socket = open(&url, "v5.channel.k8s.io").await;
    send(&mut socket, 4, br#"{"Width":100,"Height":40}"#).await;
    send(&mut socket, 0, b"go\n").await;
    let out = collect(&mut socket, |o| !o[3].is_empty()).await;
    let text = String::from_utf8_lossy(&out[1]);
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains("40 100"), "{text}");
    assert_eq!(status(&out)["status"], "Success");

    // Exec into a container that is not running is refused up front.
    let err = f
        .client
        .exec(cri::ExecRequest {
            container_id: "nope".into(),
            cmd: vec!["true".into()],
            stdout: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let err = f
        .client
        .exec(cri::ExecRequest {
            container_id: id.clone(),
            cmd: vec!["true".into()],
            tty: true,
            stdout: true,
            stderr: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    f.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_to_stdin_and_port_forward_into_the_pod() {
    let mut f = fixture().await;
    let echo = f.run("echo", &["cat"], true, false).await;
    let mut socket = f.attach(&echo, false).await;
    send(&mut socket, 0, b"ping\n").await;
    let out = collect(&mut socket, |o| o[1].ends_with(b"ping\n")).await;
    assert_eq!(String::from_utf8_lossy(&out[1]), "ping\n");
    drop(socket);
    // What went through attach is in the log too.
    let log = std::fs::read_to_string(f.node.dir.path().join("logs/echo.log")).unwrap();
    assert!(log.contains(" stdout F ping\n"), "{log}");

    // A container with a terminal of its own, made inside its devpts.
    let console = f
        .run(
            "console",
            &["sh", "-c", "tty; read x; echo got $x"],
            true,
            true,
        )
        .await;
    let mut socket = f.attach(&console, true).await;
    send(&mut socket, 0, b"there\n").await;
    let out = collect(&mut socket, |o| {
        String::from_utf8_lossy(&o[1]).contains("got there")
    })
    .await;
    assert!(
        String::from_utf8_lossy(&out[1]).contains("got there"),
        "{out:?}"
    );
    drop(socket);
    let log = std::fs::read_to_string(f.node.dir.path().join("logs/console.log")).unwrap();
    assert!(
        log.contains(" stdout F /dev/pts/0\r\n") || log.contains(" stdout F /dev/pts/0\r"),
        "{log}"
    );

    // A web server on the pod's loopback, reached only through port-forward.
    f.run(
        "web",
        &["sh", "-c", "mkdir -p /www && echo hello-pf > /www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www"],
        false,
        false,
    )
    .await;
    // httpd may still be starting: a refused connection comes back on the
    // error channel, and the forward is tried again.
    let mut text = String::new();
    for _ in 0..50 {
        let url = f
            .client
            .port_forward(cri::PortForwardRequest {
                pod_sandbox_id: f.sandbox_id.clone(),
                port: vec![8080],
            })
            .await
            .unwrap()
            .into_inner()
            .url;
        let mut socket = open(&format!("{url}?port=8080"), "v4.channel.k8s.io").await;
        // Each channel first announces its port.
        let announce = collect(&mut socket, |o| o[0].len() >= 2 && o[1].len() >= 2).await;
        assert_eq!(&announce[0][..2], &8080u16.to_le_bytes());
        send(&mut socket, 0, b"GET /index.html HTTP/1.0\r\n\r\n").await;
        let out = collect(&mut socket, |o| {
            String::from_utf8_lossy(&o[0]).contains("hello-pf") || o[1].len() > 2
        })
        .await;
        text = String::from_utf8_lossy(&out[0]).into_owned();
        if text.contains("hello-pf") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        text.contains("200 OK") && text.contains("hello-pf"),
        "{text}"
    );
    f.teardown().await;
}
