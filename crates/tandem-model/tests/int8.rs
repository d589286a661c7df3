//! Int8 weights against f32: next-token agreement and logit error on the tiny fixtures
//! and on real models, and the on-disk cache of quantized weights (round trip,
//! invalidation by a changed source, recovery from a corrupt file).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tandem_model::cpu::CpuModel;
use tandem_model::families::linears;
use tandem_model::formats::int8_cache::{self, CacheMiss, CacheOutcome};
use tandem_model::formats::safetensors::{
    write_safetensors, SafetensorsFile, TensorToWrite, WeightFiles,
};
use tandem_model::quant::calibration::{self, CalibrationTokens};
use tandem_model::quant::QuantizedMatrix;
use tandem_model::{test_models, Flex, Llama, LoadOptions, ModelConfig, Precision, Tokenizer};

const FIXTURES: [&str; 4] = ["llama-gqa", "llama3-tied", "qwen2-bias", "mistral-linear"];

/// A few paragraphs of ordinary English prose (~330 tokens).
const TEXT: &str = "The lighthouse stood at the end of a narrow spit of land, where the \
river met the sea. For more than a century its keepers had climbed the spiral stairs each \
evening to light the lamp, and each morning they had climbed them again to put it out. \
The work was simple, but it was never easy: storms came in from the west without \
warning, the salt air ate through paint and iron alike, and the nearest town was a \
two-hour walk along the shore.\n\n\
When the last keeper retired, the lamp was replaced by an automatic beacon that needed \
no one at all. The cottage beside the tower fell quiet. Gulls nested in the chimney, and \
the garden, once full of cabbages and beans, gave way to grass and wild thyme. Visitors \
still came in the summer to photograph the tower against the sunset, but few of them \
knew that the keeper's logbooks were still kept in a cupboard in the town library, \
filled with careful handwriting about the weather, passing ships, and the occasional \
whale.\n\n\
Reading those logbooks today, one is struck less by the drama than by the routine. The \
keepers wrote down the direction of the wind, the height of the tide, the hours the \
lamp was lit, and the quantity of oil it burned. They noted when the supply boat was \
late and when the well ran low. Only rarely did they describe a rescue or a wreck, and \
even then the entries are short and plain, as if the writer wanted to record the facts \
and nothing more. It is a reminder that most of history is made of ordinary days, \
written down by people who never expected anyone to read them.";

const TEXT2: &str = "To install the package, first make sure that Python 3.10 or later is available on your \
system. Create a virtual environment in the project folder with `python -m venv .venv`, activate it, and \
run `pip install -r requirements.txt`. The configuration file, config.yaml, controls where the \
application stores its data and which port the web server listens on. By default the server binds to \
localhost on port 8080; change the `host` field to 0.0.0.0 if you want other machines on the network to \
reach it. Logs are written to the logs directory and rotated every day. If the server fails to start, \
check that no other process is using the same port and that the data directory is writable by the \
current user. For production deployments we recommend running the application behind a reverse proxy \
such as nginx, which can terminate TLS and serve static files efficiently. Database migrations are \
applied automatically on startup, but you can run them manually with `python manage.py migrate` if you \
prefer to review the changes first. Backups should be taken before every upgrade.\n\n\
Q: How often should I update?\nA: Security fixes are released as soon as they are ready, so we suggest \
checking for updates at least once a month. Minor releases add features without breaking existing \
configurations, while major releases may require changes to your settings; always read the release notes \
before upgrading.";

const TEXT3: &str = "Maria had never liked the early shift at the bakery, but she liked the quiet. At four \
in the morning the streets were empty, the ovens ticked as they warmed, and the only sound was the radio \
murmuring the weather forecast. She measured flour, salt and water by feel now, after eleven years, and \
the dough came together under her hands almost without thought. Her grandmother had taught her that \
bread needs time more than it needs skill: a slow rise in a cool room gives flavour that no shortcut can \
match. By six the first loaves were cooling on the racks, and the smell drifted out into the street, \
where the delivery drivers lingered a little longer than they needed to. Some mornings she thought about \
opening a place of her own, with a few tables by the window and coffee that was better than the one \
they served now. Then the door would open, the first customers would come in stamping the cold from \
their boots, and there would be no time to think about anything at all. \"Two sourdough and a rye,\" \
said the old man who came every day, counting out his coins on the counter. \"And tell your grandmother \
I said hello.\" Maria smiled and did not tell him, again, that her grandmother had died three winters \
ago; he remembered her kindly, and that seemed worth more than the truth.";

