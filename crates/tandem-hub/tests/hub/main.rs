//! Integration tests against the mock hub (one test binary keeps link time
//! down on small machines).

mod access;
mod cached;
mod download;
mod faults;
mod fixtures;
mod mock_bin;
