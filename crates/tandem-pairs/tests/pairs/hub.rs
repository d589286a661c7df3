//! The doctor and model-argument resolution against a mock hub serving the
//! fixture folders as repos.

use tandem_hub::mock::{MockHub, MockRepo};
use tandem_hub::{BlockingHubClient, DownloadOptions, HubClientBuilder, HubEnv, HubError};
use tandem_pairs::{
    doctor_models, fetch_model_configs, resolve_model_dir, DoctorOptions, PairsError,
};
use tempfile::TempDir;

use crate::support::fixture;

const DRAFT: &str = "tiny/llama-gqa";
const TARGET: &str = "tiny/qwen2-bias";

struct Setup {
    hub: MockHub,
    client: BlockingHubClient,
    _cache: TempDir,
}

fn setup() -> Setup {
    let hub = MockHub::start([
        MockRepo::from_dir(DRAFT, &fixture("llama-gqa")).unwrap(),
        MockRepo::from_dir(TARGET, &fixture("qwen2-bias")).unwrap(),
    ])
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let env = HubEnv::resolve(|_| None, Some(cache.path()));
    let client = HubClientBuilder::with_env(env)
        .endpoint(hub.url())
        .cache_dir(cache.path().join("hub"))
        .anonymous()
        .build()
        .unwrap();
    Setup {
        hub,
        client: BlockingHubClient::new(client).unwrap(),
        _cache: cache,
    }
}

#[test]
fn doctor_on_repo_ids_fetches_configs_but_no_weights() {
    let setup = setup();
    let verdict = doctor_models(&setup.client, DRAFT, TARGET, &DoctorOptions::default()).unwrap();
    assert!(verdict.ok, "{:?}", verdict.problems);
    assert!(verdict.notes.iter().any(|n| n.contains("same vocabulary")));
    assert!(setup.hub.file_transfers("model.safetensors").is_empty());
    assert!(!setup.hub.file_transfers("tokenizer.json").is_empty());
}

#[test]
fn doctor_mixes_a_local_folder_and_a_repo() {
    let setup = setup();
    let draft = fixture("llama-gqa");
    let verdict = doctor_models(
        &setup.client,
        draft.to_str().unwrap(),
        TARGET,
        &DoctorOptions::default(),
    )
    .unwrap();
    assert!(verdict.ok, "{:?}", verdict.problems);
}

#[test]
fn model_arguments_resolve_to_folders() {
    let setup = setup();
    let dir = resolve_model_dir(&setup.client, DRAFT, DownloadOptions::new()).unwrap();
    assert!(dir.join("model.safetensors").is_file());
    assert!(dir.starts_with(setup.client.cache_dir()));

    let configs = fetch_model_configs(&setup.client, TARGET, DownloadOptions::new()).unwrap();
    assert!(configs.join("config.json").is_file());
    assert!(!configs.join("model.safetensors").exists());

    let local = fixture("qwen2-bias");
    let same = resolve_model_dir(
        &setup.client,
        local.to_str().unwrap(),
        DownloadOptions::new(),
    );
    assert_eq!(same.unwrap(), local);

    let missing = resolve_model_dir(&setup.client, "./no/such/folder", DownloadOptions::new());
    assert!(matches!(missing, Err(PairsError::MissingFolder { .. })));
}

#[test]
fn unknown_repos_are_hub_errors() {
    let setup = setup();
    let err =
        doctor_models(&setup.client, DRAFT, "tiny/nope", &DoctorOptions::default()).unwrap_err();
    match err {
        PairsError::Hub { repo, source } => {
            assert_eq!(repo, "tiny/nope");
            assert!(matches!(*source, HubError::RepoNotFound { .. }), "{source}");
        }
        other => panic!("unexpected {other}"),
    }
}
