//! The per-container shim: the agent binary re-executed as
//! `berth-nodeagent shim`. It creates the container from its bundle, tells
//! the agent the pid (or the error) on stdout, then stays as the container's
//! parent: it copies the container's output into the CRI log, reopens the
//! log on SIGUSR1, reaps, and writes `exit.json` when the container ends.
//! It never talks to the API server or to CRI; the agent reads its files.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use serde::{Deserialize, Serialize};

use super::log::{LogWriter, Stream};
use super::{ContainerError, Stdio};

/// Files the shim keeps in the container's state directory.
pub const INIT_FILE: &str = "init.json";
pub const EXIT_FILE: &str = "exit.json";
pub const FIFO_FILE: &str = "exec.fifo";

#[derive(Debug, Clone)]
pub struct ShimOptions {
    pub bundle: PathBuf,
    /// Where init.json, exit.json and exec.fifo live.
    pub state_dir: PathBuf,
    pub log_path: PathBuf,
    /// Keep the container's stdin open (a pipe the shim holds).
    pub stdin: bool,
    /// Where the shim listens for attach clients (see [`AttachFrame`]).
    pub attach_socket: Option<PathBuf>,
}

/// One frame on a shim's attach socket, both ways: a kind byte, a 4-byte
/// big-endian length, the payload. Kinds: 0 stdin (empty payload: close
/// stdin), 1 stdout, 2 stderr, 4 terminal resize (width and height as
/// big-endian u16).
pub struct AttachFrame;

impl AttachFrame {
    pub const STDIN: u8 = 0;
    pub const STDOUT: u8 = 1;
    pub const STDERR: u8 = 2;
    pub const RESIZE: u8 = 4;

    pub fn encode(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(payload.len() + 5);
        out.push(kind);
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// Splits complete frames off the front of `buffer`.
    pub fn decode(buffer: &mut Vec<u8>) -> Vec<(u8, Vec<u8>)> {
        let mut frames = Vec::new();
        while buffer.len() >= 5 {
            let len = u32::from_be_bytes([buffer[1], buffer[2], buffer[3], buffer[4]]) as usize;
            if buffer.len() < 5 + len {
                break;
            }
            let payload = buffer[5..5 + len].to_vec();
            frames.push((buffer[0], payload));
            buffer.drain(..5 + len);
        }
        frames
    }
}

/// The container's init process, as the shim saw it start.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InitRecord {
    pub pid: i32,
    /// From /proc/<pid>/stat, to tell it from a later process with its pid.
    pub start_time: u64,
    pub shim_pid: i32,
}

/// How the container ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExitRecord {
    pub exit_code: i32,
    pub signal: Option<i32>,
    pub oom_killed: bool,
    /// Unix nanoseconds.
    pub finished_at: i64,
}

/// Writes `value` as JSON to `dir/name` atomically.
pub fn write_json<T: Serialize>(dir: &Path, name: &str, value: &T) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec(value)?)?;
    std::fs::rename(&tmp, dir.join(name))
}

pub fn read_json<T: for<'de> Deserialize<'de>>(dir: &Path, name: &str) -> Option<T> {
    let bytes = std::fs::read(dir.join(name)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn now_nanos() -> i64 {
    jiff::Timestamp::now().as_nanosecond() as i64
}

/// Runs the shim; returns the shim's exit code.
pub fn run(options: ShimOptions) -> i32 {
    // SAFETY: setsid and prctl with integer arguments.
    unsafe {
        libc::setsid();
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGUSR1,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGPIPE,
    ] {
        mask.add(s);
    }
    if let Err(e) = mask.thread_block() {
        return handshake(Err(format!("blocking signals: {e}")));
    }
    let signals = match SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
    {
        Ok(s) => s,
        Err(e) => return handshake(Err(format!("signalfd: {e}"))),
    };
    match setup(&options) {
        Err(e) => handshake(Err(e.to_string())),
        Ok(running) => {
            let pid = running.pid;
            let record = InitRecord {
                pid,
                start_time: super::process_start_time(pid).unwrap_or(0),
                shim_pid: std::process::id() as i32,
            };
            if let Err(e) = write_json(&options.state_dir, INIT_FILE, &record) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
                return handshake(Err(format!("writing {INIT_FILE}: {e}")));
            }
            for w in &running.warnings {
                eprintln!("warning: {w}");
            }
            handshake(Ok((pid, &running.warnings)));
            supervise(&options, running, signals)
        }
    }
}

/// Tells the agent (reading our stdout) the outcome, then detaches stdio.
fn handshake(result: Result<(i32, &Vec<String>), String>) -> i32 {
    use std::io::Write;
    let mut out = std::io::stdout();
    let code = match result {
        Ok((pid, warnings)) => {
            for w in warnings {
                let _ = writeln!(out, "warn: {}", w.replace('\n', " "));
            }
            let _ = writeln!(out, "ok {pid}");
            0
        }
        Err(e) => {
            let _ = writeln!(out, "error: {}", e.replace('\n', " "));
            1
        }
    };
    let _ = out.flush();
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        // SAFETY: redirecting our own stdin/stdout to /dev/null.
        unsafe {
            libc::dup2(null.as_raw_fd(), 0);
            libc::dup2(null.as_raw_fd(), 1);
        }
    }
    code
}

