//! Int8 weights cached on disk beside the model, so quantization happens once.
//!
//! The cache is one safetensors file, `<model dir>/.tandem/int8-v1.safetensors` (or, when
//! the model folder is read-only, `$XDG_CACHE_HOME/tandem/int8/<hash of the folder
//! path>/int8-v1.safetensors`). For every linear layer it holds the packed form the CPU
//! kernels read ([`crate::quant::packed`]), fused as Tandem uses it: `<name>.q` (U8,
//! `[tiles, blocks, 256]`, `q + 128`), `<name>.scale` (F16, `[tiles, blocks, 16]`, each
//! block's scale relative to its column's) and `<name>.column_scale` (F32, `[tiles ·
//! 16]`); `__metadata__` names the format, its version, the quantization scheme, layout
//! and block size, the source fingerprint, and (for the reader's information) what the
//! calibration pass ran.
//! Loading from it copies the packed bytes as they are: nothing is quantized or
//! repacked, and the f32 weights of the linears are never materialised, which is where
//! the load-time and peak-memory savings come from.
//!
//! The fingerprint of the source is deliberately cheap. Hashing the whole checkpoint
//! would read every byte on every load (a second per GB), defeating the cache; instead
//! it covers `config.json`, and per weight file its name, size, modification time, full
//! header (every tensor's name, dtype, shape and offsets) and the first and last MiB of
//! data. A re-download, a conversion or a `touch` changes it; an in-place edit of bytes
//! in the middle of a file that also restores the mtime would not, and nothing rewrites
//! model files that way.
//!
//! Writes go to a temporary file that is renamed into place, so a reader never sees a
//! partial cache and two processes quantizing at once both leave a valid file. A stale
//! or unreadable cache is reported and rebuilt, never an error.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{ModelError, Result};
use crate::families::linears::LinearSpec;
use crate::formats::safetensors::{write_safetensors, SafetensorsFile, TensorToWrite, WeightFiles};
use crate::quant::calibration::Importance;
use crate::quant::packed::{AlignedBytes, PackedInt8, BLOCK_BYTES, TILE};
use crate::quant::{scale_rows, BLOCK_ROWS};

/// The name stays when the format version changes, so a stale cache is replaced rather
/// than left on disk beside the new one.
pub const CACHE_FILE_NAME: &str = "int8-v1.safetensors";
const FORMAT: &str = "tandem-int8";
/// Bump when the layout of the cached tensors changes (fusion order, names, scheme).
/// Version 2: blocks of 16 rows, scales chosen by the importance-weighted search.
/// Version 3: the packed layout of the CPU kernels, f16 block scales relative to f32
/// column scales.
const FORMAT_VERSION: &str = "3";
const SCHEME: &str = "symmetric-int8-per-block-importance-weighted";
const LAYOUT: &str = "tiles16-blocks16-vnni4-u8offset-f16rel";
/// Bytes of data hashed at each end of a weight file by the fingerprint.
const FINGERPRINT_EDGE_BYTES: u64 = 1 << 20;

/// Why the cache was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheMiss {
    /// No cache file yet.
    Absent,
    /// A cache for another version of the source (or of the cache format).
    Stale(String),
    /// A cache file that could not be read or does not hold what the model needs.
    Corrupt(String),
}

/// What loading int8 weights did with the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Read from this file; nothing was quantized.
    Loaded(PathBuf),
    /// Quantized from the source and written to `path`.
    Written { path: PathBuf, miss: CacheMiss },
    /// Quantized from the source; no cache location was writable.
    NotWritten { miss: CacheMiss, error: String },
}

/// The int8 matrices of a model's linears, handed out one by one as the model is built.
pub struct QuantizedWeights {
    source: Source,
}

enum Source {
    /// A validated cache file; matrices are copied out of the map on demand.
    Cached(SafetensorsFile),
    /// Freshly quantized; matrices are moved out.
    Fresh(HashMap<String, PackedInt8>),
}

