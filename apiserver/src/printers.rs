//! Server-side printing for `kubectl get`: the `metav1.Table` column definitions and the
//! row cells of each resource kind, so that kubectl prints exactly what it prints against
//! kube-apiserver 1.32 (`pkg/printers/internalversion/printers.go`).
//!
//! This module owns the column lists (names, types, priorities), the cell of every column,
//! and Kubernetes' human durations (`5s`, `3m20s`, `2d3h`). Like kube-apiserver it always
//! produces the wide (`priority: 1`) cells; kubectl hides those columns without `-o wide`.
//! Kinds without a printer get the generic `DefaultTableConvertor` table (`Name`,
//! `Created At`); custom resources get the CRD `additionalPrinterColumns` table through
//! [`custom_resource_columns`] and [`custom_resource_cells`].
//!
//! It must not build the `Table` envelope (resourceVersion, row objects), choose the kind from
//! the request, or change objects. It never panics on malformed JSON: a missing or mistyped
//! field reads as Kubernetes' zero value and prints Kubernetes' placeholder. Where
//! kube-apiserver would have defaulted a field on write (`spec.replicas` 1, `spec.type`
//! ClusterIP, port protocol TCP, Secret type Opaque, Namespace phase Active, CronJob
//! `suspend` false) the default is applied here, so that objects stored without their
//! defaults still print as they would on a real cluster.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

/// One column of a `metav1.Table` (`TableColumnDefinition`).
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Kubernetes' column name, e.g. `Up-to-date`; kubectl prints it upper-cased.
    pub name: &'static str,
    /// The OpenAPI type: `string`, `integer`, `number`, `boolean` or `date`.
    pub kind: &'static str,
    /// `name` for the column holding the object name, otherwise empty.
    pub format: &'static str,
    /// Human-readable description of the column.
    pub description: &'static str,
    /// 0 for columns always shown, 1 for columns shown only with `-o wide`.
    pub priority: i32,
}

impl Column {
    /// The column as a `TableColumnDefinition` JSON object.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.kind,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// Columns for `kind` (a Kubernetes kind name such as `Pod`). Kinds without a printer get the
/// `DefaultTableConvertor` columns `Name` and `Created At`.
pub fn columns(kind: &str) -> Vec<Column> {
    printer(kind).columns.to_vec()
}

/// The cells of one row of `kind`, in the order of [`columns`], computed from the object's
/// JSON. `now` is the reference time for ages and other durations.
pub fn cells(kind: &str, object: &Value, now: Timestamp) -> Vec<Value> {
    (printer(kind).cells)(object, now)
}

/// Kubernetes' age of an RFC 3339 timestamp (`translateTimestampSince`): `59s`, `3m20s`,
/// `2d3h`; `<unknown>` for a missing, unparsable or zero timestamp; `<invalid>` for one
/// more than a second in the future.
pub fn age(timestamp: Option<&str>, now: Timestamp) -> String {
    match timestamp.and_then(parse_time) {
        Some(time) => human_duration(nanoseconds_between(time, now)),
        None => UNKNOWN.to_string(),
    }
}

/// Column definitions (as `TableColumnDefinition` JSON) of a custom resource, from the CRD
/// version's `additionalPrinterColumns`. Without printer columns a CRD shows `Name` and `Age`.
pub fn custom_resource_columns(printer_columns: &Value) -> Vec<Value> {
    let mut definitions = vec![NAME.to_json()];
    definitions.extend(custom_columns(printer_columns).iter().map(|column| {
        json!({
            "name": column.name,
            "type": column.kind,
            "format": column.format,
            "description": column.description,
            "priority": column.priority,
        })
    }));
    definitions
}

/// The cells of one custom resource row, in the order of [`custom_resource_columns`]. A
/// JSONPath that finds nothing gives a `null` cell, which kubectl prints as `<none>`.
pub fn custom_resource_cells(
    printer_columns: &Value,
    object: &Value,
    now: Timestamp,
) -> Vec<Value> {
    let mut row = vec![Value::from(text(object, &["metadata", "name"]))];
    for column in custom_columns(printer_columns) {
        let found = column
            .path
            .as_deref()
            .and_then(|steps| first_match(object, steps));
        row.push(match found {
            Some(value) => custom_cell(&column.kind, value, now),
            None => Value::Null,
        });
    }
    row
}

const UNKNOWN: &str = "<unknown>";
const NONE: &str = "<none>";
const UNSET: &str = "<unset>";

/// Column descriptions, as kube-apiserver takes them from the API types' documentation.
mod description {
    pub const NAME: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
    pub const CREATION_TIMESTAMP: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
    pub const CONTAINERS: &str = "Names of each container in the template.";
    pub const IMAGES: &str = "Images referenced by each container in the template.";
    pub const READY_PODS: &str = "Number of the pod with ready state";

    pub const POD_READY: &str = "The aggregate readiness state of this pod for accepting traffic.";
    pub const POD_STATUS: &str = "The aggregate status of the containers in this pod.";
    pub const POD_RESTARTS: &str = "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.";
    pub const POD_IP: &str = "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.";
    pub const POD_NODE_NAME: &str = "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename";
    pub const POD_NOMINATED_NODE_NAME: &str = "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.";
    pub const POD_READINESS_GATES: &str = "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates";

    pub const DEPLOYMENT_UPDATED: &str = "Total number of non-terminating pods targeted by this deployment that have the desired template spec.";
    pub const DEPLOYMENT_AVAILABLE: &str = "Total number of available non-terminating pods (ready for at least minReadySeconds) targeted by this deployment.";
    pub const DEPLOYMENT_SELECTOR: &str = "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment. It must match the pod template's labels.";

    pub const REPLICA_SET_DESIRED: &str = "Replicas is the number of desired pods. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset";
    pub const REPLICA_SET_CURRENT: &str = "Replicas is the most recently observed number of non-terminating pods. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset";
    pub const REPLICA_SET_READY: &str =
        "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.";
    pub const REPLICA_SET_SELECTOR: &str = "Selector is a label query over pods that should match the replica count. Label keys and values that must match in order to be controlled by this replica set. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";

    pub const RC_DESIRED: &str = "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller";
    pub const RC_CURRENT: &str = "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller";
    pub const RC_READY: &str = "The number of ready replicas for this replication controller.";
    pub const RC_SELECTOR: &str = "Selector is a label query over pods that should match the Replicas count. If Selector is empty, it is defaulted to the labels present on the Pod template. Label keys and values that must match in order to be controlled by this replication controller, if empty defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";

    pub const DAEMON_SET_DESIRED: &str = "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/";
    pub const DAEMON_SET_CURRENT: &str = "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/";
    pub const DAEMON_SET_READY: &str = "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition.";
    pub const DAEMON_SET_UPDATED: &str =
        "The total number of nodes that are running updated daemon pod";
    pub const DAEMON_SET_AVAILABLE: &str = "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)";
    pub const DAEMON_SET_NODE_SELECTOR: &str = "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/";
    pub const DAEMON_SET_SELECTOR: &str = "A label query over pods that are managed by the daemon set. Must match in order to be controlled. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";

    pub const JOB_STATUS: &str = "Status of the job.";
    pub const JOB_COMPLETIONS: &str = "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs.";
    pub const JOB_DURATION: &str = "Time required to complete the job.";
    pub const JOB_SELECTOR: &str = "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";

    pub const CRON_JOB_SCHEDULE: &str =
        "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.";
    pub const CRON_JOB_TIME_ZONE: &str = "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to the time zone of the kube-controller-manager process. The set of valid time zone names and the time zone offset is loaded from the system-wide time zone database by the API server during CronJob validation and the controller manager during execution. If no system-wide time zone database can be found a bundled version of the database is used instead. If the time zone name becomes invalid during the lifetime of a CronJob or due to a change in host configuration, the controller will stop creating new new Jobs and will create a system event with the reason UnknownTimeZone. More information can be found in https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones";
    pub const CRON_JOB_SUSPEND: &str = "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false.";
    pub const CRON_JOB_ACTIVE: &str = "A list of pointers to currently running jobs.";
    pub const CRON_JOB_LAST_SCHEDULE: &str =
        "Information when was the last time the job was successfully scheduled.";

    pub const SERVICE_TYPE: &str = "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types";
    pub const SERVICE_CLUSTER_IP: &str = "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
    pub const SERVICE_EXTERNAL_IPS: &str = "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.";
    pub const SERVICE_PORTS: &str = "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
    pub const SERVICE_SELECTOR: &str = "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/";

    pub const NODE_STATUS: &str = "The status of the node";
    pub const NODE_ROLES: &str = "The roles of the node";
    pub const NODE_VERSION: &str = "Kubelet Version reported by the node.";
    pub const NODE_ADDRESSES: &str = "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";
    pub const NODE_OS_IMAGE: &str =
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).";
    pub const NODE_KERNEL_VERSION: &str =
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).";
    pub const NODE_CONTAINER_RUNTIME: &str = "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).";

    pub const NAMESPACE_STATUS: &str = "The status of the namespace";
    pub const CONFIG_MAP_DATA: &str = "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.";
    pub const SECRET_TYPE: &str = "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types";
    pub const SECRET_DATA: &str = "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4";
    pub const SERVICE_ACCOUNT_SECRETS: &str = "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret";

    pub const ENDPOINTS_SUBSETS: &str = "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.";
    pub const ENDPOINT_SLICE_ADDRESS_TYPE: &str = "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name. (Deprecated) The EndpointSlice controller only generates, and kube-proxy only processes, slices of addressType \"IPv4\" and \"IPv6\". No semantics are defined for the \"FQDN\" type.";
    pub const ENDPOINT_SLICE_PORTS: &str = "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. Each slice may include a maximum of 100 ports. Services always have at least 1 port, so EndpointSlices generated by the EndpointSlice controller will likewise always have at least 1 port. EndpointSlices used for other purposes may have an empty ports list.";
    pub const ENDPOINT_SLICE_ENDPOINTS: &str = "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints.";

    pub const EVENT_LAST_SEEN: &str =
        "The time at which the most recent occurrence of this event was recorded.";
    pub const EVENT_TYPE: &str =
        "Type of this event (Normal, Warning), new types could be added in the future";
    pub const EVENT_REASON: &str = "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.";
    pub const EVENT_OBJECT: &str = "The object that this event is about.";
    pub const EVENT_SUBOBJECT: &str = "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.";
    pub const EVENT_SOURCE: &str =
        "The component reporting this event. Should be a short machine understandable string.";
    pub const EVENT_MESSAGE: &str = "A human-readable description of the status of this operation.";
    pub const EVENT_FIRST_SEEN: &str =
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)";
    pub const EVENT_COUNT: &str = "The number of times this event has occurred.";

    pub const LEASE_HOLDER: &str = "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.";

    pub const ROLE_BINDING_ROLE: &str = "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error. This field is immutable.";
    pub const CLUSTER_ROLE_BINDING_ROLE: &str = "RoleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error. This field is immutable.";
    pub const ROLE_BINDING_USERS: &str = "Users in the roleBinding";
    pub const ROLE_BINDING_GROUPS: &str = "Groups in the roleBinding";
    pub const ROLE_BINDING_SERVICE_ACCOUNTS: &str = "ServiceAccounts in the roleBinding";
    pub const CLUSTER_ROLE_BINDING_USERS: &str = "Users in the clusterRoleBinding";
    pub const CLUSTER_ROLE_BINDING_GROUPS: &str = "Groups in the clusterRoleBinding";
    pub const CLUSTER_ROLE_BINDING_SERVICE_ACCOUNTS: &str =
        "ServiceAccounts in the clusterRoleBinding";
}

const fn column(name: &'static str, kind: &'static str, description: &'static str) -> Column {
    Column {
        name,
        kind,
        format: "",
        description,
        priority: 0,
    }
}

/// A column kubectl shows only with `-o wide`.
const fn wide(name: &'static str, kind: &'static str, description: &'static str) -> Column {
    Column {
        priority: 1,
        ..column(name, kind, description)
    }
}

