//! Scheduling decisions: which node a pending pod should run on, or why no
//! node fits, told the way kube-scheduler tells it.
//!
//! Pure functions over `Node` and `Pod` values. This module owns the filter
//! and score rules of kube-scheduler's default profile for the plugins that
//! matter to Berth (NodeUnschedulable, NodeName, TaintToleration,
//! NodeAffinity, NodePorts, NodeResourcesFit with LeastAllocated scoring and
//! PodTopologySpread's system-default spreading); it must not watch, bind,
//! write events or do any other I/O — the scheduler controller does that with
//! the answer — and it must not panic on any input.
//!
//! Filters run in kube-scheduler's order and the first one that rejects a
//! node gives that node's reason(s), so a `FitError` counts exactly what
//! `kubectl describe pod` would show.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use k8s_openapi::api::core::v1::{
    Container, Node, NodeSelectorRequirement, NodeSelectorTerm, Pod, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Highest score one scoring rule gives a node, as in kube-scheduler.
const MAX_NODE_SCORE: i64 = 100;
/// What a container without a CPU request counts as when scoring, so that
/// many request-less pods do not pile onto one node (kube-scheduler's value).
const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Memory counterpart of [`DEFAULT_MILLI_CPU_REQUEST`]: 200Mi.
const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;
/// Pods a node accepts when it reports no `pods` allocatable (kubelet's default).
const DEFAULT_MAX_PODS: i64 = 110;

const REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";
const REASON_NODE_NAME: &str = "node(s) didn't match the requested node name";
const REASON_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
const REASON_NODE_AFFINITY_PRE_FILTER: &str = "node(s) didn't satisfy plugin(s) [NodeAffinity]";
const REASON_HOST_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";
const REASON_TOO_MANY_PODS: &str = "Too many pods";
const REASON_INSUFFICIENT_CPU: &str = "Insufficient cpu";
const REASON_INSUFFICIENT_MEMORY: &str = "Insufficient memory";

const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
const EFFECT_NO_SCHEDULE: &str = "NoSchedule";
const EFFECT_NO_EXECUTE: &str = "NoExecute";
const EFFECT_PREFER_NO_SCHEDULE: &str = "PreferNoSchedule";

const LABEL_ZONE: &str = "topology.kubernetes.io/zone";
const FIELD_NODE_NAME: &str = "metadata.name";

// Plugin weights of kube-scheduler's default profile.
const WEIGHT_TAINT_TOLERATION: i64 = 3;
const WEIGHT_NODE_AFFINITY: i64 = 2;
const WEIGHT_RESOURCES_FIT: i64 = 1;
const WEIGHT_TOPOLOGY_SPREAD: i64 = 2;

// maxSkew of PodTopologySpread's system-default constraints.
const HOSTNAME_MAX_SKEW: f64 = 3.0;
const ZONE_MAX_SKEW: f64 = 5.0;

/// Why no node fits: per-reason node counts, rendered as Kubernetes does:
/// "0/2 nodes are available: 2 Insufficient cpu." or "0/3 nodes are
/// available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 node(s)
/// didn't match Pod's node affinity/selector." Reasons are sorted as
/// kube-scheduler sorts them: byte order of the whole "<count> <reason>"
/// string. The " preemption: ..." sentence kube-scheduler appends is left
/// out: it depends on victim selection, which Berth does not do.
#[derive(Debug, Clone, PartialEq)]
pub struct FitError {
    pub nodes: usize,
    pub reasons: BTreeMap<String, usize>,
}

impl fmt::Display for FitError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nodes == 0 && self.reasons.is_empty() {
            return formatter.write_str("no nodes available to schedule pods");
        }
        write!(formatter, "0/{} nodes are available:", self.nodes)?;
        let mut histogram: Vec<String> = self
            .reasons
            .iter()
            .map(|(reason, count)| format!("{count} {reason}"))
            .collect();
        histogram.sort();
        if !histogram.is_empty() {
            write!(formatter, " {}.", histogram.join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for FitError {}

/// Pick a node for `pod` among `nodes`, given every pod in the cluster
/// (`pods`: those with spec.nodeName set and not in phase Succeeded/Failed
/// count against their node; the pod itself is ignored if listed).
///
/// Among the nodes that pass every filter, the highest weighted score wins
/// (least allocated, spreading of the pod's controller's replicas,
/// PreferNoSchedule taints, preferred node affinity); ties go to the node
/// whose name sorts first, so the answer is deterministic. Nodes without a
/// name cannot be bound to and are not considered at all.
pub fn schedule(pod: &Pod, nodes: &[Node], pods: &[Pod]) -> Result<String, FitError> {
    let infos = node_infos(pod, nodes, pods);
    if infos.is_empty() {
        return Err(FitError {
            nodes: 0,
            reasons: BTreeMap::new(),
        });
    }
    let wanted = PodWants::of(pod);
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut feasible: Vec<&NodeInfo<'_>> = Vec::new();
    for info in &infos {
        let rejections = filter(&wanted, info);
        if rejections.is_empty() {
            feasible.push(info);
        }
        for reason in rejections {
            *reasons.entry(reason).or_insert(0) += 1;
        }
    }
    if feasible.is_empty() {
        return Err(FitError {
            nodes: infos.len(),
            reasons,
        });
    }
    let totals = score(&wanted, &feasible, &infos);
    let best = feasible
        .iter()
        .zip(totals)
        .max_by(|(left, left_score), (right, right_score)| {
            // Equal scores: the name that sorts first must compare greatest.
            left_score
                .cmp(right_score)
                .then_with(|| right.name.cmp(left.name))
        })
        .map(|(info, _)| info.name.to_string());
    // `feasible` is not empty, so there is a best; the error only keeps this total.
    best.ok_or(FitError {
        nodes: infos.len(),
        reasons: BTreeMap::new(),
    })
}

/// CPU in millicores and memory in bytes a pod requests: the larger of the
/// sum over its containers (restartable "sidecar" init containers included)
/// and the largest single init container (plus the sidecars started before
/// it), plus the pod's overhead. Pod-level `spec.resources.requests` replace
/// the container aggregate where set. A container that gives only a limit
/// requests its limit, as API defaulting would make it. Quantities round up,
/// as Kubernetes' `MilliValue()`/`Value()` do; unparseable ones count as 0.
pub fn pod_requests(pod: &Pod) -> (i64, i64) {
    let requests = requests_of(pod, false);
    (requests.milli_cpu, requests.memory)
}

/// A Kubernetes quantity ("100m", "0.5", "1", "128Mi", "1G", "1e3") in base
/// units (cores, bytes); `None` if it does not follow the quantity syntax.
pub fn parse_quantity(text: &str) -> Option<f64> {
    ParsedQuantity::parse(text).map(|parsed| parsed.to_f64())
}

/// CPU and memory, in millicores and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Resources {
    milli_cpu: i64,
    memory: i64,
}

impl Resources {
    fn add(&mut self, other: Resources) {
        self.milli_cpu = self.milli_cpu.saturating_add(other.milli_cpu);
        self.memory = self.memory.saturating_add(other.memory);
    }
}

/// A host port a pod holds on its node: (host IP, protocol, port), with an
/// empty host IP spelled 0.0.0.0 as kube-scheduler does.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostPort {
    ip: String,
    protocol: String,
    port: i32,
}

impl HostPort {
    fn conflicts_with(&self, other: &HostPort) -> bool {
        const ANY: &str = "0.0.0.0";
        self.protocol == other.protocol
            && self.port == other.port
            && (self.ip == ANY || other.ip == ANY || self.ip == other.ip)
    }
}

/// One candidate node with what is already placed on it.
struct NodeInfo<'a> {
    name: &'a str,
    node: &'a Node,
    pods: Vec<&'a Pod>,
    requested: Resources,
    non_zero_requested: Resources,
    used_ports: Vec<HostPort>,
}

/// Everything about the pod being scheduled the rules look at, worked out once.
struct PodWants<'a> {
    pod: &'a Pod,
    requests: Resources,
    non_zero_requests: Resources,
    host_ports: Vec<HostPort>,
    tolerations: &'a [Toleration],
    /// Node names the NodeAffinity pre-filter narrows the pod to, if any.
    pre_filter_node_names: Option<BTreeSet<String>>,
    controller_uid: Option<&'a str>,
}