impl QuantizedWeights {
    /// Quantizes every linear of `specs` from the checkpoint, without touching the cache.
    pub fn quantize(
        weights: &WeightFiles,
        specs: &[LinearSpec],
        importance: &Importance,
    ) -> Result<Self> {
        Ok(Self {
            source: Source::Fresh(quantize_all(weights, specs, importance)?),
        })
    }

    /// The packed int8 matrix of one linear layer (each can be taken once).
    pub fn take(&mut self, spec: &LinearSpec) -> Result<PackedInt8> {
        match &mut self.source {
            Source::Fresh(matrices) => matrices.remove(&spec.name).ok_or_else(|| {
                ModelError::InvalidArgument(format!(
                    "int8 weights of `{}` were not quantized (or already taken)",
                    spec.name
                ))
            }),
            Source::Cached(file) => read_matrix(file, spec),
        }
    }
}

/// The int8 weights of every linear in `specs`: from the cache when a valid one exists,
/// else quantized from `weights` (with the importance `calibrate` measures, run only
/// then) and written to the cache for the next load.
pub fn load_or_quantize(
    model_dir: &Path,
    weights: &WeightFiles,
    specs: &[LinearSpec],
    calibrate: impl FnOnce() -> Result<Importance>,
) -> Result<(QuantizedWeights, CacheOutcome)> {
    let fingerprint = source_fingerprint(model_dir, weights)?;
    let locations = cache_locations(model_dir);
    let mut unusable = Vec::new();
    for path in locations.iter().filter(|p| p.exists()) {
        match open_valid(path, &fingerprint, specs) {
            Ok(file) => {
                let weights = QuantizedWeights {
                    source: Source::Cached(file),
                };
                return Ok((weights, CacheOutcome::Loaded(path.clone())));
            }
            Err(miss) => unusable.push((path, miss)),
        }
    }
    for (path, miss) in &unusable {
        if let CacheMiss::Stale(reason) | CacheMiss::Corrupt(reason) = miss {
            eprintln!("tandem: int8 cache {} not used: {reason}", path.display());
        }
    }
    // A corrupt cache outranks a stale one in the report: it needs attention.
    let miss = unusable
        .into_iter()
        .map(|(_, miss)| miss)
        .max_by_key(|miss| matches!(miss, CacheMiss::Corrupt(_)))
        .unwrap_or(CacheMiss::Absent);

    let importance = calibrate()?;
    let matrices = quantize_all(weights, specs, &importance)?;
    let mut errors = Vec::new();
    let mut outcome = None;
    for path in &locations {
        match write_cache(
            path,
            &fingerprint,
            specs,
            &matrices,
            &importance.description,
        ) {
            Ok(()) => {
                outcome = Some(CacheOutcome::Written {
                    path: path.clone(),
                    miss: miss.clone(),
                });
                break;
            }
            Err(e) => errors.push(format!("{}: {e}", path.display())),
        }
    }
    let outcome = outcome.unwrap_or_else(|| {
        let error = errors.join("; ");
        eprintln!(
            "tandem: could not write the int8 cache ({error}); the next load quantizes again"
        );
        CacheOutcome::NotWritten { miss, error }
    });
    let weights = QuantizedWeights {
        source: Source::Fresh(matrices),
    };
    Ok((weights, outcome))
}

/// Quantizes every linear of `specs`, one at a time (one part's f32 values in memory).
fn quantize_all(
    weights: &WeightFiles,
    specs: &[LinearSpec],
    importance: &Importance,
) -> Result<HashMap<String, PackedInt8>> {
    specs
        .iter()
        .map(|spec| {
            let matrix = spec.quantize(weights, importance.of(&spec.name))?;
            Ok((spec.name.clone(), matrix))
        })
        .collect()
}

/// Where the cache may live, in the order they are tried: beside the model, then in the
/// user's cache directory (for read-only model folders).
pub fn cache_locations(model_dir: &Path) -> Vec<PathBuf> {
    // Beside a model folder; never beside a GGUF file, which lives in another tool's
    // folder (LM Studio's, Ollama's blobs) that Tandem does not write into.
    let mut locations = if model_dir.is_dir() {
        vec![model_dir.join(".tandem").join(CACHE_FILE_NAME)]
    } else {
        Vec::new()
    };
    let cache_home = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    if let Some(cache_home) = cache_home {
        let absolute = std::fs::canonicalize(model_dir).unwrap_or_else(|_| model_dir.into());
        let key = hex(&Sha256::digest(absolute.to_string_lossy().as_bytes())[..8]);
        locations.push(
            cache_home
                .join("tandem")
                .join("int8")
                .join(key)
                .join(CACHE_FILE_NAME),
        );
    }
    locations
}

