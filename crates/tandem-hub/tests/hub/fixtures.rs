//! Fixture repos, a client wired to a mock hub, and event collection.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tandem_hub::mock::{MockHub, MockRepo};
use tandem_hub::{DownloadEvent, DownloadOptions, HubClient, HubClientBuilder, HubEnv};
use tempfile::TempDir;

pub const SINGLE: &str = "tiny/llama";
pub const SHARDED: &str = "tiny/sharded";
pub const PICKLE_ONLY: &str = "tiny/pickle";
pub const GATED: &str = "tiny/gated";
pub const GRANTED_TOKEN: &str = "hf_granted";
pub const WEIGHTS: &str = "model.safetensors";
pub const WEIGHTS_LEN: usize = 1 << 20;
pub const SHARDS: [&str; 3] = [
    "model-00001-of-00003.safetensors",
    "model-00002-of-00003.safetensors",
    "model-00003-of-00003.safetensors",
];

/// Bytes that differ everywhere, so a flipped or shifted byte changes the hash.
pub fn pseudo_random(len: usize, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        })
        .collect()
}

fn with_configs(repo: MockRepo) -> MockRepo {
    repo.file(
        "config.json",
        br#"{"model_type":"llama","hidden_size":64}"#.to_vec(),
    )
    .file(
        "tokenizer.json",
        br#"{"version":"1.0","model":{"type":"BPE"}}"#.to_vec(),
    )
    .file("tokenizer_config.json", br#"{"eos_token":"</s>"}"#.to_vec())
    .file("README.md", b"# tiny\n".to_vec())
    .file(".gitattributes", b"*.safetensors filter=lfs\n".to_vec())
}

pub fn single_repo() -> MockRepo {
    with_configs(MockRepo::new(SINGLE))
        .file(
            "generation_config.json",
            br#"{"max_new_tokens":8}"#.to_vec(),
        )
        .file("chat_template.jinja", b"{{ messages }}".to_vec())
        .file(WEIGHTS, pseudo_random(WEIGHTS_LEN, 1))
        .file("pytorch_model.bin", pseudo_random(4096, 2))
}

pub fn sharded_repo() -> MockRepo {
    let index = serde_json::json!({
        "metadata": {"total_size": 3 * 200_000},
        "weight_map": {
            "embed.weight": SHARDS[0],
            "layers.0.weight": SHARDS[1],
            "layers.1.weight": SHARDS[1],
            "lm_head.weight": SHARDS[2],
        }
    });
    let mut repo = with_configs(MockRepo::new(SHARDED))
        .file(
            "model.safetensors.index.json",
            index.to_string().into_bytes(),
        )
        // Not in the index: must not be fetched.
        .file("model-extra.safetensors", pseudo_random(1000, 9));
    for (i, shard) in SHARDS.iter().enumerate() {
        repo = repo.file(*shard, pseudo_random(200_000, 10 + i as u32));
    }
    repo
}

pub fn pickle_repo() -> MockRepo {
    with_configs(MockRepo::new(PICKLE_ONLY)).file("pytorch_model.bin", pseudo_random(4096, 3))
}

pub fn gated_repo() -> MockRepo {
    with_configs(MockRepo::new(GATED))
        .file(WEIGHTS, pseudo_random(50_000, 4))
        .gated(Some(GRANTED_TOKEN))
}

pub fn all_repos() -> Vec<MockRepo> {
    vec![single_repo(), sharded_repo(), pickle_repo(), gated_repo()]
}

/// A mock hub with every fixture repo, and an empty home folder.
pub struct Setup {
    pub hub: MockHub,
    pub home: TempDir,
}

impl Setup {
    pub fn new() -> Self {
        Setup {
            hub: MockHub::start(all_repos()).expect("mock hub starts"),
            home: tempfile::tempdir().unwrap(),
        }
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.home.path().join(".cache/huggingface/hub")
    }

    /// Environment as if nothing were set but HOME, plus the hub endpoint.
    pub fn builder(&self) -> HubClientBuilder {
        builder_for(&self.hub.url(), self.home.path())
    }

    pub fn client(&self) -> HubClient {
        self.builder().build().unwrap()
    }

    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        self.cache_dir()
            .join(format!("models--{}", repo.replace('/', "--")))
    }
}

pub fn builder_for(endpoint: &str, home: &Path) -> HubClientBuilder {
    HubClientBuilder::with_env(HubEnv::resolve(|_| None, Some(home)))
        .endpoint(endpoint)
        .retry_delay(Duration::from_millis(10))
        .progress_interval(Duration::ZERO)
}

pub type Events = Arc<Mutex<Vec<DownloadEvent>>>;

/// Options whose events land in the returned list.
pub fn collecting() -> (DownloadOptions, Events) {
    let events: Events = Arc::default();
    let sink = events.clone();
    let options = DownloadOptions::new().on_event(move |event| sink.lock().unwrap().push(event));
    (options, events)
}

pub fn taken(events: &Events) -> Vec<DownloadEvent> {
    std::mem::take(&mut *events.lock().unwrap())
}
