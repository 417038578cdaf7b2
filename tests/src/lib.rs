//! banset-tests
