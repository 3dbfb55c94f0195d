//! Paused-time tests of the control plane with a fake spawner.