const NAME: Column = Column {
    format: "name",
    ..column("Name", "string", description::NAME)
};
const AGE: Column = column("Age", "string", description::CREATION_TIMESTAMP);
const CONTAINERS: Column = wide("Containers", "string", description::CONTAINERS);
const IMAGES: Column = wide("Images", "string", description::IMAGES);

/// `rest.DefaultTableConvertor`, for kinds without a printer of their own.
const DEFAULT_COLUMNS: &[Column] = &[
    NAME,
    column("Created At", "date", description::CREATION_TIMESTAMP),
];

const POD_COLUMNS: &[Column] = &[
    NAME,
    column("Ready", "string", description::POD_READY),
    column("Status", "string", description::POD_STATUS),
    column("Restarts", "string", description::POD_RESTARTS),
    AGE,
    wide("IP", "string", description::POD_IP),
    wide("Node", "string", description::POD_NODE_NAME),
    wide(
        "Nominated Node",
        "string",
        description::POD_NOMINATED_NODE_NAME,
    ),
    wide(
        "Readiness Gates",
        "string",
        description::POD_READINESS_GATES,
    ),
];

const DEPLOYMENT_COLUMNS: &[Column] = &[
    NAME,
    column("Ready", "string", description::READY_PODS),
    column("Up-to-date", "string", description::DEPLOYMENT_UPDATED),
    column("Available", "string", description::DEPLOYMENT_AVAILABLE),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", description::DEPLOYMENT_SELECTOR),
];

const REPLICA_SET_COLUMNS: &[Column] = &[
    NAME,
    column("Desired", "integer", description::REPLICA_SET_DESIRED),
    column("Current", "integer", description::REPLICA_SET_CURRENT),
    column("Ready", "integer", description::REPLICA_SET_READY),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", description::REPLICA_SET_SELECTOR),
];

const REPLICATION_CONTROLLER_COLUMNS: &[Column] = &[
    NAME,
    column("Desired", "integer", description::RC_DESIRED),
    column("Current", "integer", description::RC_CURRENT),
    column("Ready", "integer", description::RC_READY),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", description::RC_SELECTOR),
];

const STATEFUL_SET_COLUMNS: &[Column] = &[
    NAME,
    column("Ready", "string", description::READY_PODS),
    AGE,
    CONTAINERS,
    IMAGES,
];

const DAEMON_SET_COLUMNS: &[Column] = &[
    NAME,
    column("Desired", "integer", description::DAEMON_SET_DESIRED),
    column("Current", "integer", description::DAEMON_SET_CURRENT),
    column("Ready", "integer", description::DAEMON_SET_READY),
    column("Up-to-date", "integer", description::DAEMON_SET_UPDATED),
    column("Available", "integer", description::DAEMON_SET_AVAILABLE),
    column(
        "Node Selector",
        "string",
        description::DAEMON_SET_NODE_SELECTOR,
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", description::DAEMON_SET_SELECTOR),
];

const JOB_COLUMNS: &[Column] = &[
    NAME,
    column("Status", "string", description::JOB_STATUS),
    column("Completions", "string", description::JOB_COMPLETIONS),
    column("Duration", "string", description::JOB_DURATION),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", description::JOB_SELECTOR),
];

const CRON_JOB_COLUMNS: &[Column] = &[
    NAME,
    column("Schedule", "string", description::CRON_JOB_SCHEDULE),
    column("Timezone", "string", description::CRON_JOB_TIME_ZONE),
    column("Suspend", "boolean", description::CRON_JOB_SUSPEND),
    column("Active", "integer", description::CRON_JOB_ACTIVE),
    column(
        "Last Schedule",
        "string",
        description::CRON_JOB_LAST_SCHEDULE,
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", description::JOB_SELECTOR),
];

const SERVICE_COLUMNS: &[Column] = &[
    NAME,
    column("Type", "string", description::SERVICE_TYPE),
    column("Cluster-IP", "string", description::SERVICE_CLUSTER_IP),
    column("External-IP", "string", description::SERVICE_EXTERNAL_IPS),
    column("Port(s)", "string", description::SERVICE_PORTS),
    AGE,
    wide("Selector", "string", description::SERVICE_SELECTOR),
];

const NODE_COLUMNS: &[Column] = &[
    NAME,
    column("Status", "string", description::NODE_STATUS),
    column("Roles", "string", description::NODE_ROLES),
    AGE,
    column("Version", "string", description::NODE_VERSION),
    wide("Internal-IP", "string", description::NODE_ADDRESSES),
    wide("External-IP", "string", description::NODE_ADDRESSES),
    wide("OS-Image", "string", description::NODE_OS_IMAGE),
    wide("Kernel-Version", "string", description::NODE_KERNEL_VERSION),
    wide(
        "Container-Runtime",
        "string",
        description::NODE_CONTAINER_RUNTIME,
    ),
];

const NAMESPACE_COLUMNS: &[Column] = &[
    NAME,
    column("Status", "string", description::NAMESPACE_STATUS),
    AGE,
];

const CONFIG_MAP_COLUMNS: &[Column] = &[
    NAME,
    column("Data", "string", description::CONFIG_MAP_DATA),
    AGE,
];

const SECRET_COLUMNS: &[Column] = &[
    NAME,
    column("Type", "string", description::SECRET_TYPE),
    column("Data", "string", description::SECRET_DATA),
    AGE,
];

const SERVICE_ACCOUNT_COLUMNS: &[Column] = &[
    NAME,
    column("Secrets", "string", description::SERVICE_ACCOUNT_SECRETS),
    AGE,
];

const ENDPOINTS_COLUMNS: &[Column] = &[
    NAME,
    column("Endpoints", "string", description::ENDPOINTS_SUBSETS),
    AGE,
];

const ENDPOINT_SLICE_COLUMNS: &[Column] = &[
    NAME,
    column(
        "AddressType",
        "string",
        description::ENDPOINT_SLICE_ADDRESS_TYPE,
    ),
    column("Ports", "string", description::ENDPOINT_SLICE_PORTS),
    column("Endpoints", "string", description::ENDPOINT_SLICE_ENDPOINTS),
    AGE,
];

const EVENT_COLUMNS: &[Column] = &[
    column("Last Seen", "string", description::EVENT_LAST_SEEN),
    column("Type", "string", description::EVENT_TYPE),
    column("Reason", "string", description::EVENT_REASON),
    column("Object", "string", description::EVENT_OBJECT),
    wide("Subobject", "string", description::EVENT_SUBOBJECT),
    wide("Source", "string", description::EVENT_SOURCE),
    column("Message", "string", description::EVENT_MESSAGE),
    wide("First Seen", "string", description::EVENT_FIRST_SEEN),
    wide("Count", "string", description::EVENT_COUNT),
    Column {
        priority: 1,
        ..NAME
    },
];

const LEASE_COLUMNS: &[Column] = &[
    NAME,
    column("Holder", "string", description::LEASE_HOLDER),
    AGE,
];

const ROLE_BINDING_COLUMNS: &[Column] = &[
    NAME,
    column("Role", "string", description::ROLE_BINDING_ROLE),
    AGE,
    wide("Users", "string", description::ROLE_BINDING_USERS),
    wide("Groups", "string", description::ROLE_BINDING_GROUPS),
    wide(
        "ServiceAccounts",
        "string",
        description::ROLE_BINDING_SERVICE_ACCOUNTS,
    ),
];

const CLUSTER_ROLE_BINDING_COLUMNS: &[Column] = &[
    NAME,
    column("Role", "string", description::CLUSTER_ROLE_BINDING_ROLE),
    AGE,
    wide("Users", "string", description::CLUSTER_ROLE_BINDING_USERS),
    wide("Groups", "string", description::CLUSTER_ROLE_BINDING_GROUPS),
    wide(
        "ServiceAccounts",
        "string",
        description::CLUSTER_ROLE_BINDING_SERVICE_ACCOUNTS,
    ),
];

/// Computes the cells of one row from an object and the current time.
type CellsFn = fn(&Value, Timestamp) -> Vec<Value>;

/// A kind's columns and the function computing its cells; kept together so they cannot drift.
struct Printer {
    columns: &'static [Column],
    cells: CellsFn,
}

fn printer(kind: &str) -> Printer {
    let (columns, cells): (&'static [Column], CellsFn) = match kind {
        "Pod" => (POD_COLUMNS, pod_cells),
        "Deployment" => (DEPLOYMENT_COLUMNS, deployment_cells),
        "ReplicaSet" => (REPLICA_SET_COLUMNS, replica_set_cells),
        "ReplicationController" => (REPLICATION_CONTROLLER_COLUMNS, replication_controller_cells),
        "StatefulSet" => (STATEFUL_SET_COLUMNS, stateful_set_cells),
        "DaemonSet" => (DAEMON_SET_COLUMNS, daemon_set_cells),
        "Job" => (JOB_COLUMNS, job_cells),
        "CronJob" => (CRON_JOB_COLUMNS, cron_job_cells),
        "Service" => (SERVICE_COLUMNS, service_cells),
        "Node" => (NODE_COLUMNS, node_cells),
        "Namespace" => (NAMESPACE_COLUMNS, namespace_cells),
        "ConfigMap" => (CONFIG_MAP_COLUMNS, config_map_cells),
        "Secret" => (SECRET_COLUMNS, secret_cells),
        "ServiceAccount" => (SERVICE_ACCOUNT_COLUMNS, service_account_cells),
        "Endpoints" => (ENDPOINTS_COLUMNS, endpoints_cells),
        "EndpointSlice" => (ENDPOINT_SLICE_COLUMNS, endpoint_slice_cells),
        "Event" => (EVENT_COLUMNS, event_cells),
        "Lease" => (LEASE_COLUMNS, lease_cells),
        "RoleBinding" => (ROLE_BINDING_COLUMNS, role_binding_cells),
        "ClusterRoleBinding" => (CLUSTER_ROLE_BINDING_COLUMNS, role_binding_cells),
        _ => (DEFAULT_COLUMNS, default_cells),
    };
    Printer { columns, cells }
}

// ---------------------------------------------------------------------------------------------
// Reading JSON without panicking: a missing or mistyped field is Kubernetes' zero value.

static NULL: Value = Value::Null;

fn at<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter()
        .try_fold(value, |current, key| current.get(key))
        .unwrap_or(&NULL)
}

fn text<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    at(value, path).as_str().unwrap_or("")
}

fn integer(value: &Value, path: &[&str]) -> Option<i64> {
    let found = at(value, path);
    // Truncation mirrors Go's int64(float64) for numbers written with a fraction.
    found
        .as_i64()
        .or_else(|| found.as_f64().map(|number| number as i64))
}

fn flag(value: &Value, path: &[&str]) -> bool {
    at(value, path).as_bool().unwrap_or(false)
}

fn items<'a>(value: &'a Value, path: &[&str]) -> &'a [Value] {
    at(value, path).as_array().map_or(&[], Vec::as_slice)
}

fn entry_count(value: &Value, path: &[&str]) -> usize {
    at(value, path).as_object().map_or(0, Map::len)
}

fn name(object: &Value) -> Value {
    Value::from(text(object, &["metadata", "name"]))
}

fn is_set(value: &Value, path: &[&str]) -> bool {
    !at(value, path).is_null()
}

fn or_placeholder(value: &str, placeholder: &str) -> String {
    if value.is_empty() { placeholder } else { value }.to_string()
}

// ---------------------------------------------------------------------------------------------
// Time.

/// Seconds of Go's zero `time.Time` (0001-01-01T00:00:00Z), which Kubernetes treats as unset.
const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

fn parse_time(timestamp: &str) -> Option<Timestamp> {
    let time: Timestamp = timestamp.parse().ok()?;
    let is_zero = time.as_second() == GO_ZERO_TIME_SECONDS && time.subsec_nanosecond() == 0;
    (!is_zero).then_some(time)
}

fn time_at(value: &Value, path: &[&str]) -> Option<Timestamp> {
    at(value, path).as_str().and_then(parse_time)
}

/// `translateTimestampSince` of the timestamp at `path`.
fn since(value: &Value, path: &[&str], now: Timestamp) -> String {
    age(at(value, path).as_str(), now)
}