impl<'a> PodWants<'a> {
    fn of(pod: &'a Pod) -> Self {
        let tolerations = pod
            .spec
            .as_ref()
            .and_then(|spec| spec.tolerations.as_deref())
            .unwrap_or(&[]);
        Self {
            pod,
            requests: requests_of(pod, false),
            non_zero_requests: requests_of(pod, true),
            host_ports: host_ports_of(pod),
            tolerations,
            pre_filter_node_names: pre_filter_node_names(pod),
            controller_uid: controller_uid_of(pod),
        }
    }

    fn namespace(&self) -> &str {
        namespace_of(self.pod)
    }
}

fn node_infos<'a>(pod: &Pod, nodes: &'a [Node], pods: &'a [Pod]) -> Vec<NodeInfo<'a>> {
    let mut infos: Vec<NodeInfo<'a>> = Vec::new();
    let mut index_by_name: HashMap<&str, usize> = HashMap::new();
    for node in nodes {
        let Some(name) = node
            .metadata
            .name
            .as_deref()
            .filter(|name| !name.is_empty())
        else {
            continue;
        };
        if index_by_name.contains_key(name) {
            continue;
        }
        index_by_name.insert(name, infos.len());
        infos.push(NodeInfo {
            name,
            node,
            pods: Vec::new(),
            requested: Resources::default(),
            non_zero_requested: Resources::default(),
            used_ports: Vec::new(),
        });
    }
    for other in pods {
        if is_same_pod(pod, other) || is_terminal(other) {
            continue;
        }
        let Some(node_name) = other
            .spec
            .as_ref()
            .and_then(|spec| spec.node_name.as_deref())
        else {
            continue;
        };
        let info = index_by_name
            .get(node_name)
            .and_then(|index| infos.get_mut(*index));
        if let Some(info) = info {
            info.pods.push(other);
            info.requested.add(requests_of(other, false));
            info.non_zero_requested.add(requests_of(other, true));
            info.used_ports.extend(host_ports_of(other));
        }
    }
    infos
}

/// By UID when the pod has one (a recreated pod of the same name is another
/// pod), else by namespace and name.
fn is_same_pod(pod: &Pod, other: &Pod) -> bool {
    if let Some(uid) = pod.metadata.uid.as_deref().filter(|uid| !uid.is_empty()) {
        return other.metadata.uid.as_deref() == Some(uid);
    }
    pod.metadata.name.is_some()
        && pod.metadata.name == other.metadata.name
        && namespace_of(pod) == namespace_of(other)
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status
            .as_ref()
            .and_then(|status| status.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn namespace_of(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or("default")
}

fn controller_uid_of(pod: &Pod) -> Option<&str> {
    pod.metadata
        .owner_references
        .as_deref()?
        .iter()
        .find(|owner| owner.controller == Some(true))
        .map(|owner| owner.uid.as_str())
        .filter(|uid| !uid.is_empty())
}

// ---------------------------------------------------------------------------
// Filters
// ---------------------------------------------------------------------------

/// The reasons `info` cannot take the pod; empty when it can.
fn filter(wanted: &PodWants<'_>, info: &NodeInfo<'_>) -> Vec<String> {
    if let Some(allowed) = &wanted.pre_filter_node_names
        && !allowed.contains(info.name)
    {
        // An empty set means the pod's name terms contradict each other; the
        // node affinity filter below would reject every node for it anyway.
        let reason = if allowed.is_empty() {
            REASON_NODE_AFFINITY
        } else {
            REASON_NODE_AFFINITY_PRE_FILTER
        };
        return vec![reason.to_string()];
    }
    let rejection = node_unschedulable(wanted, info.node)
        .or_else(|| node_name_mismatch(wanted.pod, info.name))
        .or_else(|| untolerated_taint(wanted, info.node))
        .or_else(|| node_affinity_mismatch(wanted.pod, info.node))
        .or_else(|| host_port_conflict(wanted, info));
    match rejection {
        Some(reason) => vec![reason],
        None => insufficient_resources(wanted, info),
    }
}

fn node_unschedulable(wanted: &PodWants<'_>, node: &Node) -> Option<String> {
    let unschedulable = node
        .spec
        .as_ref()
        .and_then(|spec| spec.unschedulable)
        .unwrap_or(false);
    let cordon_taint = Taint {
        key: TAINT_UNSCHEDULABLE.to_string(),
        effect: EFFECT_NO_SCHEDULE.to_string(),
        ..Taint::default()
    };
    let tolerated = wanted
        .tolerations
        .iter()
        .any(|toleration| tolerates(toleration, &cordon_taint));
    (unschedulable && !tolerated).then(|| REASON_UNSCHEDULABLE.to_string())
}

fn node_name_mismatch(pod: &Pod, node_name: &str) -> Option<String> {
    let wanted = pod
        .spec
        .as_ref()
        .and_then(|spec| spec.node_name.as_deref())
        .filter(|name| !name.is_empty())?;
    (wanted != node_name).then(|| REASON_NODE_NAME.to_string())
}

fn untolerated_taint(wanted: &PodWants<'_>, node: &Node) -> Option<String> {
    let taints = effective_taints(node);
    let taint = taints
        .iter()
        .filter(|taint| taint.effect == EFFECT_NO_SCHEDULE || taint.effect == EFFECT_NO_EXECUTE)
        .find(|taint| {
            !wanted
                .tolerations
                .iter()
                .any(|toleration| tolerates(toleration, taint))
        })?;
    Some(format!(
        "node(s) had untolerated taint {{{}: {}}}",
        taint.key,
        taint.value.as_deref().unwrap_or("")
    ))
}

/// The node's taints, plus the not-ready NoSchedule taint Kubernetes' node
/// lifecycle controller would have added when the Ready condition is not True.
fn effective_taints(node: &Node) -> Vec<Taint> {
    let mut taints: Vec<Taint> = node
        .spec
        .as_ref()
        .and_then(|spec| spec.taints.clone())
        .unwrap_or_default();
    let already_tainted = taints
        .iter()
        .any(|taint| taint.key == TAINT_NOT_READY && taint.effect == EFFECT_NO_SCHEDULE);
    if !is_node_ready(node) && !already_tainted {
        taints.push(Taint {
            key: TAINT_NOT_READY.to_string(),
            effect: EFFECT_NO_SCHEDULE.to_string(),
            ..Taint::default()
        });
    }
    taints
}

fn is_node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|status| status.conditions.as_deref())
        .unwrap_or(&[])
        .iter()
        .any(|condition| condition.type_ == "Ready" && condition.status == "True")
}

/// Kubernetes' `Toleration.ToleratesTaint`.
fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("") {
        "" | "Equal" => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        "Exists" => true,
        _ => false,
    }
}

fn node_affinity_mismatch(pod: &Pod, node: &Node) -> Option<String> {
    (!matches_required_node_affinity(pod, node)).then(|| REASON_NODE_AFFINITY.to_string())
}

/// nodeSelector and requiredDuringSchedulingIgnoredDuringExecution together.
fn matches_required_node_affinity(pod: &Pod, node: &Node) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return true;
    };
    let labels = node.metadata.labels.as_ref();
    if let Some(selector) = &spec.node_selector {
        let all_match = selector
            .iter()
            .all(|(key, value)| labels.and_then(|labels| labels.get(key)) == Some(value));
        if !all_match {
            return false;
        }
    }
    match required_node_selector_terms(pod) {
        None => true,
        Some(terms) => terms.iter().any(|term| term_matches(term, node)),
    }
}

fn required_node_selector_terms(pod: &Pod) -> Option<&[NodeSelectorTerm]> {
    pod.spec
        .as_ref()?
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()
        .map(|selector| selector.node_selector_terms.as_slice())
}

/// A term with no requirements matches nothing; requirements are ANDed, and
/// an invalid requirement makes its term match nothing.
fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = node.metadata.labels.as_ref();
    let node_name = node.metadata.name.as_deref().unwrap_or("");
    expressions.iter().all(|requirement| {
        let value = labels.and_then(|labels| labels.get(&requirement.key));
        label_requirement_matches(requirement, value.map(String::as_str))
    }) && fields
        .iter()
        .all(|requirement| field_requirement_matches(requirement, node_name))
}