/// A cheap fingerprint of the checkpoint (see the module docs for what it covers).
pub fn source_fingerprint(model_dir: &Path, weights: &WeightFiles) -> Result<String> {
    let mut hasher = Sha256::new();
    hasher.update(b"tandem-int8-source-v1\n");
    let config = model_dir.join("config.json");
    if let Ok(bytes) = std::fs::read(&config) {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    for path in weights.paths() {
        fingerprint_file(path, &mut hasher).map_err(|e| ModelError::io(path, e))?;
    }
    Ok(hex(&hasher.finalize()))
}

fn fingerprint_file(path: &Path, hasher: &mut Sha256) -> std::io::Result<()> {
    let mut file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    let size = meta.len();
    let mtime = meta
        .modified()?
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    hasher.update(name.as_bytes());
    hasher.update(size.to_le_bytes());
    hasher.update(mtime.to_le_bytes());
    // The header (the file opened as safetensors, so its length is sane) plus the
    // first MiB of data, then the last MiB. A GGUF file's header has no length up front:
    // its first 8 MiB (metadata, tensor infos, the first tensors) stand for it.
    let mut len = [0u8; 8];
    file.read_exact(&mut len)?;
    let head = if &len[..4] == b"GGUF" {
        (8 * FINGERPRINT_EDGE_BYTES).min(size)
    } else {
        (8 + u64::from_le_bytes(len) + FINGERPRINT_EDGE_BYTES).min(size)
    };
    hash_range(&mut file, 0, head, hasher)?;
    let tail_start = size.saturating_sub(FINGERPRINT_EDGE_BYTES).max(head);
    hash_range(&mut file, tail_start, size, hasher)
}

fn hash_range(
    file: &mut std::fs::File,
    start: u64,
    end: u64,
    hasher: &mut Sha256,
) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(start))?;
    let mut buffer = vec![0u8; (end - start) as usize];
    file.read_exact(&mut buffer)?;
    hasher.update(&buffer);
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn expected_metadata(fingerprint: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("format".into(), FORMAT.into()),
        ("version".into(), FORMAT_VERSION.into()),
        ("scheme".into(), SCHEME.into()),
        ("layout".into(), LAYOUT.into()),
        ("block_rows".into(), BLOCK_ROWS.to_string()),
        ("source_fingerprint".into(), fingerprint.into()),
    ])
}

