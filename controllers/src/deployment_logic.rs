//! The decision logic of the Deployment controller, free of I/O: given a
//! Deployment, the ReplicaSets it controls, their pods and the current time,
//! decide which ReplicaSets to create, scale or delete, which status to write
//! and when to look again. It follows Kubernetes' `pkg/controller/deployment`
//! (`sync.go`, `rolling.go`, `recreate.go`, `progress.go` and
//! `util/deployment_util.go`) step by step.
//!
//! This module must not read caches, call the API server or sleep: the
//! controller that calls [`plan`] lists the objects, performs
//! [`Plan::actions`] in order, writes [`Plan::status`] to the status
//! subresource, sets the Deployment's [`REVISION_ANNOTATION`] to
//! [`Plan::deployment_revision`] when that is `Some`, and requeues after
//! [`Plan::requeue_after`].
//!
//! Kubernetes writes each step of a sync as it goes and hands the written
//! object to the next step; here every later step sees the earlier steps'
//! effect in memory instead, and each ReplicaSet gets at most one action
//! carrying its final desired replicas and annotations. The status is computed
//! from the ReplicaSets' reported status together with the replicas the plan
//! gives them, exactly as Kubernetes computes it after its writes.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec,
};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, ObjectMeta, OwnerReference, Time,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

/// The revision of a ReplicaSet, and of the Deployment (its newest ReplicaSet's).
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// The Deployment's spec.replicas when the ReplicaSet was last scaled.
pub const DESIRED_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
/// spec.replicas + maxSurge when the ReplicaSet was last scaled; used for proportional scaling.
pub const MAX_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/max-replicas";
/// The label that ties a ReplicaSet and its pods to one pod template.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";
/// Earlier revisions a ReplicaSet had before a rollback made it the newest again.
pub const REVISION_HISTORY_ANNOTATION: &str = "deployment.kubernetes.io/revision-history";

/// Condition type: the Deployment has at least spec.replicas - maxUnavailable available pods.
pub const CONDITION_AVAILABLE: &str = "Available";
/// Condition type: how the newest rollout is going.
pub const CONDITION_PROGRESSING: &str = "Progressing";
/// Condition type: a ReplicaSet failed to create or delete pods.
pub const CONDITION_REPLICA_FAILURE: &str = "ReplicaFailure";

pub const REASON_MINIMUM_REPLICAS_AVAILABLE: &str = "MinimumReplicasAvailable";
pub const REASON_MINIMUM_REPLICAS_UNAVAILABLE: &str = "MinimumReplicasUnavailable";
pub const REASON_NEW_REPLICA_SET_CREATED: &str = "NewReplicaSetCreated";
pub const REASON_FOUND_NEW_REPLICA_SET: &str = "FoundNewReplicaSet";
pub const REASON_REPLICA_SET_UPDATED: &str = "ReplicaSetUpdated";
pub const REASON_NEW_REPLICA_SET_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const REASON_PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
pub const REASON_DEPLOYMENT_PAUSED: &str = "DeploymentPaused";
pub const REASON_DEPLOYMENT_RESUMED: &str = "DeploymentResumed";

const CONDITION_TRUE: &str = "True";
const CONDITION_FALSE: &str = "False";
const CONDITION_UNKNOWN: &str = "Unknown";

/// Deployment annotations that are the controller's own or kubectl's, and so are
/// never copied onto a ReplicaSet.
const ANNOTATIONS_NOT_COPIED: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
    DESIRED_REPLICAS_ANNOTATION,
    MAX_REPLICAS_ANNOTATION,
    "deprecated.deployment.rollback.to",
];
/// Kubernetes caps the revision-history annotation at this many characters.
const MAX_REVISION_HISTORY_CHARS: usize = 2000;
const DEFAULT_PROGRESS_DEADLINE_SECONDS: i32 = 600;
const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 10;
const DEFAULT_SURGE_AND_UNAVAILABLE: &str = "25%";
/// Kubernetes' `rand.SafeEncodeString` alphabet: no vowels, no 0/1/3 (no bad words, no look-alikes).
const SAFE_ENCODE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
const FNV_OFFSET_BASIS: u32 = 0x811c_9dc5;
const FNV_PRIME: u32 = 0x0100_0193;

/// One write the controller must make, in the order given.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "the controller matches on an unboxed ReplicaSet; a plan holds a handful of actions"
)]
pub enum Action {
    /// Create this ReplicaSet (complete object: name "<deployment>-<hash>", namespace, labels and selector and template labels with pod-template-hash, ownerReferences [apps/v1 Deployment, controller: true, blockOwnerDeletion: true, uid], the revision/desired/max annotations and the deployment's annotations as Kubernetes copies them, spec.replicas, minReadySeconds).
    CreateReplicaSet(ReplicaSet),
    /// Change an existing ReplicaSet's spec.replicas and/or annotations (full desired annotation map).
    UpdateReplicaSet {
        name: String,
        replicas: i32,
        annotations: BTreeMap<String, String>,
    },
    /// Delete an old ReplicaSet beyond revisionHistoryLimit (only ones with 0 replicas in spec and status).
    DeleteReplicaSet { name: String },
}

/// The outcome of one sync.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// The status to write (observedGeneration, replicas, updatedReplicas, readyReplicas, availableReplicas, unavailableReplicas, conditions Available/Progressing with Kubernetes' reasons and messages, collisionCount).
    /// Counts that are zero are left out, as Kubernetes' `omitempty` leaves them out.
    pub status: DeploymentStatus,
    /// When to look again even if nothing changes, if ever: the time left
    /// until the progress deadline, plus one second so that the deadline has
    /// strictly passed when the sync runs (conditions have whole-second
    /// times). `Some(Duration::ZERO)` after a hash collision.
    pub requeue_after: Option<Duration>,
    /// The value `metadata.annotations["deployment.kubernetes.io/revision"]`
    /// of the Deployment must have: the newest ReplicaSet's revision.
    /// `None` leaves the annotation as it is (no newest ReplicaSet yet).
    /// Kubernetes sends it in the same update as the status; a separate
    /// metadata patch does as well.
    pub deployment_revision: Option<String>,
}

/// Decide one sync of `deployment`, given the ReplicaSets it owns (controller ownerReference with its uid) and the pods of those ReplicaSets, at time `now`.
///
/// ReplicaSets not controlled by this Deployment are ignored, except that one
/// already holding the name a new ReplicaSet needs counts as a hash collision;
/// so a controller whose create failed with AlreadyExists may pass that
/// ReplicaSet along on its next call.
pub fn plan(
    deployment: &Deployment,
    replica_sets: &[ReplicaSet],
    pods: &[Pod],
    now: jiff::Timestamp,
) -> Plan {
    Sync::new(deployment, replica_sets, pods, now).run()
}

/// The pod-template-hash of a template (stable across processes: FNV-1a 32 over a canonical JSON encoding of the template with collisionCount mixed in, rendered with Kubernetes' SafeEncodeString alphabet "bcdfghjklmnpqrstvwxz2456789" as rand.SafeEncodeString does with the decimal string of the hash).
///
/// The JSON has sorted keys and leaves out nulls, empty lists and empty
/// objects, so that templates Kubernetes would consider semantically equal
/// hash alike. The collision count is mixed in as Kubernetes does: its
/// little-endian 32 bits followed by four zero bytes.
pub fn pod_template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let canonical = serde_json::to_value(template)
        .map(|value| canonical_json(&without_empty_values(value)))
        .unwrap_or_default();
    let mut hash = fnv1a32(FNV_OFFSET_BASIS, canonical.as_bytes());
    if let Some(count) = collision_count {
        let mut bytes = [0_u8; 8];
        bytes[..4].copy_from_slice(&count.to_le_bytes());
        hash = fnv1a32(hash, &bytes);
    }
    safe_encode(&hash.to_string())
}

/// rand.SafeEncodeString: each byte picks a letter of the safe alphabet.
fn safe_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            char::from(SAFE_ENCODE_ALPHABET[usize::from(byte) % SAFE_ENCODE_ALPHABET.len()])
        })
        .collect()
}

/// Whether two templates are equal ignoring the pod-template-hash label (EqualIgnoreHash).
///
/// Like Kubernetes' semantic equality, an absent list, map or object equals an
/// empty one.
pub fn templates_equal_ignoring_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    match (comparable_template(a), comparable_template(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

fn comparable_template(template: &PodTemplateSpec) -> Option<Value> {
    let mut template = template.clone();
    if let Some(labels) = template
        .metadata
        .as_mut()
        .and_then(|meta| meta.labels.as_mut())
    {
        labels.remove(POD_TEMPLATE_HASH_LABEL);
    }
    serde_json::to_value(&template)
        .ok()
        .map(without_empty_values)
}

fn without_empty_values(value: Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(key, value)| (key, without_empty_values(value)))
                .filter(|(_, value)| !is_empty_value(value))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_empty_values).collect()),
        other => other,
    }
}

fn is_empty_value(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(fields) => fields.is_empty(),
        _ => false,
    }
}

/// JSON with object keys sorted, whatever order serde_json's map keeps.
fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical_json(value, &mut out);
    out
}

fn write_canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(fields) => {
            let mut entries: Vec<(&String, &Value)> = fields.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (position, (key, value)) in entries.into_iter().enumerate() {
                if position > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical_json(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (position, item) in items.iter().enumerate() {
                if position > 0 {
                    out.push(',');
                }
                write_canonical_json(item, out);
            }
            out.push(']');
        }
        leaf => out.push_str(&leaf.to_string()),
    }
}

fn fnv1a32(mut hash: u32, bytes: &[u8]) -> u32 {
    for byte in bytes {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

#[derive(Debug, Clone)]
enum Strategy {
    Recreate,
    RollingUpdate {
        max_surge: IntOrString,
        max_unavailable: IntOrString,
    },
}

/// The Deployment's spec with the apps/v1 defaults filled in.
#[derive(Debug, Clone)]
struct Desired {
    name: String,
    namespace: Option<String>,
    uid: String,
    generation: i64,
    annotations: BTreeMap<String, String>,
    replicas: i64,
    strategy: Strategy,
    min_ready_seconds: Option<i32>,
    /// `None` when progressDeadlineSeconds is MaxInt32 (no deadline).
    progress_deadline_seconds: Option<i64>,
    /// `None` when revisionHistoryLimit is MaxInt32 (keep everything).
    revision_history_limit: Option<i64>,
    paused: bool,
    deleting: bool,
    selector: LabelSelector,
    template: PodTemplateSpec,
}

impl Desired {
    fn from_deployment(deployment: &Deployment) -> Self {
        let spec = deployment.spec.clone();
        let strategy = match spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) {
            Some("Recreate") => Strategy::Recreate,
            _ => {
                let rolling = spec
                    .strategy
                    .as_ref()
                    .and_then(|s| s.rolling_update.as_ref());
                let default = || IntOrString::String(DEFAULT_SURGE_AND_UNAVAILABLE.to_owned());
                Strategy::RollingUpdate {
                    max_surge: rolling
                        .and_then(|r| r.max_surge.clone())
                        .unwrap_or_else(default),
                    max_unavailable: rolling
                        .and_then(|r| r.max_unavailable.clone())
                        .unwrap_or_else(default),
                }
            }
        };
        let progress_deadline = spec
            .progress_deadline_seconds
            .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS);
        let history_limit = spec
            .revision_history_limit
            .unwrap_or(DEFAULT_REVISION_HISTORY_LIMIT);
        Desired {
            name: deployment.metadata.name.clone().unwrap_or_default(),
            namespace: deployment.metadata.namespace.clone(),
            uid: deployment.metadata.uid.clone().unwrap_or_default(),
            generation: deployment.metadata.generation.unwrap_or(0),
            annotations: deployment.metadata.annotations.clone().unwrap_or_default(),
            replicas: i64::from(spec.replicas.unwrap_or(1).max(0)),
            strategy,
            min_ready_seconds: spec.min_ready_seconds,
            progress_deadline_seconds: (progress_deadline != i32::MAX)
                .then_some(i64::from(progress_deadline.max(0))),
            revision_history_limit: (history_limit != i32::MAX).then_some(i64::from(history_limit)),
            paused: spec.paused.unwrap_or(false),
            deleting: deployment.metadata.deletion_timestamp.is_some(),
            selector: spec.selector,
            template: spec.template,
        }
    }

    fn is_rolling_update(&self) -> bool {
        matches!(self.strategy, Strategy::RollingUpdate { .. })
    }

    /// maxSurge resolved against spec.replicas (MaxSurge).
    fn max_surge(&self) -> i64 {
        match &self.strategy {
            Strategy::Recreate => 0,
            Strategy::RollingUpdate {
                max_surge,
                max_unavailable,
            } => resolve_fenceposts(max_surge, max_unavailable, self.replicas).0,
        }
    }

    /// maxUnavailable resolved against spec.replicas, never above it (MaxUnavailable).
    fn max_unavailable(&self) -> i64 {
        match &self.strategy {
            Strategy::Recreate => 0,
            Strategy::RollingUpdate { .. } if self.replicas == 0 => 0,
            Strategy::RollingUpdate {
                max_surge,
                max_unavailable,
            } => resolve_fenceposts(max_surge, max_unavailable, self.replicas)
                .1
                .min(self.replicas),
        }
    }

    /// Whether a ReplicaSet's controller reference points at this Deployment.
    fn controls(&self, replica_set: &ReplicaSet) -> bool {
        controller_of(&replica_set.metadata).is_some_and(|owner| {
            if self.uid.is_empty() {
                owner.kind == "Deployment" && owner.name == self.name
            } else {
                owner.uid == self.uid
            }
        })
    }
}

