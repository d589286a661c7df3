//! A small safetensors reader (header parsing with precise errors, tensors read as f32 or
//! i8) and writer (for Tandem's own int8 cache).
//!
//! The format is an 8-byte little-endian header length, a JSON header mapping tensor
//! names to `{dtype, shape, data_offsets}`, then the raw little-endian data. We parse it
//! ourselves (rather than through a crate) so every failure names the file and the tensor.
//! Sharded checkpoints list their files in `model.safetensors.index.json`.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use serde::Deserialize;

use crate::error::{ModelError, Result};

/// Headers larger than this are refused: a real header is a few hundred kilobytes.
const MAX_HEADER_BYTES: u64 = 100 * 1024 * 1024;

/// A `model.safetensors.index.json` larger than this is refused unread: a real one
/// lists a few thousand tensors in well under a megabyte.
const MAX_INDEX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Element type of a stored tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredDtype {
    F32,
    F16,
    BF16,
    /// Int8 values of a quantized matrix (Tandem's int8 cache); never read as f32.
    I8,
    /// Bytes (the packed int8 matrices of Tandem's int8 cache); never read as f32.
    U8,
    /// Anything else (ints, f64, fp8): readable as metadata, refused as weights.
    Other,
}

impl StoredDtype {
    fn parse(s: &str) -> Self {
        match s {
            "F32" => Self::F32,
            "F16" => Self::F16,
            "BF16" => Self::BF16,
            "I8" => Self::I8,
            "U8" => Self::U8,
            _ => Self::Other,
        }
    }

    fn size(self) -> Option<usize> {
        match self {
            Self::F32 => Some(4),
            Self::F16 | Self::BF16 => Some(2),
            Self::I8 | Self::U8 => Some(1),
            Self::Other => None,
        }
    }
}

#[derive(Debug, Deserialize)]
struct RawEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [usize; 2],
}

/// One tensor's place in a file.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    pub dtype: StoredDtype,
    pub dtype_name: String,
    pub shape: Vec<usize>,
    /// Byte range inside the data section.
    pub start: usize,
    pub end: usize,
}

/// One memory-mapped safetensors file.
pub struct SafetensorsFile {
    path: PathBuf,
    mmap: Mmap,
    data_start: usize,
    tensors: HashMap<String, TensorInfo>,
    /// The header's `__metadata__` string map (empty when absent or not strings).
    metadata: BTreeMap<String, String>,
}

