//! A mock hub serving fixture folders, and `tandem` run against it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tandem_hub::mock::{MockHub, MockRepo};
use tempfile::TempDir;

/// Hub variables a developer's shell may set; cleared so tests see only ours.
const HUB_VARIABLES: [&str; 8] = [
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_TOKEN_PATH",
    "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE",
    "HF_HUB_OFFLINE",
    "XDG_CACHE_HOME",
    "HF_ENDPOINT",
];

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

/// A fixture folder served as repo `id`.
pub fn fixture_repo(id: &str, fixture_name: &str) -> MockRepo {
    MockRepo::from_dir(id, &fixture(fixture_name)).unwrap()
}

/// A mock hub and an empty HF_HOME.
pub struct Env {
    pub hub: MockHub,
    pub home: TempDir,
}

impl Env {
    pub fn new(repos: impl IntoIterator<Item = MockRepo>) -> Env {
        Env {
            hub: MockHub::start(repos).unwrap(),
            home: tempfile::tempdir().unwrap(),
        }
    }

    pub fn hub_cache(&self) -> PathBuf {
        self.home.path().join("hub")
    }

    /// `tandem ARGS` with HF_ENDPOINT and HF_HOME pointing at this setup.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tandem"));
        for name in HUB_VARIABLES {
            command.env_remove(name);
        }
        command
            .args(args)
            .env("HF_ENDPOINT", self.hub.url())
            .env("HF_HOME", self.home.path());
        command
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().unwrap())
    }

    /// Bytes of file contents the hub has sent so far.
    pub fn bytes_served(&self) -> u64 {
        self.hub
            .requests()
            .iter()
            .filter(|r| r.served_file_bytes())
            .map(|r| r.body_bytes)
            .sum()
    }
}

/// A finished `tandem` process.
pub struct Run {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Panics with both streams unless the command succeeded.
    pub fn ok(self) -> Run {
        assert!(
            self.success,
            "tandem failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn failed(self) -> Run {
        assert!(
            !self.success,
            "tandem succeeded\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}
