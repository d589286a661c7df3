//! Integration tests of tandem-pairs: the doctor on fixture models (and
//! edited copies of them), the catalog against its models' published configs,
//! and the hub-facing functions against a mock hub.

mod catalog;
mod doctor;
mod hub;
mod support;