fn creation_age(object: &Value, now: Timestamp) -> Value {
    Value::from(since(object, &["metadata", "creationTimestamp"], now))
}

/// `end - start` in nanoseconds, saturated like Go's `time.Time.Sub`.
fn nanoseconds_between(start: Timestamp, end: Timestamp) -> i64 {
    let difference = end.as_nanosecond() - start.as_nanosecond();
    i64::try_from(difference).unwrap_or(if difference < 0 { i64::MIN } else { i64::MAX })
}

/// Kubernetes' `duration.HumanDuration`: about two or three significant figures.
fn human_duration(nanoseconds: i64) -> String {
    const SECOND: i64 = 1_000_000_000;
    const MINUTE: i64 = 60 * SECOND;
    const HOUR: i64 = 60 * MINUTE;

    // Up to two seconds in the future is clock skew between machines, read as "now".
    let seconds = nanoseconds / SECOND;
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = nanoseconds / MINUTE;
    if minutes < 10 {
        let rest = seconds % 60;
        return if rest == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{rest}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = nanoseconds / HOUR;
    if hours < 8 {
        let rest = minutes % 60;
        return if rest == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{rest}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let rest = hours % 24;
        return if rest == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{rest}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let rest = (hours / 24) % 365;
        return if rest == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{rest}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// The later of two optional times, as printers.go keeps `lastRestartDate`.
fn later(current: Option<Timestamp>, candidate: Option<Timestamp>) -> Option<Timestamp> {
    match (current, candidate) {
        (Some(current), Some(candidate)) => Some(current.max(candidate)),
        (current, candidate) => current.or(candidate),
    }
}

// ---------------------------------------------------------------------------------------------
// Shared formatting.

/// `labels.FormatLabels`: `app=web,tier=fe` sorted by key, `<none>` when empty.
fn format_labels(labels: &Value) -> String {
    let mut pairs: Vec<String> = labels
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or("")))
        .collect();
    // serde_json may keep insertion order; Kubernetes sorts by key.
    pairs.sort_unstable();
    or_placeholder(&pairs.join(","), NONE)
}

/// `metav1.LabelSelectorAsSelector(selector).String()`, `None` where Kubernetes reports an
/// error. A missing selector selects nothing and an empty one everything; both print as "".
fn label_selector(selector: &Value) -> Option<String> {
    let Some(selector) = selector.as_object() else {
        return Some(String::new());
    };
    let mut requirements: Vec<(&str, String)> = Vec::new();
    let match_labels = selector.get("matchLabels").and_then(Value::as_object);
    for (key, value) in match_labels.into_iter().flatten() {
        if key.is_empty() {
            return None;
        }
        requirements.push((key, format!("{key}={}", value.as_str()?)));
    }
    let expressions = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for expression in expressions {
        let key = text(expression, &["key"]);
        if key.is_empty() {
            return None;
        }
        let mut values = items(expression, &["values"])
            .iter()
            .map(Value::as_str)
            .collect::<Option<Vec<&str>>>()?;
        let rendered = match text(expression, &["operator"]) {
            operator @ ("In" | "NotIn") if !values.is_empty() => {
                values.sort_unstable();
                let operator = if operator == "In" { "in" } else { "notin" };
                format!("{key} {operator} ({})", values.join(","))
            }
            "Exists" if values.is_empty() => key.to_string(),
            "DoesNotExist" if values.is_empty() => format!("!{key}"),
            _ => return None,
        };
        requirements.push((key, rendered));
    }
    requirements.sort_by(|left, right| left.0.cmp(right.0));
    let rendered: Vec<String> = requirements
        .into_iter()
        .map(|(_, requirement)| requirement)
        .collect();
    Some(rendered.join(","))
}

/// `metav1.FormatLabelSelector`: `<none>` for an empty selector, `<error>` for a bad one.
fn format_label_selector(selector: &Value) -> String {
    match label_selector(selector) {
        Some(rendered) => or_placeholder(&rendered, NONE),
        None => "<error>".to_string(),
    }
}

/// `layoutContainerCells`: container names and images, each joined with commas.
fn container_cells(pod_spec: &Value) -> [Value; 2] {
    let containers = items(pod_spec, &["containers"]);
    let join = |field: &str| {
        let parts: Vec<&str> = containers
            .iter()
            .map(|container| text(container, &[field]))
            .collect();
        Value::from(parts.join(","))
    };
    [join("name"), join("image")]
}

/// `net.JoinHostPort`: IPv6 hosts are bracketed.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `listWithMoreString`: the first entries, then `+ N more...`; `<unset>` when empty.
fn list_with_more(list: &[String], more: bool, count: usize, max: usize) -> String {
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count.saturating_sub(max))
    } else {
        or_placeholder(&joined, UNSET)
    }
}

// ---------------------------------------------------------------------------------------------
// Printers, one per kind.

fn default_cells(object: &Value, _now: Timestamp) -> Vec<Value> {
    // The default convertor prints the creation time itself, in UTC, not an age.
    let created = time_at(object, &["metadata", "creationTimestamp"]).map_or_else(
        || "0001-01-01T00:00:00Z".to_string(),
        |time| time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    );
    vec![name(object), Value::from(created)]
}

