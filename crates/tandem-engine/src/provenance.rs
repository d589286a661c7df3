//! Where a model came from, precisely enough that someone reading a run log can tell
//! whether their model is the same one: repo id and revision when the folder is a
//! Hugging Face cache snapshot, and hashes of the files that define it.
//!
//! Hashing multi-gigabyte weights on every load would cost seconds, so the weights get a
//! cheap fingerprint instead: each file's size plus the sha256 of its safetensors header
//! (the 8-byte length and the JSON that lists every tensor's name, dtype, shape and byte
//! offsets). Two different checkpoints of one architecture almost never agree on both.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{display_name, BackendKind, LoadedModel};

/// The identity of one loaded model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelProvenance {
    /// Repo id for HF cache snapshots, else the folder name.
    pub name: String,
    pub path: PathBuf,
    /// `org/name` when the folder is `models--org--name/snapshots/<rev>`.
    pub repo_id: Option<String>,
    /// The snapshot folder's name: the commit the files were downloaded at.
    pub revision: Option<String>,
    pub config_sha256: Option<String>,
    pub tokenizer_sha256: Option<String>,
    pub weights: Vec<WeightsFingerprint>,
    /// `f32` or `int8` (linear layers).
    pub precision: String,
    /// Set when only the first N decoder layers were loaded (a self-draft).
    pub layer_limit: Option<usize>,
    /// Set when logits were limited to the first N ids and the special tokens (a draft).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab_limit: Option<usize>,
    pub num_layers: usize,
    pub vocab_size: usize,
    /// Set when the model was loaded from a GGUF file: what the file itself holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gguf: Option<GgufProvenance>,
}

/// What a GGUF file is: its hash (the whole file: a GGUF is one file, and its tensors
/// are what differ between two quantizations of one model) and its tensor types.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GgufProvenance {
    pub sha256: String,
    /// llama.cpp's name for the file's precision (`Q4_K_M`).
    pub precision: String,
    /// Tensors per storage type (`{"F32": 61, "Q4_1": 210, "Q8_0": 1}`).
    pub tensor_types: std::collections::BTreeMap<String, usize>,
}

impl GgufProvenance {
    pub fn of(path: &Path) -> io::Result<Self> {
        use tandem_model::formats::gguf_model::{precision, tensor_type_counts};
        let file = tandem_model::formats::gguf::GgufFile::open(path)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        Ok(Self {
            sha256: sha256_file(path)?,
            precision: precision(&file),
            tensor_types: tensor_type_counts(&file),
        })
    }
}

/// A cheap fingerprint of one safetensors file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightsFingerprint {
    pub file: String,
    pub size_bytes: u64,
    /// sha256 of the first 8 + N bytes: the header length and the N-byte JSON header.
    pub header_sha256: String,
}

impl ModelProvenance {
    /// Describes a loaded model; files that cannot be read are left out (`None`, or
    /// missing from `weights`) rather than failing a run that already loaded.
    pub fn of(model: &LoadedModel) -> Self {
        let (repo_id, revision) = hf_snapshot(&model.dir).unzip();
        Self {
            name: model.name(),
            path: model.dir.clone(),
            repo_id,
            revision,
            config_sha256: sha256_file(&model.dir.join("config.json")).ok(),
            tokenizer_sha256: sha256_file(&model.dir.join("tokenizer.json")).ok(),
            weights: weight_files(&model.dir)
                .iter()
                .filter_map(|path| fingerprint_weights(path).ok())
                .collect(),
            precision: model.options.precision.to_string(),
            layer_limit: model.options.layer_limit,
            vocab_limit: model.options.vocab_limit,
            num_layers: model
                .options
                .layer_limit
                .map_or(model.config.num_layers, |n| n.min(model.config.num_layers)),
            vocab_size: model.config.vocab_size,
            gguf: tandem_model::formats::gguf::is_gguf_file(&model.dir)
                .then(|| GgufProvenance::of(&model.dir).ok())
                .flatten(),
        }
    }

