//! The garbage collector: keeps a graph of every object's ownerReferences over
//! every resource the API server lists (found through discovery), and
//! - deletes an object whose owners are all gone (background propagation),
//!   dropping references to owners that are gone when others remain;
//! - for an owner deleted in the foreground (`foregroundDeletion` finalizer),
//!   deletes its dependents (in the foreground too) and removes the finalizer
//!   once no dependent that blocks owner deletion is left;
//! - for an owner deleted with orphan propagation (`orphan` finalizer),
//!   removes its ownerReferences from every dependent, then the finalizer.
//!
//! Caches only tell it where to look: before deleting a dependent it confirms
//! with a live read that the owner is really gone (or is a different object
//! with the same name), so a lagging cache never deletes anything wrongly.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope, verbs};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::sync::mpsc;

pub const FOREGROUND: &str = "foregroundDeletion";
pub const ORPHAN: &str = "orphan";

/// Every resource that can be listed, watched and deleted, preferred versions only.
pub async fn deletable_resources(
    client: &Client,
) -> Result<Vec<(ApiResource, ApiCapabilities)>, kube::Error> {
    let discovery = Discovery::new(client.clone()).run().await?;
    let mut resources = Vec::new();
    for group in discovery.groups() {
        for (resource, capabilities) in group.recommended_resources() {
            if [verbs::LIST, verbs::WATCH, verbs::DELETE]
                .iter()
                .all(|v| capabilities.supports_operation(v))
            {
                resources.push((resource, capabilities));
            }
        }
    }
    Ok(resources)
}

/// What the collector knows of one object.
#[derive(Debug, Clone)]
struct Node {
    resource: usize,
    namespace: Option<String>,
    name: String,
    owners: Vec<OwnerReference>,
    finalizers: Vec<String>,
    deleting: bool,
}

#[derive(Default)]
struct Graph {
    nodes: HashMap<String, Node>,
    dependents: HashMap<String, HashSet<String>>,
}

impl Graph {
    fn upsert(&mut self, uid: String, node: Node) {
        self.remove(&uid);
        for owner in &node.owners {
            self.dependents
                .entry(owner.uid.clone())
                .or_default()
                .insert(uid.clone());
        }
        self.nodes.insert(uid, node);
    }

    fn remove(&mut self, uid: &str) -> Option<Node> {
        let node = self.nodes.remove(uid)?;
        for owner in &node.owners {
            if let Some(set) = self.dependents.get_mut(&owner.uid) {
                set.remove(uid);
                if set.is_empty() {
                    self.dependents.remove(&owner.uid);
                }
            }
        }
        Some(node)
    }

