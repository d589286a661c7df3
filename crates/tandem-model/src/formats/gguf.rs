//! GGUF files (llama.cpp's format, which LM Studio and Ollama store models in): the
//! container, read from a memory map with every length and offset checked against the
//! file before anything is allocated or sliced.
//!
//! Layout (little-endian, versions 2 and 3; version 1 used 32-bit counts and is gone):
//!
//! ```text
//! "GGUF" | version u32 | tensor count u64 | metadata count u64
//! metadata: key (string) | value type u32 | value
//! tensor infos: name (string) | dims u32 | dims × u64 | type u32 | offset u64
//! padding to `general.alignment` (default 32)
//! tensor data: each tensor at its offset from here, aligned
//! ```
//!
//! A string is a u64 byte length and that many UTF-8 bytes; an array is an element type
//! u32, a u64 count and the elements. A file is untrusted input: a declared length or
//! count is believed only as far as the bytes left in the file can hold it, so a
//! hostile header can neither make the reader allocate beyond the file's own size nor
//! read past its end.
//!
//! This module reads the container only; turning metadata into a model configuration
//! and tensors into weights is the loader's job.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::error::{ModelError, Result};

const MAGIC: &[u8; 4] = b"GGUF";
/// The alignment of tensor data when `general.alignment` does not say.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Dimensions a tensor may have (ggml's `GGML_MAX_DIMS`).
const MAX_DIMS: usize = 4;
/// Arrays inside arrays: real files nest at most once; the bound keeps recursion shallow.
const MAX_NESTING: usize = 4;

/// Whether `path` is a GGUF file (it starts with the magic; Ollama's blobs have no
/// `.gguf` name), which Tandem loads wherever a model folder is accepted.
pub fn is_gguf_file(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    path.is_file()
        && File::open(path)
            .and_then(|mut f| f.read_exact(&mut magic))
            .is_ok()
        && &magic == MAGIC
}

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Vec<GgufValue>),
}

impl GgufValue {
    /// The value as an unsigned integer, when it is a non-negative integer of any width.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::U8(v) => Some(v.into()),
            Self::U16(v) => Some(v.into()),
            Self::U32(v) => Some(v.into()),
            Self::U64(v) => Some(v),
            Self::I8(v) => u64::try_from(v).ok(),
            Self::I16(v) => u64::try_from(v).ok(),
            Self::I32(v) => u64::try_from(v).ok(),
            Self::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a float, when it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::F32(v) => Some(v.into()),
            Self::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64).or(match *self {
                Self::I8(v) => Some(v.into()),
                Self::I16(v) => Some(v.into()),
                Self::I32(v) => Some(v.into()),
                Self::I64(v) => Some(v as f64),
                _ => None,
            }),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[GgufValue]> {
        match self {
            Self::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::U8(_) => "u8",
            Self::I8(_) => "i8",
            Self::U16(_) => "u16",
            Self::I16(_) => "i16",
            Self::U32(_) => "u32",
            Self::I32(_) => "i32",
            Self::U64(_) => "u64",
            Self::I64(_) => "i64",
            Self::F32(_) => "f32",
            Self::F64(_) => "f64",
            Self::Bool(_) => "bool",
            Self::String(_) => "string",
            Self::Array(_) => "array",
        }
    }
}

/// The storage type of a tensor: ggml's type ids for what published files use. Other
/// ids are kept as [`GgmlType::Other`] so the file still opens and the loader can name
/// the type it does not support.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
    BF16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
    Other(u32),
}

