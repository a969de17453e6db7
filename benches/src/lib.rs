//! Shared fixtures loading for the benchmarks.
