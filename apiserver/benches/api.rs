//! API server benchmark: for each store backend (embedded, etcd), the
//! throughput and p50/p99 latency of create, get, list and watch over real HTTP
//! to a berth-apiserver in this process, next to raw etcd put throughput
//! measured in the same run. Run: `cargo bench -p berth-apiserver --bench api`
//! (or `scripts/bench.sh`). Sizes: BERTH_BENCH_OBJECTS (default 2000),
//! BERTH_BENCH_CONCURRENCY (default 16).

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_apiserver::store::Store;
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

struct Figures {
    name: &'static str,
    count: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Figures {
    fn print(&mut self, backend: &str) {
        self.latencies.sort();
        let pick = |q: f64| {
            self.latencies
                .get(((self.latencies.len() as f64 - 1.0) * q).round() as usize)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        println!(
            "{backend:<9} {:<14} {:>7} ops {:>10.0} ops/s   p50 {:>8.3} ms   p99 {:>8.3} ms",
            self.name,
            self.count,
            self.count as f64 / self.elapsed.as_secs_f64(),
            pick(0.50),
            pick(0.99),
        );
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn request(
    client: &HttpClient,
    method: &str,
    uri: &str,
    body: Option<String>,
) -> (u16, Bytes) {
    let content_type = if method == "PATCH" {
        "application/merge-patch+json"
    } else {
        "application/json"
    };
    let request = hyper::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .expect("request");
    let response = client.request(request).await.expect("http");
    let status = response.status().as_u16();
    (
        status,
        response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes(),
    )
}

/// Run `count` operations with `concurrency` workers; `op(i)` performs one.
async fn measure<F, Fut>(name: &'static str, count: usize, concurrency: usize, op: F) -> Figures
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let op = op.clone();
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    return latencies;
                }
                let t = Instant::now();
                op(i).await;
                latencies.push(t.elapsed());
            }
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.expect("worker"));
    }
    Figures {
        name,
        count,
        elapsed: started.elapsed(),
        latencies,
    }
}