fn pod_cells(pod: &Value, now: Timestamp) -> Vec<Value> {
    let spec = at(pod, &["spec"]);
    let status = at(pod, &["status"]);
    let init_containers = items(spec, &["initContainers"]);
    let is_sidecar = |container: &Value| text(container, &["restartPolicy"]) == "Always";
    // A status names its container; the last spec of that name wins, as in Go's map.
    let is_sidecar_named = |name: &str| {
        init_containers
            .iter()
            .rev()
            .find(|container| text(container, &["name"]) == name)
            .is_some_and(is_sidecar)
    };

    let total = items(spec, &["containers"]).len()
        + init_containers.iter().filter(|c| is_sidecar(c)).count();
    let mut ready = 0;
    let mut restarts: i64 = 0;
    let mut sidecar_restarts: i64 = 0;
    let mut last_restart = None;
    let mut last_sidecar_restart = None;

    let phase = text(status, &["phase"]);
    let status_reason = text(status, &["reason"]);
    let mut reason = or_placeholder(status_reason, phase);
    let scheduling_gated = items(status, &["conditions"]).iter().any(|condition| {
        text(condition, &["type"]) == "PodScheduled"
            && text(condition, &["reason"]) == "SchedulingGated"
    });
    if scheduling_gated {
        reason = "SchedulingGated".to_string();
    }

    let mut initializing = false;
    for (index, container) in items(status, &["initContainerStatuses"]).iter().enumerate() {
        let restart_count = integer(container, &["restartCount"]).unwrap_or(0);
        let finished = time_at(container, &["lastState", "terminated", "finishedAt"]);
        restarts = restarts.saturating_add(restart_count);
        last_restart = later(last_restart, finished);
        let sidecar = is_sidecar_named(text(container, &["name"]));
        if sidecar {
            sidecar_restarts = sidecar_restarts.saturating_add(restart_count);
            last_sidecar_restart = later(last_sidecar_restart, finished);
        }

        let terminated = at(container, &["state", "terminated"]);
        let exit_code = integer(terminated, &["exitCode"]).unwrap_or(0);
        if terminated.is_object() && exit_code == 0 {
            continue;
        }
        if sidecar && flag(container, &["started"]) {
            if flag(container, &["ready"]) {
                ready += 1;
            }
            continue;
        }
        let waiting_reason = text(container, &["state", "waiting", "reason"]);
        reason = if terminated.is_object() {
            match (
                text(terminated, &["reason"]),
                integer(terminated, &["signal"]),
            ) {
                ("", Some(signal)) if signal != 0 => format!("Init:Signal:{signal}"),
                ("", _) => format!("Init:ExitCode:{exit_code}"),
                (terminated_reason, _) => format!("Init:{terminated_reason}"),
            }
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{index}/{}", init_containers.len())
        };
        initializing = true;
        break;
    }

    if !initializing || condition_is_true(status, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        // Walked backwards so that the first container's state decides the reason.
        for container in items(status, &["containerStatuses"]).iter().rev() {
            restarts = restarts.saturating_add(integer(container, &["restartCount"]).unwrap_or(0));
            last_restart = later(
                last_restart,
                time_at(container, &["lastState", "terminated", "finishedAt"]),
            );
            let waiting_reason = text(container, &["state", "waiting", "reason"]);
            let terminated = at(container, &["state", "terminated"]);
            let terminated_reason = text(terminated, &["reason"]);
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if terminated.is_object() && !terminated_reason.is_empty() {
                reason = terminated_reason.to_string();
            } else if terminated.is_object() {
                reason = match integer(terminated, &["signal"]) {
                    Some(signal) if signal != 0 => format!("Signal:{signal}"),
                    _ => format!(
                        "ExitCode:{}",
                        integer(terminated, &["exitCode"]).unwrap_or(0)
                    ),
                };
            } else if flag(container, &["ready"])
                && at(container, &["state", "running"]).is_object()
            {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose first container completed while another still runs is not done.
        if reason == "Completed" && has_running {
            // hasPodReadyCondition accepts any Ready=True entry, not only the first.
            let pod_ready = items(status, &["conditions"]).iter().any(|condition| {
                text(condition, &["type"]) == "Ready" && text(condition, &["status"]) == "True"
            });
            reason = if pod_ready { "Running" } else { "NotReady" }.to_string();
        }
    }

    if is_set(pod, &["metadata", "deletionTimestamp"]) {
        if status_reason == "NodeLost" {
            reason = "Unknown".to_string();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".to_string();
        }
    }

    let restarts_cell = match last_restart {
        Some(time) if restarts != 0 => {
            format!(
                "{restarts} ({} ago)",
                human_duration(nanoseconds_between(time, now))
            )
        }
        _ => restarts.to_string(),
    };

    let pod_ips = items(status, &["podIPs"]);
    let pod_ip = match pod_ips.first() {
        Some(first) => text(first, &["ip"]),
        None => text(status, &["podIP"]),
    };
    let readiness_gates = items(spec, &["readinessGates"]);
    let readiness_cell = if readiness_gates.is_empty() {
        NONE.to_string()
    } else {
        let conditions = items(status, &["conditions"]);
        let passed = readiness_gates
            .iter()
            .filter(|gate| {
                let wanted = text(gate, &["conditionType"]);
                conditions
                    .iter()
                    .find(|condition| text(condition, &["type"]) == wanted)
                    .is_some_and(|condition| text(condition, &["status"]) == "True")
            })
            .count();
        format!("{passed}/{}", readiness_gates.len())
    };

    vec![
        name(pod),
        Value::from(format!("{ready}/{total}")),
        Value::from(reason),
        Value::from(restarts_cell),
        creation_age(pod, now),
        Value::from(or_placeholder(pod_ip, NONE)),
        Value::from(or_placeholder(text(spec, &["nodeName"]), NONE)),
        Value::from(or_placeholder(text(status, &["nominatedNodeName"]), NONE)),
        Value::from(readiness_cell),
    ]
}

/// The status of the first condition of `kind`, compared with "True"; false when absent.
fn condition_is_true(status: &Value, kind: &str) -> bool {
    items(status, &["conditions"])
        .iter()
        .find(|condition| text(condition, &["type"]) == kind)
        .is_some_and(|condition| text(condition, &["status"]) == "True")
}

/// `spec.replicas`, which kube-apiserver defaults to 1.
fn desired_replicas(object: &Value) -> i64 {
    integer(object, &["spec", "replicas"]).unwrap_or(1)
}

fn status_count(object: &Value, field: &str) -> Value {
    Value::from(integer(object, &["status", field]).unwrap_or(0))
}

fn deployment_cells(deployment: &Value, now: Timestamp) -> Vec<Value> {
    let ready = integer(deployment, &["status", "readyReplicas"]).unwrap_or(0);
    let [names, images] = container_cells(at(deployment, &["spec", "template", "spec"]));
    let selector = label_selector(at(deployment, &["spec", "selector"]))
        .unwrap_or_else(|| "<invalid>".to_string());
    vec![
        name(deployment),
        Value::from(format!("{ready}/{}", desired_replicas(deployment))),
        status_count(deployment, "updatedReplicas"),
        status_count(deployment, "availableReplicas"),
        creation_age(deployment, now),
        names,
        images,
        Value::from(selector),
    ]
}

fn replica_set_cells(replica_set: &Value, now: Timestamp) -> Vec<Value> {
    let [names, images] = container_cells(at(replica_set, &["spec", "template", "spec"]));
    vec![
        name(replica_set),
        Value::from(desired_replicas(replica_set)),
        status_count(replica_set, "replicas"),
        status_count(replica_set, "readyReplicas"),
        creation_age(replica_set, now),
        names,
        images,
        Value::from(format_label_selector(at(
            replica_set,
            &["spec", "selector"],
        ))),
    ]
}

fn replication_controller_cells(controller: &Value, now: Timestamp) -> Vec<Value> {
    let [names, images] = container_cells(at(controller, &["spec", "template", "spec"]));
    vec![
        name(controller),
        Value::from(desired_replicas(controller)),
        status_count(controller, "replicas"),
        status_count(controller, "readyReplicas"),
        creation_age(controller, now),
        names,
        images,
        Value::from(format_labels(at(controller, &["spec", "selector"]))),
    ]
}

fn stateful_set_cells(stateful_set: &Value, now: Timestamp) -> Vec<Value> {
    let ready = integer(stateful_set, &["status", "readyReplicas"]).unwrap_or(0);
    let [names, images] = container_cells(at(stateful_set, &["spec", "template", "spec"]));
    vec![
        name(stateful_set),
        Value::from(format!("{ready}/{}", desired_replicas(stateful_set))),
        creation_age(stateful_set, now),
        names,
        images,
    ]
}

fn daemon_set_cells(daemon_set: &Value, now: Timestamp) -> Vec<Value> {
    let pod_spec = at(daemon_set, &["spec", "template", "spec"]);
    let [names, images] = container_cells(pod_spec);
    vec![
        name(daemon_set),
        status_count(daemon_set, "desiredNumberScheduled"),
        status_count(daemon_set, "currentNumberScheduled"),
        status_count(daemon_set, "numberReady"),
        status_count(daemon_set, "updatedNumberScheduled"),
        status_count(daemon_set, "numberAvailable"),
        Value::from(format_labels(at(pod_spec, &["nodeSelector"]))),
        creation_age(daemon_set, now),
        names,
        images,
        Value::from(format_label_selector(at(daemon_set, &["spec", "selector"]))),
    ]
}

fn job_cells(job: &Value, now: Timestamp) -> Vec<Value> {
    let succeeded = integer(job, &["status", "succeeded"]).unwrap_or(0);
    let completions = match integer(job, &["spec", "completions"]) {
        Some(completions) => format!("{succeeded}/{completions}"),
        None => match integer(job, &["spec", "parallelism"]).unwrap_or(0) {
            parallelism if parallelism > 1 => format!("{succeeded}/1 of {parallelism}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let duration = match time_at(job, &["status", "startTime"]) {
        None => String::new(),
        Some(start) => {
            let end = time_at(job, &["status", "completionTime"]).unwrap_or(now);
            human_duration(nanoseconds_between(start, end))
        }
    };
    let status = at(job, &["status"]);
    let state = if condition_is_true(status, "Complete") {
        "Complete"
    } else if condition_is_true(status, "Failed") {
        "Failed"
    } else if is_set(job, &["metadata", "deletionTimestamp"]) {
        "Terminating"
    } else if condition_is_true(status, "Suspended") {
        "Suspended"
    } else if condition_is_true(status, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let [names, images] = container_cells(at(job, &["spec", "template", "spec"]));
    vec![
        name(job),
        Value::from(state),
        Value::from(completions),
        Value::from(duration),
        creation_age(job, now),
        names,
        images,
        Value::from(format_label_selector(at(job, &["spec", "selector"]))),
    ]
}

fn cron_job_cells(cron_job: &Value, now: Timestamp) -> Vec<Value> {
    let spec = at(cron_job, &["spec"]);
    let suspend = match at(spec, &["suspend"]) {
        Value::Bool(true) => "True",
        Value::Null | Value::Bool(false) => "False",
        _ => UNSET,
    };
    let last_schedule = if is_set(cron_job, &["status", "lastScheduleTime"]) {
        since(cron_job, &["status", "lastScheduleTime"], now)
    } else {
        NONE.to_string()
    };
    let job_spec = at(spec, &["jobTemplate", "spec"]);
    let [names, images] = container_cells(at(job_spec, &["template", "spec"]));
    vec![
        name(cron_job),
        Value::from(text(spec, &["schedule"])),
        Value::from(at(spec, &["timeZone"]).as_str().unwrap_or(NONE)),
        Value::from(suspend),
        Value::from(items(cron_job, &["status", "active"]).len()),
        Value::from(last_schedule),
        creation_age(cron_job, now),
        names,
        images,
        Value::from(format_label_selector(at(job_spec, &["selector"]))),
    ]
}

fn service_cells(service: &Value, now: Timestamp) -> Vec<Value> {
    let spec = at(service, &["spec"]);
    let service_type = or_placeholder(text(spec, &["type"]), "ClusterIP");
    // kube-apiserver keeps clusterIPs[0] equal to clusterIP; fall back for objects without it.
    let cluster_ip = match items(spec, &["clusterIPs"]).first() {
        Some(first) => first.as_str().unwrap_or("").to_string(),
        None => or_placeholder(text(spec, &["clusterIP"]), NONE),
    };
    let ports: Vec<String> = items(spec, &["ports"])
        .iter()
        .map(|port| {
            let number = integer(port, &["port"]).unwrap_or(0);
            let protocol = or_placeholder(text(port, &["protocol"]), "TCP");
            match integer(port, &["nodePort"]).unwrap_or(0) {
                node_port if node_port > 0 => format!("{number}:{node_port}/{protocol}"),
                _ => format!("{number}/{protocol}"),
            }
        })
        .collect();
    vec![
        name(service),
        Value::from(service_type.as_str()),
        Value::from(cluster_ip),
        Value::from(external_ip(service, &service_type)),
        Value::from(or_placeholder(&ports.join(","), NONE)),
        creation_age(service, now),
        Value::from(format_labels(at(spec, &["selector"]))),
    ]
}

/// `getServiceExternalIP` as kube-apiserver calls it: wide, so load balancer addresses are
/// never clipped.
fn external_ip(service: &Value, service_type: &str) -> String {
    let external_ips: Vec<&str> = items(service, &["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match service_type {
        "ClusterIP" | "NodePort" => or_placeholder(&external_ips.join(","), NONE),
        "LoadBalancer" => {
            let ingress: BTreeSet<&str> = items(service, &["status", "loadBalancer", "ingress"])
                .iter()
                .filter_map(|ingress| {
                    [text(ingress, &["ip"]), text(ingress, &["hostname"])]
                        .into_iter()
                        .find(|address| !address.is_empty())
                })
                .collect();
            let addresses: Vec<&str> = ingress.into_iter().chain(external_ips).collect();
            or_placeholder(&addresses.join(","), "<pending>")
        }
        "ExternalName" => text(service, &["spec", "externalName"]).to_string(),
        _ => UNKNOWN.to_string(),
    }
}

fn node_cells(node: &Value, now: Timestamp) -> Vec<Value> {
    let status = at(node, &["status"]);
    // Only the Ready condition is shown; a repeated condition type keeps the last entry.
    let ready = items(status, &["conditions"])
        .iter()
        .rev()
        .find(|condition| text(condition, &["type"]) == "Ready");
    let mut states = vec![match ready {
        Some(condition) if text(condition, &["status"]) == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if flag(node, &["spec", "unschedulable"]) {
        states.push("SchedulingDisabled");
    }

    let roles: BTreeSet<&str> = at(node, &["metadata", "labels"])
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(
            |(key, value)| match key.strip_prefix("node-role.kubernetes.io/") {
                Some(role) => Some(role),
                None if key == "kubernetes.io/role" => value.as_str(),
                None => None,
            },
        )
        .filter(|role| !role.is_empty())
        .collect();
    let roles: Vec<&str> = roles.into_iter().collect();

    let address = |kind: &str| {
        items(status, &["addresses"])
            .iter()
            .find(|address| text(address, &["type"]) == kind)
            .map_or(NONE, |address| text(address, &["address"]))
            .to_string()
    };
    let info = |field: &str| or_placeholder(text(status, &["nodeInfo", field]), UNKNOWN);

    vec![
        name(node),
        Value::from(states.join(",")),
        Value::from(or_placeholder(&roles.join(","), NONE)),
        creation_age(node, now),
        Value::from(text(status, &["nodeInfo", "kubeletVersion"])),
        Value::from(address("InternalIP")),
        Value::from(address("ExternalIP")),
        Value::from(info("osImage")),
        Value::from(info("kernelVersion")),
        Value::from(info("containerRuntimeVersion")),
    ]
}

fn namespace_cells(namespace: &Value, now: Timestamp) -> Vec<Value> {
    let defaulted = if is_set(namespace, &["metadata", "deletionTimestamp"]) {
        "Terminating"
    } else {
        "Active"
    };
    vec![
        name(namespace),
        Value::from(or_placeholder(
            text(namespace, &["status", "phase"]),
            defaulted,
        )),
        creation_age(namespace, now),
    ]
}

fn config_map_cells(config_map: &Value, now: Timestamp) -> Vec<Value> {
    let data = entry_count(config_map, &["data"]) + entry_count(config_map, &["binaryData"]);
    vec![
        name(config_map),
        Value::from(data),
        creation_age(config_map, now),
    ]
}

fn secret_cells(secret: &Value, now: Timestamp) -> Vec<Value> {
    // kube-apiserver folds stringData into data on write; count the keys it would store.
    let keys: BTreeSet<&String> = ["data", "stringData"]
        .iter()
        .filter_map(|field| at(secret, &[field]).as_object())
        .flat_map(Map::keys)
        .collect();
    vec![
        name(secret),
        Value::from(or_placeholder(text(secret, &["type"]), "Opaque")),
        Value::from(keys.len()),
        creation_age(secret, now),
    ]
}

fn service_account_cells(account: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(account),
        Value::from(items(account, &["secrets"]).len()),
        creation_age(account, now),
    ]
}

fn endpoints_cells(endpoints: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(endpoints),
        Value::from(format_endpoints(endpoints)),
        creation_age(endpoints, now),
    ]
}

/// `formatEndpoints`: up to three `ip:port` pairs, then `+ N more...`.
fn format_endpoints(endpoints: &Value) -> String {
    const MAX: usize = 3;
    let subsets = items(endpoints, &["subsets"]);
    if subsets.is_empty() {
        return NONE.to_string();
    }
    let mut list = Vec::new();
    let mut more = false;
    let mut count = 0;
    for subset in subsets {
        let addresses = items(subset, &["addresses"]);
        let ports = items(subset, &["ports"]);
        // Headless services may have no ports: list the bare addresses.
        let port_numbers: Vec<Option<i64>> = if ports.is_empty() {
            vec![None]
        } else {
            ports
                .iter()
                .map(|port| Some(integer(port, &["port"]).unwrap_or(0)))
                .collect()
        };
        for port in port_numbers {
            count += addresses.len();
            for address in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                let ip = text(address, &["ip"]);
                list.push(match port {
                    Some(port) => join_host_port(ip, port),
                    None => ip.to_string(),
                });
            }
        }
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count.saturating_sub(MAX))
    } else {
        joined
    }
}

fn endpoint_slice_cells(slice: &Value, now: Timestamp) -> Vec<Value> {
    const MAX: usize = 3;
    let ports: Vec<&Value> = items(slice, &["ports"]).iter().collect();
    let port_list: Vec<String> = ports
        .iter()
        .take(MAX)
        .map(|port| match (at(port, &["port"]), at(port, &["name"])) {
            (number, _) if !number.is_null() => integer(port, &["port"]).unwrap_or(0).to_string(),
            (_, Value::String(port_name)) => port_name.clone(),
            _ => "*".to_string(),
        })
        .collect();
    let addresses: Vec<String> = items(slice, &["endpoints"])
        .iter()
        .flat_map(|endpoint| items(endpoint, &["addresses"]))
        .map(|address| address.as_str().unwrap_or("").to_string())
        .collect();
    let address_list = &addresses[..addresses.len().min(MAX)];
    vec![
        name(slice),
        Value::from(text(slice, &["addressType"])),
        Value::from(list_with_more(
            &port_list,
            ports.len() > MAX,
            ports.len(),
            MAX,
        )),
        Value::from(list_with_more(
            address_list,
            addresses.len() > MAX,
            addresses.len(),
            MAX,
        )),
        creation_age(slice, now),
    ]
}

/// Both `v1` and `events.k8s.io/v1` Events print alike: kube-apiserver converts both to its
/// internal Event, whose fields these are.
struct EventFields<'a> {
    involved_object: &'a Value,
    message: &'a str,
    source: &'a Value,
    first_timestamp: &'a [&'a str],
    last_timestamp: &'a [&'a str],
    count: &'a [&'a str],
    reporting_controller: &'a str,
}