impl GgmlType {
    /// The type with ggml's id `id`.
    pub fn from_id(id: u32) -> Self {
        match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            6 => Self::Q5_0,
            7 => Self::Q5_1,
            8 => Self::Q8_0,
            10 => Self::Q2K,
            11 => Self::Q3K,
            12 => Self::Q4K,
            13 => Self::Q5K,
            14 => Self::Q6K,
            30 => Self::BF16,
            other => Self::Other(other),
        }
    }

    /// ggml's type id.
    pub fn id(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_0 => 2,
            Self::Q4_1 => 3,
            Self::Q5_0 => 6,
            Self::Q5_1 => 7,
            Self::Q8_0 => 8,
            Self::Q2K => 10,
            Self::Q3K => 11,
            Self::Q4K => 12,
            Self::Q5K => 13,
            Self::Q6K => 14,
            Self::BF16 => 30,
            Self::Other(id) => id,
        }
    }

    /// ggml's name for the type (`Q4_K`), as llama.cpp prints it.
    pub fn name(self) -> String {
        match self {
            Self::F32 => "F32".into(),
            Self::F16 => "F16".into(),
            Self::BF16 => "BF16".into(),
            Self::Q4_0 => "Q4_0".into(),
            Self::Q4_1 => "Q4_1".into(),
            Self::Q5_0 => "Q5_0".into(),
            Self::Q5_1 => "Q5_1".into(),
            Self::Q8_0 => "Q8_0".into(),
            Self::Q2K => "Q2_K".into(),
            Self::Q3K => "Q3_K".into(),
            Self::Q4K => "Q4_K".into(),
            Self::Q5K => "Q5_K".into(),
            Self::Q6K => "Q6_K".into(),
            Self::Other(id) => format!("ggml type {id}"),
        }
    }

    /// Elements per block and bytes per block (`None`: a type this reader cannot size).
    pub fn block(self) -> Option<(u64, u64)> {
        Some(match self {
            Self::F32 => (1, 4),
            Self::F16 | Self::BF16 => (1, 2),
            Self::Q4_0 => (32, 18),
            Self::Q4_1 => (32, 20),
            Self::Q5_0 => (32, 22),
            Self::Q5_1 => (32, 24),
            Self::Q8_0 => (32, 34),
            Self::Q2K => (256, 84),
            Self::Q3K => (256, 110),
            Self::Q4K => (256, 144),
            Self::Q5K => (256, 176),
            Self::Q6K => (256, 210),
            Self::Other(_) => return None,
        })
    }
}

/// One tensor's description and place in the data section.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufTensorInfo {
    pub name: String,
    /// GGUF order: `dims[0]` is the fastest-varying (a `[out, in]` matrix is `[in, out]`).
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Byte offset from the start of the data section.
    pub offset: u64,
    /// Bytes the tensor takes (`None` for a type this reader cannot size).
    pub size: Option<u64>,
}

impl GgufTensorInfo {
    pub fn elements(&self) -> u64 {
        // Checked when the file was opened.
        self.dims.iter().product()
    }
}

/// An open GGUF file: metadata and tensor infos parsed, tensor data memory-mapped.
pub struct GgufFile {
    path: PathBuf,
    mmap: Mmap,
    version: u32,
    metadata: BTreeMap<String, GgufValue>,
    tensors: Vec<GgufTensorInfo>,
    data_start: u64,
    alignment: u64,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Opens and validates a GGUF file: header, every metadata value, every tensor's
    /// shape, type and byte range (inside the file, aligned, not overlapping another).
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ModelError::MissingFile {
                    path: path.to_path_buf(),
                    what: "GGUF model file",
                }
            } else {
                ModelError::io(path, e)
            }
        })?;
        // SAFETY: read-only map of a file that is not rewritten while a model loads (as
        // for safetensors).
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| ModelError::io(path, e))?;
        let parsed = parse(&mmap).map_err(|reason| ModelError::CorruptGguf {
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            mmap,
            version: parsed.version,
            metadata: parsed.metadata,
            tensors: parsed.tensors,
            data_start: parsed.data_start,
            alignment: parsed.alignment,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    pub fn metadata(&self) -> &BTreeMap<String, GgufValue> {
        &self.metadata
    }

    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.get(key)
    }

    /// `general.architecture` (`llama`, `qwen2`, …), the prefix of the model's keys.
    pub fn architecture(&self) -> Option<&str> {
        self.get("general.architecture").and_then(GgufValue::as_str)
    }

    pub fn tensors(&self) -> &[GgufTensorInfo] {
        &self.tensors
    }

    pub fn tensor(&self, name: &str) -> Option<&GgufTensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The bytes of a tensor (an error for a type this reader cannot size).
    pub fn tensor_bytes(&self, tensor: &GgufTensorInfo) -> Result<&[u8]> {
        let size = tensor.size.ok_or_else(|| ModelError::CorruptGguf {
            path: self.path.clone(),
            reason: format!(
                "tensor `{}` has unsupported tensor type {} (supported: {})",
                tensor.name,
                tensor.ggml_type.name(),
                crate::quant::ggml::SUPPORTED
            ),
        })?;
        // In range: checked when the file was opened.
        let start = (self.data_start + tensor.offset) as usize;
        Ok(&self.mmap[start..start + size as usize])
    }
}

