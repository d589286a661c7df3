//! Integration tests against the mock hub (one test binary keeps link time
//! down on small machines).

mod access;
mod cached;
mod download;
mod faults;
mod fixtures;
mod hf_client;
mod mock_bin;
mod mock_wire;
mod revisions;
