//! Optimistic-concurrency access to one key of a ConfigMap (in progress).
