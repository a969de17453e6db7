//! The /metrics, /healthz and /readyz HTTP server (in progress).