impl SafetensorsFile {
    /// Opens and validates the header (offsets inside the file, sizes matching shapes).
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ModelError::MissingFile {
                    path: path.to_path_buf(),
                    what: "safetensors weights",
                }
            } else {
                ModelError::io(path, e)
            }
        })?;
        // SAFETY: the map is read-only; a file changed under us would give wrong
        // numbers, not memory unsafety in practice, and model files are not rewritten.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| ModelError::io(path, e))?;
        let corrupt = |reason: String| ModelError::CorruptSafetensors {
            path: path.to_path_buf(),
            reason,
        };
        if mmap.len() < 8 {
            return Err(corrupt(format!(
                "file is {} bytes, too short for the 8-byte header length",
                mmap.len()
            )));
        }
        let header_len = u64::from_le_bytes(mmap[..8].try_into().expect("8 bytes"));
        if header_len > MAX_HEADER_BYTES || 8 + header_len > mmap.len() as u64 {
            return Err(corrupt(format!(
                "header length {header_len} exceeds the file size {} (truncated or not a safetensors file)",
                mmap.len()
            )));
        }
        let data_start = 8 + header_len as usize;
        let header: BTreeMap<String, serde_json::Value> =
            serde_json::from_slice(&mmap[8..data_start])
                .map_err(|e| corrupt(format!("header is not valid JSON: {e}")))?;
        let data_len = mmap.len() - data_start;
        let mut tensors = HashMap::with_capacity(header.len());
        let mut metadata = BTreeMap::new();
        for (name, value) in header {
            if name == "__metadata__" {
                metadata = serde_json::from_value(value).unwrap_or_default();
                continue;
            }
            let raw: RawEntry = serde_json::from_value(value)
                .map_err(|e| corrupt(format!("entry for tensor `{name}`: {e}")))?;
            let dtype = StoredDtype::parse(&raw.dtype);
            // Checked: a shape whose product wraps around could otherwise match any
            // byte count, and the shape is what callers size buffers by.
            let elements = raw
                .shape
                .iter()
                .try_fold(1usize, |n, &dim| n.checked_mul(dim))
                .ok_or_else(|| {
                    corrupt(format!(
                        "tensor `{name}` has shape {:?}, too many elements to address",
                        raw.shape
                    ))
                })?;
            let [start, end] = raw.data_offsets;
            if start > end || end > data_len {
                return Err(corrupt(format!(
                    "tensor `{name}` spans bytes {start}..{end} but the data section has {data_len} bytes (truncated file?)"
                )));
            }
            if let Some(size) = dtype.size() {
                let expected = elements.checked_mul(size);
                if expected != Some(end - start) {
                    let expected = match expected {
                        Some(bytes) => bytes.to_string(),
                        None => "more than usize::MAX".into(),
                    };
                    return Err(corrupt(format!(
                        "tensor `{name}` has shape {:?} ({expected} bytes) but {} bytes of data",
                        raw.shape,
                        end - start
                    )));
                }
            }
            tensors.insert(
                name,
                TensorInfo {
                    dtype,
                    dtype_name: raw.dtype,
                    shape: raw.shape,
                    start,
                    end,
                },
            );
        }
        Ok(Self {
            path: path.to_path_buf(),
            mmap,
            data_start,
            tensors,
            metadata,
        })
    }

    /// The `__metadata__` entries of the header.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// Reads an I8 tensor (the values of a quantized matrix).
    pub fn read_i8(&self, name: &str) -> Result<(Vec<usize>, Vec<i8>)> {
        let info = self.info(name).ok_or_else(|| ModelError::MissingTensor {
            path: self.path.clone(),
            name: name.to_string(),
        })?;
        if info.dtype != StoredDtype::I8 {
            return Err(ModelError::CorruptSafetensors {
                path: self.path.clone(),
                reason: format!("tensor `{name}` has dtype {}, expected I8", info.dtype_name),
            });
        }
        let bytes = &self.mmap[self.data_start + info.start..self.data_start + info.end];
        Ok((info.shape.clone(), bytes.iter().map(|&b| b as i8).collect()))
    }

    /// The stored bytes of a tensor, as they lie in the file (the int8 cache's packed
    /// matrices; the caller checked the dtype and shape).
    pub fn raw_bytes(&self, name: &str) -> Result<&[u8]> {
        let info = self.info(name).ok_or_else(|| ModelError::MissingTensor {
            path: self.path.clone(),
            name: name.to_string(),
        })?;
        Ok(&self.mmap[self.data_start + info.start..self.data_start + info.end])
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Reads a tensor as f32 (bf16 and f16 widened exactly).
    pub fn read_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let info = self.info(name).ok_or_else(|| ModelError::MissingTensor {
            path: self.path.clone(),
            name: name.to_string(),
        })?;
        let bytes = &self.mmap[self.data_start + info.start..self.data_start + info.end];
        let values = match info.dtype {
            StoredDtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            StoredDtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            StoredDtype::BF16 => bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            StoredDtype::I8 | StoredDtype::U8 | StoredDtype::Other => {
                return Err(ModelError::TensorDtype {
                    path: self.path.clone(),
                    name: name.to_string(),
                    dtype: info.dtype_name.clone(),
                })
            }
        };
        Ok((info.shape.clone(), values))
    }
}

/// All weight files of a model: one `model.safetensors`, or the shards of an index.
pub struct WeightFiles {
    files: Vec<SafetensorsFile>,
    /// Tensor name → index into `files`.
    owner: HashMap<String, usize>,
    /// A GGUF file's tensors instead (then `files` is empty): read under the same
    /// checkpoint names, dequantized one at a time.
    gguf: Option<crate::formats::gguf_model::GgufWeights>,
    /// Checkpoint name → stored name, for a language model inside a multimodal
    /// checkpoint (Gemma 3's `language_model.model.…` on the hub, `model.language_model.…`
    /// as transformers 5 saves it): the loaders ask for `model.…` and `lm_head.weight`.
    aliases: HashMap<String, String>,
    /// Generated weights instead (then `files` is empty): see [`super::synthetic`].
    synthetic: Option<super::synthetic::SyntheticWeights>,
}

