//! `berth-nodeagent`: parses flags and runs the CRI server, or loads images.

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
        /// Persistent state: content store, unpacked layers, image records.
        #[arg(long, default_value = "/var/lib/berth")]
        root: PathBuf,
        /// State that dies with the machine: sockets.
        #[arg(long, default_value = "/run/berth")]
        state: PathBuf,
        /// The CRI unix socket.
        #[arg(long, default_value = "/run/berth/cri.sock")]
        socket: PathBuf,
        /// containerd-style registry configuration: <DIR>/<host>/hosts.toml.
        #[arg(long, default_value = "/etc/berth/certs.d")]
        registry_config_dir: PathBuf,
    },
    /// Load images from an archive into the node's image store.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
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

#[tokio::main]
async fn main() {
    let flags = Flags::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&flags.log_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let result = match flags.command {
        Command::Cri {
            root,
            state,
            socket,
            registry_config_dir,
        } => {
            let config = berth_nodeagent::cri::CriConfig {
                root,
                state,
                socket,
                registry_config_dir: Some(registry_config_dir),
            };
            berth_nodeagent::cri::serve(config, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| e.to_string())
        }
        Command::Image {
            command: ImageCommand::Import { file, root },
        } => import(&file, &root).await,
    };
    if let Err(error) = result {
        eprintln!("berth-nodeagent: {error}");
        std::process::exit(1);
    }
}

async fn import(file: &std::path::Path, root: &std::path::Path) -> Result<(), String> {
    let config = berth_nodeagent::cri::CriConfig {
        root: root.to_path_buf(),
        state: PathBuf::new(),
        socket: PathBuf::new(),
        registry_config_dir: None,
    };
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
