//! Seeded mutation fuzzing of what a model repo feeds Tandem's parsers: `config.json`,
//! `generation_config.json`, safetensors files and shard indexes,
//! `tokenizer_config.json` and chat templates. A repo is untrusted input, so for every
//! mutation the parser must return (no panic, no hang), fail with a typed
//! [`ModelError`] naming the file, and never ask for one allocation over
//! [`MAX_ALLOCATION`] (a counting global allocator watches this test binary).
//!
//! No nightly and no fuzzing crate: a fixed-seed generator mutates a small corpus
//! (the transformers fixtures) with bit flips, cuts, deletions, duplications and
//! insertions of huge numbers, long strings, deep nesting and hostile template
//! snippets. `TANDEM_FUZZ_SEED` and `TANDEM_FUZZ_CASES` change the run;
//! `TANDEM_FUZZ_VERBOSE=1` prints each case before it runs (to find one that aborts).

use std::path::{Path, PathBuf};
use std::time::Instant;

use tandem_model::fuzzing::{CountingAllocator, Mutations, Rng};

use tandem_model::formats::safetensors::{SafetensorsFile, WeightFiles};
use tandem_model::{ChatMessage, ChatTemplate, ModelConfig, ModelError, Tokenizer};

/// The largest single allocation any parser may make on these small inputs.
const MAX_ALLOCATION: usize = 64 << 20;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Text inserted or substituted by the mutator: the values parsers get wrong.
const HOSTILE_NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1e308",
    "-1e308",
    "NaN",
    "2147483648",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999",
    "3000000000",
    "65537",
];

const TEMPLATE_SNIPPETS: &[&str] = &[
    "{% for i in range(99999) %}{% for j in range(99999) %}{{ i }}{% endfor %}{% endfor %}",
    "{{ 'x'|indent(10000000000000) }}",
    "{{ messages|tojson(indent=4294967296) }}",
    "{{ '%99999999999d'|format(1) }}",
    "{{ '{:>99999999999}'.format('x') }}",
    "{{ 'ab' * 18446744073709551615 }}",
    "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "{{ raise_exception('no') }}",
    "{% set ns = namespace(x=0) %}",
    "{{ messages[0]['content'][::-1] }}",
    "{% if %}",
    "{{",
    "{%",
];

fn insertion(rng: &mut Rng, template: bool) -> String {
    match rng.below(if template { 6 } else { 5 }) {
        0 => rng.pick(HOSTILE_NUMBERS).to_string(),
        1 => format!("\"{}\"", "a".repeat(1 + rng.below(100_000))),
        2 => "[".repeat(1 + rng.below(5_000)),
        3 => "{\"a\":".repeat(1 + rng.below(2_000)),
        4 => [
            "\u{0}",
            "\u{feff}",
            "\\u0000",
            "\\ud800",
            "\u{10ffff}",
            "\"",
            "}",
            ",",
        ][rng.below(8)]
        .to_string(),
        _ => {
            let snippet = rng.pick(TEMPLATE_SNIPPETS);
            if rng.below(4) == 0 {
                // Deep nesting of expressions.
                "(".repeat(1 + rng.below(3_000))
            } else {
                snippet.to_string()
            }
        }
    }
}

