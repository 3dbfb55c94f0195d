//! The OpenAPI description of the admin API, served at `/api/admin/cluster/openapi.json`.

/// The document (OpenAPI 3.0, JSON).
pub const DOCUMENT: &str = include_str!("openapi.json");