/// maxSurge (rounded up) and maxUnavailable (rounded down) as pod counts; if
/// both come to zero, maxUnavailable becomes 1 so that a rollout can move.
fn resolve_fenceposts(
    max_surge: &IntOrString,
    max_unavailable: &IntOrString,
    desired: i64,
) -> (i64, i64) {
    let surge = scaled_value(max_surge, desired, true);
    let unavailable = scaled_value(max_unavailable, desired, false);
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

/// An absolute count or a percentage of `total` (GetScaledValueFromIntOrPercent).
/// Values validation would reject count as zero.
fn scaled_value(value: &IntOrString, total: i64, round_up: bool) -> i64 {
    match value {
        IntOrString::Int(count) => i64::from((*count).max(0)),
        IntOrString::String(text) => match text.strip_suffix('%') {
            Some(percent) => {
                let percent = percent.trim().parse::<i64>().unwrap_or(0).max(0);
                let product = percent.saturating_mul(total.max(0));
                let whole = product / 100;
                if round_up && product % 100 != 0 {
                    whole + 1
                } else {
                    whole
                }
            }
            None => text.trim().parse::<i64>().unwrap_or(0).max(0),
        },
    }
}

fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|owner| owner.controller == Some(true))
}

fn name_of(replica_set: &ReplicaSet) -> &str {
    replica_set.metadata.name.as_deref().unwrap_or_default()
}

/// spec.replicas, defaulted to 1 as the API server defaults it.
fn spec_replicas(replica_set: &ReplicaSet) -> i64 {
    i64::from(replica_set.spec.replicas.unwrap_or(1))
}

fn status_replicas(replica_set: &ReplicaSet) -> i64 {
    i64::from(
        replica_set
            .status
            .as_ref()
            .map_or(0, |status| status.replicas),
    )
}

fn ready_replicas(replica_set: &ReplicaSet) -> i64 {
    i64::from(
        replica_set
            .status
            .as_ref()
            .and_then(|status| status.ready_replicas)
            .unwrap_or(0),
    )
}

fn available_replicas(replica_set: &ReplicaSet) -> i64 {
    i64::from(
        replica_set
            .status
            .as_ref()
            .and_then(|status| status.available_replicas)
            .unwrap_or(0),
    )
}

fn annotation<'a>(replica_set: &'a ReplicaSet, key: &str) -> Option<&'a str> {
    replica_set
        .metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

fn int_annotation(replica_set: &ReplicaSet, key: &str) -> Option<i64> {
    annotation(replica_set, key)?.trim().parse().ok()
}

/// The revision annotation; absent counts as 0, unparsable as `None`.
fn revision(replica_set: &ReplicaSet) -> Option<i64> {
    match annotation(replica_set, REVISION_ANNOTATION) {
        None => Some(0),
        Some(text) => text.parse().ok(),
    }
}

fn template_of(replica_set: &ReplicaSet) -> PodTemplateSpec {
    replica_set.spec.template.clone().unwrap_or_default()
}

fn creation_order(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let created = |rs: &ReplicaSet| rs.metadata.creation_timestamp.as_ref().map(|time| time.0);
    created(a)
        .cmp(&created(b))
        .then_with(|| name_of(a).cmp(name_of(b)))
}

fn to_i32(value: i64) -> i32 {
    i32::try_from(value).unwrap_or(if value < 0 { i32::MIN } else { i32::MAX })
}

/// Zero is left out of the status, as Go's `omitempty` leaves it out.
fn nonzero(value: i64) -> Option<i32> {
    (value != 0).then(|| to_i32(value))
}

fn count(value: Option<i32>) -> i64 {
    i64::from(value.unwrap_or(0))
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status
            .as_ref()
            .and_then(|status| status.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn selector_is_empty(selector: &LabelSelector) -> bool {
    selector
        .match_labels
        .as_ref()
        .is_none_or(BTreeMap::is_empty)
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(Vec::is_empty)
}

fn get_condition<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|condition| condition.type_.as_deref() == Some(type_))
}

fn condition_reason<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a str> {
    get_condition(status, type_)?.reason.as_deref()
}

fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: Some(type_.to_owned()),
        status: Some(status.to_owned()),
        reason: Some(reason.to_owned()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// SetDeploymentCondition: same status and reason keeps the old condition
/// whole; same status keeps its transition time; the condition moves last.
fn set_condition(status: &mut DeploymentStatus, mut condition: DeploymentCondition) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    if let Some(current) = conditions.iter().find(|c| c.type_ == condition.type_) {
        if current.status == condition.status && current.reason == condition.reason {
            return;
        }
        if current.status == condition.status {
            condition.last_transition_time = current.last_transition_time.clone();
        }
    }
    conditions.retain(|c| c.type_ != condition.type_);
    conditions.push(condition);
}

fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(conditions) = status.conditions.as_mut() {
        conditions.retain(|c| c.type_.as_deref() != Some(type_));
        if conditions.is_empty() {
            status.conditions = None;
        }
    }
}

/// DeploymentComplete: every wanted replica is updated and available, and
/// the status describes the current generation.
fn deployment_complete(desired: &Desired, status: &DeploymentStatus) -> bool {
    count(status.updated_replicas) == desired.replicas
        && count(status.replicas) == desired.replicas
        && count(status.available_replicas) == desired.replicas
        && status.observed_generation.unwrap_or(0) >= desired.generation
}

/// DeploymentProgressing: more updated, ready or available pods, or fewer old ones.
fn deployment_progressing(old: &DeploymentStatus, new: &DeploymentStatus) -> bool {
    let old_old_replicas = count(old.replicas) - count(old.updated_replicas);
    let new_old_replicas = count(new.replicas) - count(new.updated_replicas);
    count(new.updated_replicas) > count(old.updated_replicas)
        || new_old_replicas < old_old_replicas
        || count(new.ready_replicas) > count(old.ready_replicas)
        || count(new.available_replicas) > count(old.available_replicas)
}

/// Copies the Deployment's annotations onto the ReplicaSet, raises its
/// revision to `new_revision` if lower (remembering the old one in the
/// revision history), and on creation adds the replicas annotations
/// (SetNewReplicaSetAnnotations). Returns whether anything changed.
fn set_new_replica_set_annotations(
    replica_set: &mut ReplicaSet,
    desired: &Desired,
    new_revision: i64,
    exists: bool,
) -> bool {
    let annotations = replica_set
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (key, value) in &desired.annotations {
        if ANNOTATIONS_NOT_COPIED.contains(&key.as_str()) || annotations.get(key) == Some(value) {
            continue;
        }
        annotations.insert(key.clone(), value.clone());
        changed = true;
    }
    let old_revision = annotations.get(REVISION_ANNOTATION).cloned();
    let old_revision_number = match old_revision.as_deref() {
        None | Some("") => 0,
        Some(text) => match text.parse::<i64>() {
            Ok(number) => number,
            // Kubernetes leaves a ReplicaSet with a garbled revision alone.
            Err(_) => return false,
        },
    };
    if old_revision_number < new_revision {
        annotations.insert(REVISION_ANNOTATION.to_owned(), new_revision.to_string());
        changed = true;
        if let Some(old_revision) = old_revision {
            remember_revision(annotations, old_revision);
        }
    }
    if !exists {
        changed |= set_replicas_annotations(
            annotations,
            desired.replicas,
            desired.replicas + desired.max_surge(),
        );
    }
    changed
}

/// Appends a revision the ReplicaSet had before a rollback to its history,
/// dropping the oldest entries to stay within Kubernetes' length cap.
fn remember_revision(annotations: &mut BTreeMap<String, String>, old_revision: String) {
    let history = annotations
        .get(REVISION_HISTORY_ANNOTATION)
        .cloned()
        .unwrap_or_default();
    if history.is_empty() {
        annotations.insert(REVISION_HISTORY_ANNOTATION.to_owned(), old_revision);
        return;
    }
    let entries: Vec<&str> = history.split(',').collect();
    let mut total_length = history.len() + old_revision.len() + 1;
    let mut start = 0;
    while total_length > MAX_REVISION_HISTORY_CHARS && start < entries.len() {
        total_length -= entries[start].len() + 1;
        start += 1;
    }
    if total_length <= MAX_REVISION_HISTORY_CHARS {
        let mut kept: Vec<&str> = entries[start..].to_vec();
        kept.push(&old_revision);
        annotations.insert(REVISION_HISTORY_ANNOTATION.to_owned(), kept.join(","));
    }
}

fn set_replicas_annotations(
    annotations: &mut BTreeMap<String, String>,
    desired_replicas: i64,
    max_replicas: i64,
) -> bool {
    let mut changed = false;
    for (key, value) in [
        (DESIRED_REPLICAS_ANNOTATION, desired_replicas),
        (MAX_REPLICAS_ANNOTATION, max_replicas),
    ] {
        let value = value.to_string();
        if annotations.get(key) != Some(&value) {
            annotations.insert(key.to_owned(), value);
            changed = true;
        }
    }
    changed
}

/// The working state of one sync.
struct Sync<'a> {
    desired: Desired,
    /// The status as read: what "progress" is measured against.
    stored: DeploymentStatus,
    /// The status as this sync changes it before recomputing the counts
    /// (conditions, collisionCount), like Kubernetes' in-place `d.Status`.
    status: DeploymentStatus,
    /// The owned ReplicaSets, oldest first, then any created in this sync.
    replica_sets: Vec<ReplicaSet>,
    /// ReplicaSets in the namespace this Deployment does not control.
    foreign: Vec<&'a ReplicaSet>,
    pods: &'a [Pod],
    new_index: Option<usize>,
    created_index: Option<usize>,
    /// max(old revisions) + 1.
    new_revision: i64,
    actions: Vec<Action>,
    deployment_revision: Option<String>,
    now: Timestamp,
}