/// Opens a cache file and checks that it belongs to this source and holds a well-formed
/// matrix for every spec (dtypes, shapes, finite positive scales), so that building the
/// model from it cannot fail halfway.
fn open_valid(
    path: &Path,
    fingerprint: &str,
    specs: &[LinearSpec],
) -> Result<SafetensorsFile, CacheMiss> {
    let file = SafetensorsFile::open(path).map_err(|e| CacheMiss::Corrupt(e.to_string()))?;
    let metadata = file.metadata();
    for (key, want) in expected_metadata(fingerprint) {
        let found = metadata.get(&key).map(String::as_str);
        if found != Some(want.as_str()) {
            let reason = format!("`{key}` is {found:?}, this source needs {want:?}");
            return Err(if key == "format" {
                CacheMiss::Corrupt(reason)
            } else {
                CacheMiss::Stale(reason)
            });
        }
    }
    for spec in specs {
        let (k, m) = (spec.in_features, spec.out_features());
        let (blocks, tiles) = (scale_rows(k), m.div_ceil(TILE));
        let q = file.info(&format!("{}.q", spec.name));
        let s = file.info(&format!("{}.scale", spec.name));
        let c = file.info(&format!("{}.column_scale", spec.name));
        let well_formed = matches!(q, Some(i) if i.dtype_name == "U8" && i.shape == [tiles, blocks, BLOCK_BYTES])
            && matches!(s, Some(i) if i.dtype_name == "F16" && i.shape == [tiles, blocks, TILE])
            && matches!(c, Some(i) if i.dtype_name == "F32" && i.shape == [tiles * TILE]);
        if !well_formed {
            return Err(CacheMiss::Corrupt(format!(
                "`{}` is missing or not a packed U8 [{tiles}, {blocks}, {BLOCK_BYTES}] matrix with F16 [{tiles}, {blocks}, {TILE}] and F32 [{}] scales",
                spec.name,
                tiles * TILE
            )));
        }
        let (_, column_scales) = file
            .read_f32(&format!("{}.column_scale", spec.name))
            .map_err(|e| CacheMiss::Corrupt(e.to_string()))?;
        if let Some(bad) = column_scales[..m]
            .iter()
            .find(|s| !(s.is_finite() && **s > 0.0))
        {
            return Err(CacheMiss::Corrupt(format!(
                "`{}` has column scale {bad}",
                spec.name
            )));
        }
        let scales = file
            .raw_bytes(&format!("{}.scale", spec.name))
            .map_err(|e| CacheMiss::Corrupt(e.to_string()))?;
        let bad_scale = scales
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]))
            .find(|s| !(s.is_finite() && s.to_f32() >= 0.0));
        if let Some(bad) = bad_scale {
            return Err(CacheMiss::Corrupt(format!(
                "`{}` has block scale {bad}",
                spec.name
            )));
        }
    }
    Ok(file)
}

fn read_matrix(file: &SafetensorsFile, spec: &LinearSpec) -> Result<PackedInt8> {
    let weights = file.raw_bytes(&format!("{}.q", spec.name))?;
    let scales = file.raw_bytes(&format!("{}.scale", spec.name))?;
    let (_, column_scales) = file.read_f32(&format!("{}.column_scale", spec.name))?;
    Ok(PackedInt8 {
        in_features: spec.in_features,
        out_features: spec.out_features(),
        weights: AlignedBytes::from_slice(weights),
        scales: scales
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect(),
        column_scales,
    })
}

/// Writes the cache atomically: a temporary file in the same folder, renamed into place.
fn write_cache(
    path: &Path,
    fingerprint: &str,
    specs: &[LinearSpec],
    matrices: &HashMap<String, PackedInt8>,
    calibration: &str,
) -> std::io::Result<()> {
    let dir = path.parent().expect("cache paths have a folder");
    std::fs::create_dir_all(dir)?;
    let mut tensors = Vec::with_capacity(3 * specs.len());
    for spec in specs {
        let matrix = &matrices[&spec.name];
        let (blocks, tiles) = (matrix.blocks(), matrix.tiles());
        tensors.push(TensorToWrite {
            name: format!("{}.q", spec.name),
            dtype: "U8",
            shape: vec![tiles, blocks, BLOCK_BYTES],
            // Borrowed: the values are written as they lie, not copied first.
            bytes: Cow::Borrowed(matrix.weights.as_slice()),
        });
        tensors.push(TensorToWrite {
            name: format!("{}.scale", spec.name),
            dtype: "F16",
            shape: vec![tiles, blocks, TILE],
            bytes: Cow::Owned(matrix.scales.iter().flat_map(|s| s.to_le_bytes()).collect()),
        });
        tensors.push(TensorToWrite {
            name: format!("{}.column_scale", spec.name),
            dtype: "F32",
            shape: vec![tiles * TILE],
            bytes: Cow::Owned(
                matrix
                    .column_scales
                    .iter()
                    .flat_map(|s| s.to_le_bytes())
                    .collect(),
            ),
        });
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let temp = dir.join(format!(
        ".{CACHE_FILE_NAME}.tmp-{}-{nanos}",
        std::process::id()
    ));
    let mut metadata = expected_metadata(fingerprint);
    metadata.insert("calibration".into(), calibration.into());
    let written =
        write_safetensors(&temp, &tensors, &metadata).and_then(|()| std::fs::rename(&temp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}