struct Running {
    pid: i32,
    warnings: Vec<String>,
    cgroup: Option<crate::runtime::cgroups::Cgroup>,
    /// Output to copy into the log: (descriptor, stream).
    outputs: Vec<(OwnedFd, Stream)>,
    /// The container's stdin (pipe write end, or the terminal's master),
    /// held so it stays open and written by attach clients.
    stdin: Option<OwnedFd>,
    terminal: bool,
    log: LogWriter,
    attach: Option<std::os::unix::net::UnixListener>,
    clients: Vec<AttachClient>,
}

struct AttachClient {
    stream: std::os::unix::net::UnixStream,
    pending: Vec<u8>,
    /// Gone or stuck; dropped at the end of the loop turn.
    dead: bool,
}

fn setup(options: &ShimOptions) -> Result<Running, ContainerError> {
    let spec = super::load_spec(&options.bundle)?;
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let log = LogWriter::open(&options.log_path).map_err(|source| ContainerError::Io {
        context: format!("opening log {}", options.log_path.display()),
        source,
    })?;
    let fifo = options.state_dir.join(FIFO_FILE);
    let (stdio, outputs, stdin_keep) = if terminal {
        let (ours, theirs) =
            super::console::socket_pair().map_err(|source| ContainerError::Io {
                context: "console socket".into(),
                source,
            })?;
        let stdio = Stdio {
            stdin: super::dev_null()?,
            stdout: super::dev_null()?,
            stderr: super::dev_null()?,
            console: Some(theirs),
        };
        (stdio, Vec::new(), Some(ours))
    } else {
        let (out_r, out_w) = super::pipe()?;
        let (err_r, err_w) = super::pipe()?;
        let (stdin, keep) = if options.stdin {
            let (in_r, in_w) = super::pipe()?;
            (in_r, Some(in_w))
        } else {
            (super::dev_null()?, None)
        };
        let stdio = Stdio {
            stdin,
            stdout: out_w,
            stderr: err_w,
            console: None,
        };
        (
            stdio,
            vec![(out_r, Stream::Stdout), (err_r, Stream::Stderr)],
            keep,
        )
    };
    let attach = match &options.attach_socket {
        Some(path) => {
            let _ = std::fs::remove_file(path);
            let listener = std::os::unix::net::UnixListener::bind(path).map_err(|source| {
                ContainerError::Io {
                    context: format!("binding {}", path.display()),
                    source,
                }
            })?;
            listener
                .set_nonblocking(true)
                .map_err(|source| ContainerError::Io {
                    context: "attach socket".into(),
                    source,
                })?;
            Some(listener)
        }
        None => None,
    };
    let created = super::create(&options.bundle, &spec, &stdio, Some(&fifo))?;
    drop(stdio);
    // With a terminal, the container process sent its master before
    // reporting ready: it is both the output and the stdin.
    let (outputs, stdin_keep) = match stdin_keep {
        Some(console) if terminal => {
            let master =
                match super::console::receive_fd(console.as_raw_fd(), Duration::from_secs(5)) {
                    Ok(m) => m,
                    Err(e) => {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(created.pid),
                            Signal::SIGKILL,
                        );
                        if let Some(cgroup) = &created.cgroup {
                            let _ = cgroup.kill_all_and_remove(Duration::from_secs(5));
                        }
                        return Err(ContainerError::Setup(e));
                    }
                };
            let input = super::duplicate(&master)?;
            (vec![(master, Stream::Stdout)], Some(input))
        }
        keep => (outputs, keep),
    };
    for (fd, _) in &outputs {
        let _ = nix::fcntl::fcntl(
            fd.as_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
    }
    Ok(Running {
        pid: created.pid,
        warnings: created.warnings,
        cgroup: created.cgroup,
        outputs,
        stdin: stdin_keep,
        terminal,
        log,
        attach,
        clients: Vec::new(),
    })
}

impl Running {
    fn send(&mut self, kind: u8, data: &[u8]) {
        let frame = AttachFrame::encode(kind, data);
        for c in self.clients.iter_mut().filter(|c| !c.dead) {
            c.dead = std::io::Write::write_all(&mut c.stream, &frame).is_err();
        }
    }

    fn accept(&mut self) {
        let Some(listener) = &self.attach else { return };
        while let Ok((stream, _)) = listener.accept() {
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            self.clients.push(AttachClient {
                stream,
                pending: Vec::new(),
                dead: false,
            });
        }
    }

