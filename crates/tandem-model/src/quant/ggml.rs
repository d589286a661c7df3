//! llama.cpp's tensor types, dequantized to f32: what a GGUF file's weights become when
//! Tandem loads them (then to its own int8 format, or kept as f32).
//!
//! One function per type, each turning whole blocks into values in the order the
//! tensor's elements lie (GGUF's fastest dimension first). The block layouts are
//! llama.cpp's (`ggml-common.h`); the arithmetic is done in the same order as its
//! reference dequantizers, in f32, so the values are the ones llama.cpp and the `gguf`
//! Python package compute (tested against the latter, bit for bit, on committed blocks
//! from `scripts/gguf_quant_reference.py`).

use half::{bf16, f16};

use crate::formats::gguf::GgmlType;

/// Whether Tandem can dequantize tensors of this type.
pub fn is_supported(ty: GgmlType) -> bool {
    matches!(
        ty,
        GgmlType::F32
            | GgmlType::F16
            | GgmlType::BF16
            | GgmlType::Q4_0
            | GgmlType::Q4_1
            | GgmlType::Q5_0
            | GgmlType::Q5_1
            | GgmlType::Q8_0
            | GgmlType::Q4K
            | GgmlType::Q5K
            | GgmlType::Q6K
    )
}

/// The types [`dequantize`] reads, for error messages.
pub const SUPPORTED: &str = "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K";

/// Dequantizes `bytes` (whole blocks of type `ty`) into `out`, one value per element.
/// Returns `Err` with a reason when the type is not supported or the sizes disagree.
pub fn dequantize(ty: GgmlType, bytes: &[u8], out: &mut [f32]) -> Result<(), String> {
    let (block_elements, block_bytes) =
        ty.block().filter(|_| is_supported(ty)).ok_or_else(|| {
            format!(
                "unsupported tensor type {} (supported: {SUPPORTED})",
                ty.name()
            )
        })?;
    let (block_elements, block_bytes) = (block_elements as usize, block_bytes as usize);
    if !bytes.len().is_multiple_of(block_bytes)
        || bytes.len() / block_bytes * block_elements != out.len()
    {
        return Err(format!(
            "{} bytes of {} do not hold {} values",
            bytes.len(),
            ty.name(),
            out.len()
        ));
    }
    let blocks = bytes
        .chunks_exact(block_bytes)
        .zip(out.chunks_exact_mut(block_elements));
    match ty {
        GgmlType::F32 => blocks.for_each(|(b, y)| y[0] = f32::from_le_bytes(b.try_into().unwrap())),
        GgmlType::F16 => blocks.for_each(|(b, y)| y[0] = half16(b, 0)),
        GgmlType::BF16 => blocks
            .for_each(|(b, y)| y[0] = bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32()),
        GgmlType::Q4_0 => blocks.for_each(|(b, y)| q4_0(b, y)),
        GgmlType::Q4_1 => blocks.for_each(|(b, y)| q4_1(b, y)),
        GgmlType::Q5_0 => blocks.for_each(|(b, y)| q5_0(b, y)),
        GgmlType::Q5_1 => blocks.for_each(|(b, y)| q5_1(b, y)),
        GgmlType::Q8_0 => blocks.for_each(|(b, y)| q8_0(b, y)),
        GgmlType::Q4K => blocks.for_each(|(b, y)| q4_k(b, y)),
        GgmlType::Q5K => blocks.for_each(|(b, y)| q5_k(b, y)),
        GgmlType::Q6K => blocks.for_each(|(b, y)| q6_k(b, y)),
        _ => unreachable!("checked by is_supported"),
    }
    Ok(())
}

/// The f16 at byte `at` of a block, as f32.
#[inline(always)]
fn half16(block: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([block[at], block[at + 1]])).to_f32()
}

/// Q4_0: `d` (f16), 16 bytes of nibbles; low nibbles are elements 0..16, high 16..32;
/// `x = (q − 8) · d`.
fn q4_0(b: &[u8], y: &mut [f32]) {
    let d = half16(b, 0);
    let qs = &b[2..18];
    for j in 0..16 {
        y[j] = ((qs[j] & 0x0F) as i32 - 8) as f32 * d;
        y[j + 16] = ((qs[j] >> 4) as i32 - 8) as f32 * d;
    }
}

/// Q4_1: `d`, `m` (f16), nibbles as Q4_0; `x = q · d + m`.
fn q4_1(b: &[u8], y: &mut [f32]) {
    let (d, m) = (half16(b, 0), half16(b, 2));
    let qs = &b[4..20];
    for j in 0..16 {
        y[j] = (qs[j] & 0x0F) as f32 * d + m;
        y[j + 16] = (qs[j] >> 4) as f32 * d + m;
    }
}

/// The fifth bits of a Q5 block: bit `j` of `qh` belongs to element `j`.
#[inline(always)]
fn fifth_bits(qh: u32, j: usize) -> (u8, u8) {
    let low = (((qh >> j) << 4) & 0x10) as u8;
    let high = ((qh >> (j + 12)) & 0x10) as u8;
    (low, high)
}

