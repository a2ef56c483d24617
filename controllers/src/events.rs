//! Recording core/v1 Events about objects, the way Kubernetes' legacy event
//! recorder does (kubectl `describe` reads these through the core API): one
//! Event per (object, type, reason, message), created once and then counted up
//! with a patch on repeats. It never fails the caller: a lost event is logged.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// (object uid, type, reason, message): what makes two events the same one.
type EventKey = (String, EventType, String, String);
/// (event namespace, event name, count so far).
type Recorded = (String, String, i32);

/// Sends Events on behalf of one component ("scheduler", "replicaset-controller").
pub struct Recorder {
    client: Client,
    component: String,
    seen: Mutex<HashMap<EventKey, Recorded>>,
}

/// A reference to an object for `involvedObject`.
pub fn reference<K: Resource<DynamicType = ()>>(object: &K) -> ObjectReference {
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: object.meta().name.clone(),
        namespace: object.meta().namespace.clone(),
        uid: object.meta().uid.clone(),
        resource_version: object.meta().resource_version.clone(),
        field_path: None,
    }
}

impl Recorder {
    pub fn new(client: Client, component: &str) -> Self {
        Self {
            client,
            component: component.to_string(),
            seen: Mutex::new(HashMap::new()),
        }
    }

    pub async fn publish<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        event_type: EventType,
        reason: &str,
        message: &str,
    ) {
        if let Err(error) = self
            .try_publish(reference(object), event_type, reason, message)
            .await
        {
            tracing::warn!(%error, reason, name = %object.name_any(), "could not record event");
        }
    }

    async fn try_publish(
        &self,
        involved: ObjectReference,
        event_type: EventType,
        reason: &str,
        message: &str,
    ) -> Result<(), kube::Error> {
        let now = jiff::Timestamp::now();
        let namespace = involved
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let key = (
            involved.uid.clone().unwrap_or_default(),
            event_type,
            reason.to_string(),
            message.to_string(),
        );
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let repeat = self
            .seen
            .lock()
            .ok()
            .and_then(|seen| seen.get(&key).cloned());
        if let Some((ns, name, count)) = repeat {
            let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
            let patch = serde_json::json!({"count": count + 1, "lastTimestamp": Time(now)});
            if api
                .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await
                .is_ok()
            {
                if let Ok(mut seen) = self.seen.lock() {
                    seen.insert(key, (ns, name, count + 1));
                }
                return Ok(());
            }
        }
        let name = format!(
            "{}.{:x}",
            involved.name.clone().unwrap_or_default(),
            now.as_nanosecond()
        );
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            involved_object: involved,
            reason: Some(reason.to_string()),
            message: Some(message.to_string()),
            type_: Some(event_type.as_str().to_string()),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: None,
            }),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: Some(MicroTime(now)),
            count: Some(1),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.component.clone()),
            action: Some(reason.to_string()),
            ..Default::default()
        };
        api.create(&PostParams::default(), &event).await?;
        if let Ok(mut seen) = self.seen.lock() {
            // Bounded memory: forget everything once the table grows large.
            if seen.len() > 10_000 {
                seen.clear();
            }
            seen.insert(key, (namespace, name, 1));
        }
        Ok(())
    }
}