/// Prose, documentation and dialogue: ~900 positions where a small model is often unsure.
const TEXTS: [&str; 3] = [TEXT, TEXT2, TEXT3];

fn options(precision: Precision, context_len: usize) -> LoadOptions {
    LoadOptions {
        context_len: Some(context_len),
        precision,
        ..Default::default()
    }
}

/// Logits of one forward over `tokens`, one row per position.
fn logits(model: &mut Llama<Flex>, tokens: &[u32]) -> Vec<Vec<f32>> {
    model.reset();
    test_models::logit_rows(model, tokens)
}

fn argmax(row: &[f32]) -> usize {
    (0..row.len())
        .max_by(|&a, &b| row[a].total_cmp(&row[b]))
        .unwrap()
}

/// How int8 logits compare with f32 ones.
struct Agreement {
    positions: usize,
    top1_matches: usize,
    max_logit_error: f32,
    mean_logit_error: f64,
    /// Largest |logit| of the f32 model, to put the error in scale.
    max_logit: f32,
    /// Positions where f32's two best logits are within [`NEAR_TIE`] of each other, and
    /// how many of the top-1 disagreements fall there: a flip between near-equal
    /// choices is the rounding noise of any 8-bit format, not a wrong answer.
    near_ties: usize,
    near_tie_flips: usize,
}

/// Margin between the two best f32 logits under which a position counts as a near-tie
/// (about the mean |logit error| int8 shows on real models).
const NEAR_TIE: f32 = 0.1;

/// The gap between the best and second-best values of a row.
fn top2_margin(row: &[f32]) -> f32 {
    let (mut best, mut second) = (f32::NEG_INFINITY, f32::NEG_INFINITY);
    for &x in row {
        if x > best {
            second = best;
            best = x;
        } else if x > second {
            second = x;
        }
    }
    best - second
}

impl Agreement {
    fn of(f32_rows: &[Vec<f32>], int8_rows: &[Vec<f32>]) -> Self {
        let mut a = Self {
            positions: f32_rows.len(),
            top1_matches: 0,
            max_logit_error: 0.0,
            mean_logit_error: 0.0,
            max_logit: 0.0,
            near_ties: 0,
            near_tie_flips: 0,
        };
        let mut count = 0usize;
        for (f, q) in f32_rows.iter().zip(int8_rows) {
            let agrees = argmax(f) == argmax(q);
            a.top1_matches += usize::from(agrees);
            if top2_margin(f) < NEAR_TIE {
                a.near_ties += 1;
                a.near_tie_flips += usize::from(!agrees);
            }
            for (x, y) in f.iter().zip(q) {
                let e = (x - y).abs();
                a.max_logit_error = a.max_logit_error.max(e);
                a.mean_logit_error += e as f64;
                a.max_logit = a.max_logit.max(x.abs());
            }
            count += f.len();
        }
        a.mean_logit_error /= count.max(1) as f64;
        a
    }

    fn top1(&self) -> f64 {
        self.top1_matches as f64 / self.positions as f64
    }

    fn report(&self, name: &str) {
        println!(
            "{name}: top-1 agreement {}/{} = {:.2}%, max |logit error| {:.4} (mean {:.5}, max |logit| {:.2}); \
             {} of the {} disagreements at the {} near-ties (f32 top-2 margin < {NEAR_TIE})",
            self.top1_matches,
            self.positions,
            100.0 * self.top1(),
            self.max_logit_error,
            self.mean_logit_error,
            self.max_logit,
            self.near_tie_flips,
            self.positions - self.top1_matches,
            self.near_ties,
        );
    }
}

