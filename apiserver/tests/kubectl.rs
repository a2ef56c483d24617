//! The real kubectl (1.32, and 1.27 where named) against a real berth-apiserver
//! process, on the embedded store and on etcd. Each behaviour is a function
//! taking a fresh server; `kubectl_suite!` runs it on both backends.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{ApiServer, Backend};

const KUBECTL_1_27: &str = "/usr/lib/google-cloud-sdk/bin/kubectl.1.27";

const APP: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: frontend}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports:
        - containerPort: 80
        env:
        - {name: MODE, value: blue}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  labels: {app: web}
data:
  greeting: hello
"#;

macro_rules! kubectl_suite {
    ($($name:ident),* $(,)?) => {
        mod embedded_backend {
            $(
                #[test]
                fn $name() {
                    super::$name(&super::ApiServer::start(super::Backend::Embedded));
                }
            )*
        }
        mod etcd_backend {
            $(
                #[test]
                fn $name() {
                    super::$name(&super::ApiServer::start(super::Backend::Etcd));
                }
            )*
        }
    };
}

kubectl_suite!(
    apply_then_reapply_patches_only_the_changed_field,
    get_prints_kubernetes_columns_and_honours_selectors,
    get_watch_sees_a_change,
    scale_and_edit_change_the_object,
    delete_file_removes_everything_it_created,
    api_resources_and_explain_use_discovery_and_openapi,
    stale_update_is_refused_with_conflict,
    bad_manifests_get_kubernetes_errors,
    kubectl_1_27_applies_and_reapplies,
    create_generators_send_protobuf_and_work,
);

fn create_generators_send_protobuf_and_work(server: &ApiServer) {
    server.ok(&["create", "namespace", "team-a"]);
    server.ok(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "team-a",
        "--from-literal=mode=fast",
    ]);
    server.ok(&[
        "create",
        "secret",
        "generic",
        "token",
        "-n",
        "team-a",
        "--from-literal=key=s3cret",
    ]);
    server.ok(&[
        "create",
        "deployment",
        "api",
        "-n",
        "team-a",
        "--image=nginx:1.25",
        "--replicas=2",
        "--port=80",
    ]);
    server.ok(&[
        "create",
        "service",
        "clusterip",
        "api",
        "-n",
        "team-a",
        "--tcp=80:8080",
    ]);
    server.ok(&["create", "serviceaccount", "robot", "-n", "team-a"]);
    assert_eq!(
        server.ok(&[
            "get",
            "cm",
            "settings",
            "-n",
            "team-a",
            "-o",
            "jsonpath={.data.mode}"
        ]),
        "fast"
    );
    assert_eq!(
        server.ok(&[
            "get",
            "secret",
            "token",
            "-n",
            "team-a",
            "-o",
            "jsonpath={.data.key}"
        ]),
        "czNjcmV0"
    );
    assert_eq!(
        server.ok(&["get", "deploy", "api", "-n", "team-a", "-o", "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image} {.spec.strategy.type}"]),
        "2 nginx:1.25 RollingUpdate"
    );
    assert_eq!(
        server.ok(&[
            "get",
            "svc",
            "api",
            "-n",
            "team-a",
            "-o",
            "jsonpath={.spec.ports[0].targetPort}"
        ]),
        "8080"
    );
    let err = server.fails(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "team-a",
        "--from-literal=a=b",
    ]);
    // kubectl words a generator's failure itself, as it does against Kubernetes.
    assert!(
        err.contains("failed to create configmap: configmaps \"settings\" already exists"),
        "{err}"
    );
}

fn apply_then_reapply_patches_only_the_changed_field(server: &ApiServer) {
    let app = server.file("app.yaml", APP);
    let out = server.ok(&["apply", "-f", &app]);
    assert!(out.contains("deployment.apps/web created"), "{out}");
    assert!(out.contains("service/web created"), "{out}");
    assert!(out.contains("configmap/web-config created"), "{out}");
    let uid = server.ok(&["get", "deploy", "web", "-o", "jsonpath={.metadata.uid}"]);

    let changed = server.file("app2.yaml", &APP.replace("nginx:1.25", "nginx:1.26"));
    let (ok, out, err) = server.kubectl(&["apply", "-f", &changed, "-v=6"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("deployment.apps/web configured"), "{out}");
    assert!(out.contains("service/web unchanged"), "{out}");
    assert!(
        err.contains("PATCH") && err.contains("deployments/web"),
        "re-apply must PATCH, not replace: {err}"
    );
    let after = server.ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.metadata.uid} {.metadata.generation} {.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].env[0].value} {.spec.template.spec.containers[0].ports[0].containerPort}",
    ]);
    assert_eq!(after, format!("{uid} 2 nginx:1.26 blue 80"));
    // The same manifest again changes nothing.
    let out = server.ok(&["apply", "-f", &changed]);
    assert!(out.contains("deployment.apps/web unchanged"), "{out}");
}