/// Q5_0: `d` (f16), 32 fifth bits (u32), nibbles as Q4_0; `x = (q − 16) · d`.
fn q5_0(b: &[u8], y: &mut [f32]) {
    let d = half16(b, 0);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    let qs = &b[6..22];
    for j in 0..16 {
        let (h0, h1) = fifth_bits(qh, j);
        y[j] = (((qs[j] & 0x0F) | h0) as i32 - 16) as f32 * d;
        y[j + 16] = (((qs[j] >> 4) | h1) as i32 - 16) as f32 * d;
    }
}

/// Q5_1: `d`, `m` (f16), fifth bits, nibbles; `x = q · d + m`.
fn q5_1(b: &[u8], y: &mut [f32]) {
    let (d, m) = (half16(b, 0), half16(b, 2));
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let qs = &b[8..24];
    for j in 0..16 {
        let (h0, h1) = fifth_bits(qh, j);
        y[j] = ((qs[j] & 0x0F) | h0) as f32 * d + m;
        y[j + 16] = ((qs[j] >> 4) | h1) as f32 * d + m;
    }
}

/// Q8_0: `d` (f16), 32 signed bytes; `x = q · d`.
fn q8_0(b: &[u8], y: &mut [f32]) {
    let d = half16(b, 0);
    for (y, &q) in y.iter_mut().zip(&b[2..34]) {
        *y = (q as i8) as f32 * d;
    }
}

/// The 6-bit scale and min of sub-block `j` (of 8) of a Q4_K or Q5_K block, packed in
/// 12 bytes: sub-blocks 0–3 in the low 6 bits of bytes 0–3 (scales) and 4–7 (mins),
/// sub-blocks 4–7 in the nibbles of bytes 8–11 with their top 2 bits in the spare bits
/// of bytes 0–7.
#[inline(always)]
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Q4_K: `d`, `dmin` (f16), 12 bytes of scales and mins, 128 bytes of nibbles. Per 64
/// elements: 32 low nibbles with sub-block `2i`, then 32 high nibbles with `2i + 1`;
/// `x = d · scale · q − dmin · min`.
fn q4_k(b: &[u8], y: &mut [f32]) {
    let (d, dmin) = (half16(b, 0), half16(b, 2));
    let scales = &b[4..16];
    let qs = &b[16..144];
    for i in 0..4 {
        let q = &qs[32 * i..32 * (i + 1)];
        let (sc1, m1) = scale_min_k4(2 * i, scales);
        let (sc2, m2) = scale_min_k4(2 * i + 1, scales);
        let (d1, min1) = (d * sc1 as f32, dmin * m1 as f32);
        let (d2, min2) = (d * sc2 as f32, dmin * m2 as f32);
        let y = &mut y[64 * i..64 * (i + 1)];
        for l in 0..32 {
            y[l] = d1 * (q[l] & 0x0F) as f32 - min1;
            y[l + 32] = d2 * (q[l] >> 4) as f32 - min2;
        }
    }
}

/// Q5_K: as Q4_K with a fifth bit per element in 32 bytes of `qh` (bit `2i` for the low
/// nibbles of 64-element chunk `i`, bit `2i + 1` for its high ones).
fn q5_k(b: &[u8], y: &mut [f32]) {
    let (d, dmin) = (half16(b, 0), half16(b, 2));
    let scales = &b[4..16];
    let qh = &b[16..48];
    let qs = &b[48..176];
    for i in 0..4 {
        let q = &qs[32 * i..32 * (i + 1)];
        let (u1, u2) = (1u8 << (2 * i), 2u8 << (2 * i));
        let (sc1, m1) = scale_min_k4(2 * i, scales);
        let (sc2, m2) = scale_min_k4(2 * i + 1, scales);
        let (d1, min1) = (d * sc1 as f32, dmin * m1 as f32);
        let (d2, min2) = (d * sc2 as f32, dmin * m2 as f32);
        let y = &mut y[64 * i..64 * (i + 1)];
        for l in 0..32 {
            let h1 = if qh[l] & u1 != 0 { 16 } else { 0 };
            let h2 = if qh[l] & u2 != 0 { 16 } else { 0 };
            y[l] = d1 * ((q[l] & 0x0F) + h1) as f32 - min1;
            y[l + 32] = d2 * ((q[l] >> 4) + h2) as f32 - min2;
        }
    }
}