fn event_cells(event: &Value, now: Timestamp) -> Vec<Value> {
    let fields = if text(event, &["apiVersion"]).starts_with("events.k8s.io/") {
        EventFields {
            involved_object: at(event, &["regarding"]),
            message: text(event, &["note"]),
            source: at(event, &["deprecatedSource"]),
            first_timestamp: &["deprecatedFirstTimestamp"],
            last_timestamp: &["deprecatedLastTimestamp"],
            count: &["deprecatedCount"],
            reporting_controller: text(event, &["reportingController"]),
        }
    } else {
        EventFields {
            involved_object: at(event, &["involvedObject"]),
            message: text(event, &["message"]),
            source: at(event, &["source"]),
            first_timestamp: &["firstTimestamp"],
            last_timestamp: &["lastTimestamp"],
            count: &["count"],
            reporting_controller: text(event, &["reportingComponent"]),
        }
    };

    let first_seen = match time_at(event, fields.first_timestamp) {
        Some(_) => since(event, fields.first_timestamp, now),
        None => since(event, &["eventTime"], now),
    };
    let mut last_seen = match time_at(event, fields.last_timestamp) {
        Some(_) => since(event, fields.last_timestamp, now),
        None => first_seen.clone(),
    };
    let mut count = integer(event, fields.count).unwrap_or(0);
    let series = at(event, &["series"]);
    if series.is_object() {
        last_seen = since(series, &["lastObservedTime"], now);
        count = integer(series, &["count"]).unwrap_or(0);
    } else if count == 0 {
        // Singleton events of the new API carry no count.
        count = 1;
    }

    let kind = text(fields.involved_object, &["kind"]).to_lowercase();
    let object_name = text(fields.involved_object, &["name"]);
    let target = if object_name.is_empty() {
        kind
    } else {
        format!("{kind}/{object_name}")
    };

    let component = or_placeholder(
        text(fields.source, &["component"]),
        fields.reporting_controller,
    );
    let instance = or_placeholder(
        text(fields.source, &["host"]),
        text(event, &["reportingInstance"]),
    );
    let source = if instance.is_empty() {
        component
    } else {
        format!("{component}, {instance}")
    };

    vec![
        Value::from(last_seen),
        Value::from(text(event, &["type"])),
        Value::from(text(event, &["reason"])),
        Value::from(target),
        Value::from(text(fields.involved_object, &["fieldPath"])),
        Value::from(source),
        Value::from(fields.message.trim()),
        Value::from(first_seen),
        Value::from(count),
        name(event),
    ]
}

fn lease_cells(lease: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(lease),
        Value::from(text(lease, &["spec", "holderIdentity"])),
        creation_age(lease, now),
    ]
}

fn role_binding_cells(binding: &Value, now: Timestamp) -> Vec<Value> {
    let (mut users, mut groups, mut service_accounts) = (Vec::new(), Vec::new(), Vec::new());
    for subject in items(binding, &["subjects"]) {
        let subject_name = text(subject, &["name"]);
        match text(subject, &["kind"]) {
            "User" => users.push(subject_name.to_string()),
            "Group" => groups.push(subject_name.to_string()),
            "ServiceAccount" => {
                service_accounts.push(format!("{}/{subject_name}", text(subject, &["namespace"])))
            }
            _ => {}
        }
    }
    let role = format!(
        "{}/{}",
        text(binding, &["roleRef", "kind"]),
        text(binding, &["roleRef", "name"])
    );
    vec![
        name(binding),
        Value::from(role),
        creation_age(binding, now),
        Value::from(users.join(", ")),
        Value::from(groups.join(", ")),
        Value::from(service_accounts.join(", ")),
    ]
}

// ---------------------------------------------------------------------------------------------
// Custom resources: the CRD `additionalPrinterColumns` table of apiextensions-apiserver.

/// One printer column of a CRD version. `path` is `None` for JSONPath syntax this module
/// does not evaluate (filters, slices, recursive descent); such cells are `null`.
struct CustomColumn {
    name: String,
    kind: String,
    format: String,
    description: String,
    priority: i64,
    path: Option<Vec<PathStep>>,
}