/// What [`parse`] finds.
struct Parsed {
    version: u32,
    metadata: BTreeMap<String, GgufValue>,
    tensors: Vec<GgufTensorInfo>,
    data_start: u64,
    alignment: u64,
}

/// A cursor over the file's bytes whose every read is checked against the end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(
        &mut self,
        n: usize,
        what: &dyn Fn() -> String,
    ) -> std::result::Result<&'a [u8], String> {
        if n > self.left() {
            return Err(format!(
                "{} needs {n} bytes at offset {} but the file ends after {} more (truncated?)",
                what(),
                self.at,
                self.left()
            ));
        }
        let out = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }

    fn array<const N: usize>(
        &mut self,
        what: &dyn Fn() -> String,
    ) -> std::result::Result<[u8; N], String> {
        Ok(self.take(N, what)?.try_into().expect("N bytes"))
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> std::result::Result<u32, String> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> std::result::Result<u64, String> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A length-prefixed UTF-8 string; the length is believed only up to the bytes left.
    fn string(&mut self, what: &dyn Fn() -> String) -> std::result::Result<String, String> {
        let len = self.u64(what)?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&n| n <= self.left())
            .ok_or_else(|| {
                format!(
                    "{} declares a string of {len} bytes at offset {}, more than the {} bytes left in the file",
                    what(),
                    self.at,
                    self.left()
                )
            })?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("{} is not valid UTF-8", what()))
    }

    fn value(
        &mut self,
        kind: u32,
        depth: usize,
        what: &dyn Fn() -> String,
    ) -> std::result::Result<GgufValue, String> {
        Ok(match kind {
            0 => GgufValue::U8(self.array::<1>(what)?[0]),
            1 => GgufValue::I8(self.array::<1>(what)?[0] as i8),
            2 => GgufValue::U16(u16::from_le_bytes(self.array(what)?)),
            3 => GgufValue::I16(i16::from_le_bytes(self.array(what)?)),
            4 => GgufValue::U32(self.u32(what)?),
            5 => GgufValue::I32(i32::from_le_bytes(self.array(what)?)),
            6 => GgufValue::F32(f32::from_le_bytes(self.array(what)?)),
            7 => match self.array::<1>(what)?[0] {
                0 => GgufValue::Bool(false),
                1 => GgufValue::Bool(true),
                b => return Err(format!("{} is a bool stored as {b} (not 0 or 1)", what())),
            },
            8 => GgufValue::String(self.string(what)?),
            9 => {
                if depth >= MAX_NESTING {
                    return Err(format!(
                        "{} nests arrays more than {MAX_NESTING} deep",
                        what()
                    ));
                }
                let element = self.u32(what)?;
                let count = self.u64(what)?;
                // Every element takes at least one byte (a string at least 8): a count
                // the rest of the file cannot hold is refused before any allocation.
                let min_size = min_value_size(element).ok_or_else(|| {
                    format!("{} is an array of unknown value type {element}", what())
                })?;
                let fits = count
                    .checked_mul(min_size)
                    .is_some_and(|bytes| bytes <= self.left() as u64);
                if !fits {
                    return Err(format!(
                        "{} declares an array of {count} elements, more than the {} bytes left in the file can hold",
                        what(),
                        self.left()
                    ));
                }
                let mut items = Vec::with_capacity(count as usize);
                for i in 0..count {
                    let item_what = || format!("{} [{i}]", what());
                    items.push(self.value(element, depth + 1, &item_what)?);
                }
                GgufValue::Array(items)
            }
            10 => GgufValue::U64(self.u64(what)?),
            11 => GgufValue::I64(i64::from_le_bytes(self.array(what)?)),
            12 => GgufValue::F64(f64::from_le_bytes(self.array(what)?)),
            other => return Err(format!("{} has unknown value type {other}", what())),
        })
    }
}