/// Q6_K: 128 bytes of low nibbles, 64 bytes of high 2-bit pairs, 16 signed 8-bit scales
/// (one per 16 elements), `d` (f16) last; `x = d · scale · (q − 32)`. Each half of 128
/// elements takes 64 low-nibble bytes and 32 high bytes, four elements per position.
fn q6_k(b: &[u8], y: &mut [f32]) {
    let d = half16(b, 208);
    for half in 0..2 {
        let ql = &b[64 * half..64 * (half + 1)];
        let qh = &b[128 + 32 * half..128 + 32 * (half + 1)];
        let sc = &b[192 + 8 * half..192 + 8 * (half + 1)];
        let y = &mut y[128 * half..128 * (half + 1)];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            let scale = |k: usize| d * (sc[k] as i8) as f32;
            y[l] = scale(is) * q1 as f32;
            y[l + 32] = scale(is + 2) * q2 as f32;
            y[l + 64] = scale(is + 4) * q3 as f32;
            y[l + 96] = scale(is + 6) * q4 as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed reference: blocks of every type and what llama.cpp's `gguf` Python
    /// package dequantizes them to (scripts/gguf_quant_reference.py).
    fn reference() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/gguf/dequantize.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn base64(text: &str) -> Vec<u8> {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = Vec::new();
        let (mut acc, mut bits) = (0u32, 0);
        for c in text.bytes().filter(|&c| c != b'=') {
            let v = alphabet.iter().position(|&a| a == c).unwrap() as u32;
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        out
    }

    #[test]
    fn every_type_matches_llama_cpps_python_package_bit_for_bit() {
        let reference = reference();
        let types = reference["types"].as_object().unwrap();
        assert_eq!(types.len(), 10, "F16, BF16 and the eight quantized types");
        for (name, case) in types {
            let ty = crate::formats::gguf::GgmlType::from_id(case["id"].as_u64().unwrap() as u32);
            assert_eq!(&ty.name(), name);
            let bytes = base64(case["bytes_base64"].as_str().unwrap());
            let expected: Vec<u32> = serde_json::from_value(case["f32_bits"].clone()).unwrap();
            let mut out = vec![f32::NAN; case["elements"].as_u64().unwrap() as usize];
            dequantize(ty, &bytes, &mut out).unwrap();
            for (i, (got, want)) in out.iter().zip(&expected).enumerate() {
                assert_eq!(
                    got.to_bits(),
                    *want,
                    "{name} element {i}: {got} vs {}",
                    f32::from_bits(*want)
                );
            }
        }
    }

    #[test]
    fn a_gguf_file_with_every_type_round_trips() {
        // The reference blocks as the tensors of one file (each type's size, offset and
        // alignment in play), read back through the container: the same values.
        use crate::formats::gguf::writer::{gguf_bytes, TensorToWrite};
        use crate::formats::gguf::GgmlType;
        /// One tensor: name, type, bytes, expected f32 bits, element count.
        type Case = (String, GgmlType, Vec<u8>, Vec<u32>, u64);
        let reference = reference();
        let cases: Vec<Case> = reference["types"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(name, case)| {
                (
                    format!("t.{name}"),
                    GgmlType::from_id(case["id"].as_u64().unwrap() as u32),
                    base64(case["bytes_base64"].as_str().unwrap()),
                    serde_json::from_value(case["f32_bits"].clone()).unwrap(),
                    case["elements"].as_u64().unwrap(),
                )
            })
            .collect();
        let tensors: Vec<TensorToWrite> = cases
            .iter()
            .map(|(name, ty, bytes, _, elements)| TensorToWrite {
                name,
                dims: vec![*elements],
                ggml_type: *ty,
                bytes,
            })
            .collect();
        let file = crate::formats::gguf::writer::open_bytes(&gguf_bytes(&[], &tensors)).unwrap();
        for (name, ty, _, bits, elements) in &cases {
            let tensor = file.tensor(name).unwrap();
            assert_eq!((tensor.ggml_type, tensor.elements()), (*ty, *elements));
            let mut out = vec![0.0f32; *elements as usize];
            dequantize(*ty, file.tensor_bytes(tensor).unwrap(), &mut out).unwrap();
            let got: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
            assert_eq!(&got, bits, "{name}");
        }
    }

    #[test]
    fn f32_is_read_as_is() {
        let bytes: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let mut out = [0.0; 2];
        dequantize(GgmlType::F32, &bytes, &mut out).unwrap();
        assert_eq!(out, [1.5, -2.0]);
    }

    #[test]
    fn unsupported_types_and_wrong_sizes_are_errors() {
        let mut out = vec![0.0; 256];
        let e = dequantize(GgmlType::Q2K, &[0; 84], &mut out).unwrap_err();
        assert!(e.contains("unsupported tensor type Q2_K"), "{e}");
        let e = dequantize(GgmlType::Other(99), &[0; 8], &mut out).unwrap_err();
        assert!(e.contains("ggml type 99"), "{e}");
        let e = dequantize(GgmlType::Q8_0, &[0; 35], &mut out[..32]).unwrap_err();
        assert!(e.contains("do not hold"), "{e}");
        let e = dequantize(GgmlType::Q8_0, &[0; 34], &mut out[..31]).unwrap_err();
        assert!(e.contains("do not hold"), "{e}");
    }
}