    fn dependents_of(&self, uid: &str) -> Vec<String> {
        self.dependents
            .get(uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

enum Change {
    Applied(usize, DynamicObject),
    Deleted(DynamicObject),
}

pub struct GarbageCollector {
    client: Client,
    resources: Vec<(ApiResource, ApiCapabilities)>,
    graph: Graph,
}

/// Run the collector until its watches end.
pub async fn run(client: Client) {
    let resources = loop {
        match deletable_resources(&client).await {
            Ok(resources) => break resources,
            Err(error) => {
                tracing::warn!(%error, "garbage collector: discovery failed; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    };
    let (tx, rx) = mpsc::channel(4096);
    let mut watches = Vec::new();
    for (index, (resource, _)) in resources.iter().enumerate() {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), resource);
        let tx = tx.clone();
        watches.push(async move {
            let mut stream = watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            while let Some(event) = stream.next().await {
                let change = match event {
                    Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                        Change::Applied(index, o)
                    }
                    Ok(watcher::Event::Delete(o)) => Change::Deleted(o),
                    Ok(_) => continue,
                    Err(error) => {
                        tracing::debug!(%error, "garbage collector watch");
                        continue;
                    }
                };
                if tx.send(change).await.is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);
    let collector = GarbageCollector {
        client,
        resources,
        graph: Graph::default(),
    };
    tokio::join!(futures::future::join_all(watches), collector.process(rx));
}

impl GarbageCollector {
    async fn process(mut self, mut changes: mpsc::Receiver<Change>) {
        let mut queue: BTreeSet<String> = BTreeSet::new();
        let mut retry = tokio::time::interval(Duration::from_secs(1));
        let mut failed: BTreeSet<String> = BTreeSet::new();
        loop {
            tokio::select! {
                change = changes.recv() => {
                    let Some(change) = change else { return };
                    self.apply(change, &mut queue);
                    // Take everything already waiting before acting.
                    while let Ok(change) = changes.try_recv() {
                        self.apply(change, &mut queue);
                    }
                }
                _ = retry.tick() => {
                    queue.append(&mut failed);
                }
            }
            while let Some(uid) = queue.pop_first() {
                if let Err(error) = self.attend(&uid).await {
                    tracing::debug!(%error, %uid, "garbage collector: will retry");
                    failed.insert(uid);
                }
            }
        }
    }

    fn apply(&mut self, change: Change, queue: &mut BTreeSet<String>) {
        match change {
            Change::Applied(resource, object) => {
                let Some(uid) = object.uid() else { return };
                let node = Node {
                    resource,
                    namespace: object.namespace(),
                    name: object.name_any(),
                    owners: object.owner_references().to_vec(),
                    finalizers: object.finalizers().to_vec(),
                    deleting: object.metadata.deletion_timestamp.is_some(),
                };
                let interesting = !node.owners.is_empty()
                    || node
                        .finalizers
                        .iter()
                        .any(|f| f == FOREGROUND || f == ORPHAN);
                self.graph.upsert(uid.clone(), node);
                if interesting {
                    queue.insert(uid.clone());
                }
                // An owner changing (e.g. starting foreground deletion) concerns its dependents.
                queue.extend(self.graph.dependents_of(&uid));
            }
            Change::Deleted(object) => {
                let Some(uid) = object.uid() else { return };
                if let Some(node) = self.graph.remove(&uid) {
                    // Owners waiting on this dependent may now finish.
                    queue.extend(node.owners.iter().map(|o| o.uid.clone()));
                }
                queue.extend(self.graph.dependents_of(&uid));
            }
        }
    }

    fn api(&self, node: &Node) -> Api<DynamicObject> {
        let (resource, capabilities) = &self.resources[node.resource];
        match (&node.namespace, &capabilities.scope) {
            (Some(ns), Scope::Namespaced) => {
                Api::namespaced_with(self.client.clone(), ns, resource)
            }
            _ => Api::all_with(self.client.clone(), resource),
        }
    }

    /// The resource index for an owner reference's kind and group.
    fn resource_for(&self, owner: &OwnerReference) -> Option<usize> {
        let group = owner.api_version.split_once('/').map_or("", |(g, _)| g);
        self.resources
            .iter()
            .position(|(r, _)| r.kind == owner.kind && r.group == group)
    }

    /// Whether an owner still exists, by a live read (never the cache).
    async fn owner_exists(
        &self,
        dependent: &Node,
        owner: &OwnerReference,
    ) -> Result<bool, kube::Error> {
        let Some(index) = self.resource_for(owner) else {
            // An owner of a kind this server does not serve cannot exist.
            return Ok(false);
        };
        let probe = Node {
            resource: index,
            namespace: dependent.namespace.clone(),
            name: owner.name.clone(),
            owners: vec![],
            finalizers: vec![],
            deleting: false,
        };
        let api = self.api(&probe);
        match api.get_opt(&owner.name).await? {
            Some(found) => Ok(found.uid().as_deref() == Some(owner.uid.as_str())),
            None => Ok(false),
        }
    }

    async fn attend(&mut self, uid: &str) -> Result<(), kube::Error> {
        let Some(node) = self.graph.nodes.get(uid).cloned() else {
            return Ok(());
        };
        if node.deleting && node.finalizers.iter().any(|f| f == ORPHAN) {
            return self.orphan_dependents(uid, &node).await;
        }
        if node.deleting && node.finalizers.iter().any(|f| f == FOREGROUND) {
            return self.delete_dependents_first(uid, &node).await;
        }
        if node.owners.is_empty() || node.deleting {
            return Ok(());
        }
        let mut gone = Vec::new();
        let mut waiting_on_foreground = false;
        for owner in &node.owners {
            match self.graph.nodes.get(&owner.uid) {
                // The cache shows the owner: it exists unless a live read says otherwise later.
                Some(owner_node) => {
                    if owner_node.deleting && owner_node.finalizers.iter().any(|f| f == FOREGROUND)
                    {
                        waiting_on_foreground = true;
                    }
                }
                None => {
                    if !self.owner_exists(&node, owner).await? {
                        gone.push(owner.uid.clone());
                    }
                }
            }
        }
        if gone.is_empty() || waiting_on_foreground {
            return Ok(());
        }
        let api = self.api(&node);
        if gone.len() == node.owners.len() {
            tracing::info!(name = %node.name, namespace = ?node.namespace, "garbage collecting: owners are gone");
            match api
                .delete(
                    &node.name,
                    &DeleteParams::background().preconditions(kube::api::Preconditions {
                        uid: Some(uid.to_string()),
                        resource_version: None,
                    }),
                )
                .await
            {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(()),
                Err(error) => Err(error),
            }
        } else {
            let remaining: Vec<&OwnerReference> = node
                .owners
                .iter()
                .filter(|o| !gone.contains(&o.uid))
                .collect();
            let patch = json!({"metadata": {"ownerReferences": remaining, "uid": uid}});
            match api
                .patch(&node.name, &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(()),
                Err(error) => Err(error),
            }
        }
    }

    async fn delete_dependents_first(&mut self, uid: &str, node: &Node) -> Result<(), kube::Error> {
        let mut blocking = 0;
        for dependent_uid in self.graph.dependents_of(uid) {
            let Some(dependent) = self.graph.nodes.get(&dependent_uid).cloned() else {
                continue;
            };
            let blocks = dependent
                .owners
                .iter()
                .any(|o| o.uid == uid && o.block_owner_deletion == Some(true));
            if blocks {
                blocking += 1;
            }
            if !dependent.deleting {
                let params = DeleteParams::foreground().preconditions(kube::api::Preconditions {
                    uid: Some(dependent_uid.clone()),
                    resource_version: None,
                });
                match self.api(&dependent).delete(&dependent.name, &params).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
                    Err(error) => return Err(error),
                }
            }
        }
        if blocking == 0 {
            self.remove_finalizer(uid, node, FOREGROUND).await?;
        }
        Ok(())
    }

    async fn orphan_dependents(&mut self, uid: &str, node: &Node) -> Result<(), kube::Error> {
        for dependent_uid in self.graph.dependents_of(uid) {
            let Some(dependent) = self.graph.nodes.get(&dependent_uid).cloned() else {
                continue;
            };
            let remaining: Vec<&OwnerReference> =
                dependent.owners.iter().filter(|o| o.uid != uid).collect();
            let patch = json!({"metadata": {"ownerReferences": remaining, "uid": dependent_uid}});
            match self
                .api(&dependent)
                .patch(
                    &dependent.name,
                    &PatchParams::default(),
                    &Patch::Merge(patch),
                )
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
                Err(error) => return Err(error),
            }
        }
        self.remove_finalizer(uid, node, ORPHAN).await
    }

    async fn remove_finalizer(
        &self,
        uid: &str,
        node: &Node,
        finalizer: &str,
    ) -> Result<(), kube::Error> {
        let api = self.api(node);
        let Some(current) = api.get_opt(&node.name).await? else {
            return Ok(());
        };
        if current.uid().as_deref() != Some(uid) {
            return Ok(());
        }
        let remaining: Vec<&String> = current
            .finalizers()
            .iter()
            .filter(|f| *f != finalizer)
            .collect();
        // resourceVersion makes this a compare-and-swap: no finalizer added meanwhile is lost.
        let patch = json!({"metadata": {"finalizers": remaining, "resourceVersion": current.resource_version()}});
        match api
            .patch(&node.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(uid: &str) -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: uid.into(),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    fn node(owners: &[&str]) -> Node {
        Node {
            resource: 0,
            namespace: Some("default".into()),
            name: "x".into(),
            owners: owners.iter().map(|o| owner(o)).collect(),
            finalizers: vec![],
            deleting: false,
        }
    }

    fn collector(client: Client) -> GarbageCollector {
        let namespaced = |operations: &[&str]| ApiCapabilities {
            scope: Scope::Namespaced,
            subresources: vec![],
            operations: operations.iter().map(|s| s.to_string()).collect(),
        };
        let all = [
            verbs::LIST,
            verbs::WATCH,
            verbs::DELETE,
            verbs::GET,
            verbs::PATCH,
        ];
        GarbageCollector {
            client,
            resources: vec![
                (
                    ApiResource::erase::<k8s_openapi::api::core::v1::Pod>(&()),
                    namespaced(&all),
                ),
                (
                    ApiResource::erase::<k8s_openapi::api::apps::v1::ReplicaSet>(&()),
                    namespaced(&all),
                ),
            ],
            graph: Graph::default(),
        }
    }

    #[tokio::test]
    async fn a_dependent_whose_owner_is_confirmed_gone_is_deleted_in_background() {
        let (client, log) = crate::fake_api::client(crate::fake_api::echo);
        let mut gc = collector(client);
        gc.graph.upsert("pod-1".into(), node(&["rs-1"]));
        gc.attend("pod-1").await.unwrap();
        let gets = crate::fake_api::requests(&log, http::Method::GET, "/replicasets/rs-1");
        assert_eq!(
            gets.len(),
            1,
            "the owner is checked live, not from the cache"
        );
        let deletes = crate::fake_api::requests(&log, http::Method::DELETE, "/pods/x");
        assert_eq!(deletes.len(), 1);
        assert_eq!(deletes[0].body["propagationPolicy"], "Background");
        assert_eq!(deletes[0].body["preconditions"]["uid"], "pod-1");
    }

    #[tokio::test]
    async fn a_dependent_whose_owner_still_exists_is_kept() {
        let (client, log) = crate::fake_api::client(|method, path, body| {
            if *method == http::Method::GET && path.contains("/replicasets/rs-1") {
                return (
                    200,
                    serde_json::json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs-1", "uid": "rs-1"}}),
                );
            }
            crate::fake_api::echo(method, path, body)
        });
        let mut gc = collector(client);
        gc.graph.upsert("pod-1".into(), node(&["rs-1"]));
        gc.attend("pod-1").await.unwrap();
        assert!(crate::fake_api::requests(&log, http::Method::DELETE, "/pods/").is_empty());
    }

    #[test]
    fn graph_tracks_dependents_through_updates_and_removals() {
        let mut graph = Graph::default();
        graph.upsert("pod-1".into(), node(&["rs-1"]));
        graph.upsert("pod-2".into(), node(&["rs-1", "rs-2"]));
        let mut deps = graph.dependents_of("rs-1");
        deps.sort();
        assert_eq!(deps, ["pod-1", "pod-2"]);
        // Re-pointing pod-2 at rs-2 only drops it from rs-1's dependents.
        graph.upsert("pod-2".into(), node(&["rs-2"]));
        assert_eq!(graph.dependents_of("rs-1"), ["pod-1"]);
        graph.remove("pod-1");
        assert!(graph.dependents_of("rs-1").is_empty());
        assert!(!graph.dependents.contains_key("rs-1"));
        assert_eq!(graph.dependents_of("rs-2"), ["pod-2"]);
    }
}