fn label_requirement_matches(requirement: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = requirement.values.as_deref().unwrap_or(&[]);
    match requirement.operator.as_str() {
        "In" => !values.is_empty() && value.is_some_and(|value| values.iter().any(|v| v == value)),
        "NotIn" => {
            !values.is_empty() && !value.is_some_and(|value| values.iter().any(|v| v == value))
        }
        "Exists" => values.is_empty() && value.is_some(),
        "DoesNotExist" => values.is_empty() && value.is_none(),
        operator @ ("Gt" | "Lt") => {
            let [bound] = values else {
                return false;
            };
            let (Ok(bound), Some(Ok(actual))) = (
                bound.parse::<i64>(),
                value.map(|value| value.parse::<i64>()),
            ) else {
                return false;
            };
            if operator == "Gt" {
                actual > bound
            } else {
                actual < bound
            }
        }
        _ => false,
    }
}

fn field_requirement_matches(requirement: &NodeSelectorRequirement, node_name: &str) -> bool {
    let values = requirement.values.as_deref().unwrap_or(&[]);
    let [value] = values else {
        return false;
    };
    if requirement.key != FIELD_NODE_NAME {
        return false;
    }
    match requirement.operator.as_str() {
        "In" => value == node_name,
        "NotIn" => value != node_name,
        _ => false,
    }
}

/// NodeAffinity's pre-filter: when every required term pins metadata.name
/// with `In`, only the union of those names is worth filtering.
fn pre_filter_node_names(pod: &Pod) -> Option<BTreeSet<String>> {
    let terms = required_node_selector_terms(pod)?;
    if terms.is_empty() {
        return None;
    }
    let mut names = BTreeSet::new();
    for term in terms {
        let mut term_names: Option<BTreeSet<String>> = None;
        for requirement in term.match_fields.as_deref().unwrap_or(&[]) {
            if requirement.key != FIELD_NODE_NAME || requirement.operator != "In" {
                continue;
            }
            let values: BTreeSet<String> = requirement.values.iter().flatten().cloned().collect();
            term_names = Some(match term_names {
                None => values,
                Some(previous) => previous.intersection(&values).cloned().collect(),
            });
        }
        // A term without a name requirement lets every node through.
        names.extend(term_names?);
    }
    Some(names)
}

fn host_port_conflict(wanted: &PodWants<'_>, info: &NodeInfo<'_>) -> Option<String> {
    let conflict = wanted
        .host_ports
        .iter()
        .any(|port| info.used_ports.iter().any(|used| used.conflicts_with(port)));
    conflict.then(|| REASON_HOST_PORTS.to_string())
}

fn host_ports_of(pod: &Pod) -> Vec<HostPort> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|container| is_restartable(container));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|container| container.ports.iter().flatten())
        .filter_map(|port| {
            let host_port = port.host_port.filter(|port| *port > 0)?;
            let ip = port
                .host_ip
                .as_deref()
                .filter(|ip| !ip.is_empty())
                .unwrap_or("0.0.0.0");
            Some(HostPort {
                ip: ip.to_string(),
                protocol: port
                    .protocol
                    .as_deref()
                    .filter(|protocol| !protocol.is_empty())
                    .unwrap_or("TCP")
                    .to_string(),
                port: host_port,
            })
        })
        .collect()
}

fn insufficient_resources(wanted: &PodWants<'_>, info: &NodeInfo<'_>) -> Vec<String> {
    let allocatable = allocatable_of(info.node);
    let mut reasons = Vec::new();
    let placed = i64::try_from(info.pods.len()).unwrap_or(i64::MAX);
    if placed.saturating_add(1) > allocatable.pods {
        reasons.push(REASON_TOO_MANY_PODS.to_string());
    }
    let free_cpu = allocatable
        .resources
        .milli_cpu
        .saturating_sub(info.requested.milli_cpu);
    if wanted.requests.milli_cpu > 0 && wanted.requests.milli_cpu > free_cpu {
        reasons.push(REASON_INSUFFICIENT_CPU.to_string());
    }
    let free_memory = allocatable
        .resources
        .memory
        .saturating_sub(info.requested.memory);
    if wanted.requests.memory > 0 && wanted.requests.memory > free_memory {
        reasons.push(REASON_INSUFFICIENT_MEMORY.to_string());
    }
    reasons
}

struct Allocatable {
    resources: Resources,
    pods: i64,
}

/// status.allocatable, each resource falling back to status.capacity.
fn allocatable_of(node: &Node) -> Allocatable {
    let status = node.status.as_ref();
    let lookup = |resource: &str| {
        status
            .and_then(|status| status.allocatable.as_ref())
            .and_then(|allocatable| allocatable.get(resource))
            .or_else(|| {
                status
                    .and_then(|status| status.capacity.as_ref())
                    .and_then(|capacity| capacity.get(resource))
            })
    };
    Allocatable {
        resources: Resources {
            milli_cpu: lookup("cpu").map_or(0, |quantity| scaled_or_zero(quantity, 3)),
            memory: lookup("memory").map_or(0, |quantity| scaled_or_zero(quantity, 0)),
        },
        pods: lookup("pods").map_or(DEFAULT_MAX_PODS, |quantity| scaled_or_zero(quantity, 0)),
    }
}

// ---------------------------------------------------------------------------
// Scores
// ---------------------------------------------------------------------------

/// Weighted total per feasible node, in `feasible`'s order.
fn score(wanted: &PodWants<'_>, feasible: &[&NodeInfo<'_>], all: &[NodeInfo<'_>]) -> Vec<i64> {
    let least_allocated: Vec<i64> = feasible
        .iter()
        .map(|info| least_allocated_score(wanted, info))
        .collect();
    let taints = normalize(
        feasible
            .iter()
            .map(|info| intolerable_prefer_no_schedule_taints(wanted, info.node))
            .collect(),
        true,
    );
    let affinity = normalize(
        feasible
            .iter()
            .map(|info| preferred_node_affinity_score(wanted.pod, info.node))
            .collect(),
        false,
    );
    let spread = spread_scores(wanted, feasible, all);
    (0..feasible.len())
        .map(|index| {
            least_allocated[index] * WEIGHT_RESOURCES_FIT
                + taints[index] * WEIGHT_TAINT_TOLERATION
                + affinity[index] * WEIGHT_NODE_AFFINITY
                + spread[index] * WEIGHT_TOPOLOGY_SPREAD
        })
        .collect()
}

/// kube-scheduler's `DefaultNormalizeScore`: scale to 0..=100 by the
/// highest score, reversed when fewer is better.
fn normalize(scores: Vec<i64>, reverse: bool) -> Vec<i64> {
    let highest = scores.iter().copied().max().unwrap_or(0);
    scores
        .into_iter()
        .map(|score| {
            if highest <= 0 {
                return if reverse { MAX_NODE_SCORE } else { 0 };
            }
            let scaled = MAX_NODE_SCORE.saturating_mul(score) / highest;
            if reverse {
                MAX_NODE_SCORE - scaled
            } else {
                scaled
            }
        })
        .collect()
}

/// LeastAllocated: the share of CPU and memory left free once the pod is
/// placed, equally weighted, counting request-less containers at the
/// kube-scheduler defaults. Resources the node does not report are skipped.
fn least_allocated_score(wanted: &PodWants<'_>, info: &NodeInfo<'_>) -> i64 {
    let allocatable = allocatable_of(info.node).resources;
    let pairs = [
        (
            info.non_zero_requested
                .milli_cpu
                .saturating_add(wanted.non_zero_requests.milli_cpu),
            allocatable.milli_cpu,
        ),
        (
            info.non_zero_requested
                .memory
                .saturating_add(wanted.non_zero_requests.memory),
            allocatable.memory,
        ),
    ];
    let mut total: i128 = 0;
    let mut weights: i128 = 0;
    for (requested, capacity) in pairs {
        if capacity <= 0 {
            continue;
        }
        weights += 1;
        if requested > capacity {
            continue;
        }
        let free = i128::from(capacity) - i128::from(requested);
        total += free * i128::from(MAX_NODE_SCORE) / i128::from(capacity);
    }
    if weights == 0 {
        return 0;
    }
    i64::try_from(total / weights).unwrap_or(0)
}

