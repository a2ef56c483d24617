//! The API server's errors and their one translation to a Kubernetes `Status`
//! (HTTP code, `reason`, `message`, `details`), with the texts kube-apiserver
//! uses so kubectl prints the same lines. Handlers return [`ApiError`]; only the
//! HTTP edge turns it into a response.

use serde_json::{Value, json};

use crate::store::StoreError;

/// Which object an error is about, for `Status.details` and the message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Subject {
    /// "deployments.apps", "pods" (resource plus group, as Kubernetes prints it).
    pub qualified_resource: String,
    pub kind: String,
    pub group: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    pub reason: String,
    pub message: String,
    pub field: String,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ApiError {
    #[error("{}", not_found_message(.0))]
    NotFound(Subject),
    #[error("{} \"{}\" already exists", .0.qualified_resource, .0.name)]
    AlreadyExists(Subject),
    #[error("Operation cannot be fulfilled on {} \"{}\": {}", .subject.qualified_resource, .subject.name, .message)]
    Conflict { subject: Subject, message: String },
    #[error("{}", invalid_message(.subject, .causes))]
    Invalid {
        subject: Subject,
        causes: Vec<Cause>,
    },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    RequestEntityTooLarge(String),
    /// The resourceVersion asked for is compacted: 410 Gone / Expired.
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Internal(String),
}

fn not_found_message(subject: &Subject) -> String {
    if subject.name.is_empty() {
        "the server could not find the requested resource".into()
    } else {
        format!(
            "{} \"{}\" not found",
            subject.qualified_resource, subject.name
        )
    }
}

fn invalid_message(subject: &Subject, causes: &[Cause]) -> String {
    let mut text = format!(
        "{}.{} \"{}\" is invalid: ",
        subject.kind, subject.group, subject.name
    );
    if subject.group.is_empty() {
        text = format!("{} \"{}\" is invalid: ", subject.kind, subject.name);
    }
    let parts: Vec<String> = causes
        .iter()
        .map(|c| {
            if c.field.is_empty() {
                c.message.clone()
            } else {
                format!("{}: {}", c.field, c.message)
            }
        })
        .collect();
    if parts.len() == 1 {
        text.push_str(&parts[0]);
    } else {
        text.push('[');
        text.push_str(&parts.join(", "));
        text.push(']');
    }
    text
}

impl ApiError {
    pub fn code(&self) -> u16 {
        match self {
            ApiError::NotFound(_) => 404,
            ApiError::AlreadyExists(_) | ApiError::Conflict { .. } => 409,
            ApiError::Invalid { .. } => 422,
            ApiError::BadRequest(_) => 400,
            ApiError::Forbidden(_) => 403,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::NotAcceptable(_) => 406,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::RequestEntityTooLarge(_) => 413,
            ApiError::Gone(_) => 410,
            ApiError::Timeout(_) => 504,
            ApiError::Internal(_) => 500,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound(_) => "NotFound",
            ApiError::AlreadyExists(_) => "AlreadyExists",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::Invalid { .. } => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::MethodNotAllowed(_) => "MethodNotAllowed",
            ApiError::NotAcceptable(_) => "NotAcceptable",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::RequestEntityTooLarge(_) => "RequestEntityTooLarge",
            ApiError::Gone(_) => "Expired",
            ApiError::Timeout(_) => "Timeout",
            ApiError::Internal(_) => "InternalError",
        }
    }

    /// The `Status` object kubectl and client-go decode.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        let subject = match self {
            ApiError::NotFound(s) | ApiError::AlreadyExists(s) => Some(s),
            ApiError::Conflict { subject, .. } | ApiError::Invalid { subject, .. } => Some(subject),
            _ => None,
        };
        if let Some(subject) = subject.filter(|s| !s.name.is_empty() || !s.kind.is_empty()) {
            let resource = subject
                .qualified_resource
                .split('.')
                .next()
                .unwrap_or_default();
            let mut details = json!({"name": subject.name, "kind": if matches!(self, ApiError::Invalid{..}) { subject.kind.clone() } else { resource.to_string() }});
            if !subject.group.is_empty() {
                details["group"] = json!(subject.group);
            }
            if let ApiError::Invalid { causes, .. } = self {
                details["causes"] = causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect();
            }
            status["details"] = details;
        }
        status
    }

    pub fn internal(error: impl std::fmt::Display) -> Self {
        ApiError::Internal(error.to_string())
    }
}

/// Store errors that reach a handler without a more specific meaning.
impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Compacted {
                requested,
                compacted,
            } => ApiError::Gone(format!(
                "too old resource version: {requested} ({compacted})"
            )),
            StoreError::FutureRevision { requested, .. } => ApiError::Timeout(format!(
                "Too large resource version: {requested}, current: unknown"
            )),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_status_reads_like_kube_apiserver() {
        let error = ApiError::NotFound(Subject {
            qualified_resource: "deployments.apps".into(),
            kind: "Deployment".into(),
            group: "apps".into(),
            name: "web".into(),
        });
        let status = error.to_status();
        assert_eq!(status["code"], 404);
        assert_eq!(status["reason"], "NotFound");
        assert_eq!(status["message"], "deployments.apps \"web\" not found");
        assert_eq!(status["details"]["kind"], "deployments");
    }

    #[test]
    fn invalid_status_lists_field_causes() {
        let error = ApiError::Invalid {
            subject: Subject {
                qualified_resource: "deployments.apps".into(),
                kind: "Deployment".into(),
                group: "apps".into(),
                name: "web".into(),
            },
            causes: vec![Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value".into(),
                field: "spec.template.spec.containers[0].image".into(),
            }],
        };
        let status = error.to_status();
        assert_eq!(status["code"], 422);
        assert_eq!(
            status["message"],
            "Deployment.apps \"web\" is invalid: spec.template.spec.containers[0].image: Required value"
        );
        assert_eq!(
            status["details"]["causes"][0]["field"],
            "spec.template.spec.containers[0].image"
        );
    }
}