impl<'a> Sync<'a> {
    fn new(
        deployment: &Deployment,
        replica_sets: &'a [ReplicaSet],
        pods: &'a [Pod],
        now: Timestamp,
    ) -> Self {
        let desired = Desired::from_deployment(deployment);
        let stored = deployment.status.clone().unwrap_or_default();
        let (owned, foreign): (Vec<&ReplicaSet>, Vec<&ReplicaSet>) =
            replica_sets.iter().partition(|rs| desired.controls(rs));
        let foreign = foreign
            .into_iter()
            .filter(|rs| {
                rs.metadata.namespace.is_none() || rs.metadata.namespace == desired.namespace
            })
            .collect();
        let mut owned: Vec<ReplicaSet> = owned.into_iter().cloned().collect();
        owned.sort_by(creation_order);
        Sync {
            desired,
            status: stored.clone(),
            stored,
            replica_sets: owned,
            foreign,
            pods,
            new_index: None,
            created_index: None,
            new_revision: 1,
            actions: Vec::new(),
            deployment_revision: None,
            // Conditions carry whole seconds on the wire; keep them comparable.
            now: Timestamp::from_second(now.as_second()).unwrap_or(now),
        }
    }

    /// syncDeployment.
    fn run(mut self) -> Plan {
        if selector_is_empty(&self.desired.selector) {
            // A Deployment selecting every pod is left alone.
            let mut status = self.stored.clone();
            if status.observed_generation.unwrap_or(0) < self.desired.generation {
                status.observed_generation = Some(self.desired.generation);
            }
            return Plan {
                actions: Vec::new(),
                status,
                requeue_after: None,
                deployment_revision: None,
            };
        }
        if self.desired.deleting {
            self.find_new_replica_set_and_sync_revision();
            return self.finish_with_status();
        }
        self.check_paused_conditions();
        self.find_new_replica_set_and_sync_revision();
        if self.desired.paused || self.is_scaling_event() {
            self.scale();
            if self.desired.paused {
                self.cleanup_old_replica_sets();
            }
            return self.finish_with_status();
        }
        match self.desired.strategy {
            Strategy::Recreate => self.rollout_recreate(),
            Strategy::RollingUpdate { .. } => self.rollout_rolling(),
        }
    }

    /// rolloutRolling: surge the new ReplicaSet, then drain the old ones.
    fn rollout_rolling(mut self) -> Plan {
        if self.new_index.is_none() && !self.create_new_replica_set() {
            return self.finish_after_collision();
        }
        if self.reconcile_new_replica_set() || self.reconcile_old_replica_sets() {
            return self.finish_rollout();
        }
        if deployment_complete(&self.desired, &self.stored) {
            self.cleanup_old_replica_sets();
        }
        self.finish_rollout()
    }

    /// rolloutRecreate: all old pods go before any new pod starts.
    fn rollout_recreate(mut self) -> Plan {
        let mut scaled_down = false;
        for index in self.active(self.old_indices()) {
            scaled_down |= self.scale_and_record(index, 0);
        }
        if scaled_down || self.old_pods_running() {
            return self.finish_rollout();
        }
        if self.new_index.is_none() && !self.create_new_replica_set() {
            return self.finish_after_collision();
        }
        if let Some(new) = self.new_index {
            self.scale_and_record(new, self.desired.replicas);
        }
        if deployment_complete(&self.desired, &self.stored) {
            self.cleanup_old_replica_sets();
        }
        self.finish_rollout()
    }

    fn old_indices(&self) -> Vec<usize> {
        (0..self.replica_sets.len())
            .filter(|index| Some(*index) != self.new_index)
            .collect()
    }

    /// Old ReplicaSets, then the new one (Kubernetes' `append(oldRSs, newRS)`).
    fn all_indices(&self) -> Vec<usize> {
        let mut all = self.old_indices();
        all.extend(self.new_index);
        all
    }

    fn active(&self, indices: Vec<usize>) -> Vec<usize> {
        indices
            .into_iter()
            .filter(|index| spec_replicas(&self.replica_sets[*index]) > 0)
            .collect()
    }

    fn spec_sum(&self, indices: &[usize]) -> i64 {
        indices
            .iter()
            .map(|index| spec_replicas(&self.replica_sets[*index]))
            .sum()
    }

    fn spec_of(&self, index: usize) -> i64 {
        spec_replicas(&self.replica_sets[index])
    }

    /// checkPausedConditions: mark pausing and resuming so that a paused
    /// period never counts against the progress deadline.
    fn check_paused_conditions(&mut self) {
        if self.desired.progress_deadline_seconds.is_none() {
            return;
        }
        let reason = condition_reason(&self.status, CONDITION_PROGRESSING);
        if reason == Some(REASON_PROGRESS_DEADLINE_EXCEEDED) {
            return;
        }
        let paused_condition_exists = reason == Some(REASON_DEPLOYMENT_PAUSED);
        let (reason, message) = match (self.desired.paused, paused_condition_exists) {
            (true, false) => (REASON_DEPLOYMENT_PAUSED, "Deployment is paused"),
            (false, true) => (REASON_DEPLOYMENT_RESUMED, "Deployment is resumed"),
            _ => return,
        };
        let condition = new_condition(
            CONDITION_PROGRESSING,
            CONDITION_UNKNOWN,
            reason,
            message.to_owned(),
            self.now,
        );
        set_condition(&mut self.status, condition);
    }

    /// getAllReplicaSetsAndSyncRevision without creating: the new ReplicaSet
    /// is the oldest whose template is the Deployment's; it gets the
    /// Deployment's annotations and a revision above every old one.
    fn find_new_replica_set_and_sync_revision(&mut self) {
        self.new_index = self
            .replica_sets
            .iter()
            .position(|rs| templates_equal_ignoring_hash(&template_of(rs), &self.desired.template));
        let max_old_revision = self
            .old_indices()
            .into_iter()
            .filter_map(|index| revision(&self.replica_sets[index]))
            .max()
            .unwrap_or(0);
        self.new_revision = max_old_revision.saturating_add(1);
        let Some(new) = self.new_index else {
            return;
        };
        if set_new_replica_set_annotations(
            &mut self.replica_sets[new],
            &self.desired,
            self.new_revision,
            true,
        ) {
            self.record_update(new);
        }
        let new_replica_set = &self.replica_sets[new];
        self.deployment_revision = Some(
            annotation(new_replica_set, REVISION_ANNOTATION)
                .unwrap_or_default()
                .to_owned(),
        );
        if self.desired.progress_deadline_seconds.is_some()
            && get_condition(&self.status, CONDITION_PROGRESSING).is_none()
        {
            let condition = new_condition(
                CONDITION_PROGRESSING,
                CONDITION_TRUE,
                REASON_FOUND_NEW_REPLICA_SET,
                format!("Found new replica set \"{}\"", name_of(new_replica_set)),
                self.now,
            );
            set_condition(&mut self.status, condition);
        }
    }