/// Where multimodal checkpoints keep their language model's `model.` tensors.
const LANGUAGE_MODEL_PREFIXES: [&str; 2] = ["language_model.model.", "model.language_model."];

/// The aliases (see [`WeightFiles::aliases`]) for the stored tensor names `names`:
/// none when the language model sits at the top level.
fn language_model_aliases<'a>(
    names: impl Iterator<Item = &'a str> + Clone,
) -> HashMap<String, String> {
    let mut aliases = HashMap::new();
    if names.clone().any(|n| n == "model.embed_tokens.weight") {
        return aliases;
    }
    let Some(prefix) = LANGUAGE_MODEL_PREFIXES.into_iter().find(|p| {
        names
            .clone()
            .any(|n| n == format!("{p}embed_tokens.weight"))
    }) else {
        return aliases;
    };
    for name in names {
        if let Some(rest) = name.strip_prefix(prefix) {
            aliases.insert(format!("model.{rest}"), name.to_string());
        } else if name == "language_model.lm_head.weight" {
            aliases.insert("lm_head.weight".to_string(), name.to_string());
        }
    }
    aliases
}

#[derive(Deserialize)]
struct ShardIndex {
    weight_map: BTreeMap<String, String>,
}

impl WeightFiles {
    /// Opens `model.safetensors`, or the shards listed in `model.safetensors.index.json`,
    /// or, when `dir` is a `.gguf` file, its tensors.
    pub fn open(dir: &Path) -> Result<Self> {
        if crate::formats::gguf::is_gguf_file(dir) {
            let file = crate::formats::gguf::GgufFile::open(dir)?;
            let config = crate::formats::gguf_model::model_config(&file)?;
            return Ok(Self {
                files: Vec::new(),
                owner: HashMap::new(),
                gguf: Some(crate::formats::gguf_model::GgufWeights::new(file, &config)),
                aliases: HashMap::new(),
                synthetic: None,
            });
        }
        let single = dir.join("model.safetensors");
        let index_path = dir.join("model.safetensors.index.json");
        let files = if single.exists() {
            vec![SafetensorsFile::open(&single)?]
        } else if index_path.exists() {
            let text =
                crate::config::read_text_limited(&index_path, "shard index", MAX_INDEX_FILE_BYTES)?;
            let index: ShardIndex =
                serde_json::from_str(&text).map_err(|source| ModelError::Json {
                    path: index_path.clone(),
                    source,
                })?;
            let mut shard_names: Vec<&String> = index.weight_map.values().collect();
            shard_names.sort();
            shard_names.dedup();
            let mut files = Vec::with_capacity(shard_names.len());
            for shard in shard_names {
                // The index is repo content: a name is joined onto the folder only if it
                // stays inside it, by the rule downloads use.
                if !tandem_paths::is_safe_relative_path(shard) || !shard.ends_with(".safetensors") {
                    let tensor = index
                        .weight_map
                        .iter()
                        .find(|(_, file)| *file == shard)
                        .map_or("", |(tensor, _)| tensor.as_str());
                    return Err(ModelError::field(
                        &index_path,
                        "weight_map",
                        format!(
                            "tensor `{tensor}` maps to {shard:?}, not a .safetensors file inside the model folder"
                        ),
                    ));
                }
                let path = dir.join(shard);
                if !path.exists() {
                    return Err(ModelError::MissingFile {
                        path,
                        what: "weight shard listed in model.safetensors.index.json",
                    });
                }
                files.push(SafetensorsFile::open(&path)?);
            }
            files
        } else {
            return Err(ModelError::MissingFile {
                path: single,
                what: "model weights (model.safetensors or model.safetensors.index.json)",
            });
        };
        let mut owner = HashMap::new();
        for (i, file) in files.iter().enumerate() {
            for name in file.names() {
                owner.insert(name.to_string(), i);
            }
        }
        let aliases = language_model_aliases(owner.keys().map(String::as_str));
        Ok(Self {
            files,
            owner,
            gguf: None,
            aliases,
            synthetic: None,
        })
    }

