//! The built-in catalog against what its models publish (`catalog_facts.json`: each
//! model's config.json and generation_config.json as on the hub, and what its
//! tokenizer holds): the catalog's sizes agree with the configs, and the doctor,
//! given folders with those configs and tokenizers of the same shape, accepts every
//! pair.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{json, Value};
use tandem_model::ModelConfig;
use tandem_pairs::memory::kv_cache_bytes;
use tandem_pairs::{doctor, Catalog, DoctorOptions, Pair, Precision};

#[derive(Deserialize)]
struct FactsFile {
    models: BTreeMap<String, ModelFacts>,
}

#[derive(Deserialize)]
struct ModelFacts {
    config: Value,
    generation_config: Value,
    tokenizer: TokenizerFacts,
    /// The checkpoint stores the tied output head as a tensor as well.
    #[serde(default)]
    stored_tied_head: bool,
    /// Parameters of a multimodal checkpoint Tandem does not load (vision tower).
    #[serde(default)]
    vision_params: u64,
}

#[derive(Deserialize)]
struct TokenizerFacts {
    /// Token ids 0..tokens.
    tokens: u32,
    bos_token: Option<String>,
    eos_token: String,
    /// Which family's chat template the model has.
    chat_template: String,
    /// Special (added) tokens by id.
    special: BTreeMap<u32, String>,
}

fn facts() -> BTreeMap<String, ModelFacts> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pairs/catalog_facts.json");
    let file: FactsFile = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    file.models
}

/// A chat template per family: the same within a family, different across (Llama 3.1
/// and 3.2 differ a little, as the real ones do); Qwen3's has the thinking switch.
fn chat_template(family: &str) -> String {
    let thinking = if family == "qwen3" {
        "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}"
    } else {
        ""
    };
    format!(
        "{{# {family} #}}{{% for m in messages %}}[{{{{ m.role }}}}] {{{{ m.content }}}}\n{{% endfor %}}\
         {{% if add_generation_prompt %}}[assistant] {thinking}{{% endif %}}"
    )
}

/// A model folder with the published configs and a tokenizer of the same shape as
/// the real one (its token count and special tokens; the other tokens are made up, the
/// same for every model).
fn write_model(dir: &Path, facts: &ModelFacts) {
    std::fs::create_dir_all(dir).unwrap();
    let write = |name: &str, value: &Value| {
        std::fs::write(dir.join(name), serde_json::to_string(value).unwrap()).unwrap()
    };
    write("config.json", &facts.config);
    write("generation_config.json", &facts.generation_config);
    let t = &facts.tokenizer;
    let name = |id: u32| {
        t.special
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("t{id}"))
    };
    let vocab: serde_json::Map<String, Value> =
        (0..t.tokens).map(|id| (name(id), json!(id))).collect();
    let added: Vec<Value> = t
        .special
        .iter()
        .map(|(id, content)| {
            json!({"id": id, "content": content, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    write(
        "tokenizer.json",
        &json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
            "normalizer": null, "pre_tokenizer": null, "post_processor": null, "decoder": null,
            "model": {"type": "BPE", "dropout": null, "unk_token": null,
                      "continuing_subword_prefix": null, "end_of_word_suffix": null,
                      "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": vocab, "merges": []}
        }),
    );
    write(
        "tokenizer_config.json",
        &json!({
            "bos_token": t.bos_token, "eos_token": t.eos_token,
            "chat_template": chat_template(&t.chat_template)
        }),
    );
}

/// Folders for the catalog's models, written on first use.
struct Models {
    root: tempfile::TempDir,
    facts: BTreeMap<String, ModelFacts>,
    written: BTreeMap<String, PathBuf>,
}

impl Models {
    fn new() -> Models {
        Models {
            root: tempfile::tempdir().unwrap(),
            facts: facts(),
            written: BTreeMap::new(),
        }
    }

    fn dir(&mut self, repo: &str) -> PathBuf {
        if let Some(dir) = self.written.get(repo) {
            return dir.clone();
        }
        let facts = self
            .facts
            .get(repo)
            .unwrap_or_else(|| panic!("catalog_facts.json has no {repo}"));
        let dir = self.root.path().join(repo.replace('/', "--"));
        write_model(&dir, facts);
        self.written.insert(repo.to_string(), dir.clone());
        dir
    }
}

fn config_of(facts: &ModelFacts) -> ModelConfig {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), facts.config.to_string()).unwrap();
    std::fs::write(
        dir.path().join("generation_config.json"),
        facts.generation_config.to_string(),
    )
    .unwrap();
    ModelConfig::from_dir(dir.path()).unwrap()
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance * b.abs()
}