/// f32 against int8 on a real model over [`TEXTS`], both on the CPU engine (what runs
/// them: int8 there also quantizes the activations): one forward per text and model,
/// logits at every position.
fn real_model_agreement(dir: &Path) -> Agreement {
    let tokenizer = Tokenizer::from_dir(dir).unwrap();
    let texts: Vec<Vec<u32>> = TEXTS.iter().map(|t| tokenizer.encode(t).unwrap()).collect();
    assert!(texts.iter().all(|t| t.len() >= 250), "texts too short");
    let context = texts.iter().map(Vec::len).max().unwrap() + 8;
    let rows = |model: &mut CpuModel, tokens: &[u32]| -> Vec<Vec<f32>> {
        model.reset();
        let vocab = model.config().vocab_size;
        let values = model.forward_tail(tokens, tokens.len()).unwrap();
        values.chunks(vocab).map(<[f32]>::to_vec).collect()
    };
    let f32_rows: Vec<Vec<f32>> = {
        let mut model = CpuModel::load(dir, &options(Precision::F32, context)).unwrap();
        texts.iter().flat_map(|t| rows(&mut model, t)).collect()
    };
    let mut model = CpuModel::load(dir, &options(Precision::Int8, context)).unwrap();
    println!("int8 cache: {:?}", model.int8_cache().unwrap());
    let int8_rows: Vec<Vec<f32>> = texts.iter().flat_map(|t| rows(&mut model, t)).collect();
    Agreement::of(&f32_rows, &int8_rows)
}

#[test]
fn fixtures_int8_agrees_with_f32() {
    let device = Default::default();
    for name in FIXTURES {
        let dir = test_models::fixture_dir(name);
        let text = std::fs::read_to_string(dir.join("reference.json")).unwrap();
        let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
        let tokens: Vec<u32> = serde_json::from_value(reference["tokens"].clone()).unwrap();
        // `from_weights` quantizes in memory: nothing is written into the fixtures.
        let weights = WeightFiles::open(&dir).unwrap();
        let run = |precision| {
            let config = ModelConfig::from_dir(&dir).unwrap();
            let options = options(precision, 64);
            let mut model =
                Llama::<Flex>::from_weights(config, &weights, &options, &device).unwrap();
            assert_eq!(model.precision(), precision);
            logits(&mut model, &tokens)
        };
        let agreement = Agreement::of(&run(Precision::F32), &run(Precision::Int8));
        agreement.report(name);
        // Random tiny models have many near-ties among their logits (1 to 4 of these
        // 24 positions): int8 may flip those, never a clear choice.
        let flips = agreement.positions - agreement.top1_matches;
        assert!(
            flips <= 2 && agreement.near_tie_flips == flips,
            "{name}: top-1 agreement {}/{}, {} of the flips at near-ties",
            agreement.top1_matches,
            agreement.positions,
            agreement.near_tie_flips
        );
        // Measured: max 2.5%, mean 0.4% of the largest logit.
        assert!(
            agreement.max_logit_error <= 0.05 * agreement.max_logit
                && agreement.mean_logit_error <= 0.01 * agreement.max_logit as f64,
            "{name}: max |logit error| {}, mean {} (max |logit| {})",
            agreement.max_logit_error,
            agreement.mean_logit_error,
            agreement.max_logit
        );
    }
}