    /// A synthetic model's weights, generated as they are read.
    pub fn synthetic(weights: super::synthetic::SyntheticWeights) -> Self {
        Self {
            files: Vec::new(),
            owner: HashMap::new(),
            gguf: None,
            aliases: HashMap::new(),
            synthetic: Some(weights),
        }
    }

    /// The name a checkpoint tensor is stored under (see [`Self::aliases`]).
    fn stored_name<'a>(&'a self, name: &'a str) -> &'a str {
        self.aliases.get(name).map_or(name, String::as_str)
    }

    /// The GGUF file the weights come from, when they do.
    pub fn gguf(&self) -> Option<&crate::formats::gguf_model::GgufWeights> {
        self.gguf.as_ref()
    }

    /// The file a tensor lives in, or a `MissingTensor` error naming the checkpoint.
    fn file_of(&self, name: &str) -> Result<&SafetensorsFile> {
        match self.owner.get(self.stored_name(name)) {
            Some(&i) => Ok(&self.files[i]),
            None => Err(ModelError::MissingTensor {
                path: self.description(),
                name: name.to_string(),
            }),
        }
    }

    fn description(&self) -> PathBuf {
        if self.files.len() == 1 {
            self.files[0].path().to_path_buf()
        } else {
            self.files[0]
                .path()
                .with_file_name("model.safetensors.index.json")
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        if self.synthetic.is_some() {
            return true;
        }
        match &self.gguf {
            Some(gguf) => gguf.contains(name),
            None => self.owner.contains_key(self.stored_name(name)),
        }
    }

    /// Paths of the weight files, in shard order (the GGUF file).
    pub fn paths(&self) -> Vec<&Path> {
        match &self.gguf {
            Some(gguf) => vec![gguf.file().path()],
            None => self.files.iter().map(SafetensorsFile::path).collect(),
        }
    }

    /// Reads a tensor as f32 and checks its shape.
    pub fn read(&self, name: &str, expected_shape: &[usize]) -> Result<Vec<f32>> {
        if let Some(synthetic) = &self.synthetic {
            return synthetic.read(name, expected_shape);
        }
        if let Some(gguf) = &self.gguf {
            return gguf.read(name, expected_shape);
        }
        let file = self.file_of(name)?;
        let name = self.stored_name(name);
        let info = file
            .info(name)
            .expect("owner map is built from the headers");
        if info.shape != expected_shape {
            return Err(ModelError::TensorShape {
                path: file.path().to_path_buf(),
                name: name.to_string(),
                expected: expected_shape.to_vec(),
                actual: info.shape.clone(),
            });
        }
        Ok(file.read_f32(name)?.1)
    }

    /// Dtype of the first float weight, for reporting what is on disk.
    pub fn stored_dtype(&self) -> Option<StoredDtype> {
        self.files
            .iter()
            .flat_map(|f| f.tensors.values())
            .map(|t| t.dtype)
            .find(|d| matches!(d, StoredDtype::F32 | StoredDtype::F16 | StoredDtype::BF16))
    }
}

/// One tensor to write: name, safetensors dtype name, shape and little-endian bytes.
pub struct TensorToWrite<'a> {
    pub name: String,
    pub dtype: &'static str,
    pub shape: Vec<usize>,
    pub bytes: std::borrow::Cow<'a, [u8]>,
}