fn custom_columns(printer_columns: &Value) -> Vec<CustomColumn> {
    let declared = printer_columns.as_array().map_or(&[][..], Vec::as_slice);
    if declared.is_empty() {
        return vec![CustomColumn {
            name: "Age".to_string(),
            kind: "date".to_string(),
            format: String::new(),
            description: description::CREATION_TIMESTAMP.to_string(),
            priority: 0,
            path: parse_json_path(".metadata.creationTimestamp"),
        }];
    }
    declared
        .iter()
        .map(|column| {
            let json_path = text(column, &["jsonPath"]);
            let description = match text(column, &["description"]) {
                "" => {
                    format!("Custom resource definition column (in JSONPath format): {json_path}")
                }
                given => given.to_string(),
            };
            CustomColumn {
                name: text(column, &["name"]).to_string(),
                kind: text(column, &["type"]).to_string(),
                format: text(column, &["format"]).to_string(),
                description,
                priority: integer(column, &["priority"]).unwrap_or(0),
                path: parse_json_path(json_path),
            }
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
enum PathStep {
    Field(String),
    Index(i64),
    Wildcard,
}

/// Parses the simple JSONPath of a printer column (`.status.replicas`, `.spec.ports[0].port`,
/// `.metadata.labels['app\.kubernetes\.io/name']`, `.items[*].name`).
fn parse_json_path(path: &str) -> Option<Vec<PathStep>> {
    let path = path.trim();
    let path = path.strip_prefix('$').unwrap_or(path);
    let mut steps = Vec::new();
    let mut chars = path.chars().peekable();
    while let Some(current) = chars.next() {
        match current {
            '.' => {
                let mut field = String::new();
                while let Some(&next) = chars.peek() {
                    if next == '.' || next == '[' {
                        break;
                    }
                    chars.next();
                    if next == '\\' {
                        field.push(chars.next()?);
                    } else {
                        field.push(next);
                    }
                }
                if field.is_empty() {
                    // A lone "." is the object itself; ".." (recursive descent) is unsupported.
                    if chars.peek().is_some() {
                        return None;
                    }
                } else if field == "*" {
                    steps.push(PathStep::Wildcard);
                } else {
                    steps.push(PathStep::Field(field));
                }
            }
            '[' => {
                let mut inside = String::new();
                loop {
                    match chars.next()? {
                        ']' => break,
                        other => inside.push(other),
                    }
                }
                let inside = inside.trim();
                let quoted = ['\'', '"']
                    .iter()
                    .find_map(|quote| inside.strip_prefix(*quote)?.strip_suffix(*quote));
                steps.push(match quoted {
                    Some(field) => PathStep::Field(field.to_string()),
                    None if inside == "*" => PathStep::Wildcard,
                    None => PathStep::Index(inside.parse().ok()?),
                });
            }
            _ => return None,
        }
    }
    Some(steps)
}

/// The first value the path finds; the CRD table shows only the first of several results.
fn first_match<'a>(value: &'a Value, steps: &[PathStep]) -> Option<&'a Value> {
    let Some((step, rest)) = steps.split_first() else {
        return Some(value);
    };
    match step {
        PathStep::Field(field) => first_match(value.as_object()?.get(field)?, rest),
        PathStep::Index(index) => {
            let array = value.as_array()?;
            let length = i64::try_from(array.len()).ok()?;
            let position = if *index < 0 { length + index } else { *index };
            first_match(array.get(usize::try_from(position).ok()?)?, rest)
        }
        PathStep::Wildcard => match value {
            Value::Array(array) => array.iter().find_map(|item| first_match(item, rest)),
            Value::Object(object) => object.values().find_map(|item| first_match(item, rest)),
            _ => None,
        },
    }
}

/// `cellForJSONValue`, plus the JSONPath printing used for `string` columns.
fn custom_cell(kind: &str, value: &Value, now: Timestamp) -> Value {
    match (kind, value) {
        ("string", Value::Null) => Value::from("<no value>"),
        ("string", _) => Value::from(go_print(value)),
        (_, Value::Null) => Value::Null,
        ("integer", Value::Number(number)) => number
            .as_i64()
            .or_else(|| number.as_f64().map(|float| float as i64))
            .map_or(Value::Null, Value::from),
        ("number", Value::Number(number)) => number.as_f64().map_or(Value::Null, Value::from),
        ("boolean", Value::Bool(boolean)) => Value::Bool(*boolean),
        ("date", Value::String(timestamp)) => {
            if timestamp.is_empty() || timestamp == "null" {
                Value::from(UNKNOWN)
            } else if timestamp.parse::<Timestamp>().is_err() {
                Value::from("<invalid>")
            } else {
                Value::from(age(Some(timestamp), now))
            }
        }
        _ => Value::Null,
    }
}

/// How Kubernetes' JSONPath prints a value: objects and arrays as JSON, scalars as Go's `%v`.
fn go_print(value: &Value) -> String {
    match value {
        Value::String(string) => string.clone(),
        Value::Number(number) => match number.as_i64() {
            Some(integer) => integer.to_string(),
            None => go_float(number.as_f64().unwrap_or(0.0)),
        },
        other => other.to_string(),
    }
}

/// Go's `%v` for a float64: shortest digits, exponent form below 1e-4 and from 1e21.
fn go_float(float: f64) -> String {
    if float.is_nan() {
        return "NaN".to_string();
    }
    if float.is_infinite() {
        return if float > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    let scientific = format!("{float:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..21).contains(&exponent) {
        float.to_string()
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2024-05-01T12:00:00Z";

    fn now() -> Timestamp {
        NOW.parse().unwrap()
    }

    /// An RFC 3339 timestamp `seconds` before [`NOW`].
    fn ago(seconds: i64) -> String {
        let time = Timestamp::from_second(now().as_second() - seconds).unwrap();
        time.to_string()
    }

    fn strings(values: &[&str]) -> Vec<Value> {
        values.iter().map(|value| Value::from(*value)).collect()
    }

    fn running_pod() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "default", "creationTimestamp": ago(300)},
            "spec": {"nodeName": "node-1", "containers": [{"name": "web", "image": "nginx"}]},
            "status": {
                "phase": "Running",
                "podIP": "10.0.0.5",
                "podIPs": [{"ip": "10.0.0.5"}],
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{
                    "name": "web", "ready": true, "restartCount": 0,
                    "state": {"running": {"startedAt": ago(290)}}
                }]
            }
        })
    }

    #[test]
    fn age_follows_kubernetes_human_duration() {
        let cases = [
            (0, "0s"),
            (59, "59s"),
            (119, "119s"),
            (120, "2m"),
            (200, "3m20s"),
            (300, "5m"),
            (599, "9m59s"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (7 * 3600 + 59 * 60, "7h59m"),
            (8 * 3600 + 59 * 60, "8h"),
            (47 * 3600, "47h"),
            (51 * 3600, "2d3h"),
            (7 * 86400 + 23 * 3600, "7d23h"),
            (8 * 86400, "8d"),
            (729 * 86400, "729d"),
            (730 * 86400, "2y"),
            (735 * 86400, "2y5d"),
            (9 * 365 * 86400, "9y"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(age(Some(&ago(seconds)), now()), expected, "{seconds}s ago");
        }
    }

    #[test]
    fn age_of_missing_zero_or_garbage_timestamps_is_unknown() {
        assert_eq!(age(None, now()), "<unknown>");
        assert_eq!(age(Some("0001-01-01T00:00:00Z"), now()), "<unknown>");
        assert_eq!(age(Some("yesterday"), now()), "<unknown>");
        assert_eq!(age(Some(""), now()), "<unknown>");
    }

    #[test]
    fn age_tolerates_a_second_of_clock_skew_but_not_more() {
        assert_eq!(age(Some("2024-05-01T12:00:01Z"), now()), "0s");
        assert_eq!(age(Some("2024-05-01T12:00:01.9Z"), now()), "0s");
        assert_eq!(age(Some("2024-05-01T12:00:02Z"), now()), "<invalid>");
        assert_eq!(age(Some("2024-05-01T13:00:00+01:00"), now()), "0s");
    }

    #[test]
    fn column_serializes_as_table_column_definition() {
        let json = columns("Pod")[8].to_json();
        assert_eq!(json["name"], "Readiness Gates");
        assert_eq!(json["type"], "string");
        assert_eq!(json["format"], "");
        assert_eq!(json["priority"], 1);
        assert!(
            json["description"]
                .as_str()
                .unwrap()
                .contains("readiness gates")
        );
        assert_eq!(columns("Pod")[0].to_json()["format"], "name");
    }

    #[test]
    fn pod_columns_match_kubernetes() {
        let names: Vec<(&str, &str, i32)> = columns("Pod")
            .iter()
            .map(|column| (column.name, column.kind, column.priority))
            .collect();
        assert_eq!(
            names,
            [
                ("Name", "string", 0),
                ("Ready", "string", 0),
                ("Status", "string", 0),
                ("Restarts", "string", 0),
                ("Age", "string", 0),
                ("IP", "string", 1),
                ("Node", "string", 1),
                ("Nominated Node", "string", 1),
                ("Readiness Gates", "string", 1),
            ]
        );
    }

    #[test]
    fn running_pod_prints_ready_running_and_wide_cells() {
        assert_eq!(
            cells("Pod", &running_pod(), now()),
            strings(&[
                "web-1", "1/1", "Running", "0", "5m", "10.0.0.5", "node-1", "<none>", "<none>"
            ])
        );
    }

    #[test]
    fn crash_looping_pod_shows_waiting_reason_and_last_restart_age() {
        let mut pod = running_pod();
        pod["status"]["containerStatuses"] = json!([{
            "name": "web", "ready": false, "restartCount": 4,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(65)}}
        }]);
        let row = cells("Pod", &pod, now());
        assert_eq!(row[1], "0/1");
        assert_eq!(row[2], "CrashLoopBackOff");
        assert_eq!(row[3], "4 (65s ago)");
    }

    #[test]
    fn restarts_without_a_termination_time_print_only_the_count() {
        let mut pod = running_pod();
        pod["status"]["containerStatuses"][0]["restartCount"] = json!(2);
        assert_eq!(cells("Pod", &pod, now())[3], "2");
    }

    #[test]
    fn pod_being_deleted_is_terminating_unless_its_node_was_lost() {
        let mut pod = running_pod();
        pod["metadata"]["deletionTimestamp"] = json!(ago(1));
        assert_eq!(cells("Pod", &pod, now())[2], "Terminating");
        pod["status"]["reason"] = json!("NodeLost");
        assert_eq!(cells("Pod", &pod, now())[2], "Unknown");
    }

    #[test]
    fn finished_pod_being_deleted_keeps_its_final_status() {
        let pod = json!({
            "metadata": {"name": "job-x", "deletionTimestamp": ago(1)},
            "spec": {"containers": [{"name": "main"}]},
            "status": {"phase": "Succeeded", "containerStatuses": [{
                "name": "main", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}
            }]}
        });
        assert_eq!(cells("Pod", &pod, now())[2], "Completed");
    }

    #[test]
    fn pending_pod_shows_container_creating() {
        let pod = json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Pending", "containerStatuses": [
                {"name": "a", "state": {"waiting": {"reason": "ContainerCreating"}}},
                {"name": "b", "state": {"waiting": {"reason": "ContainerCreating"}}}
            ]}
        });
        let row = cells("Pod", &pod, now());
        assert_eq!(row[1], "0/2");
        assert_eq!(row[2], "ContainerCreating");
    }

    #[test]
    fn first_container_decides_the_status_of_a_multi_container_pod() {
        let pod = json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "a", "state": {"waiting": {"reason": "ImagePullBackOff"}}},
                {"name": "b", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ]}
        });
        assert_eq!(cells("Pod", &pod, now())[2], "ImagePullBackOff");
    }

    #[test]
    fn terminated_container_without_reason_shows_exit_code_or_signal() {
        let mut pod = running_pod();
        pod["status"]["containerStatuses"][0]["state"] = json!({"terminated": {"exitCode": 137}});
        assert_eq!(cells("Pod", &pod, now())[2], "ExitCode:137");
        pod["status"]["containerStatuses"][0]["state"] =
            json!({"terminated": {"exitCode": 137, "signal": 9}});
        assert_eq!(cells("Pod", &pod, now())[2], "Signal:9");
    }

    #[test]
    fn completed_container_beside_a_running_one_shows_running_or_not_ready() {
        let mut pod = json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [
                {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                {"name": "b", "ready": true, "state": {"running": {}}}
            ]}
        });
        assert_eq!(
            cells("Pod", &pod, now())[1..3],
            strings(&["1/2", "NotReady"])
        );
        pod["status"]["conditions"][0]["status"] = json!("True");
        assert_eq!(cells("Pod", &pod, now())[2], "Running");
    }

    fn initializing_pod(init_statuses: Value) -> Value {
        json!({
            "metadata": {"name": "init"},
            "spec": {
                "initContainers": [{"name": "setup"}, {"name": "migrate"}],
                "containers": [{"name": "app"}]
            },
            "status": {
                "phase": "Pending",
                "initContainerStatuses": init_statuses,
                "containerStatuses": [
                    {"name": "app", "state": {"waiting": {"reason": "PodInitializing"}}}
                ]
            }
        })
    }

    #[test]
    fn init_containers_report_progress_and_failures() {
        let waiting = json!({"waiting": {"reason": "PodInitializing"}});
        let done = json!({"terminated": {"exitCode": 0, "reason": "Completed"}});
        let cases = [
            (
                json!([{"name": "setup", "state": {"running": {}}}, {"name": "migrate", "state": waiting}]),
                "Init:0/2",
            ),
            (
                json!([{"name": "setup", "state": done}, {"name": "migrate", "state": {"running": {}}}]),
                "Init:1/2",
            ),
            (
                json!([{"name": "setup", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]),
                "Init:CrashLoopBackOff",
            ),
            (
                json!([{"name": "setup", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]),
                "Init:Error",
            ),
            (
                json!([{"name": "setup", "state": {"terminated": {"exitCode": 3}}}]),
                "Init:ExitCode:3",
            ),
            (
                json!([{"name": "setup", "state": {"terminated": {"exitCode": 3, "signal": 15}}}]),
                "Init:Signal:15",
            ),
            (
                json!([{"name": "setup", "state": done}, {"name": "migrate", "state": done}]),
                "PodInitializing",
            ),
        ];
        for (statuses, expected) in cases {
            let pod = initializing_pod(statuses);
            assert_eq!(cells("Pod", &pod, now())[2], expected);
        }
    }

    #[test]
    fn init_container_restarts_count_while_initializing() {
        let pod = initializing_pod(json!([{
            "name": "setup", "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(30)}}
        }]));
        assert_eq!(cells("Pod", &pod, now())[3], "3 (30s ago)");
    }

    #[test]
    fn sidecar_init_containers_count_towards_ready_and_total() {
        let pod = json!({
            "metadata": {"name": "mesh"},
            "spec": {
                "initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
                "containers": [{"name": "app"}]
            },
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Initialized", "status": "True"}],
                "initContainerStatuses": [{
                    "name": "proxy", "started": true, "ready": true, "restartCount": 1,
                    "state": {"running": {}},
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(120)}}
                }],
                "containerStatuses": [{"name": "app", "ready": true, "state": {"running": {}}}]
            }
        });
        assert_eq!(
            cells("Pod", &pod, now())[1..4],
            strings(&["2/2", "Running", "1 (2m ago)"])
        );
    }

    #[test]
    fn scheduling_gated_pod_says_so() {
        let pod = json!({
            "metadata": {"name": "gated"},
            "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}
            ]}
        });
        assert_eq!(cells("Pod", &pod, now())[2], "SchedulingGated");
    }

    #[test]
    fn pod_readiness_gates_count_true_conditions() {
        let mut pod = running_pod();
        pod["spec"]["readinessGates"] =
            json!([{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}]);
        pod["status"]["conditions"] = json!([
            {"type": "Ready", "status": "True"},
            {"type": "example.com/lb", "status": "True"},
            {"type": "example.com/dns", "status": "False"}
        ]);
        assert_eq!(cells("Pod", &pod, now())[8], "1/2");
    }

    fn deployment() -> Value {
        json!({
            "metadata": {"name": "web", "creationTimestamp": ago(3600)},
            "spec": {
                "replicas": 3,
                "selector": {
                    "matchLabels": {"app": "web"},
                    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}]
                },
                "template": {"spec": {"containers": [
                    {"name": "web", "image": "nginx:1.27"},
                    {"name": "log", "image": "busybox"}
                ]}}
            },
            "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
        })
    }

    #[test]
    fn deployment_shows_ready_of_desired_and_wide_template() {
        assert_eq!(
            cells("Deployment", &deployment(), now()),
            vec![
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("60m"),
                json!("web,log"),
                json!("nginx:1.27,busybox"),
                json!("app=web,tier in (be,fe)"),
            ]
        );
        let names: Vec<&str> = columns("Deployment").iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "Name",
                "Ready",
                "Up-to-date",
                "Available",
                "Age",
                "Containers",
                "Images",
                "Selector"
            ]
        );
    }

    #[test]
    fn deployment_without_status_or_replicas_uses_kubernetes_defaults() {
        let deployment = json!({"metadata": {"name": "new"}, "spec": {"selector": {}}});
        let row = cells("Deployment", &deployment, now());
        assert_eq!(
            row[1..5],
            [json!("0/1"), json!(0), json!(0), json!("<unknown>")]
        );
        assert_eq!(row[7], "");
    }

    #[test]
    fn replica_set_prints_counts_as_integers_and_formatted_selector() {
        let replica_set = json!({
            "metadata": {"name": "web-5d9c", "creationTimestamp": ago(59)},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"pod-template-hash": "5d9c", "app": "web"}},
                "template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}},
            "status": {"replicas": 2, "readyReplicas": 1}
        });
        assert_eq!(
            cells("ReplicaSet", &replica_set, now()),
            vec![
                json!("web-5d9c"),
                json!(2),
                json!(2),
                json!(1),
                json!("59s"),
                json!("web"),
                json!("nginx"),
                json!("app=web,pod-template-hash=5d9c"),
            ]
        );
        let bare = json!({"metadata": {"name": "bare"}});
        assert_eq!(cells("ReplicaSet", &bare, now())[7], "<none>");
    }

    #[test]
    fn label_selectors_render_like_kubernetes() {
        let selector = json!({"matchExpressions": [
            {"key": "zone", "operator": "NotIn", "values": ["b", "a"]},
            {"key": "gpu", "operator": "Exists"},
            {"key": "legacy", "operator": "DoesNotExist"},
            {"key": "app", "operator": "In", "values": ["web"]}
        ]});
        assert_eq!(
            format_label_selector(&selector),
            "app in (web),gpu,!legacy,zone notin (a,b)"
        );
        let bad = json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]});
        assert_eq!(format_label_selector(&bad), "<error>");
        assert_eq!(label_selector(&bad), None);
        let unknown =
            json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]});
        assert_eq!(format_label_selector(&unknown), "<error>");
        assert_eq!(format_label_selector(&Value::Null), "<none>");
    }

    #[test]
    fn service_ports_include_node_ports_and_default_protocol() {
        let service = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(200)},
            "spec": {
                "type": "NodePort",
                "clusterIP": "10.96.0.10",
                "clusterIPs": ["10.96.0.10"],
                "ports": [
                    {"port": 80, "nodePort": 30080, "protocol": "TCP"},
                    {"port": 53, "protocol": "UDP"},
                    {"port": 8080}
                ],
                "selector": {"tier": "fe", "app": "web"}
            }
        });
        assert_eq!(
            cells("Service", &service, now()),
            strings(&[
                "web",
                "NodePort",
                "10.96.0.10",
                "<none>",
                "80:30080/TCP,53/UDP,8080/TCP",
                "3m20s",
                "app=web,tier=fe",
            ])
        );
    }

    #[test]
    fn service_external_ip_follows_the_service_type() {
        let service = |spec: Value, status: Value| json!({"metadata": {"name": "s"}, "spec": spec, "status": status});
        let external = |object: &Value| cells("Service", object, now())[3].clone();

        let plain = service(
            json!({"clusterIP": "10.0.0.1", "ports": [{"port": 80}]}),
            json!({}),
        );
        let row = cells("Service", &plain, now());
        assert_eq!(
            row[1..5],
            strings(&["ClusterIP", "10.0.0.1", "<none>", "80/TCP"])
        );
        assert_eq!(row[6], "<none>");

        let with_ips = service(
            json!({"type": "ClusterIP", "externalIPs": ["1.1.1.1", "2.2.2.2"]}),
            json!({}),
        );
        assert_eq!(external(&with_ips), "1.1.1.1,2.2.2.2");

        let pending = service(json!({"type": "LoadBalancer"}), json!({}));
        assert_eq!(external(&pending), "<pending>");

        let balanced = service(
            json!({"type": "LoadBalancer", "externalIPs": ["9.9.9.9"]}),
            json!({"loadBalancer": {"ingress": [
                {"hostname": "a-very-long-load-balancer.example.com"},
                {"ip": "203.0.113.7"},
                {"ip": "203.0.113.7"}
            ]}}),
        );
        assert_eq!(
            external(&balanced),
            "203.0.113.7,a-very-long-load-balancer.example.com,9.9.9.9"
        );

        let alias = service(
            json!({"type": "ExternalName", "externalName": "db.example.com"}),
            json!({}),
        );
        let row = cells("Service", &alias, now());
        assert_eq!(row[2..5], strings(&["<none>", "db.example.com", "<none>"]));

        let blank = service(json!({"clusterIPs": [""]}), json!({}));
        assert_eq!(cells("Service", &blank, now())[2], "");

        let headless = service(
            json!({"clusterIP": "None", "clusterIPs": ["None"]}),
            json!({}),
        );
        assert_eq!(cells("Service", &headless, now())[2], "None");

        let odd = service(json!({"type": "Mystery"}), json!({}));
        assert_eq!(external(&odd), "<unknown>");
    }

    fn node() -> Value {
        json!({
            "metadata": {
                "name": "cp-1",
                "creationTimestamp": ago(51 * 3600),
                "labels": {
                    "node-role.kubernetes.io/control-plane": "",
                    "kubernetes.io/hostname": "cp-1"
                }
            },
            "spec": {"unschedulable": true},
            "status": {
                "conditions": [
                    {"type": "MemoryPressure", "status": "False"},
                    {"type": "Ready", "status": "False"}
                ],
                "addresses": [
                    {"type": "Hostname", "address": "cp-1"},
                    {"type": "InternalIP", "address": "192.168.1.10"}
                ],
                "nodeInfo": {
                    "kubeletVersion": "v1.32.4",
                    "osImage": "Debian GNU/Linux 12 (bookworm)",
                    "kernelVersion": "6.1.0-18-amd64",
                    "containerRuntimeVersion": "berth://0.1.0"
                }
            }
        })
    }

    #[test]
    fn cordoned_not_ready_control_plane_node() {
        assert_eq!(
            cells("Node", &node(), now()),
            strings(&[
                "cp-1",
                "NotReady,SchedulingDisabled",
                "control-plane",
                "2d3h",
                "v1.32.4",
                "192.168.1.10",
                "<none>",
                "Debian GNU/Linux 12 (bookworm)",
                "6.1.0-18-amd64",
                "berth://0.1.0",
            ])
        );
    }

    #[test]
    fn node_without_ready_condition_is_unknown_and_roles_are_sorted() {
        let node = json!({
            "metadata": {"name": "n", "labels": {
                "node-role.kubernetes.io/worker": "",
                "kubernetes.io/role": "edge",
                "node-role.kubernetes.io/": "ignored"
            }},
            "status": {}
        });
        let row = cells("Node", &node, now());
        assert_eq!(
            row[1..5],
            strings(&["Unknown", "edge,worker", "<unknown>", ""])
        );
        assert_eq!(
            row[7..10],
            strings(&["<unknown>", "<unknown>", "<unknown>"])
        );
        let bare = json!({"metadata": {"name": "bare"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(
            cells("Node", &bare, now())[1..3],
            strings(&["Ready", "<none>"])
        );
    }

    #[test]
    fn namespace_config_map_secret_and_service_account_counts() {
        let namespace = json!({"metadata": {"name": "team-a", "creationTimestamp": ago(10)}, "status": {"phase": "Active"}});
        assert_eq!(
            cells("Namespace", &namespace, now()),
            strings(&["team-a", "Active", "10s"])
        );
        let unset = json!({"metadata": {"name": "fresh"}});
        assert_eq!(cells("Namespace", &unset, now())[1], "Active");

        let config_map = json!({"metadata": {"name": "cfg", "creationTimestamp": ago(10)},
            "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
        assert_eq!(
            cells("ConfigMap", &config_map, now()),
            vec![json!("cfg"), json!(3), json!("10s")]
        );

        let secret = json!({"metadata": {"name": "tls"}, "type": "kubernetes.io/tls",
            "data": {"tls.crt": "", "tls.key": ""}});
        assert_eq!(
            cells("Secret", &secret, now()),
            vec![
                json!("tls"),
                json!("kubernetes.io/tls"),
                json!(2),
                json!("<unknown>")
            ]
        );
        let opaque = json!({"metadata": {"name": "pw"}, "data": {"a": ""}, "stringData": {"a": "x", "b": "y"}});
        assert_eq!(
            cells("Secret", &opaque, now())[1..3],
            [json!("Opaque"), json!(2)]
        );

        let account = json!({"metadata": {"name": "default"}, "secrets": [{"name": "token"}]});
        assert_eq!(cells("ServiceAccount", &account, now())[1], 1);
    }

    #[test]
    fn endpoints_list_three_addresses_then_count_the_rest() {
        let endpoints = json!({
            "metadata": {"name": "web"},
            "subsets": [{
                "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
                "ports": [{"port": 80}, {"port": 443}]
            }]
        });
        assert_eq!(
            cells("Endpoints", &endpoints, now())[1],
            "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more..."
        );
        let headless = json!({"subsets": [{"addresses": [{"ip": "fd00::1"}, {"ip": "10.0.0.3"}]}]});
        assert_eq!(format_endpoints(&headless), "fd00::1,10.0.0.3");
        let ipv6 =
            json!({"subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 53}]}]});
        assert_eq!(format_endpoints(&ipv6), "[fd00::1]:53");
        assert_eq!(format_endpoints(&json!({"subsets": []})), "<none>");
        let not_ready = json!({"subsets": [{"notReadyAddresses": [{"ip": "10.0.0.9"}], "ports": [{"port": 80}]}]});
        assert_eq!(format_endpoints(&not_ready), "");
    }

    #[test]
    fn endpoint_slice_lists_ports_and_addresses() {
        let slice = json!({
            "metadata": {"name": "web-abcde", "creationTimestamp": ago(60)},
            "addressType": "IPv4",
            "ports": [{"port": 80, "name": "http"}, {"name": "metrics"}, {}, {"port": 9000}],
            "endpoints": [
                {"addresses": ["10.0.0.1"]},
                {"addresses": ["10.0.0.2", "10.0.0.3"]},
                {"addresses": ["10.0.0.4"]}
            ]
        });
        assert_eq!(
            cells("EndpointSlice", &slice, now()),
            strings(&[
                "web-abcde",
                "IPv4",
                "80,metrics,* + 1 more...",
                "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...",
                "60s",
            ])
        );
        let empty = json!({"metadata": {"name": "e"}, "addressType": "IPv6"});
        assert_eq!(
            cells("EndpointSlice", &empty, now())[2..4],
            strings(&["<unset>", "<unset>"])
        );
    }

    #[test]
    fn core_event_prints_last_seen_object_and_trimmed_message() {
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "web-1.17c", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{web}"},
            "type": "Normal",
            "reason": "Pulled",
            "message": "  Successfully pulled image \"nginx\"\n",
            "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": ago(600),
            "lastTimestamp": ago(30),
            "count": 3
        });
        assert_eq!(
            cells("Event", &event, now()),
            vec![
                json!("30s"),
                json!("Normal"),
                json!("Pulled"),
                json!("pod/web-1"),
                json!("spec.containers{web}"),
                json!("kubelet, node-1"),
                json!("Successfully pulled image \"nginx\""),
                json!("10m"),
                json!(3),
                json!("web-1.17c"),
            ]
        );
        let names: Vec<(&str, i32)> = columns("Event")
            .iter()
            .map(|c| (c.name, c.priority))
            .collect();
        assert_eq!(
            names,
            [
                ("Last Seen", 0),
                ("Type", 0),
                ("Reason", 0),
                ("Object", 0),
                ("Subobject", 1),
                ("Source", 1),
                ("Message", 0),
                ("First Seen", 1),
                ("Count", 1),
                ("Name", 1),
            ]
        );
    }

    #[test]
    fn event_without_legacy_timestamps_uses_event_time_series_and_reporting_controller() {
        let event = json!({
            "metadata": {"name": "e"},
            "involvedObject": {"kind": "Node"},
            "eventTime": "2024-05-01T11:59:00.123456Z",
            "reportingComponent": "berth-scheduler",
            "reportingInstance": "cp-1"
        });
        let row = cells("Event", &event, now());
        // 59.88 seconds truncate to 59, as Go's int(d.Seconds()) does.
        assert_eq!(row[0], "59s");
        assert_eq!(row[3], "node");
        assert_eq!(row[5], "berth-scheduler, cp-1");
        assert_eq!(row[7], "59s");
        assert_eq!(row[8], 1);

        let mut repeated = event.clone();
        repeated["series"] = json!({"count": 7, "lastObservedTime": ago(5)});
        let row = cells("Event", &repeated, now());
        assert_eq!(row[0], "5s");
        assert_eq!(row[8], 7);
    }

    #[test]
    fn events_api_event_prints_like_a_core_event() {
        let event = json!({
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": "web.1"},
            "regarding": {"kind": "Deployment", "name": "web"},
            "note": "Scaled up replica set web-5d9c to 3",
            "reason": "ScalingReplicaSet",
            "type": "Normal",
            "reportingController": "deployment-controller",
            "deprecatedFirstTimestamp": ago(120),
            "deprecatedLastTimestamp": ago(60),
            "deprecatedCount": 2
        });
        let row = cells("Event", &event, now());
        assert_eq!(
            row[0..4],
            strings(&["60s", "Normal", "ScalingReplicaSet", "deployment/web"])
        );
        assert_eq!(row[5], "deployment-controller");
        assert_eq!(row[6], "Scaled up replica set web-5d9c to 3");
        assert_eq!(row[7..9], [json!("2m"), json!(2)]);
    }

    #[test]
    fn lease_shows_holder_identity() {
        let lease = json!({"metadata": {"name": "kube-scheduler", "creationTimestamp": ago(7200)},
            "spec": {"holderIdentity": "cp-1_3f2a"}});
        assert_eq!(
            cells("Lease", &lease, now()),
            strings(&["kube-scheduler", "cp-1_3f2a", "120m"])
        );
        let free = json!({"metadata": {"name": "free"}, "spec": {}});
        assert_eq!(cells("Lease", &free, now())[1], "");
    }

    #[test]
    fn workload_controllers_print_their_kubernetes_rows() {
        let template = json!({"spec": {"containers": [{"name": "db", "image": "postgres:16"}]}});
        let stateful_set = json!({"metadata": {"name": "db"}, "spec": {"replicas": 3, "template": template},
            "status": {"readyReplicas": 3}});
        assert_eq!(
            cells("StatefulSet", &stateful_set, now()),
            strings(&["db", "3/3", "<unknown>", "db", "postgres:16"])
        );

        let daemon_set = json!({"metadata": {"name": "agent"}, "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": []}}},
            "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1,
                "updatedNumberScheduled": 2, "numberAvailable": 1}});
        assert_eq!(
            cells("DaemonSet", &daemon_set, now()),
            vec![
                json!("agent"),
                json!(2),
                json!(2),
                json!(1),
                json!(2),
                json!(1),
                json!("kubernetes.io/os=linux"),
                json!("<unknown>"),
                json!(""),
                json!(""),
                json!("app=agent"),
            ]
        );

        let controller = json!({"metadata": {"name": "rc"}, "spec": {"selector": {"app": "rc"}}});
        assert_eq!(
            cells("ReplicationController", &controller, now()),
            vec![
                json!("rc"),
                json!(1),
                json!(0),
                json!(0),
                json!("<unknown>"),
                json!(""),
                json!(""),
                json!("app=rc")
            ]
        );
    }

    #[test]
    fn job_and_cron_job_rows() {
        let job = json!({
            "metadata": {"name": "pi"},
            "spec": {"completions": 3, "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}},
                "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}}},
            "status": {"succeeded": 3, "startTime": ago(300), "completionTime": ago(100),
                "conditions": [{"type": "Complete", "status": "True"}]}
        });
        assert_eq!(
            cells("Job", &job, now()),
            strings(&[
                "pi",
                "Complete",
                "3/3",
                "3m20s",
                "<unknown>",
                "pi",
                "perl",
                "batch.kubernetes.io/controller-uid=u1"
            ])
        );
        let parallel = json!({"metadata": {"name": "p"}, "spec": {"parallelism": 4}, "status": {"startTime": ago(30)}});
        assert_eq!(
            cells("Job", &parallel, now())[1..4],
            strings(&["Running", "0/1 of 4", "30s"])
        );

        let cron_job = json!({
            "metadata": {"name": "nightly"},
            "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}},
            "status": {"active": [{"name": "nightly-1"}], "lastScheduleTime": ago(3600)}
        });
        assert_eq!(
            cells("CronJob", &cron_job, now()),
            vec![
                json!("nightly"),
                json!("0 3 * * *"),
                json!("<none>"),
                json!("False"),
                json!(1),
                json!("60m"),
                json!("<unknown>"),
                json!(""),
                json!(""),
                json!("<none>")
            ]
        );
    }

    #[test]
    fn role_bindings_show_role_and_subjects() {
        let binding = json!({
            "metadata": {"name": "admins"},
            "roleRef": {"kind": "ClusterRole", "name": "admin", "apiGroup": "rbac.authorization.k8s.io"},
            "subjects": [
                {"kind": "User", "name": "alice"},
                {"kind": "Group", "name": "ops"},
                {"kind": "ServiceAccount", "name": "ci", "namespace": "tools"},
                {"kind": "User", "name": "bob"}
            ]
        });
        assert_eq!(
            cells("ClusterRoleBinding", &binding, now()),
            strings(&[
                "admins",
                "ClusterRole/admin",
                "<unknown>",
                "alice, bob",
                "ops",
                "tools/ci"
            ])
        );
    }

    #[test]
    fn unknown_kinds_get_the_default_table_with_creation_time() {
        let cols = columns("ClusterRole");
        assert_eq!(cols.len(), 2);
        assert_eq!(
            (cols[0].name, cols[0].kind, cols[0].format),
            ("Name", "string", "name")
        );
        assert_eq!(
            (cols[1].name, cols[1].kind, cols[1].format),
            ("Created At", "date", "")
        );
        let role = json!({"metadata": {"name": "view", "creationTimestamp": "2024-04-30T10:11:12.5+02:00"}});
        assert_eq!(
            cells("ClusterRole", &role, now()),
            strings(&["view", "2024-04-30T08:11:12Z"])
        );
        let undated = json!({"metadata": {"name": "x"}});
        assert_eq!(
            cells("ClusterRole", &undated, now())[1],
            "0001-01-01T00:00:00Z"
        );
    }

    const KINDS: &[&str] = &[
        "Pod",
        "Deployment",
        "ReplicaSet",
        "ReplicationController",
        "StatefulSet",
        "DaemonSet",
        "Job",
        "CronJob",
        "Service",
        "Node",
        "Namespace",
        "ConfigMap",
        "Secret",
        "ServiceAccount",
        "Endpoints",
        "EndpointSlice",
        "Event",
        "Lease",
        "RoleBinding",
        "ClusterRoleBinding",
        "Widget",
    ];

    #[test]
    fn every_kind_has_one_cell_per_column_even_for_malformed_objects() {
        let objects = [
            running_pod(),
            deployment(),
            node(),
            json!({}),
            json!(null),
            json!([1, 2]),
            json!("pod"),
            json!({"metadata": 7, "spec": [], "status": "x"}),
            json!({"spec": {"containers": "x", "ports": [null, 5], "selector": {"matchLabels": {"a": 1}}},
                "status": {"conditions": [null], "containerStatuses": [{"state": []}],
                    "initContainerStatuses": [5], "loadBalancer": {"ingress": "x"}},
                "subsets": [{"addresses": [null], "ports": "80"}], "endpoints": [{"addresses": [5]}],
                "series": {}, "subjects": [7]}),
        ];
        for kind in KINDS {
            let expected = columns(kind).len();
            for object in &objects {
                assert_eq!(
                    cells(kind, object, now()).len(),
                    expected,
                    "{kind}: {object}"
                );
            }
        }
    }

    #[test]
    fn every_kind_starts_with_a_name_column_and_ends_wide() {
        for kind in KINDS {
            let cols = columns(kind);
            assert!(cols.iter().any(|column| column.format == "name"), "{kind}");
            let first_wide = cols.iter().position(|column| column.priority > 0);
            if let Some(first_wide) = first_wide.filter(|_| *kind != "Event") {
                assert!(cols[first_wide..].iter().all(|c| c.priority == 1), "{kind}");
            }
        }
    }

    #[test]
    fn absurd_restart_counts_saturate_instead_of_overflowing() {
        let mut pod = running_pod();
        pod["status"]["containerStatuses"] = json!([
            {"name": "a", "restartCount": i64::MAX},
            {"name": "b", "restartCount": i64::MAX}
        ]);
        assert_eq!(cells("Pod", &pod, now())[3], i64::MAX.to_string());
    }

    #[test]
    fn custom_resources_survive_malformed_printer_columns_and_objects() {
        let printer_columns =
            json!([5, {"jsonPath": 3}, {"name": "X", "type": "string", "jsonPath": ".a["}]);
        let definitions = custom_resource_columns(&printer_columns);
        for object in [json!(null), json!({"a": [1]}), json!("text")] {
            let row = custom_resource_cells(&printer_columns, &object, now());
            assert_eq!(row.len(), definitions.len());
            assert_eq!(row[3], Value::Null);
        }
        assert_eq!(custom_resource_columns(&json!("nonsense")).len(), 2);
    }

    #[test]
    fn custom_resource_without_printer_columns_shows_name_and_age() {
        let definitions = custom_resource_columns(&Value::Null);
        assert_eq!(definitions.len(), 2);
        assert_eq!(definitions[1]["name"], "Age");
        assert_eq!(definitions[1]["type"], "date");
        let widget = json!({"metadata": {"name": "w1", "creationTimestamp": ago(90)}});
        assert_eq!(
            custom_resource_cells(&json!([]), &widget, now()),
            strings(&["w1", "90s"])
        );
    }

    #[test]
    fn custom_resource_printer_columns_format_each_type() {
        let printer_columns = json!([
            {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
            {"name": "Ratio", "type": "number", "jsonPath": ".status.ratio", "priority": 1},
            {"name": "Ready", "type": "boolean", "jsonPath": ".status.ready"},
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "description": "The phase"},
            {"name": "First Port", "type": "string", "jsonPath": ".spec.ports[0].port"},
            {"name": "Images", "type": "string", "jsonPath": ".spec.images"},
            {"name": "App", "type": "string", "jsonPath": ".metadata.labels['app.kubernetes.io/name']"},
            {"name": "Scale", "type": "string", "jsonPath": ".spec.scale"},
            {"name": "Missing", "type": "string", "jsonPath": ".status.nothing"},
            {"name": "Nil", "type": "string", "jsonPath": ".status.nil"},
            {"name": "Seen", "type": "date", "jsonPath": ".status.lastSeen"},
            {"name": "Bad Date", "type": "date", "jsonPath": ".status.phase"},
            {"name": "Filter", "type": "string", "jsonPath": ".items[?(@.a)]"}
        ]);
        let definitions = custom_resource_columns(&printer_columns);
        assert_eq!(definitions.len(), 14);
        assert_eq!(
            definitions[1],
            json!({"name": "Replicas", "type": "integer", "format": "",
                "description": "Custom resource definition column (in JSONPath format): .spec.replicas",
                "priority": 0})
        );
        assert_eq!(definitions[2]["priority"], 1);
        assert_eq!(definitions[4]["description"], "The phase");

        let widget = json!({
            "metadata": {"name": "w1", "labels": {"app.kubernetes.io/name": "shop"}},
            "spec": {"replicas": 3.0, "ports": [{"port": 8080}], "images": ["a", "b"], "scale": 1e21},
            "status": {"ratio": 2, "ready": true, "phase": "Green", "nil": null, "lastSeen": ago(42)}
        });
        assert_eq!(
            custom_resource_cells(&printer_columns, &widget, now()),
            vec![
                json!("w1"),
                json!(3),
                json!(2.0),
                json!(true),
                json!("Green"),
                json!("8080"),
                json!("[\"a\",\"b\"]"),
                json!("shop"),
                json!("1e+21"),
                Value::Null,
                json!("<no value>"),
                json!("42s"),
                json!("<invalid>"),
                Value::Null,
            ]
        );
    }

    #[test]
    fn json_paths_parse_the_printer_column_subset() {
        use PathStep::{Field, Index, Wildcard};
        assert_eq!(
            parse_json_path(".spec.containers[*].ports[-1]['name']"),
            Some(vec![
                Field("spec".into()),
                Field("containers".into()),
                Wildcard,
                Field("ports".into()),
                Index(-1),
                Field("name".into()),
            ])
        );
        assert_eq!(
            parse_json_path(r".metadata.annotations.example\.com/owner"),
            Some(vec![
                Field("metadata".into()),
                Field("annotations".into()),
                Field("example.com/owner".into())
            ])
        );
        assert_eq!(parse_json_path("."), Some(vec![]));
        assert_eq!(parse_json_path("..name"), None);
        assert_eq!(parse_json_path("spec"), None);
        assert_eq!(parse_json_path(".a[1:2]"), None);
        let object = json!({"a": [{"b": 1}, {"b": 2}]});
        let steps = parse_json_path(".a[*].b").unwrap();
        assert_eq!(first_match(&object, &steps), Some(&json!(1)));
        assert_eq!(
            first_match(&object, &parse_json_path(".a[-1].b").unwrap()),
            Some(&json!(2))
        );
        assert_eq!(
            first_match(&object, &parse_json_path(".a[5].b").unwrap()),
            None
        );
    }

    #[test]
    fn floats_print_like_go() {
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(100.0), "100");
        assert_eq!(go_float(1e20), "100000000000000000000");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(-2.5e-7), "-2.5e-07");
    }
}