#[test]
fn catalog_sizes_agree_with_the_published_configs() {
    let catalog = Catalog::builtin();
    let facts = facts();
    let repos = catalog.model_repos();
    for repo in &repos {
        assert!(facts.contains_key(*repo), "catalog_facts.json lacks {repo}");
    }
    for repo in facts.keys() {
        assert!(
            repos.contains(&repo.as_str()),
            "{repo} is in catalog_facts.json but in no catalog pair"
        );
    }
    for repo in repos {
        let model = catalog.model(repo).unwrap();
        let facts = &facts[repo];
        let config = config_of(facts);
        // The config's decoder plus what is not loaded (a vision tower) is the
        // published count; norms are counted loosely, hence the small tolerance.
        let counted = config.parameter_count() as f64 + facts.vision_params as f64;
        assert!(
            close(counted, model.params as f64, 1e-3),
            "{repo}: the config counts {counted} parameters, the catalog says {}",
            model.params
        );
        // bf16: two bytes a stored parameter (and a little header).
        let head = (config.vocab_size * config.hidden_size) as f64;
        let stored = model.params as f64 + if facts.stored_tied_head { head } else { 0.0 };
        assert!(!facts.stored_tied_head || config.tie_word_embeddings);
        assert!(
            close(model.download_bytes as f64, 2.0 * stored, 1e-3),
            "{repo}: {} bytes for {stored} stored parameters",
            model.download_bytes
        );
        // The tokenizer fits the model's rows, or passes them only by special tokens.
        let t = &facts.tokenizer;
        let past: Vec<u32> = (config.vocab_size as u32..t.tokens).collect();
        assert!(
            past.iter().all(|id| t.special.contains_key(id)),
            "{repo}: tokens past vocab_size {}",
            config.vocab_size
        );
        // The end tokens are the tokenizer's.
        for id in &config.eos_token_ids {
            assert!(t.special.contains_key(id), "{repo}: EOS {id}");
        }
        assert!(
            t.special.values().any(|name| *name == t.eos_token),
            "{repo}"
        );
        // Gated exactly where the hub asks for a licence: Google's and Meta's.
        let gated = repo.starts_with("google/") || repo.starts_with("meta-llama/");
        assert_eq!(model.gated, gated, "{repo}");
        if repo.starts_with("google/") {
            assert_eq!(model.licence, "gemma", "{repo}");
        }
    }
}

#[test]
fn gemma3_configs_have_five_sliding_layers_to_one_full() {
    let facts = facts();
    for (repo, windows) in [
        ("google/gemma-3-270m-it", (18, 512)),
        ("google/gemma-3-1b-it", (26, 512)),
        ("google/gemma-3-4b-it", (34, 1024)),
        ("google/gemma-3-12b-it", (48, 1024)),
        ("google/gemma-3-27b-it", (62, 1024)),
    ] {
        let config = config_of(&facts[repo]);
        let (layers, window) = windows;
        assert_eq!(config.num_layers, layers, "{repo}");
        let sliding: Vec<usize> = (0..layers)
            .filter(|&i| config.layer_window(i) == Some(window))
            .collect();
        assert_eq!(sliding.len(), layers - layers / 6, "{repo}");
        assert!(sliding.iter().all(|i| (i + 1) % 6 != 0), "{repo}");
        // The estimate counts the sliding layers' small caches, as the engine holds them.
        let windows: Vec<Option<usize>> = (0..layers).map(|i| config.layer_window(i)).collect();
        let capacity = 8192.min(config.max_position_embeddings);
        assert_eq!(
            kv_cache_bytes(&config, capacity),
            tandem_model::cpu::attention::KvCache::bytes_for(
                &windows,
                capacity,
                config.num_kv_heads,
                config.head_dim
            ) as u64,
            "{repo}"
        );
    }
    // The multimodal checkpoints' text model: its vocabulary is padded past the
    // text-only models' 262 144 rows.
    assert_eq!(
        config_of(&facts["google/gemma-3-4b-it"]).vocab_size,
        262_208
    );
    assert_eq!(
        config_of(&facts["google/gemma-3-1b-it"]).vocab_size,
        262_144
    );
}