/// One to four mutations of `seed` (template snippets among the insertions when it is
/// a template).
fn mutate(rng: &mut Rng, seed: &[u8], template: bool) -> Vec<u8> {
    let insert = |rng: &mut Rng| insertion(rng, template);
    let how = Mutations {
        numbers: HOSTILE_NUMBERS,
        max_duplicate: 256,
        insertion: &insert,
    };
    tandem_model::fuzzing::mutate(rng, seed, &how)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A small safetensors file with every dtype the reader knows and some metadata.
fn safetensors_seed() -> Vec<u8> {
    let tensors: [(&str, &str, &[usize], usize); 6] = [
        ("model.embed_tokens.weight", "F32", &[4, 8], 4),
        ("model.norm.weight", "BF16", &[8], 2),
        ("lm_head.weight", "F16", &[2, 4], 2),
        ("q.values", "I8", &[3, 5], 1),
        ("q.packed", "U8", &[7], 1),
        ("ids", "I64", &[2], 8),
    ];
    let mut header = serde_json::Map::new();
    header.insert(
        "__metadata__".into(),
        serde_json::json!({"format": "pt", "tandem": "1"}),
    );
    let mut data = Vec::new();
    for (name, dtype, shape, size) in tensors {
        let start = data.len();
        let bytes = shape.iter().product::<usize>() * size;
        data.extend((0..bytes).map(|i| (i * 37 % 251) as u8));
        header.insert(
            name.into(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let header = serde_json::to_vec(&header).unwrap();
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(&header);
    file.extend_from_slice(&data);
    file
}

/// Templates beyond the fixtures': filters, namespaces, loops over messages.
const EXTRA_TEMPLATES: &[&str] = &[
    "{{ bos_token }}{% for m in messages %}{{ m.role|upper }}: {{ m.content|trim }}\n{% endfor %}",
    "{% set ns = namespace(sys='') %}{% for m in messages %}{% if m.role == 'system' %}{% set ns.sys = m.content %}{% endif %}{% endfor %}{{ ns.sys }}{{ messages|tojson(indent=2) }}",
    "{% for m in messages %}{{ m.content|indent(4, first=true) }}{{ '%-5s|'|format(m.role) }}{{ '{}:{}'.format(loop.index, m.role) }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}",
];

/// What one case ended in; a panic or an oversized allocation fails the test.
fn check<T>(
    what: &str,
    case: usize,
    input: &[u8],
    file: &Path,
    run: impl FnOnce() -> Result<T, ModelError>,
) -> bool {
    if std::env::var_os("TANDEM_FUZZ_VERBOSE").is_some() {
        eprintln!(
            "{what} #{case}: {:?}",
            String::from_utf8_lossy(&input[..input.len().min(2_000)])
        );
    }
    CountingAllocator::reset();
    let started = Instant::now();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run));
    let largest = CountingAllocator::largest();
    let show = || String::from_utf8_lossy(&input[..input.len().min(4_000)]).into_owned();
    assert!(
        largest <= MAX_ALLOCATION,
        "{what} #{case}: an allocation of {largest} bytes; input:\n{}",
        show()
    );
    assert!(
        started.elapsed().as_secs() < 5,
        "{what} #{case}: took {:?}; input:\n{}",
        started.elapsed(),
        show()
    );
    match outcome {
        Err(_) => panic!("{what} #{case}: the parser panicked; input:\n{}", show()),
        Ok(Ok(_)) => true,
        Ok(Err(err)) => {
            let text = err.to_string();
            // Every error but a template's names the file it is about.
            let named = matches!(err, ModelError::ChatTemplate { .. })
                || text.contains(file.file_name().unwrap().to_str().unwrap());
            assert!(
                named,
                "{what} #{case}: error does not name {file:?}: {text}"
            );
            false
        }
    }
}

struct Counts {
    ok: usize,
    failed: usize,
}

impl Counts {
    fn add(&mut self, ok: bool) {
        if ok {
            self.ok += 1
        } else {
            self.failed += 1
        }
    }
}

#[test]
fn mutated_repo_files_give_typed_errors_within_bounds() {
    let seed = std::env::var("TANDEM_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x7a4d_e3c1_u64);
    let scale: usize = std::env::var("TANDEM_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut rng = Rng(seed);
    let started = Instant::now();
    let work = tempfile_dir();
    let mut counts = Counts { ok: 0, failed: 0 };

    // config.json, alone and beside generation_config.json.
    let configs: Vec<Vec<u8>> = ["llama-gqa", "llama3-tied", "mistral-linear", "qwen2-bias"]
        .iter()
        .map(|name| read(&fixture(name).join("config.json")))
        .chain([read(&fixture("llama-gqa").join("config.legacy.json"))])
        .collect();
    let config_dir = work.join("config");
    std::fs::create_dir_all(&config_dir).unwrap();
    let config_path = config_dir.join("config.json");
    let generation_path = config_dir.join("generation_config.json");
    let generation = read(&fixture("llama-gqa").join("generation_config.json"));
    for case in 0..12_000 * scale {
        let pick = rng.below(configs.len());
        let input = mutate(&mut rng, &configs[pick], false);
        overwrite(&config_path, &input);
        counts.add(check("config.json", case, &input, &config_path, || {
            let config = ModelConfig::from_file(&config_path)?;
            // Sizes a parsed config reports must be usable as they are.
            let _ = config.parameter_count();
            Ok(config)
        }));
    }
    std::fs::write(&config_path, &configs[0]).unwrap();
    for case in 0..2_000 * scale {
        let input = mutate(&mut rng, &generation, false);
        overwrite(&generation_path, &input);
        counts.add(check(
            "generation_config.json",
            case,
            &input,
            &generation_path,
            || ModelConfig::from_dir(&config_dir),
        ));
    }

    // A safetensors file: prefix, header and data.
    let safetensors = safetensors_seed();
    let tensor_path = work.join("model.safetensors");
    for case in 0..8_000 * scale {
        let input = mutate(&mut rng, &safetensors, false);
        overwrite(&tensor_path, &input);
        counts.add(check("safetensors", case, &input, &tensor_path, || {
            let file = SafetensorsFile::open(&tensor_path)?;
            let names: Vec<String> = file.names().map(str::to_string).collect();
            for name in names {
                // Reading must stay within the file, whatever the header said.
                let _ = file.read_f32(&name);
                let _ = file.read_i8(&name);
                let _ = file.raw_bytes(&name)?;
            }
            Ok(())
        }));
    }

    // A shard index beside the fixture's shards.
    let shard_dir = work.join("sharded");
    std::fs::create_dir_all(&shard_dir).unwrap();
    for entry in std::fs::read_dir(fixture("mistral-linear")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "safetensors") {
            std::fs::copy(&path, shard_dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    let index = read(&fixture("mistral-linear").join("model.safetensors.index.json"));
    let index_path = shard_dir.join("model.safetensors.index.json");
    for case in 0..2_000 * scale {
        let input = mutate(&mut rng, &index, false);
        overwrite(&index_path, &input);
        counts.add(check("shard index", case, &input, &index_path, || {
            WeightFiles::open(&shard_dir)
        }));
    }

    // tokenizer_config.json (special tokens, the template inside) with a real tokenizer.
    let tokenizer_dir = work.join("tokenizer");
    std::fs::create_dir_all(&tokenizer_dir).unwrap();
    std::fs::copy(
        fixture("llama-gqa").join("tokenizer.json"),
        tokenizer_dir.join("tokenizer.json"),
    )
    .unwrap();
    let tokenizer_configs: Vec<Vec<u8>> = ["llama-gqa", "llama3-tied", "mistral-linear"]
        .iter()
        .map(|name| read(&fixture(name).join("tokenizer_config.json")))
        .collect();
    let tokenizer_config_path = tokenizer_dir.join("tokenizer_config.json");
    let messages = [
        ChatMessage::new("system", "Be brief."),
        ChatMessage::new("user", "Hello! What is 2+2?"),
    ];
    for case in 0..2_000 * scale {
        let pick = rng.below(tokenizer_configs.len());
        let input = mutate(&mut rng, &tokenizer_configs[pick], false);
        overwrite(&tokenizer_config_path, &input);
        counts.add(check(
            "tokenizer_config.json",
            case,
            &input,
            &tokenizer_config_path,
            || {
                let tokenizer = Tokenizer::from_dir(&tokenizer_dir)?;
                match tokenizer.apply_chat_template(&messages, true) {
                    // A missing template names the folder, not the file.
                    Err(ModelError::NoChatTemplate { .. }) => Ok(String::new()),
                    other => other,
                }
            },
        ));
    }

    // Chat templates, rendered directly.
    let cases: Vec<serde_json::Value> =
        serde_json::from_slice(&read(&fixture("chat_templates.json"))).unwrap();
    let templates: Vec<Vec<u8>> = cases
        .iter()
        .map(|case| case["template"].as_str().unwrap().as_bytes().to_vec())
        .chain(EXTRA_TEMPLATES.iter().map(|t| t.as_bytes().to_vec()))
        .collect();
    let template_path = Path::new("chat template");
    for case in 0..20_000 * scale {
        let pick = rng.below(templates.len());
        let input = mutate(&mut rng, &templates[pick], true);
        let source = String::from_utf8_lossy(&input).into_owned();
        counts.add(check("chat template", case, &input, template_path, || {
            ChatTemplate::new(source, "<s>", "</s>").render(&messages, true)
        }));
    }

    let _ = std::fs::remove_dir_all(&work);
    eprintln!(
        "{} cases ({} parsed, {} refused) in {:?}",
        counts.ok + counts.failed,
        counts.ok,
        counts.failed,
        started.elapsed()
    );
    // The mutations must reach past the first byte: some inputs still parse.
    assert!(counts.ok > 1_000 && counts.failed > 1_000);
}

/// Rewrites a file in place. Not `fs::write`: truncating a file to zero and writing it
/// again makes ext4 flush it to disk on close, which turns thousands of cases into
/// minutes of waiting.
fn overwrite(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap();
    file.write_all(bytes).unwrap();
    file.set_len(bytes.len() as u64).unwrap();
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tandem-fuzz-parsers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