fn get_prints_kubernetes_columns_and_honours_selectors(server: &ApiServer) {
    let app = server.file("app.yaml", APP);
    server.ok(&["apply", "-f", &app]);
    server.ok(&["create", "namespace", "other"]);
    server.ok(&[
        "create",
        "configmap",
        "elsewhere",
        "-n",
        "other",
        "--from-literal=a=b",
    ]);

    let table = server.ok(&["get", "deployments"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    assert!(table.contains("web") && table.contains("0/2"), "{table}");

    let wide = server.ok(&["get", "deployments", "-o", "wide"]);
    assert!(
        wide.contains("CONTAINERS") && wide.contains("nginx:1.25") && wide.contains("app=web"),
        "{wide}"
    );
    let services = server.ok(&["get", "svc", "web"]);
    assert!(
        services.contains("ClusterIP") && services.contains("80/TCP"),
        "{services}"
    );

    let yaml = server.ok(&["get", "deploy", "web", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: Deployment") && yaml.contains("resourceVersion:"),
        "{yaml}"
    );
    assert!(
        yaml.contains("revisionHistoryLimit: 10"),
        "defaults applied: {yaml}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&server.ok(&["get", "cm", "web-config", "-o", "json"])).unwrap();
    assert_eq!(json["data"]["greeting"], "hello");
    assert_eq!(
        server
            .ok(&["get", "cm", "-l", "app=web", "-o", "name"])
            .trim(),
        "configmap/web-config"
    );
    assert!(
        !server
            .ok(&["get", "cm", "-l", "app!=web", "-o", "name"])
            .contains("web-config")
    );
    let all = server.ok(&["get", "cm", "-A"]);
    assert!(
        all.contains("other") && all.contains("elsewhere") && all.contains("web-config"),
        "{all}"
    );
    assert_eq!(
        server
            .ok(&[
                "get",
                "cm",
                "-A",
                "--field-selector",
                "metadata.namespace=other",
                "-o",
                "name"
            ])
            .trim(),
        "configmap/elsewhere"
    );
    assert_eq!(
        server
            .ok(&[
                "get",
                "deploy",
                "--field-selector",
                "metadata.name=web",
                "-o",
                "name"
            ])
            .trim(),
        "deployment.apps/web"
    );
    let err = server.fails(&["get", "cm", "--field-selector", "spec.bogus=1"]);
    assert!(
        err.contains("field label not supported: spec.bogus"),
        "{err}"
    );
}

fn get_watch_sees_a_change(server: &ApiServer) {
    let app = server.file("app.yaml", APP);
    server.ok(&["apply", "-f", &app]);
    let mut watch = Command::new("kubectl")
        .args(["get", "deploy", "web", "-w", "--output-watch-events"])
        .env("KUBECONFIG", &server.kubeconfig)
        .env("HOME", server.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    // The first line is the current state; change the object once it is shown.
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("watch prints the current state");
    assert!(first.contains("web") || first.contains("NAME"), "{first}");
    server.ok(&["scale", "deploy", "web", "--replicas=5"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push(line.clone());
            if line.contains("MODIFIED") && line.contains("0/5") {
                break;
            }
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(
        seen.iter()
            .any(|l| l.contains("MODIFIED") && l.contains("0/5")),
        "watch output: {seen:?}"
    );
}

fn scale_and_edit_change_the_object(server: &ApiServer) {
    let app = server.file("app.yaml", APP);
    server.ok(&["apply", "-f", &app]);
    assert!(
        server
            .ok(&["scale", "deploy", "web", "--replicas=3"])
            .contains("scaled")
    );
    assert_eq!(
        server.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "3"
    );
    // A precondition that does not hold is refused (kubectl reads /scale first).
    let err = server.fails(&[
        "scale",
        "deploy",
        "web",
        "--current-replicas=7",
        "--replicas=1",
    ]);
    assert!(err.contains("Expected replicas to be 7, was 3"), "{err}");
    assert_eq!(
        server.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "3"
    );

    let editor = server.file(
        "editor.sh",
        "#!/bin/sh\nsed -i 's/greeting: hello/greeting: edited/' \"$1\"\n",
    );
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (ok, out, err) = server.kubectl_env(
        "kubectl",
        &["edit", "cm", "web-config"],
        &[("EDITOR", &editor)],
    );
    assert!(ok && out.contains("edited"), "{out}{err}");
    assert_eq!(
        server.ok(&["get", "cm", "web-config", "-o", "jsonpath={.data.greeting}"]),
        "edited"
    );
}

fn delete_file_removes_everything_it_created(server: &ApiServer) {
    let app = server.file("app.yaml", APP);
    server.ok(&["apply", "-f", &app]);
    let out = server.ok(&["delete", "-f", &app]);
    assert!(out.contains("deployment.apps \"web\" deleted"), "{out}");
    assert!(out.contains("service \"web\" deleted"), "{out}");
    let (_, stdout, stderr) = server.kubectl(&["get", "deploy,svc,cm", "-o", "name"]);
    assert!(!stdout.contains("web"), "{stdout}{stderr}");
    let err = server.fails(&["get", "deploy", "web"]);
    assert!(
        err.contains("Error from server (NotFound): deployments.apps \"web\" not found"),
        "{err}"
    );
}

fn api_resources_and_explain_use_discovery_and_openapi(server: &ApiServer) {
    let resources = server.ok(&["api-resources"]);
    for expected in [
        "deployments",
        "deploy",
        "replicasets",
        "pods",
        "po",
        "leases",
        "endpointslices",
    ] {
        assert!(
            resources.contains(expected),
            "{expected} missing:\n{resources}"
        );
    }
    let explain = server.ok(&["explain", "deployment.spec"]);
    assert!(
        explain.contains("KIND:") && explain.contains("Deployment"),
        "{explain}"
    );
    assert!(
        explain.contains("replicas") && explain.contains("selector"),
        "{explain}"
    );
    let get_all = server.ok(&["get", "all"]);
    assert!(!get_all.contains("error"), "{get_all}");
}

fn stale_update_is_refused_with_conflict(server: &ApiServer) {
    let app = server.file("app.yaml", APP);
    server.ok(&["apply", "-f", &app]);
    let stale = server.ok(&["get", "deploy", "web", "-o", "json"]);
    server.ok(&["scale", "deploy", "web", "--replicas=4"]);
    let path = server.file("stale.json", &stale);
    let err = server.fails(&["replace", "-f", &path]);
    assert!(err.contains("Error from server (Conflict)"), "{err}");
    assert!(err.contains("the object has been modified"), "{err}");
    assert_eq!(
        server.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "4"
    );
}

fn bad_manifests_get_kubernetes_errors(server: &ApiServer) {
    let bad_name = server.file(
        "bad-name.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\ndata: {a: b}\n",
    );
    let err = server.fails(&["apply", "-f", &bad_name]);
    assert!(
        err.contains("The ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"),
        "{err}"
    );

    let no_image = server.file(
        "no-image.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: broken\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers: [{name: c}]\n",
    );
    let err = server.fails(&["apply", "-f", &no_image]);
    assert!(
        err.contains("spec.template.spec.containers[0].image: Required value"),
        "{err}"
    );

    let unknown = server.file(
        "unknown.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\nbogus: 1\n",
    );
    let err = server.fails(&["apply", "-f", &unknown]);
    assert!(
        err.contains("strict decoding error: unknown field \"bogus\""),
        "{err}"
    );

    let wrong_type = server.file(
        "wrong-type.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replicas: two\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers: [{name: c, image: i}]\n",
    );
    let err = server.fails(&["apply", "-f", &wrong_type]);
    assert!(err.contains("Error from server (BadRequest)"), "{err}");

    let wrong_kind = server.file(
        "wrong-kind.yaml",
        "apiVersion: v1\nkind: Deployment\nmetadata:\n  name: x\n",
    );
    let err = server.fails(&["apply", "-f", &wrong_kind]);
    assert!(
        err.contains("no matches for kind \"Deployment\" in version \"v1\""),
        "{err}"
    );

    let malformed = server.file(
        "malformed.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: [\n",
    );
    let err = server.fails(&["apply", "-f", &malformed]);
    assert!(err.contains("error parsing"), "{err}");

    // None of that stored anything.
    let names = server.ok(&["get", "cm,deploy", "-o", "name"]);
    assert!(
        !names.contains("broken") && !names.contains("configmap/x"),
        "{names}"
    );
    let err = server.fails(&["get", "namespace", "nonexistent"]);
    assert!(
        err.contains("namespaces \"nonexistent\" not found"),
        "{err}"
    );
}

fn kubectl_1_27_applies_and_reapplies(server: &ApiServer) {
    let app = server.file("app.yaml", APP);
    let (ok, out, err) = server.kubectl_with(KUBECTL_1_27, &["apply", "-f", &app]);
    assert!(
        ok && out.contains("deployment.apps/web created"),
        "{out}{err}"
    );
    let changed = server.file("app2.yaml", &APP.replace("nginx:1.25", "nginx:1.26"));
    let (ok, out, err) = server.kubectl_with(KUBECTL_1_27, &["apply", "-f", &changed]);
    assert!(
        ok && out.contains("deployment.apps/web configured"),
        "{out}{err}"
    );
    let (ok, out, err) = server.kubectl_with(
        KUBECTL_1_27,
        &[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out, "nginx:1.26");
    let (ok, out, err) = server.kubectl_with(KUBECTL_1_27, &["get", "deploy"]);
    assert!(
        ok && out.contains("READY") && out.contains("web"),
        "{out}{err}"
    );
}

/// An object acknowledged to kubectl survives `kill -9` of the server right
/// after the acknowledgement (embedded store: every commit is fsynced).
#[test]
fn embedded_store_keeps_acknowledged_writes_across_kill_9() {
    let mut server = ApiServer::start(Backend::Embedded);
    assert_eq!(server.backend(), Backend::Embedded);
    for i in 0..5 {
        let manifest = server.file(
            &format!("durable-{i}.yaml"),
            &format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: durable-{i}\ndata: {{k: v}}\n"
            ),
        );
        server.ok(&["apply", "-f", &manifest]);
    }
    server.kill9_and_restart();
    let names = server.ok(&["get", "cm", "-o", "name"]);
    for i in 0..5 {
        assert!(names.contains(&format!("configmap/durable-{i}")), "{names}");
    }
}
