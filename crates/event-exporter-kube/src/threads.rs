//! The Slack thread store backed by a ConfigMap (in progress).