    /// The create half of getNewReplicaSet. Returns false on a hash
    /// collision, having bumped collisionCount so the next sync picks
    /// another name.
    fn create_new_replica_set(&mut self) -> bool {
        let collision_count = self.status.collision_count;
        let hash = pod_template_hash(&self.desired.template, collision_count);
        let name = format!("{}-{hash}", self.desired.name);
        let taken = self
            .replica_sets
            .iter()
            .chain(self.foreign.iter().copied())
            .any(|rs| name_of(rs) == name);
        if taken {
            // An owned ReplicaSet with an equal template would have been found
            // as the new one, so whatever holds the name is a different template.
            self.status.collision_count = Some(collision_count.unwrap_or(0).saturating_add(1));
            return false;
        }

        let mut template = self.desired.template.clone();
        template
            .metadata
            .get_or_insert_with(ObjectMeta::default)
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH_LABEL.to_owned(), hash.clone());
        let labels = template
            .metadata
            .as_ref()
            .and_then(|meta| meta.labels.clone())
            .unwrap_or_default();
        let mut selector = self.desired.selector.clone();
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH_LABEL.to_owned(), hash);
        let replicas = self.new_replica_set_replicas(0, self.spec_sum(&self.all_indices()));
        let mut replica_set = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: self.desired.namespace.clone(),
                labels: Some(labels),
                owner_references: Some(vec![OwnerReference {
                    api_version: "apps/v1".to_owned(),
                    kind: "Deployment".to_owned(),
                    name: self.desired.name.clone(),
                    uid: self.desired.uid.clone(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]),
                ..ObjectMeta::default()
            },
            spec: ReplicaSetSpec {
                replicas: Some(to_i32(replicas)),
                min_ready_seconds: self.desired.min_ready_seconds,
                selector,
                template: Some(template),
            },
            status: None,
        };
        set_new_replica_set_annotations(&mut replica_set, &self.desired, self.new_revision, false);
        self.actions
            .push(Action::CreateReplicaSet(replica_set.clone()));

        replica_set.metadata.creation_timestamp = Some(Time(self.now));
        self.replica_sets.push(replica_set);
        let index = self.replica_sets.len() - 1;
        self.new_index = Some(index);
        self.created_index = Some(index);
        self.deployment_revision = Some(self.new_revision.to_string());
        if self.desired.progress_deadline_seconds.is_some() {
            let condition = new_condition(
                CONDITION_PROGRESSING,
                CONDITION_TRUE,
                REASON_NEW_REPLICA_SET_CREATED,
                format!("Created new replica set \"{name}\""),
                self.now,
            );
            set_condition(&mut self.status, condition);
        }
        true
    }

    /// NewRSNewReplicas: how big the new ReplicaSet may be now.
    fn new_replica_set_replicas(&self, new_replicas: i64, all_replicas: i64) -> i64 {
        let replicas = self.desired.replicas;
        match &self.desired.strategy {
            Strategy::Recreate => replicas,
            Strategy::RollingUpdate { max_surge, .. } => {
                let max_total = replicas + scaled_value(max_surge, replicas, true);
                if all_replicas >= max_total {
                    new_replicas
                } else {
                    new_replicas + (max_total - all_replicas).min(replicas - new_replicas)
                }
            }
        }
    }

    /// isScalingEvent: an active ReplicaSet was sized for another spec.replicas.
    fn is_scaling_event(&self) -> bool {
        self.active(self.all_indices()).into_iter().any(|index| {
            int_annotation(&self.replica_sets[index], DESIRED_REPLICAS_ANNOTATION)
                .is_some_and(|desired| desired != self.desired.replicas)
        })
    }

    /// scale: follow spec.replicas without a rollout, spreading the change
    /// over the active ReplicaSets in proportion to their size.
    fn scale(&mut self) {
        let replicas = self.desired.replicas;
        if let Some(index) = self.find_active_or_latest() {
            if self.spec_of(index) != replicas {
                self.scale_and_record(index, replicas);
            }
            return;
        }
        if self.new_is_saturated() {
            for index in self.active(self.old_indices()) {
                self.scale_and_record(index, 0);
            }
            return;
        }
        if !self.desired.is_rolling_update() {
            return;
        }
        let mut active = self.active(self.all_indices());
        let allowed = if replicas > 0 {
            replicas + self.desired.max_surge()
        } else {
            0
        };
        let to_add = allowed - self.spec_sum(&active);
        // Grow the biggest (then newest) first; shrink the biggest (then oldest) first.
        match to_add.cmp(&0) {
            Ordering::Greater => active.sort_by(|a, b| {
                self.spec_of(*b)
                    .cmp(&self.spec_of(*a))
                    .then_with(|| creation_order(&self.replica_sets[*b], &self.replica_sets[*a]))
            }),
            Ordering::Less => active.sort_by(|a, b| {
                self.spec_of(*b)
                    .cmp(&self.spec_of(*a))
                    .then_with(|| creation_order(&self.replica_sets[*a], &self.replica_sets[*b]))
            }),
            Ordering::Equal => {}
        }
        let mut added = 0;
        let mut sizes = Vec::with_capacity(active.len());
        for &index in &active {
            let proportion = self.proportion(index, to_add, added);
            sizes.push(self.spec_of(index) + proportion);
            added += proportion;
        }
        if let Some(first) = sizes.first_mut() {
            // Whatever rounding left over goes to the first (largest) one.
            *first = (*first + to_add - added).max(0);
        }
        for (index, size) in active.into_iter().zip(sizes) {
            self.scale_replica_set(index, size);
        }
    }

    /// FindActiveOrLatest: the only active ReplicaSet, or the newest if none
    /// is active; `None` when several are active.
    fn find_active_or_latest(&self) -> Option<usize> {
        let mut old = self.old_indices();
        if self.new_index.is_none() && old.is_empty() {
            return None;
        }
        old.sort_by(|a, b| creation_order(&self.replica_sets[*b], &self.replica_sets[*a]));
        let mut all = old.clone();
        all.extend(self.new_index);
        let active = self.active(all);
        match active.as_slice() {
            [] => self.new_index.or_else(|| old.first().copied()),
            [only] => Some(*only),
            _ => None,
        }
    }

    /// IsSaturated: the new ReplicaSet alone runs everything, all available.
    fn new_is_saturated(&self) -> bool {
        let Some(new) = self.new_index else {
            return false;
        };
        let replica_set = &self.replica_sets[new];
        int_annotation(replica_set, DESIRED_REPLICAS_ANNOTATION).is_some_and(|desired| {
            desired == self.desired.replicas
                && spec_replicas(replica_set) == self.desired.replicas
                && available_replicas(replica_set) == self.desired.replicas
        })
    }

    /// GetProportion: this ReplicaSet's share of `to_add`, never more than is left.
    fn proportion(&self, index: usize, to_add: i64, added: i64) -> i64 {
        if self.spec_of(index) == 0 || to_add == 0 || to_add == added {
            return 0;
        }
        let fraction = self.replica_set_fraction(index);
        let allowed = to_add - added;
        if to_add > 0 {
            fraction.min(allowed)
        } else {
            fraction.max(allowed)
        }
    }

    /// getReplicaSetFraction: the change that keeps this ReplicaSet's share
    /// of the Deployment's old maximum size.
    fn replica_set_fraction(&self, index: usize) -> i64 {
        let replica_set = &self.replica_sets[index];
        let current = spec_replicas(replica_set);
        if self.desired.replicas == 0 {
            return -current;
        }
        let deployment_replicas = self.desired.replicas + self.desired.max_surge();
        let annotated = int_annotation(replica_set, MAX_REPLICAS_ANNOTATION)
            .unwrap_or_else(|| count(self.stored.replicas));
        if annotated <= 0 {
            return 0;
        }
        let new_size = current.saturating_mul(deployment_replicas) as f64 / annotated as f64;
        new_size.round() as i64 - current
    }

    /// reconcileNewReplicaSet: grow the new ReplicaSet as far as maxSurge allows.
    fn reconcile_new_replica_set(&mut self) -> bool {
        let Some(new) = self.new_index else {
            return false;
        };
        let replicas = self.desired.replicas;
        let current = self.spec_of(new);
        match current.cmp(&replicas) {
            Ordering::Equal => false,
            Ordering::Greater => self.scale_and_record(new, replicas),
            Ordering::Less => {
                let wanted =
                    self.new_replica_set_replicas(current, self.spec_sum(&self.all_indices()));
                self.scale_and_record(new, wanted)
            }
        }
    }

    /// reconcileOldReplicaSets: shrink old ReplicaSets without dropping below
    /// spec.replicas - maxUnavailable available pods, counting the new
    /// ReplicaSet's unavailable pods against the budget.
    fn reconcile_old_replica_sets(&mut self) -> bool {
        let Some(new) = self.new_index else {
            return false;
        };
        let mut old = self.active(self.old_indices());
        if self.spec_sum(&old) == 0 {
            return false;
        }
        let all_pods = self.spec_sum(&self.all_indices());
        let min_available = self.desired.replicas - self.desired.max_unavailable();
        let new_unavailable = self.spec_of(new) - available_replicas(&self.replica_sets[new]);
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return false;
        }
        old.sort_by(|a, b| creation_order(&self.replica_sets[*a], &self.replica_sets[*b]));
        let cleaned_up = self.cleanup_unhealthy_replicas(&old, max_scaled_down);
        let scaled_down = self.scale_down_old_replica_sets(&old, new, min_available);
        cleaned_up + scaled_down > 0
    }

    /// cleanupUnhealthyReplicas: unavailable old pods go first; removing them
    /// costs no availability, and they would otherwise stall the rollout.
    fn cleanup_unhealthy_replicas(&mut self, old: &[usize], max_cleanup: i64) -> i64 {
        let mut total = 0;
        for &index in old {
            if total >= max_cleanup {
                break;
            }
            let replicas = self.spec_of(index);
            let available = available_replicas(&self.replica_sets[index]);
            if replicas == 0 || available >= replicas {
                continue;
            }
            let scale_down = (max_cleanup - total).min(replicas - available);
            self.scale_and_record(index, replicas - scale_down);
            total += scale_down;
        }
        total
    }

    /// scaleDownOldReplicaSetsForRollingUpdate: oldest first, only what the
    /// available pods above the minimum allow.
    fn scale_down_old_replica_sets(
        &mut self,
        old: &[usize],
        new: usize,
        min_available: i64,
    ) -> i64 {
        let available: i64 = old
            .iter()
            .chain(std::iter::once(&new))
            .map(|index| available_replicas(&self.replica_sets[*index]))
            .sum();
        if available <= min_available {
            return 0;
        }
        let target = available - min_available;
        let mut total = 0;
        for &index in old {
            if total >= target {
                break;
            }
            let replicas = self.spec_of(index);
            if replicas == 0 {
                continue;
            }
            let scale_down = replicas.min(target - total);
            self.scale_and_record(index, replicas - scale_down);
            total += scale_down;
        }
        total
    }

    /// oldPodsRunning: old ReplicaSets still report pods, or one of their pods
    /// has not reached a terminal phase (terminating pods still run).
    fn old_pods_running(&self) -> bool {
        let old = self.old_indices();
        if old
            .iter()
            .map(|index| status_replicas(&self.replica_sets[*index]))
            .sum::<i64>()
            > 0
        {
            return true;
        }
        self.pods
            .iter()
            .any(|pod| match self.owning_replica_set(pod) {
                Some(index) => Some(index) != self.new_index && !is_terminal(pod),
                None => false,
            })
    }

    fn owning_replica_set(&self, pod: &Pod) -> Option<usize> {
        let owner = controller_of(&pod.metadata)?;
        self.replica_sets
            .iter()
            .position(|rs| match rs.metadata.uid.as_deref() {
                Some(uid) if !uid.is_empty() => owner.uid == uid,
                _ => owner.kind == "ReplicaSet" && owner.name == name_of(rs),
            })
    }

    /// cleanupDeployment: delete the oldest revisions beyond
    /// revisionHistoryLimit, skipping any that still have or may have pods.
    fn cleanup_old_replica_sets(&mut self) {
        let Some(limit) = self.desired.revision_history_limit else {
            return;
        };
        let mut cleanable: Vec<usize> = self
            .old_indices()
            .into_iter()
            .filter(|index| {
                self.replica_sets[*index]
                    .metadata
                    .deletion_timestamp
                    .is_none()
            })
            .collect();
        let excess = i64::try_from(cleanable.len()).unwrap_or(i64::MAX) - limit;
        let Ok(excess) = usize::try_from(excess) else {
            return;
        };
        cleanable.sort_by(|a, b| {
            let (a, b) = (&self.replica_sets[*a], &self.replica_sets[*b]);
            revision(a)
                .unwrap_or(0)
                .cmp(&revision(b).unwrap_or(0))
                .then_with(|| creation_order(a, b))
        });
        for &index in cleanable.iter().take(excess) {
            let replica_set = &self.replica_sets[index];
            let generation = replica_set.metadata.generation.unwrap_or(0);
            let observed = replica_set
                .status
                .as_ref()
                .and_then(|status| status.observed_generation)
                .unwrap_or(0);
            if status_replicas(replica_set) != 0
                || spec_replicas(replica_set) != 0
                || generation > observed
            {
                continue;
            }
            self.actions.push(Action::DeleteReplicaSet {
                name: name_of(replica_set).to_owned(),
            });
        }
    }

    /// scaleReplicaSetAndRecordEvent: scale only if the size differs.
    fn scale_and_record(&mut self, index: usize, replicas: i64) -> bool {
        if self.spec_of(index) == replicas {
            return false;
        }
        self.scale_replica_set(index, replicas)
    }

    /// scaleReplicaSet: set the size and the replicas annotations; returns
    /// whether the size changed.
    fn scale_replica_set(&mut self, index: usize, replicas: i64) -> bool {
        let desired_replicas = self.desired.replicas;
        let max_replicas = desired_replicas + self.desired.max_surge();
        let replica_set = &mut self.replica_sets[index];
        let resized = spec_replicas(replica_set) != replicas;
        let annotations = replica_set
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new);
        let annotated = set_replicas_annotations(annotations, desired_replicas, max_replicas);
        if resized {
            replica_set.spec.replicas = Some(to_i32(replicas));
        }
        if resized || annotated {
            self.record_update(index);
        }
        resized
    }

    /// Keeps one action per ReplicaSet, carrying its latest desired state.
    fn record_update(&mut self, index: usize) {
        let replica_set = &self.replica_sets[index];
        let name = name_of(replica_set).to_owned();
        let replicas = to_i32(spec_replicas(replica_set));
        let annotations = replica_set.metadata.annotations.clone().unwrap_or_default();
        if self.created_index == Some(index) {
            for action in &mut self.actions {
                if let Action::CreateReplicaSet(created) = action
                    && name_of(created) == name
                {
                    created.spec.replicas = Some(replicas);
                    created.metadata.annotations = Some(annotations.clone());
                }
            }
            return;
        }
        let existing = self.actions.iter_mut().find_map(|action| match action {
            Action::UpdateReplicaSet {
                name: updated,
                replicas,
                annotations,
            } if *updated == name => Some((replicas, annotations)),
            _ => None,
        });
        match existing {
            Some((existing_replicas, existing_annotations)) => {
                *existing_replicas = replicas;
                *existing_annotations = annotations;
            }
            None => self.actions.push(Action::UpdateReplicaSet {
                name,
                replicas,
                annotations,
            }),
        }
    }

    /// calculateStatus: counts from the ReplicaSets, conditions carried over,
    /// Available recomputed.
    fn calculate_status(&self) -> DeploymentStatus {
        let all = &self.replica_sets;
        let available: i64 = all.iter().map(available_replicas).sum();
        let wanted: i64 = all.iter().map(spec_replicas).sum();
        let updated = self
            .new_index
            .map_or(0, |index| status_replicas(&self.replica_sets[index]));
        let mut status = DeploymentStatus {
            observed_generation: (self.desired.generation != 0).then_some(self.desired.generation),
            replicas: nonzero(all.iter().map(status_replicas).sum()),
            updated_replicas: nonzero(updated),
            ready_replicas: nonzero(all.iter().map(ready_replicas).sum()),
            available_replicas: nonzero(available),
            unavailable_replicas: nonzero((wanted - available).max(0)),
            terminating_replicas: None,
            collision_count: self.status.collision_count,
            conditions: self.status.conditions.clone(),
        };
        let condition = if available >= self.desired.replicas - self.desired.max_unavailable() {
            new_condition(
                CONDITION_AVAILABLE,
                CONDITION_TRUE,
                REASON_MINIMUM_REPLICAS_AVAILABLE,
                "Deployment has minimum availability.".to_owned(),
                self.now,
            )
        } else {
            new_condition(
                CONDITION_AVAILABLE,
                CONDITION_FALSE,
                REASON_MINIMUM_REPLICAS_UNAVAILABLE,
                "Deployment does not have minimum availability.".to_owned(),
                self.now,
            )
        };
        set_condition(&mut status, condition);
        status
    }

    /// syncDeploymentStatus: the status without any progress estimate.
    fn finish_with_status(self) -> Plan {
        Plan {
            status: self.calculate_status(),
            actions: self.actions,
            requeue_after: None,
            deployment_revision: self.deployment_revision,
        }
    }

    /// Kubernetes aborts the sync on a collision, writing only the bumped
    /// collisionCount (with any condition changes made so far).
    fn finish_after_collision(self) -> Plan {
        Plan {
            actions: self.actions,
            status: self.status,
            requeue_after: Some(Duration::ZERO),
            deployment_revision: self.deployment_revision,
        }
    }

    /// syncRolloutStatus: the status with the Progressing condition advanced,
    /// and when to check the progress deadline again.
    fn finish_rollout(self) -> Plan {
        let mut status = self.calculate_status();
        let deadline = self.desired.progress_deadline_seconds;
        if deadline.is_none() {
            remove_condition(&mut status, CONDITION_PROGRESSING);
        }
        let current = get_condition(&self.status, CONDITION_PROGRESSING);
        let already_complete = status.replicas == status.updated_replicas
            && current.and_then(|c| c.reason.as_deref()) == Some(REASON_NEW_REPLICA_SET_AVAILABLE);
        if let Some(deadline) = deadline
            && !already_complete
        {
            let subject = match self.new_index {
                Some(index) => format!("ReplicaSet \"{}\"", name_of(&self.replica_sets[index])),
                None => format!("Deployment \"{}\"", self.desired.name),
            };
            if deployment_complete(&self.desired, &status) {
                let condition = new_condition(
                    CONDITION_PROGRESSING,
                    CONDITION_TRUE,
                    REASON_NEW_REPLICA_SET_AVAILABLE,
                    format!("{subject} has successfully progressed."),
                    self.now,
                );
                set_condition(&mut status, condition);
            } else if deployment_progressing(&self.stored, &status) {
                // Progress refreshes lastUpdateTime even with an unchanged reason.
                let mut condition = new_condition(
                    CONDITION_PROGRESSING,
                    CONDITION_TRUE,
                    REASON_REPLICA_SET_UPDATED,
                    format!("{subject} is progressing."),
                    self.now,
                );
                if let Some(current) = current {
                    if current.status.as_deref() == Some(CONDITION_TRUE) {
                        condition.last_transition_time = current.last_transition_time.clone();
                    }
                    remove_condition(&mut status, CONDITION_PROGRESSING);
                }
                set_condition(&mut status, condition);
            } else if self.timed_out(&status, deadline) {
                let condition = new_condition(
                    CONDITION_PROGRESSING,
                    CONDITION_FALSE,
                    REASON_PROGRESS_DEADLINE_EXCEEDED,
                    format!("{subject} has timed out progressing."),
                    self.now,
                );
                set_condition(&mut status, condition);
            }
        }
        match self.replica_failure() {
            Some(condition) => set_condition(&mut status, condition),
            None => remove_condition(&mut status, CONDITION_REPLICA_FAILURE),
        }
        Plan {
            requeue_after: self.progress_check_after(&status),
            status,
            actions: self.actions,
            deployment_revision: self.deployment_revision,
        }
    }

    /// DeploymentTimedOut: no progress since the Progressing condition's
    /// lastUpdateTime for longer than the deadline.
    fn timed_out(&self, status: &DeploymentStatus, deadline: i64) -> bool {
        let Some(condition) = get_condition(status, CONDITION_PROGRESSING) else {
            return false;
        };
        match condition.reason.as_deref() {
            Some(REASON_NEW_REPLICA_SET_AVAILABLE) => false,
            Some(REASON_PROGRESS_DEADLINE_EXCEEDED) => true,
            _ => match last_progress(condition) {
                // Kubernetes reads a missing time as the zero time: long past.
                None => true,
                Some(since) => since
                    .checked_add(SignedDuration::from_secs(deadline))
                    .is_ok_and(|due| due < self.now),
            },
        }
    }

    /// requeueStuckDeployment: a rollout that is neither complete nor failed
    /// must be looked at once its deadline passes, change or no change.
    fn progress_check_after(&self, status: &DeploymentStatus) -> Option<Duration> {
        let deadline = self.desired.progress_deadline_seconds?;
        let condition = get_condition(status, CONDITION_PROGRESSING)?;
        if deployment_complete(&self.desired, status)
            || matches!(
                condition.reason.as_deref(),
                Some(
                    REASON_PROGRESS_DEADLINE_EXCEEDED
                        | REASON_NEW_REPLICA_SET_AVAILABLE
                        | REASON_DEPLOYMENT_PAUSED
                )
            )
        {
            return None;
        }
        let due = progress_deadline_at(condition, deadline)?;
        let remaining = Duration::try_from(due.duration_since(self.now)).unwrap_or(Duration::ZERO);
        Some(remaining + Duration::from_secs(1))
    }

    /// getReplicaFailures: the new ReplicaSet's ReplicaFailure condition, else
    /// any old one's, as a Deployment condition.
    fn replica_failure(&self) -> Option<DeploymentCondition> {
        let failure_of = |replica_set: &ReplicaSet| {
            replica_set
                .status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .find(|c| c.type_.as_deref() == Some(CONDITION_REPLICA_FAILURE))
                .cloned()
        };
        let failure = self
            .new_index
            .and_then(|index| failure_of(&self.replica_sets[index]))
            .or_else(|| self.replica_sets.iter().find_map(failure_of))?;
        Some(DeploymentCondition {
            type_: Some(CONDITION_REPLICA_FAILURE.to_owned()),
            status: failure.status,
            reason: failure.reason,
            message: failure.message,
            last_update_time: failure.last_transition_time.clone(),
            last_transition_time: failure.last_transition_time,
        })
    }
}