fn intolerable_prefer_no_schedule_taints(wanted: &PodWants<'_>, node: &Node) -> i64 {
    let tolerations: Vec<&Toleration> = wanted
        .tolerations
        .iter()
        .filter(|toleration| {
            matches!(
                toleration.effect.as_deref().unwrap_or(""),
                "" | EFFECT_PREFER_NO_SCHEDULE
            )
        })
        .collect();
    let count = node
        .spec
        .as_ref()
        .and_then(|spec| spec.taints.as_deref())
        .unwrap_or(&[])
        .iter()
        .filter(|taint| taint.effect == EFFECT_PREFER_NO_SCHEDULE)
        .filter(|taint| {
            !tolerations
                .iter()
                .any(|toleration| tolerates(toleration, taint))
        })
        .count();
    i64::try_from(count).unwrap_or(i64::MAX)
}

fn preferred_node_affinity_score(pod: &Pod, node: &Node) -> i64 {
    let Some(terms) = pod
        .spec
        .as_ref()
        .and_then(|spec| spec.affinity.as_ref())
        .and_then(|affinity| affinity.node_affinity.as_ref())
        .and_then(|affinity| {
            affinity
                .preferred_during_scheduling_ignored_during_execution
                .as_deref()
        })
    else {
        return 0;
    };
    terms
        .iter()
        .filter(|term| term.weight != 0 && term_matches(&term.preference, node))
        .map(|term| i64::from(term.weight))
        .sum()
}

/// PodTopologySpread with its system-default constraints (hostname maxSkew
/// 3, zone maxSkew 5, ScheduleAnyway), where "the same workload" means the
/// same controller ownerReference rather than a Service/ReplicaSet selector.
/// Every node is its own hostname domain, whether or not it carries the
/// kubernetes.io/hostname label kubelets set.
fn spread_scores(
    wanted: &PodWants<'_>,
    feasible: &[&NodeInfo<'_>],
    all: &[NodeInfo<'_>],
) -> Vec<i64> {
    let Some(controller) = wanted.controller_uid else {
        return vec![0; feasible.len()];
    };
    let namespace = wanted.namespace();
    let siblings = |info: &NodeInfo<'_>| -> f64 {
        let count = info
            .pods
            .iter()
            .filter(|pod| pod.metadata.deletion_timestamp.is_none())
            .filter(|pod| namespace_of(pod) == namespace)
            .filter(|pod| controller_uid_of(pod) == Some(controller))
            .count();
        count as f64
    };

    let zones: BTreeSet<&str> = feasible
        .iter()
        .filter_map(|info| zone_of(info.node))
        .collect();
    let mut zone_counts: BTreeMap<&str, f64> = BTreeMap::new();
    for info in all {
        if !matches_required_node_affinity(wanted.pod, info.node) {
            continue;
        }
        if let Some(zone) = zone_of(info.node).filter(|zone| zones.contains(zone)) {
            *zone_counts.entry(zone).or_insert(0.0) += siblings(info);
        }
    }
    let hostname_weight = topology_weight(feasible.len());
    let zone_weight = topology_weight(zones.len());

    let raw: Vec<i64> = feasible
        .iter()
        .map(|info| {
            let mut score = siblings(info) * hostname_weight + (HOSTNAME_MAX_SKEW - 1.0);
            if let Some(zone) = zone_of(info.node) {
                let count = zone_counts.get(zone).copied().unwrap_or(0.0);
                score += count * zone_weight + (ZONE_MAX_SKEW - 1.0);
            }
            score.round() as i64
        })
        .collect();
    let lowest = raw.iter().copied().min().unwrap_or(0);
    let highest = raw.iter().copied().max().unwrap_or(0);
    raw.into_iter()
        .map(|score| {
            if highest <= 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE.saturating_mul(highest + lowest - score) / highest
            }
        })
        .collect()
}

/// Domains in bigger topologies weigh more, as in kube-scheduler.
fn topology_weight(domains: usize) -> f64 {
    (domains as f64 + 2.0).ln()
}

fn zone_of(node: &Node) -> Option<&str> {
    node.metadata
        .labels
        .as_ref()?
        .get(LABEL_ZONE)
        .map(String::as_str)
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/// What a pod requests. With `non_zero`, containers that request nothing for
/// a resource count as kube-scheduler's defaults (used for scoring only).
fn requests_of(pod: &Pod, non_zero: bool) -> Resources {
    let cpu_default = non_zero.then_some(DEFAULT_MILLI_CPU_REQUEST);
    let memory_default = non_zero.then_some(DEFAULT_MEMORY_REQUEST);
    Resources {
        milli_cpu: resource_request(pod, "cpu", 3, cpu_default),
        memory: resource_request(pod, "memory", 0, memory_default),
    }
}

fn resource_request(pod: &Pod, resource: &str, scale: i32, default: Option<i64>) -> i64 {
    let Some(spec) = pod.spec.as_ref() else {
        return 0;
    };
    let pod_level = spec
        .resources
        .as_ref()
        .and_then(|resources| resources.requests.as_ref())
        .and_then(|requests| requests.get(resource));
    let aggregate = match pod_level {
        Some(quantity) => scaled_or_zero(quantity, scale).max(0),
        None => {
            let of = |container: &Container| {
                container_request(container, resource, scale)
                    .or(default)
                    .unwrap_or(0)
                    .max(0)
            };
            let mut total: i64 = spec.containers.iter().map(of).fold(0, i64::saturating_add);
            let mut sidecars: i64 = 0;
            let mut largest_init: i64 = 0;
            for container in spec.init_containers.iter().flatten() {
                let request = of(container);
                let while_running = if is_restartable(container) {
                    total = total.saturating_add(request);
                    sidecars = sidecars.saturating_add(request);
                    sidecars
                } else {
                    request.saturating_add(sidecars)
                };
                largest_init = largest_init.max(while_running);
            }
            total.max(largest_init)
        }
    };
    let overhead = spec
        .overhead
        .as_ref()
        .and_then(|overhead| overhead.get(resource))
        .map_or(0, |quantity| scaled_or_zero(quantity, scale).max(0));
    aggregate.saturating_add(overhead)
}

/// A container's request for `resource`, or its limit when it gives only a
/// limit; `None` when it names neither.
fn container_request(container: &Container, resource: &str, scale: i32) -> Option<i64> {
    let resources = container.resources.as_ref()?;
    let quantity = resources
        .requests
        .as_ref()
        .and_then(|requests| requests.get(resource))
        .or_else(|| {
            resources
                .limits
                .as_ref()
                .and_then(|limits| limits.get(resource))
        })?;
    Some(scaled_or_zero(quantity, scale))
}

fn is_restartable(container: &Container) -> bool {
    container.restart_policy.as_deref() == Some("Always")
}

fn scaled_or_zero(quantity: &Quantity, scale: i32) -> i64 {
    ParsedQuantity::parse(&quantity.0).map_or(0, |parsed| parsed.scaled_ceil(scale))
}

// ---------------------------------------------------------------------------
// Quantities
// ---------------------------------------------------------------------------

/// Significant digits kept exactly; further digits only make the value round up.
const MAX_SIGNIFICANT_DIGITS: usize = 30;

/// A quantity as sign × mantissa × 10^exponent × 2^binary_shift, exact up to
/// [`MAX_SIGNIFICANT_DIGITS`], so "0.1" CPU is exactly 100m.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ParsedQuantity {
    negative: bool,
    mantissa: i128,
    exponent: i32,
    binary_shift: u32,
    /// Non-zero digits were dropped past the significant digits kept.
    inexact: bool,
}

impl ParsedQuantity {
    /// Kubernetes' grammar: `[+-]` digits with an optional fraction, then one
    /// of the suffixes n u m k M G T P E, Ki Mi Gi Ti Pi Ei, or `e`/`E` and
    /// a signed integer exponent.
    fn parse(text: &str) -> Option<Self> {
        let (negative, unsigned) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let number_end = unsigned
            .find(|character: char| !(character.is_ascii_digit() || character == '.'))
            .unwrap_or(unsigned.len());
        let (number, suffix) = unsigned.split_at(number_end);
        let (whole, fraction) = match number.split_once('.') {
            Some((whole, fraction)) => (whole, fraction),
            None => (number, ""),
        };
        if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
            return None;
        }

