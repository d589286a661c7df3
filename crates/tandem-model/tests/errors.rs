//! Bad input gets a typed error naming the file and the field or tensor: never a panic.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tandem_model::{test_models, Flex, Llama, LoadOptions, ModelError, Tokenizer};

/// A scratch copy of a fixture folder that a test may break.
fn scratch_copy(name: &str, tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tandem-errors-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(test_models::fixture_dir(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    dir
}

fn load(dir: &Path) -> Result<Llama<Flex>, ModelError> {
    Llama::load(dir, &LoadOptions::default(), &Default::default())
}

fn edit_json(path: &Path, edit: impl FnOnce(&mut Value)) {
    let mut value: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut value);
    std::fs::write(path, value.to_string()).unwrap();
}

/// Rewrites the JSON header of a safetensors file, keeping its data.
fn edit_safetensors_header(path: &Path, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let bytes = std::fs::read(path).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Map<String, Value> =
        serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    edit(&mut header);
    let header = serde_json::to_vec(&header).unwrap();
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&header);
    out.extend_from_slice(&bytes[8 + len..]);
    std::fs::write(path, out).unwrap();
}

#[test]
fn missing_folder_and_missing_files() {
    let err = load(Path::new("/nonexistent/model")).err().unwrap();
    assert!(matches!(err, ModelError::MissingFolder(_)), "{err}");

    let dir = scratch_copy("llama-gqa", "nofiles");
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    let err = load(&dir).err().unwrap();
    assert!(err.to_string().contains("model.safetensors"), "{err}");

    std::fs::remove_file(dir.join("config.json")).unwrap();
    let err = load(&dir).err().unwrap();
    assert!(
        matches!(&err, ModelError::MissingFile { path, .. } if path.ends_with("config.json")),
        "{err}"
    );

    std::fs::remove_file(dir.join("tokenizer.json")).unwrap();
    let err = Tokenizer::from_dir(&dir).err().unwrap();
    assert!(err.to_string().contains("tokenizer.json"), "{err}");
}

#[test]
fn missing_tensor_is_named() {
    let dir = scratch_copy("llama-gqa", "missing");
    edit_safetensors_header(&dir.join("model.safetensors"), |h| {
        let entry = h.remove("model.layers.1.mlp.down_proj.weight").unwrap();
        h.insert("model.layers.1.mlp.renamed.weight".into(), entry);
    });
    let err = load(&dir).err().unwrap();
    assert!(
        matches!(&err, ModelError::MissingTensor { name, .. } if name == "model.layers.1.mlp.down_proj.weight"),
        "{err}"
    );
    assert!(err.to_string().contains("model.safetensors"), "{err}");
}

#[test]
fn tensor_of_the_wrong_shape_is_named() {
    let dir = scratch_copy("llama-gqa", "shape");
    // Same byte size, transposed shape: only the shape check can catch it.
    edit_safetensors_header(&dir.join("model.safetensors"), |h| {
        let shape = &mut h["model.layers.0.self_attn.k_proj.weight"]["shape"];
        let dims: Vec<u64> = serde_json::from_value(shape.clone()).unwrap();
        *shape = serde_json::json!([dims[1], dims[0]]);
    });
    let err = load(&dir).err().unwrap();
    match &err {
        ModelError::TensorShape {
            name,
            expected,
            actual,
            ..
        } => {
            assert_eq!(name, "model.layers.0.self_attn.k_proj.weight");
            assert_eq!(expected, &[32, 64]);
            assert_eq!(actual, &[64, 32]);
        }
        other => panic!("expected a shape error, got {other}"),
    }
}

#[test]
fn truncated_and_corrupt_safetensors() {
    let dir = scratch_copy("llama-gqa", "truncated");
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = load(&dir).err().unwrap();
    assert!(
        matches!(err, ModelError::CorruptSafetensors { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("model.safetensors"), "{err}");

    std::fs::write(&path, b"this is not a safetensors file at all").unwrap();
    let err = load(&dir).err().unwrap();
    assert!(
        matches!(err, ModelError::CorruptSafetensors { .. }),
        "{err}"
    );
}

#[test]
fn unsupported_architecture_and_rope_type() {
    let dir = scratch_copy("llama-gqa", "arch");
    edit_json(&dir.join("config.json"), |c| {
        c["architectures"] = serde_json::json!(["FalconForCausalLM"])
    });
    let err = load(&dir).err().unwrap();
    assert!(
        matches!(&err, ModelError::UnsupportedArchitecture { architecture, .. } if architecture == "FalconForCausalLM"),
        "{err}"
    );

    let dir = scratch_copy("llama-gqa", "rope");
    edit_json(
        &dir.join("config.json"),
        |c| {
            c["rope_parameters"] =
                serde_json::json!({"rope_type": "yarn", "factor": 4.0, "rope_theta": 10000.0})
        },
    );
    let err = load(&dir).err().unwrap();
    assert!(
        matches!(&err, ModelError::UnsupportedRope { rope_type, .. } if rope_type == "yarn"),
        "{err}"
    );
}

#[test]
fn token_out_of_range_and_context_overflow() {
    let mut model = Llama::<Flex>::load(
        &test_models::fixture_dir("llama-gqa"),
        &LoadOptions {
            context_len: Some(16),
            ..Default::default()
        },
        &Default::default(),
    )
    .unwrap();
    let err = model.forward(&[1, 2, 384]).err().unwrap();
    assert!(
        matches!(
            err,
            ModelError::TokenOutOfRange {
                token: 384,
                vocab_size: 384
            }
        ),
        "{err}"
    );
    assert_eq!(
        model.cached_len(),
        0,
        "a refused input leaves the cache untouched"
    );

    let err = model.forward(&[1; 17]).err().unwrap();
    assert!(
        matches!(
            err,
            ModelError::ContextOverflow {
                needed: 17,
                capacity: 16
            }
        ),
        "{err}"
    );
    model.forward(&[1; 10]).unwrap();
    let err = model.forward(&[1; 7]).err().unwrap();
    assert!(
        matches!(
            err,
            ModelError::ContextOverflow {
                needed: 17,
                capacity: 16
            }
        ),
        "{err}"
    );
    assert_eq!(model.cached_len(), 10);
    let err = model.forward(&[]).err().unwrap();
    assert!(matches!(err, ModelError::InvalidArgument(_)), "{err}");
}

#[test]
fn bad_config_values_are_named() {
    let dir = scratch_copy("llama-gqa", "badvalue");
    edit_json(&dir.join("config.json"), |c| {
        c["num_hidden_layers"] = serde_json::json!(-3)
    });
    let err = load(&dir).err().unwrap();
    assert!(
        err.to_string().contains("`num_hidden_layers`") && err.to_string().contains("config.json"),
        "{err}"
    );
}
