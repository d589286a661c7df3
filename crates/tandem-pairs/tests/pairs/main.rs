//! Integration tests of tandem-pairs: the doctor on fixture models (and
//! edited copies of them), and the hub-facing functions against a mock hub.

mod doctor;
mod hub;
mod support;