        let mut parsed = Self {
            negative,
            mantissa: 0,
            exponent: 0,
            binary_shift: 0,
            inexact: false,
        };
        let mut significant = 0usize;
        for digit in whole.bytes().map(|byte| i128::from(byte - b'0')) {
            if significant < MAX_SIGNIFICANT_DIGITS {
                parsed.mantissa = parsed.mantissa * 10 + digit;
                if parsed.mantissa != 0 {
                    significant += 1;
                }
            } else {
                parsed.exponent = parsed.exponent.checked_add(1)?;
                parsed.inexact |= digit != 0;
            }
        }
        for digit in fraction.bytes().map(|byte| i128::from(byte - b'0')) {
            if significant < MAX_SIGNIFICANT_DIGITS {
                parsed.mantissa = parsed.mantissa * 10 + digit;
                parsed.exponent = parsed.exponent.checked_sub(1)?;
                if parsed.mantissa != 0 {
                    significant += 1;
                }
            } else {
                parsed.inexact |= digit != 0;
            }
        }

        let (decimal, binary) = match suffix {
            "" => (0, 0),
            "n" => (-9, 0),
            "u" => (-6, 0),
            "m" => (-3, 0),
            "k" => (3, 0),
            "M" => (6, 0),
            "G" => (9, 0),
            "T" => (12, 0),
            "P" => (15, 0),
            "E" => (18, 0),
            "Ki" => (0, 10),
            "Mi" => (0, 20),
            "Gi" => (0, 30),
            "Ti" => (0, 40),
            "Pi" => (0, 50),
            "Ei" => (0, 60),
            _ => {
                let exponent = suffix
                    .strip_prefix('e')
                    .or_else(|| suffix.strip_prefix('E'))?;
                let digits = exponent.trim_start_matches(['+', '-']);
                if digits.is_empty()
                    || exponent.len() - digits.len() > 1
                    || !digits.bytes().all(|byte| byte.is_ascii_digit())
                {
                    return None;
                }
                (exponent.parse::<i32>().ok()?, 0)
            }
        };
        parsed.exponent = parsed.exponent.checked_add(decimal)?;
        parsed.binary_shift = binary;
        Some(parsed)
    }

    fn to_f64(self) -> f64 {
        let sign = if self.negative { "-" } else { "" };
        let decimal: f64 = format!("{sign}{}e{}", self.mantissa, self.exponent)
            .parse()
            .unwrap_or(0.0);
        decimal * 2f64.powi(self.binary_shift as i32)
    }

    /// The value × 10^scale rounded up (towards +∞), saturating at i64's range.
    fn scaled_ceil(self, scale: i32) -> i64 {
        let saturated = if self.negative { i64::MIN } else { i64::MAX };
        let Some(mut magnitude) = 1i128
            .checked_shl(self.binary_shift)
            .and_then(|factor| self.mantissa.checked_mul(factor))
        else {
            return saturated;
        };
        let exponent = i64::from(self.exponent) + i64::from(scale);
        let mut remainder_nonzero = self.inexact;
        if exponent >= 0 {
            for _ in 0..exponent {
                if magnitude == 0 {
                    break;
                }
                let Some(next) = magnitude.checked_mul(10) else {
                    return saturated;
                };
                magnitude = next;
            }
        } else {
            let divisor = (-exponent)
                .try_into()
                .ok()
                .and_then(|power: u32| 10i128.checked_pow(power));
            match divisor {
                Some(divisor) => {
                    remainder_nonzero |= magnitude % divisor != 0;
                    magnitude /= divisor;
                }
                None => {
                    remainder_nonzero |= magnitude != 0;
                    magnitude = 0;
                }
            }
        }
        let value = if self.negative {
            -magnitude
        } else if remainder_nonzero {
            magnitude + 1
        } else {
            magnitude
        };
        i64::try_from(value).unwrap_or(saturated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Affinity, ContainerPort, NodeAffinity, NodeCondition, NodeSelector, NodeSpec, NodeStatus,
        PodSpec, PodStatus, PreferredSchedulingTerm, ResourceRequirements,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), Quantity(value.to_string())))
            .collect()
    }

    /// A Ready node with room for 110 pods and no CPU or memory until given some.
    fn node(name: &str) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                allocatable: Some(quantities(&[("pods", "110")])),
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".to_string(),
                    status: "True".to_string(),
                    ..NodeCondition::default()
                }]),
                ..NodeStatus::default()
            }),
        }
    }

    trait NodeFixture {
        fn allocatable(self, resource: &str, value: &str) -> Self;
        fn cpu(self, value: &str) -> Self;
        fn memory(self, value: &str) -> Self;
        fn pods(self, value: &str) -> Self;
        fn taint(self, key: &str, value: &str, effect: &str) -> Self;
        fn label(self, key: &str, value: &str) -> Self;
        fn unschedulable(self) -> Self;
        fn ready(self, status: &str) -> Self;
    }

    impl NodeFixture for Node {
        fn allocatable(mut self, resource: &str, value: &str) -> Self {
            let status = self.status.get_or_insert_with(NodeStatus::default);
            status
                .allocatable
                .get_or_insert_with(BTreeMap::new)
                .insert(resource.to_string(), Quantity(value.to_string()));
            self
        }
        fn cpu(self, value: &str) -> Self {
            self.allocatable("cpu", value)
        }
        fn memory(self, value: &str) -> Self {
            self.allocatable("memory", value)
        }
        fn pods(self, value: &str) -> Self {
            self.allocatable("pods", value)
        }
        fn taint(mut self, key: &str, value: &str, effect: &str) -> Self {
            let spec = self.spec.get_or_insert_with(NodeSpec::default);
            spec.taints.get_or_insert_with(Vec::new).push(Taint {
                key: key.to_string(),
                value: (!value.is_empty()).then(|| value.to_string()),
                effect: effect.to_string(),
                time_added: None,
            });
            self
        }
        fn label(mut self, key: &str, value: &str) -> Self {
            self.metadata
                .labels
                .get_or_insert_with(BTreeMap::new)
                .insert(key.to_string(), value.to_string());
            self
        }
        fn unschedulable(mut self) -> Self {
            self.spec
                .get_or_insert_with(NodeSpec::default)
                .unschedulable = Some(true);
            self
        }
        fn ready(mut self, status: &str) -> Self {
            let node_status = self.status.get_or_insert_with(NodeStatus::default);
            node_status.conditions = Some(vec![NodeCondition {
                type_: "Ready".to_string(),
                status: status.to_string(),
                ..NodeCondition::default()
            }]);
            self
        }
    }

    /// A pod in "default" with one container "app" that requests nothing.
    fn pod(name: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some("default".to_string()),
                uid: Some(format!("uid-{name}")),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "app".to_string(),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            status: None,
        }
    }

    fn container(name: &str, cpu: &str, memory: &str) -> Container {
        Container {
            name: name.to_string(),
            resources: Some(ResourceRequirements {
                requests: Some(quantities(&[("cpu", cpu), ("memory", memory)])),
                ..ResourceRequirements::default()
            }),
            ..Container::default()
        }
    }

    trait PodFixture {
        fn spec_mut(&mut self) -> &mut PodSpec;
        fn requests(self, cpu: &str, memory: &str) -> Self;
        fn init_container(self, container: Container) -> Self;
        fn on(self, node: &str) -> Self;
        fn phase(self, phase: &str) -> Self;
        fn toleration(self, key: &str, operator: &str, value: &str, effect: &str) -> Self;
        fn node_selector(self, key: &str, value: &str) -> Self;
        fn required_term(self, term: NodeSelectorTerm) -> Self;
        fn preferred_term(self, weight: i32, term: NodeSelectorTerm) -> Self;
        fn host_port(self, port: i32, protocol: &str, ip: &str) -> Self;
        fn owned_by(self, uid: &str) -> Self;
    }

    impl PodFixture for Pod {
        fn spec_mut(&mut self) -> &mut PodSpec {
            self.spec.get_or_insert_with(PodSpec::default)
        }
        fn requests(mut self, cpu: &str, memory: &str) -> Self {
            self.spec_mut().containers = vec![container("app", cpu, memory)];
            self
        }
        fn init_container(mut self, container: Container) -> Self {
            self.spec_mut()
                .init_containers
                .get_or_insert_with(Vec::new)
                .push(container);
            self
        }
        fn on(mut self, node: &str) -> Self {
            self.spec_mut().node_name = Some(node.to_string());
            self
        }
        fn phase(mut self, phase: &str) -> Self {
            self.status = Some(PodStatus {
                phase: Some(phase.to_string()),
                ..PodStatus::default()
            });
            self
        }
        fn toleration(mut self, key: &str, operator: &str, value: &str, effect: &str) -> Self {
            let some = |text: &str| (!text.is_empty()).then(|| text.to_string());
            self.spec_mut()
                .tolerations
                .get_or_insert_with(Vec::new)
                .push(Toleration {
                    key: some(key),
                    operator: some(operator),
                    value: some(value),
                    effect: some(effect),
                    toleration_seconds: None,
                });
            self
        }
        fn node_selector(mut self, key: &str, value: &str) -> Self {
            self.spec_mut()
                .node_selector
                .get_or_insert_with(BTreeMap::new)
                .insert(key.to_string(), value.to_string());
            self
        }
        fn required_term(mut self, term: NodeSelectorTerm) -> Self {
            let node_affinity = self
                .spec_mut()
                .affinity
                .get_or_insert_with(Affinity::default)
                .node_affinity
                .get_or_insert_with(NodeAffinity::default);
            node_affinity
                .required_during_scheduling_ignored_during_execution
                .get_or_insert_with(NodeSelector::default)
                .node_selector_terms
                .push(term);
            self
        }
        fn preferred_term(mut self, weight: i32, term: NodeSelectorTerm) -> Self {
            let node_affinity = self
                .spec_mut()
                .affinity
                .get_or_insert_with(Affinity::default)
                .node_affinity
                .get_or_insert_with(NodeAffinity::default);
            node_affinity
                .preferred_during_scheduling_ignored_during_execution
                .get_or_insert_with(Vec::new)
                .push(PreferredSchedulingTerm {
                    weight,
                    preference: term,
                });
            self
        }
        fn host_port(mut self, port: i32, protocol: &str, ip: &str) -> Self {
            let spec = self.spec_mut();
            if let Some(first) = spec.containers.first_mut() {
                first
                    .ports
                    .get_or_insert_with(Vec::new)
                    .push(ContainerPort {
                        container_port: port,
                        host_port: Some(port),
                        protocol: Some(protocol.to_string()),
                        host_ip: (!ip.is_empty()).then(|| ip.to_string()),
                        name: None,
                    });
            }
            self
        }
        fn owned_by(mut self, uid: &str) -> Self {
            self.metadata.owner_references = Some(vec![OwnerReference {
                api_version: "apps/v1".to_string(),
                kind: "ReplicaSet".to_string(),
                name: "web".to_string(),
                uid: uid.to_string(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]);
            self
        }
    }

    fn label_term(key: &str, operator: &str, values: &[&str]) -> NodeSelectorTerm {
        NodeSelectorTerm {
            match_expressions: Some(vec![requirement(key, operator, values)]),
            match_fields: None,
        }
    }

    fn name_term(operator: &str, name: &str) -> NodeSelectorTerm {
        NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![requirement(FIELD_NODE_NAME, operator, &[name])]),
        }
    }

    fn requirement(key: &str, operator: &str, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.to_string(),
            operator: operator.to_string(),
            values: (!values.is_empty())
                .then(|| values.iter().map(|value| value.to_string()).collect()),
        }
    }

    fn error_text(result: Result<String, FitError>) -> String {
        match result {
            Ok(node) => panic!("expected no fit, got {node}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn insufficient_cpu_on_two_nodes_reads_like_kubernetes() {
        let nodes = [
            node("n1").cpu("1").memory("4Gi"),
            node("n2").cpu("2").memory("4Gi"),
        ];
        let placed = [pod("busy").requests("1500m", "1Gi").on("n2")];
        let pending = pod("p").requests("1500m", "1Gi");
        let error = schedule(&pending, &nodes, &placed).unwrap_err();
        assert_eq!(error.nodes, 2);
        assert_eq!(
            error.to_string(),
            "0/2 nodes are available: 2 Insufficient cpu."
        );
    }

    #[test]
    fn node_short_of_cpu_and_memory_counts_both_reasons() {
        let nodes = [node("n1").cpu("1").memory("1Gi")];
        let pending = pod("p").requests("2", "2Gi");
        assert_eq!(
            error_text(schedule(&pending, &nodes, &[])),
            "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory."
        );
    }

    #[test]
    fn reasons_sort_as_whole_strings() {
        let error = FitError {
            nodes: 12,
            reasons: BTreeMap::from([
                ("node(s) were unschedulable".to_string(), 2),
                ("Insufficient cpu".to_string(), 10),
            ]),
        };
        assert_eq!(
            error.to_string(),
            "0/12 nodes are available: 10 Insufficient cpu, 2 node(s) were unschedulable."
        );
    }

    #[test]
    fn no_nodes_at_all_says_so() {
        let error = schedule(&pod("p"), &[], &[]).unwrap_err();
        assert_eq!(error.to_string(), "no nodes available to schedule pods");
    }

    #[test]
    fn untolerated_taint_and_affinity_mismatch_are_counted_per_node() {
        let nodes = [
            node("gpu")
                .cpu("4")
                .memory("8Gi")
                .taint("dedicated", "gpu", "NoSchedule"),
            node("a").cpu("4").memory("8Gi"),
            node("b").cpu("4").memory("8Gi"),
        ];
        let pending = pod("p").node_selector("disk", "ssd");
        assert_eq!(
            error_text(schedule(&pending, &nodes, &[])),
            "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, \
             2 node(s) didn't match Pod's node affinity/selector."
        );
    }

    #[test]
    fn equal_toleration_must_match_the_taint_value() {
        let nodes = [node("n1")
            .cpu("1")
            .memory("1Gi")
            .taint("dedicated", "gpu", "NoSchedule")];
        let wrong = pod("p").toleration("dedicated", "Equal", "db", "NoSchedule");
        assert!(schedule(&wrong, &nodes, &[]).is_err());
        let right = pod("p").toleration("dedicated", "Equal", "gpu", "NoSchedule");
        assert_eq!(schedule(&right, &nodes, &[]), Ok("n1".to_string()));
    }

    #[test]
    fn exists_toleration_matches_any_value_and_empty_key_matches_every_taint() {
        let nodes = [node("n1")
            .cpu("1")
            .memory("1Gi")
            .taint("dedicated", "gpu", "NoSchedule")
            .taint("team", "x", "NoExecute")];
        let by_key = pod("p")
            .toleration("dedicated", "Exists", "", "")
            .toleration("team", "Exists", "", "NoExecute");
        assert_eq!(schedule(&by_key, &nodes, &[]), Ok("n1".to_string()));
        let everything = pod("p").toleration("", "Exists", "", "");
        assert_eq!(schedule(&everything, &nodes, &[]), Ok("n1".to_string()));
    }

    #[test]
    fn no_execute_taint_needs_a_toleration_with_that_effect() {
        let nodes = [node("n1")
            .cpu("1")
            .memory("1Gi")
            .taint("team", "x", "NoExecute")];
        let wrong_effect = pod("p").toleration("team", "Equal", "x", "NoSchedule");
        assert_eq!(
            error_text(schedule(&wrong_effect, &nodes, &[])),
            "0/1 nodes are available: 1 node(s) had untolerated taint {team: x}."
        );
        let right_effect = pod("p").toleration("team", "Equal", "x", "NoExecute");
        assert!(schedule(&right_effect, &nodes, &[]).is_ok());
    }

    #[test]
    fn prefer_no_schedule_taint_only_lowers_the_score() {
        let nodes = [
            node("a")
                .cpu("2")
                .memory("4Gi")
                .taint("slow", "", "PreferNoSchedule"),
            node("b").cpu("2").memory("4Gi"),
        ];
        assert_eq!(schedule(&pod("p"), &nodes, &[]), Ok("b".to_string()));
        let only_tainted = [node("a")
            .cpu("2")
            .memory("4Gi")
            .taint("slow", "", "PreferNoSchedule")];
        assert_eq!(schedule(&pod("p"), &only_tainted, &[]), Ok("a".to_string()));
    }

    #[test]
    fn node_selector_picks_the_labelled_node() {
        let nodes = [
            node("a").cpu("2").memory("4Gi"),
            node("b").cpu("2").memory("4Gi").label("disk", "ssd"),
        ];
        let pending = pod("p").node_selector("disk", "ssd");
        assert_eq!(schedule(&pending, &nodes, &[]), Ok("b".to_string()));
    }

    #[test]
    fn required_affinity_in_notin_and_gt() {
        let nodes = [
            node("a")
                .cpu("2")
                .memory("4Gi")
                .label("zone", "z1")
                .label("cores", "4"),
            node("b")
                .cpu("2")
                .memory("4Gi")
                .label("zone", "z2")
                .label("cores", "16"),
            node("c").cpu("2").memory("4Gi").label("zone", "z3"),
        ];
        let in_zone = pod("p").required_term(label_term("zone", "In", &["z2", "z3"]));
        assert_eq!(schedule(&in_zone, &nodes, &[]), Ok("b".to_string()));

        let not_in = pod("p").required_term(label_term("zone", "NotIn", &["z1", "z2"]));
        assert_eq!(schedule(&not_in, &nodes, &[]), Ok("c".to_string()));

        let greater = pod("p").required_term(label_term("cores", "Gt", &["8"]));
        assert_eq!(schedule(&greater, &nodes, &[]), Ok("b".to_string()));

        let nowhere = pod("p").required_term(label_term("cores", "Gt", &["64"]));
        assert_eq!(
            error_text(schedule(&nowhere, &nodes, &[])),
            "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
        );
    }

    #[test]
    fn required_terms_are_ored_and_requirements_anded() {
        let nodes = [
            node("a").cpu("2").memory("4Gi").label("zone", "z1"),
            node("b")
                .cpu("2")
                .memory("4Gi")
                .label("zone", "z2")
                .label("gpu", "yes"),
        ];
        let term = NodeSelectorTerm {
            match_expressions: Some(vec![
                requirement("zone", "In", &["z1", "z2"]),
                requirement("gpu", "Exists", &[]),
            ]),
            match_fields: None,
        };
        let pending =
            pod("p")
                .required_term(term)
                .required_term(label_term("zone", "DoesNotExist", &[]));
        assert_eq!(schedule(&pending, &nodes, &[]), Ok("b".to_string()));
    }

    #[test]
    fn malformed_requirements_match_nothing() {
        let nodes = [node("a").cpu("2").memory("4Gi").label("cores", "4")];
        for term in [
            label_term("cores", "Gt", &["four"]),
            label_term("cores", "Gt", &[]),
            label_term("cores", "In", &[]),
            label_term("cores", "Exists", &["4"]),
            label_term("cores", "Sometimes", &["4"]),
            NodeSelectorTerm::default(),
        ] {
            let pending = pod("p").required_term(term);
            assert!(schedule(&pending, &nodes, &[]).is_err());
        }
    }

    #[test]
    fn match_fields_on_node_name_narrow_like_the_pre_filter() {
        let nodes = [
            node("a").cpu("2").memory("4Gi"),
            node("b").cpu("2").memory("4Gi"),
            node("c").cpu("1").memory("4Gi"),
        ];
        let pinned = pod("p").required_term(name_term("In", "b"));
        assert_eq!(schedule(&pinned, &nodes, &[]), Ok("b".to_string()));

        let too_big = pod("p")
            .requests("2", "1Gi")
            .required_term(name_term("In", "c"));
        assert_eq!(
            error_text(schedule(&too_big, &nodes, &[])),
            "0/3 nodes are available: 1 Insufficient cpu, \
             2 node(s) didn't satisfy plugin(s) [NodeAffinity]."
        );

        let not_b = pod("p").required_term(name_term("NotIn", "a"));
        assert_eq!(schedule(&not_b, &nodes, &[]), Ok("b".to_string()));
    }

    #[test]
    fn preferred_affinity_wins_among_feasible_nodes() {
        let nodes = [
            node("a").cpu("2").memory("4Gi"),
            node("b").cpu("2").memory("4Gi").label("disk", "ssd"),
        ];
        let pending = pod("p").preferred_term(10, label_term("disk", "In", &["ssd"]));
        assert_eq!(schedule(&pending, &nodes, &[]), Ok("b".to_string()));
    }

    #[test]
    fn cordoned_node_is_skipped_unless_tolerated() {
        let nodes = [node("n1").cpu("1").memory("1Gi").unschedulable()];
        assert_eq!(
            error_text(schedule(&pod("p"), &nodes, &[])),
            "0/1 nodes are available: 1 node(s) were unschedulable."
        );
        let tolerant = pod("p").toleration(
            "node.kubernetes.io/unschedulable",
            "Exists",
            "",
            "NoSchedule",
        );
        assert_eq!(schedule(&tolerant, &nodes, &[]), Ok("n1".to_string()));
    }

    #[test]
    fn not_ready_node_is_treated_as_tainted_not_ready() {
        let nodes = [
            node("down").cpu("1").memory("1Gi").ready("False"),
            node("unknown").cpu("1").memory("1Gi").ready("Unknown"),
        ];
        assert_eq!(
            error_text(schedule(&pod("p"), &nodes, &[])),
            "0/2 nodes are available: 2 node(s) had untolerated taint {node.kubernetes.io/not-ready: }."
        );
        // The default NoExecute toleration every pod gets does not help.
        let defaulted =
            pod("p").toleration("node.kubernetes.io/not-ready", "Exists", "", "NoExecute");
        assert!(schedule(&defaulted, &nodes, &[]).is_err());
        let tolerant = pod("p").toleration("node.kubernetes.io/not-ready", "Exists", "", "");
        assert_eq!(schedule(&tolerant, &nodes, &[]), Ok("down".to_string()));
    }

    #[test]
    fn node_without_conditions_is_not_ready() {
        let mut bare = node("n1").cpu("1").memory("1Gi");
        if let Some(status) = bare.status.as_mut() {
            status.conditions = None;
        }
        assert!(schedule(&pod("p"), &[bare], &[]).is_err());
    }

    #[test]
    fn host_port_conflicts_on_same_port_protocol_and_overlapping_ip() {
        let nodes = [
            node("a").cpu("2").memory("4Gi"),
            node("b").cpu("2").memory("4Gi"),
        ];
        let placed = [
            pod("web-a").host_port(8080, "TCP", "").on("a"),
            pod("web-b").host_port(8080, "TCP", "10.0.0.2").on("b"),
        ];
        let pending = pod("p").host_port(8080, "TCP", "");
        assert_eq!(
            error_text(schedule(&pending, &nodes, &placed)),
            "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports."
        );
        let other_ip = pod("p").host_port(8080, "TCP", "10.0.0.3");
        assert_eq!(schedule(&other_ip, &nodes, &placed), Ok("b".to_string()));
        let udp = pod("p").host_port(8080, "UDP", "");
        assert!(schedule(&udp, &nodes, &placed).is_ok());
    }

    #[test]
    fn too_many_pods_when_the_node_is_full() {
        let nodes = [node("n1").cpu("4").memory("4Gi").pods("1")];
        let placed = [pod("first").on("n1")];
        assert_eq!(
            error_text(schedule(&pod("p"), &nodes, &placed)),
            "0/1 nodes are available: 1 Too many pods."
        );
    }

    #[test]
    fn finished_pods_do_not_count_against_their_node() {
        let nodes = [node("n1").cpu("1").memory("1Gi")];
        let placed = [
            pod("done").requests("1", "1Gi").on("n1").phase("Succeeded"),
            pod("crashed").requests("1", "1Gi").on("n1").phase("Failed"),
        ];
        let pending = pod("p").requests("1", "1Gi");
        assert_eq!(schedule(&pending, &nodes, &placed), Ok("n1".to_string()));
    }

    #[test]
    fn allocatable_falls_back_to_capacity() {
        let mut only_capacity = node("n1");
        if let Some(status) = only_capacity.status.as_mut() {
            status.allocatable = None;
            status.capacity = Some(quantities(&[("cpu", "2"), ("memory", "2Gi")]));
        }
        let pending = pod("p").requests("1", "1Gi");
        assert_eq!(
            schedule(&pending, &[only_capacity], &[]),
            Ok("n1".to_string())
        );
    }

    #[test]
    fn least_requested_node_wins() {
        let nodes = [
            node("a").cpu("4").memory("8Gi"),
            node("b").cpu("4").memory("8Gi"),
        ];
        let placed = [pod("big").requests("3", "6Gi").on("a")];
        let pending = pod("p").requests("500m", "512Mi");
        assert_eq!(schedule(&pending, &nodes, &placed), Ok("b".to_string()));
        // A bigger node is emptier in proportion.
        let sizes = [
            node("small").cpu("2").memory("4Gi"),
            node("large").cpu("8").memory("16Gi"),
        ];
        assert_eq!(schedule(&pending, &sizes, &[]), Ok("large".to_string()));
    }

    #[test]
    fn ties_go_to_the_first_node_name() {
        let nodes = [
            node("c").cpu("2").memory("4Gi"),
            node("a").cpu("2").memory("4Gi"),
            node("b").cpu("2").memory("4Gi"),
        ];
        assert_eq!(schedule(&pod("p"), &nodes, &[]), Ok("a".to_string()));
    }

    #[test]
    fn replicas_of_one_owner_spread_two_and_two_over_equal_nodes() {
        let nodes = [
            node("n1").cpu("4").memory("8Gi"),
            node("n2").cpu("4").memory("8Gi"),
        ];
        let mut placed: Vec<Pod> = Vec::new();
        for index in 0..4 {
            let replica = pod(&format!("web-{index}"))
                .requests("100m", "128Mi")
                .owned_by("rs-1");
            let chosen = schedule(&replica, &nodes, &placed).unwrap();
            placed.push(replica.on(&chosen));
        }
        let on = |name: &str| {
            placed
                .iter()
                .filter(|pod| {
                    pod.spec.as_ref().and_then(|spec| spec.node_name.as_deref()) == Some(name)
                })
                .count()
        };
        assert_eq!((on("n1"), on("n2")), (2, 2));
    }

    #[test]
    fn spreading_outweighs_a_small_resource_difference() {
        let nodes = [
            node("n1").cpu("4").memory("8Gi"),
            node("n2").cpu("4").memory("8Gi"),
        ];
        // n1 already holds a replica; n2 holds an unrelated, slightly bigger pod.
        let placed = [
            pod("web-0")
                .requests("100m", "128Mi")
                .owned_by("rs-1")
                .on("n1"),
            pod("other").requests("200m", "256Mi").on("n2"),
        ];
        let replica = pod("web-1").requests("100m", "128Mi").owned_by("rs-1");
        assert_eq!(schedule(&replica, &nodes, &placed), Ok("n2".to_string()));
    }

    #[test]
    fn pod_already_listed_does_not_count_against_itself() {
        let nodes = [node("n1").cpu("1").memory("1Gi")];
        let pending = pod("p").requests("1", "1Gi");
        let listed = [pending.clone().on("n1")];
        assert_eq!(schedule(&pending, &nodes, &listed), Ok("n1".to_string()));
    }

    #[test]
    fn pod_requests_take_the_larger_of_containers_and_each_init_container() {
        let mut two_containers = pod("p").requests("250m", "64Mi");
        two_containers
            .spec_mut()
            .containers
            .push(container("side", "250m", "64Mi"));
        assert_eq!(pod_requests(&two_containers), (500, 128 * 1024 * 1024));

        let big_init = two_containers
            .clone()
            .init_container(container("migrate", "1", "32Mi"));
        assert_eq!(pod_requests(&big_init), (1000, 128 * 1024 * 1024));

        let mut sidecar = container("proxy", "100m", "16Mi");
        sidecar.restart_policy = Some("Always".to_string());
        let with_sidecar = two_containers
            .init_container(sidecar)
            .init_container(container("migrate", "1", "32Mi"));
        // Sidecar runs alongside everything: 500m + 100m; the later init
        // container runs with the sidecar: 1000m + 100m.
        assert_eq!(pod_requests(&with_sidecar), (1100, 144 * 1024 * 1024));
    }

    #[test]
    fn pod_requests_add_overhead_and_use_limits_when_requests_are_missing() {
        let mut limited = pod("p");
        limited.spec_mut().containers = vec![Container {
            name: "app".to_string(),
            resources: Some(ResourceRequirements {
                limits: Some(quantities(&[("cpu", "2"), ("memory", "1Gi")])),
                ..ResourceRequirements::default()
            }),
            ..Container::default()
        }];
        limited.spec_mut().overhead = Some(quantities(&[("cpu", "250m"), ("memory", "120Mi")]));
        assert_eq!(
            pod_requests(&limited),
            (2250, 1024 * 1024 * 1024 + 120 * 1024 * 1024)
        );
        assert_eq!(pod_requests(&pod("empty")), (0, 0));
        let garbage = pod("g").requests("lots", "-5");
        assert_eq!(pod_requests(&garbage), (0, 0));
    }

    #[test]
    fn pod_level_requests_replace_the_container_sum() {
        let mut pod_level = pod("p").requests("100m", "64Mi");
        pod_level.spec_mut().resources = Some(ResourceRequirements {
            requests: Some(quantities(&[("cpu", "2")])),
            ..ResourceRequirements::default()
        });
        assert_eq!(pod_requests(&pod_level), (2000, 64 * 1024 * 1024));
    }

    #[test]
    fn quantity_parsing_table() {
        let cases: &[(&str, Option<f64>)] = &[
            ("100m", Some(0.1)),
            ("0.5", Some(0.5)),
            ("1", Some(1.0)),
            ("+2", Some(2.0)),
            ("-1.5", Some(-1.5)),
            (".5", Some(0.5)),
            ("1.", Some(1.0)),
            ("128Mi", Some(134_217_728.0)),
            ("1Ki", Some(1024.0)),
            ("1Gi", Some(1_073_741_824.0)),
            ("1G", Some(1e9)),
            ("1k", Some(1e3)),
            ("1M", Some(1e6)),
            ("2T", Some(2e12)),
            ("1P", Some(1e15)),
            ("1E", Some(1e18)),
            ("1Ei", Some(1_152_921_504_606_846_976.0)),
            ("1e3", Some(1e3)),
            ("1E3", Some(1e3)),
            ("1.5e-3", Some(0.0015)),
            ("1e+2", Some(100.0)),
            ("500u", Some(0.0005)),
            ("10n", Some(1e-8)),
            ("", None),
            ("m", None),
            ("Mi", None),
            ("1.2.3", None),
            ("1 Gi", None),
            ("1Gb", None),
            ("1e", None),
            ("1e+-2", None),
            ("1K", None),
            ("0x10", None),
            ("--1", None),
            ("1e99999999999", None),
        ];
        for (text, expected) in cases {
            let parsed = parse_quantity(text);
            match (parsed, expected) {
                (Some(actual), Some(expected)) => {
                    let tolerance = expected.abs() * 1e-12;
                    assert!(
                        (actual - expected).abs() <= tolerance,
                        "{text}: {actual} != {expected}"
                    );
                }
                (None, None) => {}
                _ => panic!("{text}: got {parsed:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn quantities_scale_exactly_and_round_up() {
        let scaled = |text: &str, scale: i32| {
            ParsedQuantity::parse(text).map(|parsed| parsed.scaled_ceil(scale))
        };
        assert_eq!(scaled("0.1", 3), Some(100));
        assert_eq!(scaled("100m", 3), Some(100));
        assert_eq!(scaled("0.0001", 3), Some(1));
        assert_eq!(scaled("1.5Gi", 0), Some(1_610_612_736));
        assert_eq!(scaled("1e3", 3), Some(1_000_000));
        assert_eq!(scaled("1m", 0), Some(1));
        assert_eq!(scaled("-1.5", 0), Some(-1));
        assert_eq!(scaled("9Ei", 3), Some(i64::MAX));
        assert_eq!(scaled("1e-400", 0), Some(1));
        assert_eq!(scaled("0e-400", 0), Some(0));
        assert_eq!(
            scaled("123456789012345678901234567890123456789", 0),
            Some(i64::MAX)
        );
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        let nameless = Node::default();
        let empty_pod = Pod::default();
        let strange = node("n1")
            .allocatable("cpu", "nonsense")
            .allocatable("memory", "-1")
            .allocatable("pods", "1e40");
        let huge = pod("h").requests("9Ei", "9Ei").host_port(0, "", "");
        let nodes = [nameless, strange.clone(), strange];
        let placed = [empty_pod.clone(), huge.clone().on("n1")];
        let _ = schedule(&empty_pod, &nodes, &placed);
        let _ = schedule(&huge, &nodes, &placed);
        let _ = pod_requests(&empty_pod);
        assert_eq!(
            schedule(&empty_pod, &[Node::default()], &[])
                .unwrap_err()
                .nodes,
            0
        );
    }
}
