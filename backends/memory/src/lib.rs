//! banset-memory
