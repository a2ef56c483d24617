//! The authentication seam: every request passes through an [`Authenticator`]
//! before routing. Today the only implementation admits everyone as an anonymous
//! cluster admin (the server listens on 127.0.0.1 in plain HTTP); TLS client
//! certificates and tokens will plug in here without touching the handlers.

use axum::http::request::Parts;

use crate::error::ApiError;

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

pub trait Authenticator: Send + Sync {
    fn authenticate(&self, request: &Parts) -> Result<User, ApiError>;
}

/// Admits every request as `system:anonymous` in `system:masters`.
pub struct AllowAll;

impl Authenticator for AllowAll {
    fn authenticate(&self, _: &Parts) -> Result<User, ApiError> {
        Ok(User {
            name: "system:anonymous".into(),
            groups: vec!["system:masters".into()],
        })
    }
}
