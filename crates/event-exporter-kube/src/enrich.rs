//! Involved-object enrichment (in progress).
