//! `tandem pull`, `pairs`, `doctor` and `rm` run as processes against a mock
//! hub that serves the fixture models, with a temp HF_HOME.

mod doctor;
mod pairs_and_rm;
mod pull;
mod support;