async fn bench_backend(
    label: &'static str,
    store: Arc<dyn Store>,
    objects: usize,
    concurrency: usize,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = berth_apiserver::Config {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let server = berth_apiserver::build(&config, store).await.expect("build");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(berth_apiserver::serve(listener, server, async move {
        let _ = stopped.await;
    }));
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let base = format!("http://{address}/api/v1/namespaces/default/configmaps");

    let (c, b) = (client.clone(), base.clone());
    let mut create = measure("create", objects, concurrency, move |i| {
        let (c, b) = (c.clone(), b.clone());
        async move {
            let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm-{i}"), "labels": {"bench": "yes"}}, "data": {"k": "v".repeat(64)}});
            let (status, _) = request(&c, "POST", &b, Some(body.to_string())).await;
            assert_eq!(status, 201);
        }
    })
    .await;
    create.print(label);

    let (c, b) = (client.clone(), base.clone());
    let mut get = measure("get", objects, concurrency, move |i| {
        let (c, b) = (c.clone(), b.clone());
        async move {
            let (status, _) =
                request(&c, "GET", &format!("{b}/cm-{}", (i * 7919) % objects), None).await;
            assert_eq!(status, 200);
        }
    })
    .await;
    get.print(label);

    let lists = 20;
    let (c, b) = (client.clone(), base.clone());
    let mut list = measure("list (all)", lists, 2, move |_| {
        let (c, b) = (c.clone(), b.clone());
        async move {
            let (status, _) = request(&c, "GET", &b, None).await;
            assert_eq!(status, 200);
        }
    })
    .await;
    list.print(label);
    println!("{label:<9} {:<14} {:>7} objects per list", "", objects);

    // Watch: open one, then time from each write's acknowledgement to its event.
    let revision = {
        let (_, body) = request(&client, "GET", &format!("{base}?limit=1"), None).await;
        let list: serde_json::Value = serde_json::from_slice(&body).expect("list json");
        list["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("0")
            .to_string()
    };
    let watch = client
        .request(
            hyper::Request::builder()
                .uri(format!("{base}?watch=true&resourceVersion={revision}"))
                .body(Full::new(Bytes::new()))
                .expect("watch request"),
        )
        .await
        .expect("watch");
    let mut events = watch.into_body().into_data_stream();
    let updates = objects.min(1000);
    let acknowledged = Arc::new(std::sync::Mutex::new(std::collections::HashMap::<
        String,
        Instant,
    >::new()));
    let reader = {
        let acknowledged = acknowledged.clone();
        tokio::spawn(async move {
            let mut buffer = Vec::new();
            let mut latencies = Vec::new();
            let started = Instant::now();
            while latencies.len() < updates {
                let Some(Ok(chunk)) = events.next().await else {
                    break;
                };
                buffer.extend_from_slice(&chunk);
                while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=end).collect();
                    let event: serde_json::Value = serde_json::from_slice(&line).expect("event");
                    let name = event["object"]["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    // The write may be acknowledged just after its event arrives.
                    let seen = Instant::now();
                    let acked = loop {
                        if let Some(t) = acknowledged.lock().expect("lock").get(&name).copied() {
                            break t;
                        }
                        tokio::task::yield_now().await;
                    };
                    latencies.push(seen.saturating_duration_since(acked));
                }
            }
            (started.elapsed(), latencies)
        })
    };
    let (c, b) = (client.clone(), base.clone());
    let acks = acknowledged.clone();
    measure("watch writes", updates, concurrency, move |i| {
        let (c, b, acks) = (c.clone(), b.clone(), acks.clone());
        async move {
            let name = format!("cm-{i}");
            let (status, _) = request(
                &c,
                "PATCH",
                &format!("{b}/{name}"),
                Some(json!({"data": {"k": "changed"}}).to_string()),
            )
            .await;
            assert_eq!(status, 200);
            acks.lock().expect("lock").insert(name, Instant::now());
        }
    })
    .await;
    let (elapsed, latencies) = reader.await.expect("reader");
    Figures {
        name: "watch events",
        count: latencies.len(),
        elapsed,
        latencies,
    }
    .print(label);

    let _ = stop.send(());
    let _ = serving.await;
}

async fn raw_etcd_puts(endpoint: &str, count: usize, concurrency: usize) {
    let client = etcd_client::Client::connect([endpoint], None)
        .await
        .expect("etcd");
    let mut figures = measure("raw put", count, concurrency, move |i| {
        let mut kv = client.kv_client();
        async move {
            kv.put(format!("/bench/raw/{i}"), "v".repeat(200), None)
                .await
                .expect("put");
        }
    })
    .await;
    figures.print("etcd");
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes --bench; a test run (`cargo test --benches`) does not.
    if !std::env::args().any(|a| a == "--bench") {
        println!("run with: cargo bench -p berth-apiserver --bench api");
        return;
    }
    let objects = env_usize("BERTH_BENCH_OBJECTS", 2000);
    let concurrency = env_usize("BERTH_BENCH_CONCURRENCY", 16);
    println!("berth-apiserver benchmark: {objects} objects, concurrency {concurrency}");

    let dir = tempfile::tempdir().expect("tempdir");
    let embedded: Arc<dyn Store> = Arc::new(
        berth_apiserver::store::embedded::EmbeddedStore::open(&dir.path().join("bench.redb"))
            .expect("open"),
    );
    bench_backend("embedded", embedded, objects, concurrency).await;

    let etcd = support::Etcd::start_durable();
    let store: Arc<dyn Store> = Arc::new(
        berth_apiserver::store::etcd::EtcdStore::connect(std::slice::from_ref(&etcd.endpoint))
            .await
            .expect("connect etcd"),
    );
    bench_backend("etcd", store, objects, concurrency).await;
    raw_etcd_puts(&etcd.endpoint, objects, concurrency).await;
}
