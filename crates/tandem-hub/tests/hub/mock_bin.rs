//! The `mock-hub` binary, as a desktop end-to-end test would run it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use tandem_hub::DownloadOptions;

use crate::fixtures::*;

/// Kills the server even when an assertion fails.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn mock_hub_binary_serves_a_fixture_folder() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("fixtures");
    let repo = single_repo();
    for name in repo.file_names() {
        let path = root.join(SINGLE).join(&name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, repo.data(&name).unwrap()).unwrap();
    }

    let child = Command::new(env!("CARGO_BIN_EXE_mock-hub"))
        .args(["--root", root.to_str().unwrap(), "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mock-hub starts");
    let mut server = KillOnDrop(child);
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("MOCK_HUB_URL=")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();

    let snapshot = builder_for(&url, home.path())
        .build()
        .unwrap()
        .download_model(SINGLE, DownloadOptions::new())
        .await
        .unwrap();
    assert_eq!(snapshot.commit, repo.commit());
    assert_eq!(
        std::fs::read(snapshot.path(WEIGHTS)).unwrap(),
        repo.data(WEIGHTS).unwrap()
    );
}