    /// `name` plus what sets this load apart: `SmolLM2 (int8, 10 layers)`.
    pub fn label(&self) -> String {
        let mut notes = Vec::new();
        if self.precision != "f32" {
            notes.push(self.precision.clone());
        }
        if self.layer_limit.is_some() {
            notes.push(format!("{} layers", self.num_layers));
        }
        if let Some(gguf) = &self.gguf {
            notes.push(format!("GGUF {}", gguf.precision));
        }
        if let Some(n) = self.vocab_limit {
            notes.push(format!("logits of {n} tokens"));
        }
        if notes.is_empty() {
            self.name.clone()
        } else {
            format!("{} ({})", self.name, notes.join(", "))
        }
    }
}

/// `(repo id, revision)` of a folder inside a Hugging Face cache snapshot.
pub fn hf_snapshot(dir: &Path) -> Option<(String, String)> {
    let revision = dir.file_name()?.to_str()?;
    let snapshots = dir.parent()?;
    if snapshots.file_name()? != "snapshots" {
        return None;
    }
    let repo_folder = snapshots.parent()?.file_name()?.to_str()?;
    repo_folder.strip_prefix("models--")?;
    Some((display_name(dir), revision.to_string()))
}

pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher)?;
    Ok(hex(&hasher.finalize()))
}

/// The safetensors files of a model folder, by name.
fn weight_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    files
}

/// Largest safetensors header read; real headers are well under a megabyte.
const MAX_HEADER_BYTES: u64 = 100 << 20;

pub fn fingerprint_weights(path: &Path) -> io::Result<WeightsFingerprint> {
    let mut file = File::open(path)?;
    let size_bytes = file.metadata()?.len();
    let mut length = [0u8; 8];
    file.read_exact(&mut length)?;
    let header_len = u64::from_le_bytes(length);
    if header_len > MAX_HEADER_BYTES || header_len + 8 > size_bytes {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not a safetensors file", path.display()),
        ));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header)?;
    let mut hasher = Sha256::new();
    hasher.update(length);
    hasher.update(&header);
    Ok(WeightsFingerprint {
        file: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        size_bytes,
        header_sha256: hex(&hasher.finalize()),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What runs the models, in words: the CPU model and thread count, or the GPU.
pub fn device_description(backend: BackendKind) -> String {
    match backend {
        BackendKind::Cpu | BackendKind::Flex => {
            let threads = match backend {
                BackendKind::Cpu => tandem_model::cpu::pool::Pool::global().threads(),
                _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
            };
            let cpu = std::fs::read_to_string("/proc/cpuinfo")
                .ok()
                .and_then(|info| {
                    info.lines()
                        .find(|l| l.starts_with("model name"))
                        .and_then(|l| l.split_once(':'))
                        .map(|(_, name)| name.trim().to_string())
                })
                .unwrap_or_else(|| std::env::consts::ARCH.to_string());
            match backend {
                BackendKind::Cpu => {
                    let isa = tandem_model::cpu::isa::Isa::selected();
                    format!("{cpu} ({threads} threads, {isa} kernels)")
                }
                _ => format!("{cpu} ({threads} threads, burn flex)"),
            }
        }
        BackendKind::Cuda | BackendKind::CudaUnfused => "cuda:0".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_folders_give_repo_and_revision() {
        let dir = Path::new("/c/hub/models--Qwen--Qwen2.5-0.5B/snapshots/0123abc");
        assert_eq!(
            hf_snapshot(dir),
            Some(("Qwen/Qwen2.5-0.5B".to_string(), "0123abc".to_string()))
        );
        assert_eq!(hf_snapshot(Path::new("/m/smollm2-135m")), None);
    }

    #[test]
    fn fingerprint_hashes_length_and_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let header = br#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header);
        let mut hashed = Sha256::new();
        hashed.update(&bytes);
        bytes.extend_from_slice(&[0, 0, 128, 63]);
        std::fs::write(&path, &bytes).unwrap();
        let fp = fingerprint_weights(&path).unwrap();
        assert_eq!(fp.size_bytes, bytes.len() as u64);
        assert_eq!(fp.header_sha256, hex(&hashed.finalize()));
        assert_eq!(fp.file, "model.safetensors");

        std::fs::write(&path, [255u8; 12]).unwrap();
        assert!(fingerprint_weights(&path).is_err(), "a bogus header length");
    }

    #[test]
    fn sha256_of_a_known_string() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        std::fs::write(&path, "abc").unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