fn mentions(items: &[String], text: &str) -> bool {
    items.iter().any(|item| item.contains(text))
}

fn check_pair(models: &mut Models, pair: &Pair) -> tandem_pairs::Verdict {
    let (draft, target) = (models.dir(&pair.draft.repo), models.dir(&pair.target.repo));
    let options = DoctorOptions {
        precision: Precision::Int8,
        context_len: 4096,
    };
    doctor(&draft, &target, &options)
}

#[test]
fn the_doctor_accepts_every_catalog_pair() {
    let mut models = Models::new();
    let catalog = Catalog::builtin();
    for pair in catalog.pairs() {
        let verdict = check_pair(&mut models, pair);
        assert!(verdict.ok, "{}: {:?}", pair.id, verdict.problems);
        let expected_warnings = usize::from(pair.id == "llama3.2-1b-llama3.1-8b");
        assert_eq!(
            verdict.warnings.len(),
            expected_warnings,
            "{}: {:?}",
            pair.id,
            verdict.warnings
        );
        let speedup = verdict.speedup.unwrap();
        assert!(speedup.draft_share < 0.5, "{}: {speedup:?}", pair.id);
        assert!(speedup.low > 1.0, "{}: {speedup:?}", pair.id);
        let memory = &verdict.memory;
        let (draft, target) = (memory.draft.unwrap(), memory.target.unwrap());
        assert!(draft.total_bytes() < target.total_bytes(), "{}", pair.id);
        assert!(
            mentions(&verdict.notes, "same vocabulary"),
            "{}: {:?}",
            pair.id,
            verdict.notes
        );
    }
}

#[test]
fn gemma3_text_drafts_pair_with_the_multimodal_targets() {
    // The 1B's tokenizer has the multimodal models' <image_soft_token> past its 262 144
    // rows; the 4B's text model is padded to 262 208. Neither is a problem.
    let mut models = Models::new();
    let catalog = Catalog::builtin();
    let verdict = check_pair(&mut models, catalog.find("gemma3-1b-4b").unwrap());
    assert!(verdict.ok, "{:?}", verdict.problems);
    for note in [
        "same vocabulary (262145 tokens)",
        r#"1 special token past the draft model's 262144 token slots ("<image_soft_token>")"#,
        "padded to 262208",
        "Gemma3ForCausalLM",
        "22 of the draft's 26 layers look back only 512 tokens",
        "29 of the target's 34 layers look back only 1024 tokens",
    ] {
        assert!(
            mentions(&verdict.notes, note),
            "{note}: {:?}",
            verdict.notes
        );
    }
    // The sliding layers' caches are small: the 4B target's 5 full layers hold 4096
    // positions, its 29 sliding ones a ring of 2 · (1024 + 32), at 2 · 4 KV heads · 256
    // · 4 bytes a position; 34 full layers would hold 4096 each.
    let target = verdict.memory.target.unwrap();
    let per_position = 2 * 4 * 256 * 4;
    assert_eq!(
        target.kv_cache_bytes,
        (5 * 4096 + 29 * 2 * (1024 + 32)) * per_position
    );
    assert!(target.kv_cache_bytes * 5 < 34 * 4096 * per_position * 3);

    // A text tokenizer with an ordinary token past the rows is still a problem.
    let odd = models.root.path().join("odd");
    write_model(&odd, &models.facts["google/gemma-3-1b-it"]);
    let tokenizer = odd.join("tokenizer.json");
    let text = std::fs::read_to_string(&tokenizer)
        .unwrap()
        .replace(r#""special":true"#, r#""special":false"#);
    let mut json: Value = serde_json::from_str(&text).unwrap();
    json["added_tokens"]
        .as_array_mut()
        .unwrap()
        .retain(|t| t["id"] != 262144);
    std::fs::write(&tokenizer, json.to_string()).unwrap();
    let target = models.dir("google/gemma-3-4b-it");
    let verdict = doctor(&odd, &target, &DoctorOptions::default());
    assert!(
        mentions(
            &verdict.problems,
            "tokenizer has 262145 tokens but the draft model only has room for 262144"
        ),
        "{:?}",
        verdict.problems
    );
}