/// Writes a safetensors file (header with `__metadata__`, then the tensors in order),
/// streaming the data so no second copy of it is built in memory. Not atomic: callers
/// that replace a file write a temporary and rename it.
pub fn write_safetensors(
    path: &Path,
    tensors: &[TensorToWrite<'_>],
    metadata: &BTreeMap<String, String>,
) -> std::io::Result<()> {
    use std::io::Write;
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!(metadata));
    let mut offset = 0usize;
    for t in tensors {
        let end = offset + t.bytes.len();
        header.insert(
            t.name.clone(),
            serde_json::json!({"dtype": t.dtype, "shape": t.shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut header = serde_json::to_vec(&header).map_err(std::io::Error::other)?;
    // The format pads the header with spaces so the data section starts 8-aligned.
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut out = std::io::BufWriter::with_capacity(1 << 20, File::create(path)?);
    out.write_all(&(header.len() as u64).to_le_bytes())?;
    out.write_all(&header)?;
    for t in tensors {
        out.write_all(&t.bytes)?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes a safetensors file from (name, dtype, shape, bytes) entries.
    pub(crate) fn write_safetensors(path: &Path, entries: &[(&str, &str, Vec<usize>, Vec<u8>)]) {
        let mut header = serde_json::Map::new();
        let mut data = Vec::new();
        for (name, dtype, shape, bytes) in entries {
            let start = data.len();
            data.extend_from_slice(bytes);
            header.insert(
                name.to_string(),
                serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [start, data.len()]}),
            );
        }
        let header = serde_json::to_vec(&header).unwrap();
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&header);
        out.extend_from_slice(&data);
        std::fs::write(path, out).unwrap();
    }

    fn f32_bytes(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn reads_f32_bf16_and_f16() {
        let dir = tempdir();
        let path = dir.join("model.safetensors");
        let bf: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
            .collect();
        let hf: Vec<u8> = [0.25f32, 3.0]
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect();
        write_safetensors(
            &path,
            &[
                ("a", "F32", vec![2], f32_bytes(&[1.0, 2.0])),
                ("b", "BF16", vec![2], bf),
                ("c", "F16", vec![1, 2], hf),
            ],
        );
        let w = WeightFiles::open(&dir).unwrap();
        assert_eq!(w.read("a", &[2]).unwrap(), vec![1.0, 2.0]);
        assert_eq!(w.read("b", &[2]).unwrap(), vec![1.5, -2.0]);
        assert_eq!(w.read("c", &[1, 2]).unwrap(), vec![0.25, 3.0]);
    }

    #[test]
    fn missing_tensor_and_wrong_shape_name_the_tensor() {
        let dir = tempdir();
        write_safetensors(
            &dir.join("model.safetensors"),
            &[("w", "F32", vec![2], f32_bytes(&[1.0, 2.0]))],
        );
        let w = WeightFiles::open(&dir).unwrap();
        let err = w.read("nope", &[2]).unwrap_err().to_string();
        assert!(
            err.contains("`nope`") && err.contains("model.safetensors"),
            "{err}"
        );
        let err = w.read("w", &[3]).unwrap_err();
        assert!(
            matches!(&err, ModelError::TensorShape { name, expected, actual, .. }
                if name == "w" && expected == &[3] && actual == &[2]),
            "{err}"
        );
    }

    #[test]
    fn truncated_and_corrupt_headers_are_clear_errors() {
        let dir = tempdir();
        let path = dir.join("model.safetensors");
        write_safetensors(&path, &[("w", "F32", vec![4], f32_bytes(&[1.0; 4]))]);
        let full = std::fs::read(&path).unwrap();

        // Cut inside the data section.
        std::fs::write(&path, &full[..full.len() - 3]).unwrap();
        let err = SafetensorsFile::open(&path).err().unwrap().to_string();
        assert!(err.contains("truncated") && err.contains("`w`"), "{err}");

        // Cut inside the header.
        std::fs::write(&path, &full[..12]).unwrap();
        let err = SafetensorsFile::open(&path).err().unwrap().to_string();
        assert!(err.contains("header length"), "{err}");

        // Too short for the length prefix.
        std::fs::write(&path, [1u8, 2, 3]).unwrap();
        let err = SafetensorsFile::open(&path).err().unwrap().to_string();
        assert!(err.contains("too short"), "{err}");

        // Garbage JSON.
        let mut bad = 4u64.to_le_bytes().to_vec();
        bad.extend_from_slice(b"{{{{");
        std::fs::write(&path, bad).unwrap();
        let err = SafetensorsFile::open(&path).err().unwrap();
        assert!(matches!(err, ModelError::CorruptSafetensors { .. }));
        assert!(err.to_string().contains("not valid JSON"), "{err}");
    }

    #[test]
    fn missing_weights_and_missing_shard() {
        let dir = tempdir();
        let err = WeightFiles::open(&dir).err().unwrap();
        assert!(matches!(err, ModelError::MissingFile { .. }), "{err}");
        std::fs::write(
            dir.join("model.safetensors.index.json"),
            r#"{"weight_map": {"w": "model-00001-of-00002.safetensors"}}"#,
        )
        .unwrap();
        let err = WeightFiles::open(&dir).err().unwrap().to_string();
        assert!(err.contains("model-00001-of-00002.safetensors"), "{err}");
    }

    /// A header whose declared sizes only match after wrapping around `usize`.
    #[test]
    fn shapes_whose_element_count_overflows_are_corrupt() {
        let dir = tempdir();
        let path = dir.join("model.safetensors");
        let huge = 1usize << 32;
        for shape in [vec![huge, huge, 1], vec![usize::MAX, 2]] {
            write_safetensors(&path, &[("w", "F32", shape.clone(), vec![])]);
            let err = SafetensorsFile::open(&path).err().unwrap();
            assert!(
                matches!(err, ModelError::CorruptSafetensors { .. }),
                "{shape:?}: {err}"
            );
            assert!(err.to_string().contains("`w`"), "{err}");
        }
        // Metadata-only dtypes get the same check: their shapes are reported too.
        write_safetensors(&path, &[("w", "I64", vec![huge, huge], vec![])]);
        assert!(SafetensorsFile::open(&path).is_err());
    }

    #[test]
    fn shard_names_that_leave_the_model_folder_are_refused() {
        let root = tempdir();
        let dir = root.join("model");
        std::fs::create_dir_all(&dir).unwrap();
        // A valid safetensors file next to the model folder, and one at an absolute path.
        let outside = root.join("outside.safetensors");
        write_safetensors(&outside, &[("w", "F32", vec![1], f32_bytes(&[1.0]))]);
        for shard in [
            "../outside.safetensors".to_string(),
            outside.display().to_string(),
            "sub/../../outside.safetensors".to_string(),
            "model.bin".to_string(),
        ] {
            std::fs::write(
                dir.join("model.safetensors.index.json"),
                serde_json::json!({"weight_map": {"w": shard}}).to_string(),
            )
            .unwrap();
            let err = WeightFiles::open(&dir).err().expect(&shard);
            assert!(matches!(err, ModelError::BadField { .. }), "{shard}: {err}");
            let text = err.to_string();
            assert!(
                text.contains("model.safetensors.index.json") && text.contains(&shard),
                "{text}"
            );
        }
    }

    #[test]
    fn writer_round_trips_i8_f32_and_metadata() {
        let dir = tempdir();
        let path = dir.join("q.safetensors");
        let q: Vec<i8> = vec![-127, 0, 5, 127, -1, 3];
        let scales = [0.5f32, 2.0];
        let metadata = BTreeMap::from([("format".to_string(), "x".to_string())]);
        super::write_safetensors(
            &path,
            &[
                TensorToWrite {
                    name: "w.q".into(),
                    dtype: "I8",
                    shape: vec![3, 2],
                    bytes: q.iter().map(|&v| v as u8).collect::<Vec<_>>().into(),
                },
                TensorToWrite {
                    name: "w.scale".into(),
                    dtype: "F32",
                    shape: vec![2],
                    bytes: f32_bytes(&scales).into(),
                },
            ],
            &metadata,
        )
        .unwrap();
        let file = SafetensorsFile::open(&path).unwrap();
        assert_eq!(file.metadata(), &metadata);
        assert_eq!(file.read_i8("w.q").unwrap(), (vec![3, 2], q));
        assert_eq!(file.read_f32("w.scale").unwrap().1, scales.to_vec());
        assert!(file.read_i8("w.scale").is_err());
        assert!(matches!(
            file.read_f32("w.q"),
            Err(ModelError::TensorDtype { .. })
        ));
        let header_len = u64::from_le_bytes(std::fs::read(&path).unwrap()[..8].try_into().unwrap());
        assert_eq!(header_len % 8, 0);
    }

    #[test]
    fn integer_tensor_is_refused_as_weight() {
        let dir = tempdir();
        write_safetensors(
            &dir.join("model.safetensors"),
            &[("w", "I32", vec![1], vec![0, 0, 0, 0])],
        );
        let w = WeightFiles::open(&dir).unwrap();
        let err = w.read("w", &[1]).unwrap_err().to_string();
        assert!(err.contains("I32") && err.contains("`w`"), "{err}");
    }

    pub(crate) fn tempdir() -> PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tandem-model-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