    /// Reads what an attach client sent; false when it is gone.
    fn serve_client(&mut self, index: usize, buffer: &mut [u8]) -> bool {
        let n = match std::io::Read::read(&mut self.clients[index].stream, buffer) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        self.clients[index].pending.extend_from_slice(&buffer[..n]);
        let frames = AttachFrame::decode(&mut self.clients[index].pending);
        for (kind, payload) in frames {
            match kind {
                // Closing stdin; a terminal stays open for the next client.
                AttachFrame::STDIN if payload.is_empty() && !self.terminal => {
                    self.stdin = None;
                }
                AttachFrame::STDIN if payload.is_empty() => {}
                AttachFrame::STDIN => {
                    if let Some(fd) = &self.stdin {
                        let _ = nix::unistd::write(fd, &payload);
                    }
                }
                AttachFrame::RESIZE if payload.len() == 4 && self.terminal => {
                    if let Some(fd) = &self.stdin {
                        resize(
                            fd,
                            u16::from_be_bytes([payload[0], payload[1]]),
                            u16::from_be_bytes([payload[2], payload[3]]),
                        );
                    }
                }
                _ => {}
            }
        }
        true
    }
}

/// Sets a terminal's window size.
pub fn resize(fd: &impl AsRawFd, width: u16, height: u16) {
    let size = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ with a valid winsize on a terminal descriptor.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &size) };
}

fn supervise(options: &ShimOptions, mut running: Running, signals: SignalFd) -> i32 {
    let mut exit: Option<WaitStatus> = None;
    let mut drain_deadline: Option<Instant> = None;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        if exit.is_some() && running.outputs.is_empty() {
            break;
        }
        if let Some(deadline) = drain_deadline
            && Instant::now() > deadline
        {
            break;
        }
        let mut fds = vec![nix::poll::PollFd::new(
            signals.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        for (fd, _) in &running.outputs {
            fds.push(nix::poll::PollFd::new(
                fd.as_fd(),
                nix::poll::PollFlags::POLLIN,
            ));
        }
        let outputs = running.outputs.len();
        if let Some(listener) = &running.attach {
            fds.push(nix::poll::PollFd::new(
                listener.as_fd(),
                nix::poll::PollFlags::POLLIN,
            ));
        }
        for client in &running.clients {
            fds.push(nix::poll::PollFd::new(
                client.stream.as_fd(),
                nix::poll::PollFlags::POLLIN,
            ));
        }
        let timeout = if exit.is_some() { 100u16 } else { 5000u16 };
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(timeout));
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        // Output first, so lines written just before exit are kept.
        let mut closed = Vec::new();
        for i in 0..running.outputs.len() {
            if !ready[i + 1] && exit.is_none() {
                continue;
            }
            loop {
                let (fd, stream) = &running.outputs[i];
                let stream = *stream;
                match nix::unistd::read(fd.as_fd(), &mut buffer) {
                    Ok(0) => {
                        closed.push(i);
                        break;
                    }
                    Ok(n) => {
                        running.log.write(stream, &buffer[..n]);
                        let kind = match stream {
                            Stream::Stdout => AttachFrame::STDOUT,
                            Stream::Stderr => AttachFrame::STDERR,
                        };
                        let data = buffer[..n].to_vec();
                        running.send(kind, &data);
                    }
                    Err(nix::errno::Errno::EAGAIN) => break,
                    Err(nix::errno::Errno::EINTR) => continue,
                    // EIO: the terminal's other side is closed.
                    Err(_) => {
                        closed.push(i);
                        break;
                    }
                }
            }
        }
        let client_base = outputs + 1 + usize::from(running.attach.is_some());
        let client_ready: Vec<bool> = ready[client_base.min(ready.len())..].to_vec();
        for (i, is_ready) in client_ready.iter().enumerate() {
            if *is_ready && !running.clients[i].dead && !running.serve_client(i, &mut buffer) {
                running.clients[i].dead = true;
            }
        }
        running.clients.retain(|c| !c.dead);
        if running.attach.is_some() && ready[outputs + 1] {
            running.accept();
        }
        for i in closed.into_iter().rev() {
            running.outputs.remove(i);
        }
        if ready[0] {
            while let Ok(Some(info)) = signals.read_signal() {
                match info.ssi_signo as i32 {
                    libc::SIGUSR1 => {
                        if let Err(e) = running.log.reopen() {
                            eprintln!("reopening the log: {e}");
                        }
                    }
                    libc::SIGCHLD => {}
                    other => eprintln!("shim ignores signal {other}"),
                }
            }
        }
        // Reap every child: the init, and orphans reparented to us.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(status) => {
                    if status.pid() == Some(nix::unistd::Pid::from_raw(running.pid)) {
                        exit = Some(status);
                        drain_deadline = Some(Instant::now() + Duration::from_secs(2));
                    }
                }
            }
        }
    }
    running.log.finish();
    let status = exit.unwrap_or(WaitStatus::Exited(
        nix::unistd::Pid::from_raw(running.pid),
        255,
    ));
    let oom_killed = running
        .cgroup
        .as_ref()
        .and_then(|c| c.stats().ok())
        .map(|s| s.oom_kills > 0)
        .unwrap_or(false);
    let record = ExitRecord {
        exit_code: super::exit_code(status),
        signal: match status {
            WaitStatus::Signaled(_, s, _) => Some(s as i32),
            _ => None,
        },
        oom_killed,
        finished_at: now_nanos(),
    };
    if let Err(e) = write_json(&options.state_dir, EXIT_FILE, &record) {
        eprintln!("writing {EXIT_FILE}: {e}");
        return 1;
    }
    0
}
