//! (in progress: owned by the main session)