/// Writes a copy of a fixture whose linear weights are the int8 model's, dequantized to
/// f32 in the Hugging Face layout (a tied head becomes an untied `lm_head`, since the
/// int8 model quantizes the head but not the embedding table).
fn dequantized_copy(name: &str) -> PathBuf {
    let src = test_models::fixture_dir(name);
    let dir =
        std::env::temp_dir().join(format!("tandem-int8-dequant-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = ModelConfig::from_dir(&src).unwrap();
    let weights = WeightFiles::open(&src).unwrap();
    // The same calibration as the int8 load (synthetic ids: fixtures have no tokenizer).
    let tokens = CalibrationTokens::for_model(None, &config);
    let importance =
        calibration::measure::<Flex>(&config, &weights, &tokens, &Default::default()).unwrap();
    let mut tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)> = BTreeMap::new();
    for path in weights.paths() {
        let file = SafetensorsFile::open(path).unwrap();
        for tensor in file.names() {
            tensors.insert(tensor.to_string(), file.read_f32(tensor).unwrap());
        }
    }
    for spec in linears::all(&config) {
        let (k, m) = (spec.in_features, spec.out_features());
        let importance = importance.of(&spec.name).unwrap();
        let f32_weight = spec.read_f32(&weights).unwrap();
        let fused = QuantizedMatrix::quantize_weighted(&f32_weight, k, m, importance).dequantize();
        let mut col0 = 0;
        for (part, out) in &spec.parts {
            let hf: Vec<f32> = (0..out * k)
                .map(|j| fused[(j % k) * m + col0 + j / k])
                .collect();
            let part = if spec.name == "lm_head" {
                "lm_head"
            } else {
                part.as_str()
            };
            tensors.insert(format!("{part}.weight"), (vec![*out, k], hf));
            col0 += out;
        }
    }
    let to_write: Vec<TensorToWrite> = tensors
        .iter()
        .map(|(name, (shape, values))| TensorToWrite {
            name: name.clone(),
            dtype: "F32",
            shape: shape.clone(),
            bytes: values
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>()
                .into(),
        })
        .collect();
    write_safetensors(&dir.join("model.safetensors"), &to_write, &BTreeMap::new()).unwrap();
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    config["tie_word_embeddings"] = serde_json::Value::Bool(false);
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    dir
}

#[test]
fn int8_model_computes_exactly_its_dequantized_f32_twin() {
    // The int8 kernels and plumbing (fusion order, block scales, tied heads, biases,
    // prefill and decode row counts) against burn's f32 path on the same numbers.
    let device = Default::default();
    for name in FIXTURES {
        let dir = test_models::fixture_dir(name);
        let twin_dir = dequantized_copy(name);
        let config = ModelConfig::from_dir(&dir).unwrap();
        let weights = WeightFiles::open(&dir).unwrap();
        let mut int8 =
            Llama::<Flex>::from_weights(config, &weights, &options(Precision::Int8, 64), &device)
                .unwrap();
        let mut twin =
            Llama::<Flex>::load(&twin_dir, &options(Precision::F32, 64), &device).unwrap();
        // 40 tokens in one forward (more than a decode block), then 3 single steps.
        let tokens: Vec<u32> = (0..43).map(|i| (i * 37 + 5) % 384).collect();
        let rows = |model: &mut Llama<Flex>| {
            let mut rows = logits(model, &tokens[..40]);
            for &t in &tokens[40..] {
                let step = model
                    .forward(&[t])
                    .unwrap()
                    .into_data()
                    .to_vec::<f32>()
                    .unwrap();
                rows.push(step);
            }
            rows
        };
        let (a, b) = (rows(&mut int8), rows(&mut twin));
        let diff = Agreement::of(&a, &b).max_logit_error;
        println!("{name}: int8 vs dequantized f32 twin: max |logit difference| {diff:e}");
        assert!(
            diff <= 5e-5,
            "{name}: int8 vs dequantized f32 differ by {diff}"
        );
        std::fs::remove_dir_all(&twin_dir).ok();
    }
}

/// The target is 99% top-1 agreement on both models. SmolLM2-135M is the hard one: it
/// has many near-ties on prose (1.4% of positions within 0.01 of the runner-up; in its
/// native bf16 it agrees with f32 on only 96.7% of them). Simulated in f32 over these
/// texts: 96.9% with blocks of 32 and `max/127` scales (the first int8 scheme), 97.6%
/// with blocks of 16, 98.0% adding the unweighted scale search, 99.2% with the
/// importance-weighted search (see `tandem_model::quant`).
const SMOLLM2_MIN_TOP1: f64 = 0.99;
const QWEN_MIN_TOP1: f64 = 0.99;

#[test]
fn smollm2_int8_agrees_with_f32_on_real_text() {
    let Some(dir) = test_models::smollm2() else {
        return;
    };
    let agreement = real_model_agreement(&dir);
    agreement.report("SmolLM2-135M");
    assert!(
        agreement.top1() >= SMOLLM2_MIN_TOP1,
        "top-1 agreement {:.4} < {SMOLLM2_MIN_TOP1}",
        agreement.top1()
    );
    assert!(
        agreement.mean_logit_error < 0.2,
        "{}",
        agreement.mean_logit_error
    );
}

/// Qwen2.5-Coder-0.5B: a 478 MB model, run on request
/// (`cargo test --release -p tandem-model --test int8 -- --ignored`).
#[test]
#[ignore = "needs Qwen2.5-Coder-0.5B (shared/models/fetch.sh qwen2.5-coder-0.5b); slow in debug"]
fn qwen_0_5b_int8_agrees_with_f32_on_real_text() {
    let Some(dir) = test_models::qwen_coder_0_5b() else {
        return;
    };
    let agreement = real_model_agreement(&dir);
    agreement.report("Qwen2.5-Coder-0.5B");
    assert!(
        agreement.top1() >= QWEN_MIN_TOP1,
        "top-1 agreement {:.4} < {QWEN_MIN_TOP1}",
        agreement.top1()
    );
}

/// A private copy of a fixture, so the cache files go somewhere disposable.
fn copy_fixture(name: &str, tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tandem-int8-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(test_models::fixture_dir(name)).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
    }
    dir
}

