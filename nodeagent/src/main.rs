//! `berth-nodeagent`: parses flags and runs the CRI server, loads images, or
//! (re-executed by the agent itself) runs as a container's shim or as the
//! helper that starts a process inside a container.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The Berth node agent.
#[derive(Parser, Debug)]
#[command(name = "berth-nodeagent", version)]
struct Flags {
    /// Log filter (tracing EnvFilter syntax); RUST_LOG overrides it.
    #[arg(long, default_value = "info", global = true)]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the CRI (runtime.v1) server alone.
    Cri {
        /// Persistent state: content store, unpacked layers, image records, writable container layers.
        #[arg(long, default_value = "/var/lib/berth")]
        root: PathBuf,
        /// State that dies with the machine: sandbox and container records, namespaces, bundles.
        #[arg(long, default_value = "/run/berth")]
        state: PathBuf,
        /// The CRI unix socket.
        #[arg(long, default_value = "/run/berth/cri.sock")]
        socket: PathBuf,
        /// containerd-style registry configuration: <DIR>/<host>/hosts.toml.
        #[arg(long, default_value = "/etc/berth/certs.d")]
        registry_config_dir: PathBuf,
        /// Parent cgroup of pod sandboxes whose config names none.
        #[arg(long, default_value = "berth")]
        cgroup_root: String,
        /// Address of the exec/attach/port-forward streaming server (port 0: any free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        streaming_address: std::net::SocketAddr,
        /// Default pids limit of each container (0: unlimited); a container's
        /// `pids.max` in its unified resources overrides it.
        #[arg(long, default_value_t = 0)]
        pids_limit: i64,
    },
    /// Load images from an archive into the node's image store.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Run an OCI bundle in the foreground, as `runc run` does (used by the
    /// runtime benchmark; the CRI server runs containers under shims).
    Oci {
        #[command(subcommand)]
        command: OciCommand,
    },
    /// Internal: a container's shim, started by the CRI server.
    #[command(hide = true)]
    Shim {
        #[arg(long)]
        bundle: PathBuf,
        #[arg(long)]
        state_dir: PathBuf,
        #[arg(long)]
        log: PathBuf,
        #[arg(long)]
        stdin: bool,
        #[arg(long)]
        attach_socket: Option<PathBuf>,
    },
    /// Internal: the infra process of a pod sharing one pid namespace.
    #[command(hide = true)]
    Pause,
    /// Internal: run a command inside a running container.
    #[command(hide = true)]
    Nsexec {
        #[arg(long)]
        bundle: PathBuf,
        #[arg(long)]
        pid: i32,
        /// A unix socket descriptor: give the command a terminal made inside
        /// the container and send its master over it.
        #[arg(long)]
        console_fd: Option<i32>,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
enum ImageCommand {
    /// Import every image in an OCI image archive or a `docker save` tar (optionally gzip/zstd).
    Import {
        /// The archive.
        file: PathBuf,
        /// Persistent state of the node agent (as `cri --root`).
        #[arg(long, default_value = "/var/lib/berth")]
        root: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum OciCommand {
    /// Create, start and wait for the container of a bundle; exits with its code.
    Run {
        /// The bundle directory (config.json and the rootfs it names).
        #[arg(long, default_value = ".")]
        bundle: PathBuf,
    },
}

fn main() {
    let flags = Flags::parse();
    // Shim, nsexec and oci fork and set namespaces: they must stay
    // single-threaded, so they run before (and without) any async runtime.
    match flags.command {
        Command::Shim {
            bundle,
            state_dir,
            log,
            stdin,
            attach_socket,
        } => std::process::exit(berth_nodeagent::container::shim::run(
            berth_nodeagent::container::shim::ShimOptions {
                bundle,
                state_dir,
                log_path: log,
                stdin,
                attach_socket,
            },
        )),
        Command::Nsexec {
            bundle,
            pid,
            console_fd,
            command,
        } => std::process::exit(berth_nodeagent::container::exec::run(
            &bundle, pid, &command, console_fd,
        )),
        Command::Pause => std::process::exit(berth_nodeagent::container::pause::run()),
        Command::Oci {
            command: OciCommand::Run { bundle },
        } => match berth_nodeagent::container::run_foreground(&bundle) {
            Ok(code) => std::process::exit(code),
            Err(e) => fail(&e.to_string()),
        },
        command => {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&flags.log_level));
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .init();
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => fail(&format!("starting the async runtime: {e}")),
            };
            if let Err(error) = runtime.block_on(run(command)) {
                fail(&error);
            }
        }
    }
}

fn fail(message: &str) -> ! {
    eprintln!("berth-nodeagent: {message}");
    std::process::exit(1);
}

async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Cri {
            root,
            state,
            socket,
            registry_config_dir,
            cgroup_root,
            streaming_address,
            pids_limit,
        } => {
            let mut config = berth_nodeagent::cri::CriConfig::new(root, state, socket);
            config.registry_config_dir = Some(registry_config_dir);
            config.cgroup_root = cgroup_root;
            config.streaming_address = streaming_address;
            config.pids_limit = (pids_limit > 0).then_some(pids_limit);
            berth_nodeagent::cri::serve(config, async {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .expect("SIGTERM handler");
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            })
            .await
            .map_err(|e| e.to_string())
        }
        Command::Image {
            command: ImageCommand::Import { file, root },
        } => import(&file, &root).await,
        _ => unreachable!("handled before the async runtime starts"),
    }
}

async fn import(file: &std::path::Path, root: &std::path::Path) -> Result<(), String> {
    let config =
        berth_nodeagent::cri::CriConfig::new(root.to_path_buf(), PathBuf::new(), PathBuf::new());
    let images = berth_nodeagent::cri::image_manager(&config).map_err(|e| e.to_string())?;
    let imported = images
        .import_archive(file)
        .await
        .map_err(|e| e.to_string())?;
    for image in imported {
        let names = if image.repo_tags.is_empty() {
            "<none>".to_string()
        } else {
            image.repo_tags.join(", ")
        };
        println!("imported {} {names}", image.id);
    }
    Ok(())
}