/// The fewest bytes a value of type `kind` takes (`None`: no such type).
fn min_value_size(kind: u32) -> Option<u64> {
    Some(match kind {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        // A string's length and an array's type and count.
        8 => 8,
        9 => 12,
        10..=12 => 8,
        _ => return None,
    })
}

fn parse(bytes: &[u8]) -> std::result::Result<Parsed, String> {
    let mut r = Reader { bytes, at: 0 };
    let header = || "the header".to_string();
    let magic = r.array::<4>(&header)?;
    if &magic != MAGIC {
        return Err(format!(
            "not a GGUF file: it starts with {magic:02x?}, not \"GGUF\""
        ));
    }
    let version = r.u32(&header)?;
    if !(2..=3).contains(&version) {
        return Err(format!(
            "GGUF version {version} is not supported (versions 2 and 3 are; version 1 files predate 2023 and must be converted again)"
        ));
    }
    let tensor_count = r.u64(&header)?;
    let metadata_count = r.u64(&header)?;
    // A metadata entry takes at least 8 + 4 + 1 bytes, a tensor info at least 8 + 4 + 4 + 8.
    if metadata_count.saturating_mul(13) > r.left() as u64 {
        return Err(format!(
            "the header declares {metadata_count} metadata entries, more than the file can hold"
        ));
    }
    if tensor_count.saturating_mul(24) > r.left() as u64 {
        return Err(format!(
            "the header declares {tensor_count} tensors, more than the file can hold"
        ));
    }

    let mut metadata = BTreeMap::new();
    for i in 0..metadata_count {
        let key = r.string(&|| format!("metadata entry {i}'s key"))?;
        let what = || format!("metadata `{key}`");
        let kind = r.u32(&what)?;
        let value = r.value(kind, 0, &what)?;
        if metadata.insert(key.clone(), value).is_some() {
            return Err(format!("metadata `{key}` appears twice"));
        }
    }
    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(GgufValue::U32(a)) if a.is_power_of_two() => u64::from(*a),
        Some(other) => {
            return Err(format!(
                "metadata `general.alignment` must be a power of two (u32), got {other:?}"
            ))
        }
    };

    let mut tensors: Vec<GgufTensorInfo> = Vec::with_capacity(tensor_count as usize);
    for i in 0..tensor_count {
        let name = r.string(&|| format!("tensor info {i}'s name"))?;
        let what = || format!("tensor `{name}`");
        let n_dims = r.u32(&what)? as usize;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(format!(
                "tensor `{name}` has {n_dims} dimensions (1 to {MAX_DIMS} are possible)"
            ));
        }
        let mut dims = Vec::with_capacity(n_dims);
        for _ in 0..n_dims {
            dims.push(r.u64(&what)?);
        }
        let ggml_type = GgmlType::from_id(r.u32(&what)?);
        let offset = r.u64(&what)?;
        let elements = dims
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d))
            .ok_or_else(|| {
                format!("tensor `{name}`'s shape {dims:?} has more elements than fit in 64 bits")
            })?;
        let size = match ggml_type.block() {
            Some((block_elements, block_bytes)) => {
                if dims[0] % block_elements != 0 {
                    return Err(format!(
                        "tensor `{name}` ({}) has rows of {} elements, not a multiple of the type's {block_elements}-element blocks",
                        ggml_type.name(),
                        dims[0]
                    ));
                }
                Some(
                    (elements / block_elements)
                        .checked_mul(block_bytes)
                        .ok_or_else(|| format!("tensor `{name}`'s byte size overflows"))?,
                )
            }
            None => None,
        };
        if offset % alignment != 0 {
            return Err(format!(
                "tensor `{name}`'s data offset {offset} is not a multiple of the alignment {alignment}"
            ));
        }
        if tensors.iter().any(|t| t.name == name) {
            return Err(format!("tensor `{name}` appears twice"));
        }
        tensors.push(GgufTensorInfo {
            name,
            dims,
            ggml_type,
            offset,
            size,
        });
    }

    let data_start = (r.at as u64).div_ceil(alignment) * alignment;
    let data_len = (bytes.len() as u64).saturating_sub(data_start);
    // Every sized tensor inside the data section, and no two overlapping.
    let mut ranges: Vec<(u64, u64, &str)> = Vec::with_capacity(tensors.len());
    for t in &tensors {
        let Some(size) = t.size else { continue };
        let end = t
            .offset
            .checked_add(size)
            .filter(|&end| end <= data_len)
            .ok_or_else(|| {
                format!(
                    "tensor `{}`'s data ({size} bytes at offset {}) runs past the end of the file (the data section holds {data_len} bytes; truncated?)",
                    t.name, t.offset
                )
            })?;
        ranges.push((t.offset, end, &t.name));
    }
    ranges.sort_unstable();
    for pair in ranges.windows(2) {
        let ((_, end, a), (start, _, b)) = (pair[0], pair[1]);
        if start < end {
            return Err(format!("the data of tensors `{a}` and `{b}` overlap"));
        }
    }
    Ok(Parsed {
        version,
        metadata,
        tensors,
        data_start,
        alignment,
    })
}