/// When the Progressing condition last recorded progress.
fn last_progress(condition: &DeploymentCondition) -> Option<Timestamp> {
    condition
        .last_update_time
        .as_ref()
        .or(condition.last_transition_time.as_ref())
        .map(|time| time.0)
}

fn progress_deadline_at(condition: &DeploymentCondition, deadline: i64) -> Option<Timestamp> {
    last_progress(condition)?
        .checked_add(SignedDuration::from_secs(deadline))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{
        DeploymentSpec, DeploymentStrategy, ReplicaSetCondition, ReplicaSetStatus,
        RollingUpdateDeployment,
    };
    use k8s_openapi::api::core::v1::{Container, PodSpec, PodStatus};

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + second).expect("valid test time")
    }

    fn int(value: i32) -> IntOrString {
        IntOrString::Int(value)
    }

    fn percent(value: &str) -> IntOrString {
        IntOrString::String(value.to_owned())
    }

    fn deployment(name: &str) -> Deployment {
        let labels = BTreeMap::from([("app".to_owned(), name.to_owned())]);
        Deployment {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some("default".to_owned()),
                uid: Some(format!("uid-{name}")),
                generation: Some(1),
                ..ObjectMeta::default()
            },
            spec: DeploymentSpec {
                replicas: Some(1),
                selector: LabelSelector {
                    match_labels: Some(labels.clone()),
                    ..LabelSelector::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: "app".to_owned(),
                            image: Some("nginx:1".to_owned()),
                            ..Container::default()
                        }],
                        ..PodSpec::default()
                    }),
                },
                ..DeploymentSpec::default()
            },
            status: None,
        }
    }

    trait DeploymentFixture: Sized {
        fn replicas(self, replicas: i32) -> Self;
        fn image(self, image: &str) -> Self;
        fn rolling_update(self, max_surge: IntOrString, max_unavailable: IntOrString) -> Self;
        fn recreate(self) -> Self;
        fn paused(self, paused: bool) -> Self;
        fn revision_history_limit(self, limit: i32) -> Self;
        fn progress_deadline_seconds(self, seconds: i32) -> Self;
        fn annotation(self, key: &str, value: &str) -> Self;
        fn template_annotation(self, key: &str, value: &str) -> Self;
        /// A status saying the current generation is fully rolled out.
        fn complete(self) -> Self;
    }

    impl DeploymentFixture for Deployment {
        fn replicas(mut self, replicas: i32) -> Self {
            self.spec.replicas = Some(replicas);
            self
        }

        fn image(mut self, image: &str) -> Self {
            if let Some(container) = self
                .spec
                .template
                .spec
                .as_mut()
                .and_then(|spec| spec.containers.first_mut())
            {
                container.image = Some(image.to_owned());
            }
            self
        }

        fn rolling_update(mut self, max_surge: IntOrString, max_unavailable: IntOrString) -> Self {
            self.spec.strategy = Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_owned()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(max_surge),
                    max_unavailable: Some(max_unavailable),
                }),
            });
            self
        }

        fn recreate(mut self) -> Self {
            self.spec.strategy = Some(DeploymentStrategy {
                type_: Some("Recreate".to_owned()),
                rolling_update: None,
            });
            self
        }

        fn paused(mut self, paused: bool) -> Self {
            self.spec.paused = Some(paused);
            self
        }

        fn revision_history_limit(mut self, limit: i32) -> Self {
            self.spec.revision_history_limit = Some(limit);
            self
        }

        fn progress_deadline_seconds(mut self, seconds: i32) -> Self {
            self.spec.progress_deadline_seconds = Some(seconds);
            self
        }

        fn annotation(mut self, key: &str, value: &str) -> Self {
            self.metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(key.to_owned(), value.to_owned());
            self
        }

        fn template_annotation(mut self, key: &str, value: &str) -> Self {
            self.spec
                .template
                .metadata
                .get_or_insert_with(ObjectMeta::default)
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(key.to_owned(), value.to_owned());
            self
        }

        fn complete(mut self) -> Self {
            let replicas = self.spec.replicas;
            self.status = Some(DeploymentStatus {
                observed_generation: self.metadata.generation,
                replicas,
                updated_replicas: replicas,
                ready_replicas: replicas,
                available_replicas: replicas,
                ..DeploymentStatus::default()
            });
            self
        }
    }

    /// The ReplicaSet the controller would have made for the deployment's
    /// current template, as revision 1, with no pods yet.
    fn replica_set_for(deployment: &Deployment) -> ReplicaSet {
        let hash = pod_template_hash(&deployment.spec.template, None);
        let name = format!(
            "{}-{hash}",
            deployment.metadata.name.as_deref().unwrap_or_default()
        );
        let replicas = deployment.spec.replicas.unwrap_or(1);
        let mut template = deployment.spec.template.clone();
        let mut labels = template
            .metadata
            .as_ref()
            .and_then(|meta| meta.labels.clone())
            .unwrap_or_default();
        labels.insert(POD_TEMPLATE_HASH_LABEL.to_owned(), hash.clone());
        template
            .metadata
            .get_or_insert_with(ObjectMeta::default)
            .labels = Some(labels.clone());
        let mut selector = deployment.spec.selector.clone();
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH_LABEL.to_owned(), hash);
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: deployment.metadata.namespace.clone(),
                uid: Some(format!("uid-{name}")),
                creation_timestamp: Some(Time(at(0))),
                labels: Some(labels),
                annotations: Some(BTreeMap::from([
                    (REVISION_ANNOTATION.to_owned(), "1".to_owned()),
                    (DESIRED_REPLICAS_ANNOTATION.to_owned(), replicas.to_string()),
                ])),
                owner_references: Some(vec![OwnerReference {
                    api_version: "apps/v1".to_owned(),
                    kind: "Deployment".to_owned(),
                    name: deployment.metadata.name.clone().unwrap_or_default(),
                    uid: deployment.metadata.uid.clone().unwrap_or_default(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]),
                ..ObjectMeta::default()
            },
            spec: ReplicaSetSpec {
                replicas: Some(replicas),
                selector,
                template: Some(template),
                ..ReplicaSetSpec::default()
            },
            status: Some(ReplicaSetStatus::default()),
        }
    }

    trait ReplicaSetFixture: Sized {
        /// `replicas` pods wanted, running, ready and available.
        fn ready(self, replicas: i32) -> Self;
        /// `available` of its pods available.
        fn available(self, available: i32) -> Self;
        fn revision(self, revision: &str) -> Self;
        fn created(self, second: i64) -> Self;
    }

    impl ReplicaSetFixture for ReplicaSet {
        fn ready(mut self, replicas: i32) -> Self {
            self.spec.replicas = Some(replicas);
            self.status = Some(ReplicaSetStatus {
                replicas,
                ready_replicas: Some(replicas),
                available_replicas: Some(replicas),
                ..ReplicaSetStatus::default()
            });
            self
        }

        fn available(mut self, available: i32) -> Self {
            let status = self.status.get_or_insert_with(ReplicaSetStatus::default);
            status.available_replicas = Some(available);
            status.ready_replicas = Some(available);
            self
        }

        fn revision(mut self, revision: &str) -> Self {
            self.metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(REVISION_ANNOTATION.to_owned(), revision.to_owned());
            self
        }

        fn created(mut self, second: i64) -> Self {
            self.metadata.creation_timestamp = Some(Time(at(second)));
            self
        }
    }

    fn pod_of(replica_set: &ReplicaSet, name: &str, phase: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                owner_references: Some(vec![OwnerReference {
                    api_version: "apps/v1".to_owned(),
                    kind: "ReplicaSet".to_owned(),
                    name: name_of(replica_set).to_owned(),
                    uid: replica_set.metadata.uid.clone().unwrap_or_default(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]),
                ..ObjectMeta::default()
            },
            spec: None,
            status: Some(PodStatus {
                phase: Some(phase.to_owned()),
                ..PodStatus::default()
            }),
        }
    }

    fn condition<'a>(status: &'a DeploymentStatus, type_: &str) -> &'a DeploymentCondition {
        get_condition(status, type_).expect("condition present")
    }

    fn reason(status: &DeploymentStatus, type_: &str) -> String {
        condition(status, type_).reason.clone().unwrap_or_default()
    }

    fn created(plan: &Plan) -> Vec<&ReplicaSet> {
        plan.actions
            .iter()
            .filter_map(|action| match action {
                Action::CreateReplicaSet(replica_set) => Some(replica_set),
                _ => None,
            })
            .collect()
    }

    fn updates(plan: &Plan) -> Vec<(String, i32)> {
        plan.actions
            .iter()
            .filter_map(|action| match action {
                Action::UpdateReplicaSet { name, replicas, .. } => Some((name.clone(), *replicas)),
                _ => None,
            })
            .collect()
    }

    fn get(value: Option<i32>) -> i32 {
        value.unwrap_or(0)
    }

    /// A fake API server and ReplicaSet controller around `plan`.
    struct Cluster {
        deployment: Deployment,
        replica_sets: Vec<ReplicaSet>,
        pods: Vec<Pod>,
        clock: i64,
    }

    impl Cluster {
        fn new(deployment: Deployment, replica_sets: Vec<ReplicaSet>) -> Self {
            Cluster {
                deployment,
                replica_sets,
                pods: Vec::new(),
                clock: 1,
            }
        }

        fn sync(&mut self) -> Plan {
            let plan = plan(
                &self.deployment,
                &self.replica_sets,
                &self.pods,
                at(self.clock),
            );
            self.apply(&plan);
            plan
        }

        fn apply(&mut self, plan: &Plan) {
            for action in &plan.actions {
                match action {
                    Action::CreateReplicaSet(replica_set) => {
                        let mut replica_set = replica_set.clone();
                        replica_set.metadata.uid = Some(format!("uid-{}", name_of(&replica_set)));
                        replica_set.metadata.creation_timestamp = Some(Time(at(self.clock)));
                        self.replica_sets.push(replica_set);
                    }
                    Action::UpdateReplicaSet {
                        name,
                        replicas,
                        annotations,
                    } => {
                        let replica_set = self
                            .replica_sets
                            .iter_mut()
                            .find(|rs| name_of(rs) == name)
                            .expect("updated ReplicaSet exists");
                        replica_set.spec.replicas = Some(*replicas);
                        replica_set.metadata.annotations = Some(annotations.clone());
                    }
                    Action::DeleteReplicaSet { name } => {
                        self.replica_sets.retain(|rs| name_of(rs) != name);
                    }
                }
            }
            // Pods of a shrunk ReplicaSet go at once; new pods take a settle().
            for replica_set in &mut self.replica_sets {
                let wanted = replica_set.spec.replicas.unwrap_or(1);
                let status = replica_set
                    .status
                    .get_or_insert_with(ReplicaSetStatus::default);
                if status.replicas > wanted {
                    status.replicas = wanted;
                    status.ready_replicas = Some(get(status.ready_replicas).min(wanted));
                    status.available_replicas = Some(get(status.available_replicas).min(wanted));
                }
            }
            self.deployment.status = Some(plan.status.clone());
            if let Some(revision) = &plan.deployment_revision {
                self.deployment
                    .metadata
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .insert(REVISION_ANNOTATION.to_owned(), revision.clone());
            }
        }

        /// Every wanted pod starts and becomes available; a second passes.
        fn settle(&mut self) {
            for replica_set in &mut self.replica_sets {
                let wanted = replica_set.spec.replicas.unwrap_or(1);
                replica_set.status = Some(ReplicaSetStatus {
                    replicas: wanted,
                    ready_replicas: Some(wanted),
                    available_replicas: Some(wanted),
                    ..ReplicaSetStatus::default()
                });
            }
            self.clock += 1;
        }

        /// A spec change, as the API server records it.
        fn change(&mut self, change: impl FnOnce(Deployment) -> Deployment) {
            let mut deployment = change(self.deployment.clone());
            deployment.metadata.generation = Some(deployment.metadata.generation.unwrap_or(0) + 1);
            self.deployment = deployment;
        }

        fn available(&self) -> i32 {
            self.replica_sets
                .iter()
                .map(|rs| to_i32(available_replicas(rs)))
                .sum()
        }

        /// `kubectl rollout status`'s rule for a finished rollout.
        fn rollout_complete(&self) -> bool {
            let status = self.deployment.status.clone().unwrap_or_default();
            self.deployment.metadata.generation.unwrap_or(0)
                <= status.observed_generation.unwrap_or(0)
                && get(status.updated_replicas) >= self.deployment.spec.replicas.unwrap_or(1)
                && get(status.replicas) <= get(status.updated_replicas)
                && get(status.available_replicas) >= get(status.updated_replicas)
        }

        /// Syncs and settles until the rollout is done and nothing is left to do.
        fn run_to_completion(&mut self, minimum_available: i32) -> usize {
            for step in 0..100 {
                let plan = self.sync();
                assert!(
                    self.available() >= minimum_available,
                    "availability dropped to {} at step {step}: {plan:?}",
                    self.available()
                );
                if plan.actions.is_empty() && self.rollout_complete() {
                    return step;
                }
                self.settle();
            }
            panic!("rollout did not finish: {:?}", self.replica_sets);
        }

        fn replica_set_with_revision(&self, revision: &str) -> &ReplicaSet {
            self.replica_sets
                .iter()
                .find(|rs| annotation(rs, REVISION_ANNOTATION) == Some(revision))
                .expect("ReplicaSet with that revision")
        }
    }

    /// A deployment fully rolled out at nginx:1.
    fn rolled_out(deployment: Deployment) -> Cluster {
        let replicas = deployment.spec.replicas.unwrap_or(1);
        let replica_set = replica_set_for(&deployment).ready(replicas);
        let mut cluster = Cluster::new(deployment.complete(), vec![replica_set]);
        cluster.run_to_completion(0);
        cluster
    }

    #[test]
    fn new_deployment_creates_one_replica_set_at_full_size() {
        let web = deployment("web")
            .replicas(5)
            .annotation("kubernetes.io/change-cause", "first")
            .annotation("kubectl.kubernetes.io/last-applied-configuration", "{}");
        let plan = plan(&web, &[], &[], at(0));

        let hash = pod_template_hash(&web.spec.template, None);
        let [replica_set] = created(&plan)[..] else {
            panic!("expected exactly one ReplicaSet, got {:?}", plan.actions);
        };
        assert_eq!(plan.actions.len(), 1);
        assert_eq!(name_of(replica_set), format!("web-{hash}"));
        assert_eq!(replica_set.metadata.namespace.as_deref(), Some("default"));
        let hash_label = Some(&hash);
        let labels = replica_set.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get(POD_TEMPLATE_HASH_LABEL), hash_label);
        assert_eq!(labels.get("app").map(String::as_str), Some("web"));
        let selector = replica_set
            .spec
            .selector
            .match_labels
            .clone()
            .unwrap_or_default();
        assert_eq!(selector.get(POD_TEMPLATE_HASH_LABEL), hash_label);
        let template_labels = template_of(replica_set)
            .metadata
            .and_then(|m| m.labels)
            .unwrap_or_default();
        assert_eq!(template_labels.get(POD_TEMPLATE_HASH_LABEL), hash_label);
        assert_eq!(
            replica_set.metadata.owner_references,
            Some(vec![OwnerReference {
                api_version: "apps/v1".to_owned(),
                kind: "Deployment".to_owned(),
                name: "web".to_owned(),
                uid: "uid-web".to_owned(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }])
        );
        assert_eq!(replica_set.spec.replicas, Some(5));
        assert_eq!(annotation(replica_set, REVISION_ANNOTATION), Some("1"));
        assert_eq!(
            annotation(replica_set, DESIRED_REPLICAS_ANNOTATION),
            Some("5")
        );
        // 25% of 5 rounds up to a surge of 2.
        assert_eq!(annotation(replica_set, MAX_REPLICAS_ANNOTATION), Some("7"));
        assert_eq!(
            annotation(replica_set, "kubernetes.io/change-cause"),
            Some("first")
        );
        assert_eq!(
            annotation(
                replica_set,
                "kubectl.kubernetes.io/last-applied-configuration"
            ),
            None
        );
        assert_eq!(plan.deployment_revision.as_deref(), Some("1"));

        let progressing = condition(&plan.status, CONDITION_PROGRESSING);
        assert_eq!(progressing.status.as_deref(), Some("True"));
        assert_eq!(
            progressing.reason.as_deref(),
            Some(REASON_NEW_REPLICA_SET_CREATED)
        );
        assert_eq!(
            progressing.message.clone().unwrap_or_default(),
            format!("Created new replica set \"web-{hash}\"")
        );
        assert_eq!(
            reason(&plan.status, CONDITION_AVAILABLE),
            REASON_MINIMUM_REPLICAS_UNAVAILABLE
        );
        assert_eq!(plan.status.observed_generation, Some(1));
        assert_eq!(plan.status.unavailable_replicas, Some(5));
    }

    #[test]
    fn new_replica_set_carries_min_ready_seconds() {
        let mut web = deployment("web").replicas(2);
        web.spec.min_ready_seconds = Some(10);
        let plan = plan(&web, &[], &[], at(0));
        assert_eq!(created(&plan)[0].spec.min_ready_seconds, Some(10));
    }

    #[test]
    fn rolling_update_with_surge_keeps_every_replica_available() {
        let web = deployment("web").replicas(5).rolling_update(int(1), int(0));
        let mut cluster = rolled_out(web);
        let old = name_of(&cluster.replica_sets[0]).to_owned();

        cluster.change(|d| d.image("nginx:2"));
        let first = cluster.sync();
        let [new] = created(&first)[..] else {
            panic!("expected the new ReplicaSet, got {:?}", first.actions);
        };
        let new = name_of(new).to_owned();
        assert_eq!(created(&first)[0].spec.replicas, Some(1));
        assert!(
            updates(&first).is_empty(),
            "old ReplicaSet untouched: {first:?}"
        );
        assert_eq!(first.deployment_revision.as_deref(), Some("2"));

        cluster.settle();
        let second = cluster.sync();
        assert_eq!(updates(&second), vec![(old.clone(), 4)]);

        cluster.settle();
        let third = cluster.sync();
        assert_eq!(updates(&third), vec![(new.clone(), 2)]);

        cluster.settle();
        cluster.run_to_completion(5);
        let new_rs = cluster.replica_set_with_revision("2");
        let old_rs = cluster.replica_set_with_revision("1");
        assert_eq!(name_of(new_rs), new);
        assert_eq!(new_rs.spec.replicas, Some(5));
        assert_eq!(old_rs.spec.replicas, Some(0));
        let status = cluster.deployment.status.clone().unwrap_or_default();
        assert_eq!(
            reason(&status, CONDITION_PROGRESSING),
            REASON_NEW_REPLICA_SET_AVAILABLE
        );
    }

    #[test]
    fn max_unavailable_without_surge_scales_old_down_first() {
        let web = deployment("web").replicas(5).rolling_update(int(0), int(2));
        let mut cluster = rolled_out(web);
        let old = name_of(&cluster.replica_sets[0]).to_owned();

        cluster.change(|d| d.image("nginx:2"));
        let plan = cluster.sync();
        assert_eq!(created(&plan)[0].spec.replicas, Some(0));
        assert_eq!(updates(&plan), vec![(old, 3)]);
        cluster.settle();
        cluster.run_to_completion(3);
        assert_eq!(
            cluster.replica_set_with_revision("2").spec.replicas,
            Some(5)
        );
    }

    #[test]
    fn percentages_round_surge_up_and_unavailable_down() {
        assert_eq!(
            resolve_fenceposts(&percent("25%"), &percent("25%"), 10),
            (3, 2)
        );
        assert_eq!(
            resolve_fenceposts(&percent("10%"), &percent("10%"), 5),
            (1, 0)
        );
        assert_eq!(
            resolve_fenceposts(&percent("0%"), &percent("50%"), 5),
            (0, 2)
        );
        assert_eq!(resolve_fenceposts(&int(3), &percent("100%"), 4), (3, 4));

        // 50% of 5 unavailable rounds down to 2.
        let web = deployment("web")
            .replicas(5)
            .rolling_update(percent("0%"), percent("50%"));
        let mut cluster = rolled_out(web);
        let old = name_of(&cluster.replica_sets[0]).to_owned();
        cluster.change(|d| d.image("nginx:2"));
        assert_eq!(updates(&cluster.sync()), vec![(old, 3)]);
    }

    #[test]
    fn zero_surge_and_zero_unavailable_fall_back_to_one_unavailable() {
        assert_eq!(resolve_fenceposts(&int(0), &int(0), 5), (0, 1));
        assert_eq!(
            resolve_fenceposts(&percent("0%"), &percent("0%"), 3),
            (0, 1)
        );

        let web = deployment("web").replicas(3).rolling_update(int(0), int(0));
        let mut cluster = rolled_out(web);
        let old = name_of(&cluster.replica_sets[0]).to_owned();
        cluster.change(|d| d.image("nginx:2"));
        let plan = cluster.sync();
        assert_eq!(created(&plan)[0].spec.replicas, Some(0));
        assert_eq!(updates(&plan), vec![(old, 2)]);
        cluster.settle();
        cluster.run_to_completion(2);
    }

    #[test]
    fn unhealthy_old_replicas_are_removed_before_healthy_ones() {
        let web = deployment("web").replicas(5).rolling_update(int(1), int(1));
        let old = replica_set_for(&web).ready(5).available(3);
        let web = web.image("nginx:2");
        let new = replica_set_for(&web)
            .ready(1)
            .available(0)
            .revision("2")
            .created(5);
        let plan = plan(&web, &[old.clone(), new], &[], at(10));
        // Budget: 6 pods - 4 minimum available - 1 unavailable new pod = 1,
        // spent on an unavailable old pod although only 3 are available.
        assert_eq!(updates(&plan), vec![(name_of(&old).to_owned(), 4)]);
    }

    #[test]
    fn recreate_waits_for_old_pods_before_scaling_new_up() {
        let web = deployment("web").replicas(3).recreate();
        let mut cluster = rolled_out(web);
        let old = cluster.replica_sets[0].clone();
        cluster.pods = (0..3)
            .map(|i| pod_of(&old, &format!("old-{i}"), "Running"))
            .collect();

        cluster.change(|d| d.image("nginx:2"));
        let scale_down = cluster.sync();
        assert_eq!(updates(&scale_down), vec![(name_of(&old).to_owned(), 0)]);
        assert!(created(&scale_down).is_empty());

        // The ReplicaSet reports no pods, but they are still terminating.
        let waiting = cluster.sync();
        assert!(waiting.actions.is_empty(), "{waiting:?}");

        cluster.pods = vec![
            pod_of(&old, "old-0", "Succeeded"),
            pod_of(&old, "old-1", "Failed"),
        ];
        let scale_up = cluster.sync();
        assert_eq!(created(&scale_up).len(), 1);
        assert_eq!(created(&scale_up)[0].spec.replicas, Some(3));
        cluster.settle();
        cluster.run_to_completion(0);
        assert_eq!(
            cluster.replica_set_with_revision("2").spec.replicas,
            Some(3)
        );
    }

    #[test]
    fn recreate_waits_while_old_replica_set_reports_pods() {
        let web = deployment("web").replicas(2).recreate();
        let old = replica_set_for(&web).ready(2);
        let mut draining = old.clone();
        draining.spec.replicas = Some(0);
        let web = web.image("nginx:2");
        let plan = plan(&web, &[draining], &[], at(1));
        assert!(plan.actions.is_empty(), "{plan:?}");
    }

    #[test]
    fn rollout_undo_makes_the_old_template_the_newest_revision() {
        let web = deployment("web").replicas(5);
        let mut cluster = rolled_out(web);
        let first = name_of(&cluster.replica_sets[0]).to_owned();
        cluster.change(|d| d.image("nginx:2"));
        cluster.run_to_completion(4);
        let second = name_of(cluster.replica_set_with_revision("2")).to_owned();

        // `kubectl rollout undo` patches the template back to revision 1's.
        cluster.change(|d| d.image("nginx:1"));
        let undo = cluster.sync();
        assert!(created(&undo).is_empty(), "no new ReplicaSet: {undo:?}");
        assert_eq!(undo.deployment_revision.as_deref(), Some("3"));
        let [
            Action::UpdateReplicaSet {
                name,
                replicas,
                annotations,
            },
        ] = &undo.actions[..]
        else {
            panic!("expected one update, got {:?}", undo.actions);
        };
        assert_eq!(*name, first);
        assert_eq!(*replicas, 2, "25% surge of 5 is 2");
        assert_eq!(
            annotations.get(REVISION_ANNOTATION).map(String::as_str),
            Some("3")
        );
        assert_eq!(
            annotations
                .get(REVISION_HISTORY_ANNOTATION)
                .map(String::as_str),
            Some("1")
        );

        cluster.settle();
        cluster.run_to_completion(4);
        assert_eq!(cluster.replica_sets.len(), 2);
        assert_eq!(
            cluster.replica_set_with_revision("3").spec.replicas,
            Some(5)
        );
        assert_eq!(name_of(cluster.replica_set_with_revision("2")), second);
        assert_eq!(
            cluster.replica_set_with_revision("2").spec.replicas,
            Some(0)
        );
        let revision = cluster
            .deployment
            .metadata
            .annotations
            .clone()
            .unwrap_or_default();
        assert_eq!(
            revision.get(REVISION_ANNOTATION).map(String::as_str),
            Some("3")
        );
    }

    #[test]
    fn scaling_changes_only_the_active_replica_set() {
        let web = deployment("web").replicas(5);
        let mut cluster = rolled_out(web);
        cluster.change(|d| d.image("nginx:2"));
        cluster.run_to_completion(4);
        let active = name_of(cluster.replica_set_with_revision("2")).to_owned();

        cluster.change(|d| d.replicas(0));
        let to_zero = cluster.sync();
        assert_eq!(updates(&to_zero), vec![(active.clone(), 0)]);
        assert_eq!(to_zero.actions.len(), 1);
        cluster.settle();
        cluster.run_to_completion(0);

        cluster.change(|d| d.replicas(3));
        let to_three = cluster.sync();
        assert_eq!(updates(&to_three), vec![(active.clone(), 3)]);
        assert_eq!(to_three.actions.len(), 1);
        let Action::UpdateReplicaSet { annotations, .. } = &to_three.actions[0] else {
            panic!("expected an update");
        };
        assert_eq!(
            annotations
                .get(DESIRED_REPLICAS_ANNOTATION)
                .map(String::as_str),
            Some("3")
        );
        assert_eq!(
            annotations.get(MAX_REPLICAS_ANNOTATION).map(String::as_str),
            Some("4")
        );
        cluster.settle();
        cluster.run_to_completion(3);
        assert_eq!(
            cluster.replica_set_with_revision("1").spec.replicas,
            Some(0)
        );
    }

    #[test]
    fn scaling_mid_rollout_is_proportional() {
        let web = deployment("web").replicas(10);
        let mut old = replica_set_for(&web).ready(6);
        let web = web.image("nginx:2");
        let mut new = replica_set_for(&web).ready(7).revision("2").created(5);
        for replica_set in [&mut old, &mut new] {
            let annotations = replica_set
                .metadata
                .annotations
                .get_or_insert_with(BTreeMap::new);
            annotations.insert(DESIRED_REPLICAS_ANNOTATION.to_owned(), "10".to_owned());
            annotations.insert(MAX_REPLICAS_ANNOTATION.to_owned(), "13".to_owned());
        }
        let web = web.replicas(20);
        let plan = plan(&web, &[old.clone(), new.clone()], &[], at(10));
        // 25 allowed (20 + 5 surge) = 7 * 25/13 -> 13 and 6 * 25/13 -> 12.
        assert_eq!(
            updates(&plan),
            vec![
                (name_of(&new).to_owned(), 13),
                (name_of(&old).to_owned(), 12)
            ]
        );
    }

    #[test]
    fn paused_deployment_scales_but_does_not_roll_out() {
        let web = deployment("web").replicas(3);
        let mut cluster = rolled_out(web);
        let active = name_of(&cluster.replica_sets[0]).to_owned();

        cluster.change(|d| d.paused(true).image("nginx:2"));
        let paused = cluster.sync();
        assert!(paused.actions.is_empty(), "{paused:?}");
        let progressing = condition(&paused.status, CONDITION_PROGRESSING);
        assert_eq!(
            progressing.reason.as_deref(),
            Some(REASON_DEPLOYMENT_PAUSED)
        );
        assert_eq!(progressing.status.as_deref(), Some("Unknown"));
        assert_eq!(progressing.message.as_deref(), Some("Deployment is paused"));
        assert_eq!(paused.requeue_after, None);

        cluster.change(|d| d.replicas(5));
        let scaled = cluster.sync();
        assert_eq!(updates(&scaled), vec![(active, 5)]);
        assert!(created(&scaled).is_empty());

        cluster.settle();
        cluster.change(|d| d.paused(false));
        let resumed = cluster.sync();
        assert_eq!(created(&resumed).len(), 1);
    }

    #[test]
    fn revision_history_limit_deletes_the_oldest_zero_replica_set() {
        let web = deployment("web").replicas(2).revision_history_limit(1);
        let first = replica_set_for(&web.clone().image("nginx:0"))
            .revision("1")
            .ready(0)
            .created(1);
        let second = replica_set_for(&web.clone().image("nginx:1"))
            .revision("2")
            .ready(0)
            .created(2);
        let third = replica_set_for(&web.clone().image("nginx:3"))
            .revision("3")
            .ready(2)
            .created(3);
        let web = web.image("nginx:3").complete();
        let plan = plan(&web, &[second, third, first.clone()], &[], at(10));
        assert_eq!(
            plan.actions,
            vec![Action::DeleteReplicaSet {
                name: name_of(&first).to_owned()
            }]
        );
    }

    #[test]
    fn revision_history_limit_spares_replica_sets_with_pods() {
        let web = deployment("web").replicas(2).revision_history_limit(0);
        let old = replica_set_for(&web.clone().image("nginx:0"))
            .ready(0)
            .created(1);
        let mut still_running = old.clone();
        if let Some(status) = still_running.status.as_mut() {
            status.replicas = 1;
        }
        let current = replica_set_for(&web).revision("2").ready(2).created(3);
        let plan = plan(&web.complete(), &[still_running, current], &[], at(10));
        assert!(plan.actions.is_empty(), "{plan:?}");
    }

    #[test]
    fn progress_deadline_exceeded_without_progress() {
        let web = deployment("web").replicas(2).progress_deadline_seconds(60);
        let mut cluster = Cluster::new(web, Vec::new());
        cluster.clock = 0;
        let created_plan = cluster.sync();
        let name = name_of(created(&created_plan)[0]).to_owned();
        assert_eq!(created_plan.requeue_after, Some(Duration::from_secs(61)));

        // Pods never become ready.
        cluster.clock = 30;
        let waiting = cluster.sync();
        assert!(waiting.actions.is_empty());
        assert_eq!(
            reason(&waiting.status, CONDITION_PROGRESSING),
            REASON_NEW_REPLICA_SET_CREATED
        );
        assert_eq!(waiting.requeue_after, Some(Duration::from_secs(31)));

        cluster.clock = 60;
        assert_eq!(
            reason(&cluster.sync().status, CONDITION_PROGRESSING),
            REASON_NEW_REPLICA_SET_CREATED,
            "the deadline must have strictly passed"
        );

        cluster.clock = 61;
        let timed_out = cluster.sync();
        let progressing = condition(&timed_out.status, CONDITION_PROGRESSING);
        assert_eq!(progressing.status.as_deref(), Some("False"));
        assert_eq!(
            progressing.reason.as_deref(),
            Some(REASON_PROGRESS_DEADLINE_EXCEEDED)
        );
        assert_eq!(
            progressing.message.clone().unwrap_or_default(),
            format!("ReplicaSet \"{name}\" has timed out progressing.")
        );
        assert_eq!(progressing.last_transition_time, Some(Time(at(61))));
        assert_eq!(timed_out.requeue_after, None);
    }

    #[test]
    fn progress_resets_the_deadline() {
        let web = deployment("web").replicas(2).progress_deadline_seconds(60);
        let mut cluster = Cluster::new(web, Vec::new());
        cluster.clock = 0;
        cluster.sync();
        // One pod becomes available at t=50.
        cluster.clock = 50;
        if let Some(status) = cluster.replica_sets[0].status.as_mut() {
            status.replicas = 1;
            status.ready_replicas = Some(1);
            status.available_replicas = Some(1);
        }
        let progressed = cluster.sync();
        let progressing = condition(&progressed.status, CONDITION_PROGRESSING);
        assert_eq!(
            progressing.reason.as_deref(),
            Some(REASON_REPLICA_SET_UPDATED)
        );
        assert_eq!(progressing.last_update_time, Some(Time(at(50))));
        assert_eq!(progressing.last_transition_time, Some(Time(at(0))));
        assert_eq!(progressed.requeue_after, Some(Duration::from_secs(61)));
        cluster.clock = 100;
        assert_eq!(
            reason(&cluster.sync().status, CONDITION_PROGRESSING),
            REASON_REPLICA_SET_UPDATED
        );
    }

    #[test]
    fn complete_rollout_status_satisfies_kubectl_rollout_status() {
        let mut cluster = Cluster::new(deployment("web").replicas(3), Vec::new());
        cluster.clock = 0;
        let creation = cluster.sync();
        let name = name_of(created(&creation)[0]).to_owned();
        assert!(!cluster.rollout_complete());
        cluster.settle();
        let done = cluster.sync();
        assert!(cluster.rollout_complete());

        let status = &done.status;
        assert_eq!(status.observed_generation, Some(1));
        assert_eq!(status.replicas, Some(3));
        assert_eq!(status.updated_replicas, Some(3));
        assert_eq!(status.ready_replicas, Some(3));
        assert_eq!(status.available_replicas, Some(3));
        assert_eq!(status.unavailable_replicas, None);
        let available = condition(status, CONDITION_AVAILABLE);
        assert_eq!(available.status.as_deref(), Some("True"));
        assert_eq!(
            available.reason.as_deref(),
            Some(REASON_MINIMUM_REPLICAS_AVAILABLE)
        );
        assert_eq!(
            available.message.as_deref(),
            Some("Deployment has minimum availability.")
        );
        let progressing = condition(status, CONDITION_PROGRESSING);
        assert_eq!(progressing.status.as_deref(), Some("True"));
        assert_eq!(
            progressing.reason.as_deref(),
            Some(REASON_NEW_REPLICA_SET_AVAILABLE)
        );
        assert_eq!(
            progressing.message.clone().unwrap_or_default(),
            format!("ReplicaSet \"{name}\" has successfully progressed.")
        );
        assert_eq!(progressing.last_transition_time, Some(Time(at(0))));
        assert_eq!(progressing.last_update_time, Some(Time(at(1))));
        assert_eq!(done.requeue_after, None);

        // Nothing changes on a later sync: the plan is idempotent.
        cluster.clock = 500;
        let again = cluster.sync();
        assert!(again.actions.is_empty());
        assert_eq!(again.status, done.status);
    }

    #[test]
    fn rollout_restart_rolls_out_a_new_replica_set() {
        let mut cluster = rolled_out(deployment("web").replicas(2));
        cluster.change(|d| {
            d.template_annotation("kubectl.kubernetes.io/restartedAt", "2025-01-01T00:00:00Z")
        });
        let plan = cluster.sync();
        assert_eq!(created(&plan).len(), 1);
        assert_eq!(plan.deployment_revision.as_deref(), Some("2"));
        cluster.settle();
        cluster.run_to_completion(1);
        assert_eq!(
            cluster.replica_set_with_revision("1").spec.replicas,
            Some(0)
        );
    }

    #[test]
    fn hash_collision_bumps_collision_count_instead_of_creating() {
        let web = deployment("web").replicas(2);
        let taken_name = name_of(&replica_set_for(&web)).to_owned();
        let mut squatter = replica_set_for(&web.clone().image("other")).ready(2);
        squatter.metadata.name = Some(taken_name.clone());
        let mut cluster = Cluster::new(web.complete(), vec![squatter]);

        let collided = cluster.sync();
        assert!(created(&collided).is_empty(), "{collided:?}");
        assert_eq!(collided.status.collision_count, Some(1));
        assert_eq!(collided.requeue_after, Some(Duration::ZERO));

        let retried = cluster.sync();
        let [replica_set] = created(&retried)[..] else {
            panic!("expected a ReplicaSet, got {:?}", retried.actions);
        };
        assert_ne!(name_of(replica_set), taken_name);
        assert_eq!(
            name_of(replica_set),
            format!(
                "web-{}",
                pod_template_hash(&cluster.deployment.spec.template, Some(1))
            )
        );
        assert_eq!(retried.status.collision_count, Some(1));
    }

    #[test]
    fn replica_sets_of_other_owners_are_ignored() {
        let web = deployment("web").replicas(2);
        let mut foreign = replica_set_for(&deployment("api")).ready(4);
        foreign.metadata.name = Some("unrelated".to_owned());
        let plan = plan(&web, &[foreign], &[], at(0));
        assert_eq!(created(&plan).len(), 1);
        assert_eq!(plan.actions.len(), 1);
        assert_eq!(plan.status.replicas, None);
    }

    #[test]
    fn replica_failure_is_reported_on_the_deployment() {
        let web = deployment("web").replicas(2);
        let mut replica_set = replica_set_for(&web).ready(0);
        replica_set.spec.replicas = Some(2);
        if let Some(status) = replica_set.status.as_mut() {
            status.conditions = Some(vec![ReplicaSetCondition {
                type_: Some(CONDITION_REPLICA_FAILURE.to_owned()),
                status: Some("True".to_owned()),
                reason: Some("FailedCreate".to_owned()),
                message: Some("quota exceeded".to_owned()),
                last_transition_time: Some(Time(at(3))),
            }]);
        }
        let plan = plan(&web, &[replica_set], &[], at(5));
        let failure = condition(&plan.status, CONDITION_REPLICA_FAILURE);
        assert_eq!(failure.reason.as_deref(), Some("FailedCreate"));
        assert_eq!(failure.message.as_deref(), Some("quota exceeded"));
    }

    #[test]
    fn deployment_being_deleted_only_reports_status() {
        let mut web = deployment("web").replicas(3);
        web.metadata.deletion_timestamp = Some(Time(at(0)));
        let replica_set = replica_set_for(&web).ready(1);
        let plan = plan(&web, &[replica_set], &[], at(1));
        assert!(plan.actions.is_empty());
        assert_eq!(plan.status.replicas, Some(1));
    }

    #[test]
    fn deployment_selecting_everything_is_left_alone() {
        let mut web = deployment("web").replicas(3);
        web.spec.selector = LabelSelector::default();
        let plan = plan(&web, &[], &[], at(1));
        assert!(plan.actions.is_empty());
        assert_eq!(plan.status.observed_generation, Some(1));
    }

    #[test]
    fn empty_objects_do_not_panic() {
        let empty = plan(
            &Deployment::default(),
            &[ReplicaSet::default()],
            &[Pod::default()],
            at(0),
        );
        assert!(empty.actions.is_empty());
        let mut selecting = deployment("web");
        selecting.spec.strategy = Some(DeploymentStrategy::default());
        selecting.spec.replicas = Some(-3);
        selecting.spec.progress_deadline_seconds = Some(i32::MAX);
        let mut odd = replica_set_for(&selecting);
        odd.metadata.annotations = Some(BTreeMap::from([
            (REVISION_ANNOTATION.to_owned(), "x".to_owned()),
            (MAX_REPLICAS_ANNOTATION.to_owned(), "0".to_owned()),
        ]));
        odd.status = None;
        for deployment in [
            selecting.clone(),
            selecting.clone().recreate(),
            selecting.paused(true),
        ] {
            let _ = plan(&deployment, &[odd.clone()], &[Pod::default()], at(0));
        }
    }

    #[test]
    fn pod_template_hash_is_stable_and_uses_the_safe_alphabet() {
        let template = deployment("web").spec.template;
        let hash = pod_template_hash(&template, None);
        assert_eq!(hash, pod_template_hash(&template.clone(), None));
        // Pinned: a change here renames every ReplicaSet on upgrade.
        assert_eq!(hash, "f6c9c4f89");
        assert_ne!(hash, pod_template_hash(&template, Some(1)));
        assert_ne!(
            pod_template_hash(&template, Some(1)),
            pod_template_hash(&template, Some(2))
        );
        assert_ne!(
            hash,
            pod_template_hash(&deployment("web").image("nginx:2").spec.template, None)
        );
        for hash in [hash, pod_template_hash(&template, Some(7))] {
            assert!(!hash.is_empty() && hash.len() <= 10);
            assert!(
                hash.bytes().all(|b| SAFE_ENCODE_ALPHABET.contains(&b)),
                "{hash}"
            );
        }

        let mut with_empty_maps = template.clone();
        if let Some(meta) = with_empty_maps.metadata.as_mut() {
            meta.annotations = Some(BTreeMap::new());
        }
        assert_eq!(
            pod_template_hash(&with_empty_maps, None),
            pod_template_hash(&template, None)
        );
    }

    #[test]
    fn safe_encoding_maps_digits_like_kubernetes() {
        // rand.SafeEncodeString("0123456789") in Kubernetes.
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
    }

    #[test]
    fn templates_equal_ignoring_hash_ignores_only_the_hash_label() {
        let web = deployment("web");
        let replica_set = replica_set_for(&web);
        assert!(templates_equal_ignoring_hash(
            &template_of(&replica_set),
            &web.spec.template
        ));
        assert!(!templates_equal_ignoring_hash(
            &template_of(&replica_set),
            &web.clone().image("nginx:2").spec.template
        ));
        assert!(!templates_equal_ignoring_hash(
            &template_of(&replica_set),
            &web.template_annotation("a", "b").spec.template
        ));
    }
}
