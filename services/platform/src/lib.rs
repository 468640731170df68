//! The platform every Jinfu service is built on: layered configuration with secrets, tracing
//! with an optional OpenTelemetry exporter, a PostgreSQL pool with per-service migrations, Kafka
//! helpers (trace context in headers, dead-letter topics, explicit topic creation), a gRPC server
//! bootstrap (health, reflection, graceful shutdown), caller authentication, and the signature
//! schemes banks and issuers sign with.

pub mod auth;
pub mod cli;
pub mod clock;
pub mod codes;
pub mod config;
pub mod consumer;
pub mod db;
pub mod events;
pub mod fields;
pub mod grpc;
pub mod kafka;
pub mod metrics;
pub mod outbox;
pub mod readiness;
pub mod retry;
pub mod shutdown;
pub mod signing;
pub mod supervisor;
pub mod telemetry;
pub mod topics;