/// Writes GGUF files: the tests' own tiny models and their bad-input cases.
pub mod writer {
    use super::*;

    /// A tensor to write: its GGUF dims (fastest first), type and raw bytes.
    pub struct TensorToWrite<'a> {
        pub name: &'a str,
        pub dims: Vec<u64>,
        pub ggml_type: GgmlType,
        pub bytes: &'a [u8],
    }

    fn put_string(out: &mut Vec<u8>, s: &str) {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s.as_bytes());
    }

    fn value_type(value: &GgufValue) -> u32 {
        match value {
            GgufValue::U8(_) => 0,
            GgufValue::I8(_) => 1,
            GgufValue::U16(_) => 2,
            GgufValue::I16(_) => 3,
            GgufValue::U32(_) => 4,
            GgufValue::I32(_) => 5,
            GgufValue::F32(_) => 6,
            GgufValue::Bool(_) => 7,
            GgufValue::String(_) => 8,
            GgufValue::Array(_) => 9,
            GgufValue::U64(_) => 10,
            GgufValue::I64(_) => 11,
            GgufValue::F64(_) => 12,
        }
    }

    fn put_value(out: &mut Vec<u8>, value: &GgufValue) {
        match value {
            GgufValue::U8(v) => out.push(*v),
            GgufValue::I8(v) => out.push(*v as u8),
            GgufValue::U16(v) => out.extend(v.to_le_bytes()),
            GgufValue::I16(v) => out.extend(v.to_le_bytes()),
            GgufValue::U32(v) => out.extend(v.to_le_bytes()),
            GgufValue::I32(v) => out.extend(v.to_le_bytes()),
            GgufValue::U64(v) => out.extend(v.to_le_bytes()),
            GgufValue::I64(v) => out.extend(v.to_le_bytes()),
            GgufValue::F32(v) => out.extend(v.to_le_bytes()),
            GgufValue::F64(v) => out.extend(v.to_le_bytes()),
            GgufValue::Bool(v) => out.push(u8::from(*v)),
            GgufValue::String(s) => put_string(out, s),
            GgufValue::Array(items) => {
                // An empty array's element type is not recorded here: say u8.
                let element = items.first().map_or(0, value_type);
                out.extend(element.to_le_bytes());
                out.extend((items.len() as u64).to_le_bytes());
                items.iter().for_each(|item| put_value(out, item));
            }
        }
    }

    /// Opens `bytes` as a GGUF file (written to a private temporary path, removed once
    /// mapped: the map stays valid).
    pub fn open_bytes(bytes: &[u8]) -> Result<GgufFile> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("tandem-gguf-{}-{n}.gguf", std::process::id()));
        std::fs::write(&path, bytes).map_err(|e| ModelError::io(&path, e))?;
        let file = GgufFile::open(&path);
        std::fs::remove_file(&path).map_err(|e| ModelError::io(&path, e))?;
        file
    }

    /// The bytes of a version-3 GGUF file with `metadata` and `tensors`, laid out as
    /// llama.cpp writes them (tensor data aligned to `general.alignment` or 32).
    pub fn gguf_bytes(metadata: &[(&str, GgufValue)], tensors: &[TensorToWrite]) -> Vec<u8> {
        let alignment = metadata
            .iter()
            .find(|(k, _)| *k == "general.alignment")
            .and_then(|(_, v)| v.as_u64())
            .unwrap_or(DEFAULT_ALIGNMENT);
        let mut out = Vec::new();
        out.extend(MAGIC);
        out.extend(3u32.to_le_bytes());
        out.extend((tensors.len() as u64).to_le_bytes());
        out.extend((metadata.len() as u64).to_le_bytes());
        for (key, value) in metadata {
            put_string(&mut out, key);
            out.extend(value_type(value).to_le_bytes());
            put_value(&mut out, value);
        }
        let mut offset = 0u64;
        let mut offsets = Vec::new();
        for t in tensors {
            put_string(&mut out, t.name);
            out.extend((t.dims.len() as u32).to_le_bytes());
            t.dims.iter().for_each(|d| out.extend(d.to_le_bytes()));
            out.extend(t.ggml_type.id().to_le_bytes());
            out.extend(offset.to_le_bytes());
            offsets.push(offset);
            offset = (offset + t.bytes.len() as u64).div_ceil(alignment) * alignment;
        }
        let data_start = (out.len() as u64).div_ceil(alignment) * alignment;
        out.resize(data_start as usize, 0);
        for (t, offset) in tensors.iter().zip(offsets) {
            out.resize((data_start + offset) as usize, 0);
            out.extend(t.bytes);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::writer::{gguf_bytes, TensorToWrite};
    use super::*;

    fn open(bytes: &[u8]) -> Result<GgufFile> {
        super::writer::open_bytes(bytes)
    }

    fn error(bytes: &[u8]) -> String {
        match open(bytes) {
            Err(e @ ModelError::CorruptGguf { .. }) => e.to_string(),
            Err(other) => panic!("expected a corrupt-GGUF error, got {other}"),
            Ok(_) => panic!("a bad file opened"),
        }
    }

    fn sample_metadata() -> Vec<(&'static str, GgufValue)> {
        vec![
            ("general.architecture", GgufValue::String("llama".into())),
            ("llama.block_count", GgufValue::U32(2)),
            ("llama.rope.freq_base", GgufValue::F32(10000.0)),
            ("general.flag", GgufValue::Bool(true)),
            ("general.small", GgufValue::I8(-3)),
            ("general.u16", GgufValue::U16(65000)),
            ("general.i16", GgufValue::I16(-2)),
            ("general.i32", GgufValue::I32(-7)),
            ("general.u64", GgufValue::U64(1 << 40)),
            ("general.i64", GgufValue::I64(-1 << 40)),
            ("general.f64", GgufValue::F64(0.125)),
            (
                "tokenizer.ggml.tokens",
                GgufValue::Array(vec![
                    GgufValue::String("<s>".into()),
                    GgufValue::String("héllo".into()),
                ]),
            ),
            (
                "general.nested",
                GgufValue::Array(vec![
                    GgufValue::Array(vec![GgufValue::U8(1), GgufValue::U8(2)]),
                    GgufValue::Array(vec![GgufValue::U8(3)]),
                ]),
            ),
        ]
    }

    fn sample_file() -> Vec<u8> {
        let f32s: Vec<u8> = (0..8).flat_map(|i| (i as f32).to_le_bytes()).collect();
        let q8 = vec![7u8; 34 * 2];
        gguf_bytes(
            &sample_metadata(),
            &[
                TensorToWrite {
                    name: "token_embd.weight",
                    dims: vec![4, 2],
                    ggml_type: GgmlType::F32,
                    bytes: &f32s,
                },
                TensorToWrite {
                    name: "blk.0.attn_q.weight",
                    dims: vec![32, 2],
                    ggml_type: GgmlType::Q8_0,
                    bytes: &q8,
                },
            ],
        )
    }

    #[test]
    fn metadata_of_every_type_and_tensors_round_trip() {
        let file = open(&sample_file()).unwrap();
        assert_eq!(file.version(), 3);
        assert_eq!(file.architecture(), Some("llama"));
        for (key, value) in sample_metadata() {
            assert_eq!(file.get(key), Some(&value), "{key}");
        }
        assert_eq!(file.get("llama.block_count").unwrap().as_u64(), Some(2));
        assert_eq!(file.get("general.i64").unwrap().as_u64(), None);
        let embd = file.tensor("token_embd.weight").unwrap();
        assert_eq!((embd.dims.clone(), embd.elements()), (vec![4, 2], 8));
        let bytes = file.tensor_bytes(embd).unwrap();
        assert_eq!(&bytes[4..8], &1.0f32.to_le_bytes());
        let q = file.tensor("blk.0.attn_q.weight").unwrap();
        assert_eq!((q.ggml_type, q.size), (GgmlType::Q8_0, Some(68)));
        assert_eq!(file.tensor_bytes(q).unwrap(), &[7u8; 68][..]);
        assert_eq!(q.offset % DEFAULT_ALIGNMENT, 0);
    }

    #[test]
    fn a_custom_alignment_is_honoured() {
        let mut metadata = sample_metadata();
        metadata.push(("general.alignment", GgufValue::U32(64)));
        let bytes = gguf_bytes(
            &metadata,
            &[
                TensorToWrite {
                    name: "a",
                    dims: vec![3],
                    ggml_type: GgmlType::F32,
                    bytes: &[1; 12],
                },
                TensorToWrite {
                    name: "b",
                    dims: vec![2],
                    ggml_type: GgmlType::F16,
                    bytes: &[2; 4],
                },
            ],
        );
        let file = open(&bytes).unwrap();
        assert_eq!(file.alignment(), 64);
        assert_eq!(file.tensor("b").unwrap().offset, 64);
        assert_eq!(
            file.tensor_bytes(file.tensor("b").unwrap()).unwrap(),
            &[2; 4]
        );
        let mut bad = sample_metadata();
        bad.push(("general.alignment", GgufValue::U32(48)));
        assert!(error(&gguf_bytes(&bad, &[])).contains("power of two"));
    }

    #[test]
    fn bad_magic_version_and_truncation_are_named() {
        let good = sample_file();
        let mut magic = good.clone();
        magic[..4].copy_from_slice(b"GGML");
        assert!(error(&magic).contains("not a GGUF file"));
        for version in [1u32, 4, 0xFFFF_FFFF] {
            let mut v = good.clone();
            v[4..8].copy_from_slice(&version.to_le_bytes());
            assert!(
                error(&v).contains(&format!("version {version}")),
                "{version}"
            );
        }
        assert!(error(&good[..3]).contains("truncated"));
        // Cut anywhere: a clear error, never a panic or a file that opens.
        for cut in (0..good.len()).step_by(7) {
            assert!(open(&good[..cut]).is_err(), "cut at {cut}");
        }
    }

    /// A file with one metadata entry whose value bytes are `value` (type `kind`).
    fn one_entry(kind: u32, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(MAGIC);
        out.extend(3u32.to_le_bytes());
        out.extend(0u64.to_le_bytes());
        out.extend(1u64.to_le_bytes());
        out.extend(3u64.to_le_bytes());
        out.extend(b"key");
        out.extend(kind.to_le_bytes());
        out.extend(value);
        out
    }

    #[test]
    fn declared_lengths_beyond_the_file_are_refused_before_allocating() {
        // A string of 2^62 bytes, an array of 2^61 u64s, an array of 2^60 strings.
        let huge_string = one_entry(8, &(1u64 << 62).to_le_bytes());
        assert!(error(&huge_string).contains("string of 4611686018427387904 bytes"));
        let mut array = 10u32.to_le_bytes().to_vec();
        array.extend((1u64 << 61).to_le_bytes());
        assert!(error(&one_entry(9, &array)).contains("array of 2305843009213693952 elements"));
        let mut strings = 8u32.to_le_bytes().to_vec();
        strings.extend(u64::MAX.to_le_bytes());
        assert!(error(&one_entry(9, &strings)).contains("more than the"));
        // Counts in the header.
        let mut header = sample_file();
        header[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(error(&header).contains("tensors"));
        let mut header = sample_file();
        header[16..24].copy_from_slice(&(1u64 << 50).to_le_bytes());
        assert!(error(&header).contains("metadata entries"));
    }

    #[test]
    fn bad_values_are_named_by_key() {
        assert!(error(&one_entry(7, &[2])).contains("metadata `key` is a bool stored as 2"));
        assert!(error(&one_entry(13, &[0; 8])).contains("unknown value type 13"));
        let mut invalid_utf8 = 2u64.to_le_bytes().to_vec();
        invalid_utf8.extend([0xC3, 0x28]);
        assert!(error(&one_entry(8, &invalid_utf8)).contains("not valid UTF-8"));
        // Arrays nested deeper than any real file.
        let mut nested = Vec::new();
        for _ in 0..8 {
            nested.extend(9u32.to_le_bytes());
            nested.extend(1u64.to_le_bytes());
        }
        nested.extend(0u32.to_le_bytes());
        nested.extend(0u64.to_le_bytes());
        assert!(error(&one_entry(9, &nested)).contains("nests arrays"));
    }

    fn with_tensor(dims: Vec<u64>, ggml_type: GgmlType, bytes: &[u8]) -> Vec<u8> {
        gguf_bytes(
            &[],
            &[TensorToWrite {
                name: "t",
                dims,
                ggml_type,
                bytes,
            }],
        )
    }

    #[test]
    fn tensor_shapes_types_and_ranges_are_checked() {
        // Element count overflow.
        let e = error(&with_tensor(vec![1 << 40, 1 << 40], GgmlType::F32, &[]));
        assert!(e.contains("more elements than fit in 64 bits"), "{e}");
        // Rows that are not whole blocks.
        let e = error(&with_tensor(vec![33], GgmlType::Q8_0, &[0; 34]));
        assert!(e.contains("not a multiple"), "{e}");
        // Data past the end of the file (truncated tensor data).
        let mut cut = with_tensor(vec![64], GgmlType::F32, &[0; 256]);
        cut.truncate(cut.len() - 1);
        assert!(error(&cut).contains("runs past the end of the file"));
        // Too many dimensions, and none.
        assert!(error(&with_tensor(vec![1; 5], GgmlType::F32, &[0; 4])).contains("5 dimensions"));
        assert!(error(&with_tensor(vec![], GgmlType::F32, &[])).contains("0 dimensions"));
        // A type this reader does not know opens; its bytes are a clear error.
        let file = open(&with_tensor(vec![4], GgmlType::Other(99), &[0; 8])).unwrap();
        let t = &file.tensors()[0];
        let e = file.tensor_bytes(t).unwrap_err().to_string();
        assert!(
            e.contains("unsupported tensor type ggml type 99") && e.contains("`t`"),
            "{e}"
        );
    }

    #[test]
    fn overlapping_and_misaligned_tensor_data_is_refused() {
        let tensors = [
            TensorToWrite {
                name: "a",
                dims: vec![16],
                ggml_type: GgmlType::F32,
                bytes: &[0; 64],
            },
            TensorToWrite {
                name: "b",
                dims: vec![16],
                ggml_type: GgmlType::F32,
                bytes: &[0; 64],
            },
        ];
        let good = gguf_bytes(&[], &tensors);
        open(&good).unwrap();
        // b's offset (64) is the last 8 bytes of the file's tensor infos: point it at a.
        let b_offset_at = good
            .windows(8)
            .rposition(|w| w == 64u64.to_le_bytes())
            .unwrap();
        let mut overlap = good.clone();
        overlap[b_offset_at..b_offset_at + 8].copy_from_slice(&32u64.to_le_bytes());
        assert!(error(&overlap).contains("overlap"));
        let mut misaligned = good;
        misaligned[b_offset_at..b_offset_at + 8].copy_from_slice(&65u64.to_le_bytes());
        assert!(error(&misaligned).contains("not a multiple of the alignment 32"));
    }

    #[test]
    fn a_missing_file_is_named() {
        let e = GgufFile::open(Path::new("/nonexistent/model.gguf")).unwrap_err();
        assert!(matches!(e, ModelError::MissingFile { .. }), "{e}");
        assert!(e.to_string().contains("/nonexistent/model.gguf"));
    }
}