fn load_int8(dir: &Path) -> (Vec<Vec<f32>>, CacheOutcome) {
    let mut model =
        Llama::<Flex>::load(dir, &options(Precision::Int8, 64), &Default::default()).unwrap();
    let outcome = model.int8_cache().cloned().unwrap();
    (logits(&mut model, &TOKENS), outcome)
}

const TOKENS: [u32; 12] = [1, 5, 9, 2, 33, 17, 4, 8, 60, 3, 21, 7];

#[test]
fn int8_cache_round_trip_invalidation_and_recovery() {
    // Tied embeddings (the head is quantized, the table is not) and a sharded checkpoint.
    for name in ["llama3-tied", "mistral-linear"] {
        let dir = copy_fixture(name, name);
        let cache = dir.join(".tandem").join(int8_cache::CACHE_FILE_NAME);

        // First load quantizes and writes the cache beside the model.
        let (fresh, outcome) = load_int8(&dir);
        assert_eq!(
            outcome,
            CacheOutcome::Written {
                path: cache.clone(),
                miss: CacheMiss::Absent
            },
            "{name}"
        );
        assert!(cache.is_file());

        // Second load reads it, and the model is bit-for-bit the same.
        let (cached, outcome) = load_int8(&dir);
        assert_eq!(outcome, CacheOutcome::Loaded(cache.clone()), "{name}");
        assert_eq!(cached, fresh, "{name}: logits from the cache differ");

        // Touching the source invalidates the cache.
        let weights = WeightFiles::open(&dir).unwrap();
        let first_file = weights.paths()[0].to_path_buf();
        drop(weights);
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&first_file)
            .unwrap()
            .set_modified(later)
            .unwrap();
        let (touched, outcome) = load_int8(&dir);
        assert!(
            matches!(
                &outcome,
                CacheOutcome::Written {
                    miss: CacheMiss::Stale(_),
                    ..
                }
            ),
            "{name}: {outcome:?}"
        );
        assert_eq!(touched, fresh, "{name}");
        assert_eq!(load_int8(&dir).1, CacheOutcome::Loaded(cache.clone()));

        // A corrupt cache file is reported and rebuilt, never an error.
        let bytes = std::fs::read(&cache).unwrap();
        std::fs::write(&cache, &bytes[..bytes.len() / 2]).unwrap();
        let (recovered, outcome) = load_int8(&dir);
        assert!(
            matches!(
                &outcome,
                CacheOutcome::Written {
                    miss: CacheMiss::Corrupt(_),
                    ..
                }
            ),
            "{name}: {outcome:?}"
        );
        assert_eq!(recovered, fresh, "{name}");
        std::fs::write(&cache, b"not a safetensors file").unwrap();
        assert!(matches!(
            load_int8(&dir).1,
            CacheOutcome::Written {
                miss: CacheMiss::Corrupt(_),
                ..
            }
        ));
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[test]
fn changed_weights_are_requantized() {
    let dir = copy_fixture("llama-gqa", "changed");
    let (before, _) = load_int8(&dir);
    assert_eq!(
        load_int8(&dir).1,
        CacheOutcome::Loaded(dir.join(".tandem").join(int8_cache::CACHE_FILE_NAME))
    );

    // Replace the checkpoint by one with the head scaled by 2 (same size, new bytes).
    let path = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let head = &header["lm_head.weight"];
    assert_eq!(head["dtype"], "F32");
    let start = 8 + header_len + head["data_offsets"][0].as_u64().unwrap() as usize;
    let end = 8 + header_len + head["data_offsets"][1].as_u64().unwrap() as usize;
    for chunk in bytes[start..end].chunks_exact_mut(4) {
        let v = f32::from_le_bytes(chunk.try_into().unwrap()) * 2.0;
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    // Written to a new file and renamed over the old one, as a re-download would.
    std::fs::write(dir.join("new.tmp"), &bytes).unwrap();
    std::fs::rename(dir.join("new.tmp"), &path).unwrap();

    let (after, outcome) = load_int8(&dir);
    assert!(
        matches!(
            &outcome,
            CacheOutcome::Written {
                miss: CacheMiss::Stale(_),
                ..
            }
        ),
        "{outcome:?}"
    );
    for (a, b) in after.iter().flatten().zip(before.iter().flatten()) {
        assert!(
            (a - 2.0 * b).abs() <= 1e-3 * b.abs().max(1.0),
            "{a} vs 2 × {b}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
