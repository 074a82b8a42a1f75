//! When a failed try may run again.
