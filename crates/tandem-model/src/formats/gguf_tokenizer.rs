//! The tokenizer a GGUF file describes (`tokenizer.ggml.*`), as the `tokenizer.json`
//! Hugging Face's `tokenizers` reads: built as that JSON and parsed by the library, so
//! the tokenizer runs exactly as one loaded from a model folder does.
//!
//! Byte-level BPE (`tokenizer.ggml.model = gpt2`: Llama 3, Qwen, SmolLM, GPT-2 style):
//! the file's tokens and merges, its control tokens (type 3) as special added tokens and
//! its user-defined ones (type 4) as plain added tokens, and the text split the way the
//! merges were learned (`tokenizer.ggml.pre`). This is what transformers builds from a
//! GGUF file, so ids match a tokenizer converted by transformers token for token.
//! SentencePiece BPE (`llama`: Llama 2, Mistral): the pieces spaced with `▁`, byte
//! fallback, and the merges from the file or recovered from the pieces' scores, again as
//! transformers builds them. Other tokenizer models are an error that names the key.

use serde_json::{json, Map, Value};

use crate::error::{ModelError, Result};
use crate::formats::gguf::{GgufFile, GgufValue};

/// `tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`).
const TOKEN_UNKNOWN: u64 = 2;
const TOKEN_CONTROL: u64 = 3;
const TOKEN_USER_DEFINED: u64 = 4;

/// The pre-tokenizer split of the vocabularies whose merges were learned on other than
/// GPT-2's split, by `tokenizer.ggml.pre`. The patterns are the ones these models'
/// `tokenizer.json` files give (and llama.cpp's `llama-vocab.cpp` applies).
fn split_pattern(pre: &str) -> Option<&'static str> {
    const LLAMA3: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    const QWEN2: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    match pre {
        "llama3" | "llama-v3" | "llama-bpe" | "smaug-bpe" | "dbrx" | "falcon3" => Some(LLAMA3),
        "qwen2" | "deepseek-r1-qwen" | "megrez" => Some(QWEN2),
        _ => None,
    }
}

/// GPT-2's byte ↔ character table: printable bytes stand for themselves, the others
/// (controls, space, DEL, non-breaking space, soft hyphen) for characters from U+0100 on,
/// so every byte has a visible, non-whitespace spelling.
fn byte_spelling() -> [char; 256] {
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for b in 0..256u32 {
        table[b as usize] = if printable(b) {
            char::from_u32(b).expect("Latin-1")
        } else {
            next += 1;
            char::from_u32(next - 1).expect("below the surrogates")
        };
    }
    table
}

/// The `tokenizer.json` object of a GGUF file's tokenizer.
pub fn tokenizer_json(file: &GgufFile) -> Result<Value> {
    let bad = |key: &str, reason: String| ModelError::BadField {
        path: file.path().to_path_buf(),
        field: key.to_string(),
        reason,
    };
    let model = file
        .get("tokenizer.ggml.model")
        .and_then(GgufValue::as_str)
        .ok_or_else(|| {
            bad(
                "tokenizer.ggml.model",
                "missing: the file has no tokenizer".into(),
            )
        })?;
    if model != "gpt2" && model != "llama" {
        return Err(bad(
            "tokenizer.ggml.model",
            format!("`{model}` tokenizers are not supported yet (supported: gpt2, the byte-level BPE of Llama 3, Qwen and SmolLM; llama, the SentencePiece BPE of Llama 2 and Mistral)"),
        ));
    }
    let strings = |key: &str| -> Result<Vec<&str>> {
        let items = file
            .get(key)
            .and_then(GgufValue::as_array)
            .ok_or_else(|| bad(key, "missing or not an array".into()))?;
        items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().ok_or_else(|| {
                    bad(
                        key,
                        format!("entry {i} is a {}, not a string", v.type_name()),
                    )
                })
            })
            .collect()
    };
    let tokens = strings("tokenizer.ggml.tokens")?;
    let types: Vec<u64> = match file
        .get("tokenizer.ggml.token_type")
        .and_then(GgufValue::as_array)
    {
        Some(types) if types.len() == tokens.len() => {
            types.iter().map(|t| t.as_u64().unwrap_or(1)).collect()
        }
        Some(types) => {
            return Err(bad(
                "tokenizer.ggml.token_type",
                format!("{} entries for {} tokens", types.len(), tokens.len()),
            ))
        }
        None => vec![1; tokens.len()],
    };
    if model == "llama" {
        let merges = match file.get("tokenizer.ggml.merges") {
            Some(_) => Some(strings("tokenizer.ggml.merges")?),
            None => None,
        };
        let scores: Vec<f32> = match file
            .get("tokenizer.ggml.scores")
            .and_then(GgufValue::as_array)
        {
            Some(scores) if scores.len() == tokens.len() => scores
                .iter()
                .map(|s| s.as_f64().unwrap_or(0.0) as f32)
                .collect(),
            Some(scores) => {
                return Err(bad(
                    "tokenizer.ggml.scores",
                    format!("{} entries for {} tokens", scores.len(), tokens.len()),
                ))
            }
            None if merges.is_some() => vec![0.0; tokens.len()],
            None => {
                return Err(bad(
                    "tokenizer.ggml.scores",
                    "missing (and no merges)".into(),
                ))
            }
        };
        return Ok(sentencepiece_json(
            &tokens,
            &types,
            &scores,
            merges.as_deref(),
        ));
    }
    let merges = strings("tokenizer.ggml.merges")?;

    // Every token in the byte alphabet; a token written otherwise is respelled byte by
    // byte (a later duplicate wins, as in a JSON object).
    let spelling = byte_spelling();
    let alphabet: std::collections::HashSet<char> = spelling.iter().copied().collect();
    let spelled = |token: &str| token.chars().all(|c| alphabet.contains(&c));
    let mut vocab = Map::with_capacity(tokens.len());
    for (id, token) in tokens.iter().enumerate() {
        let key = if spelled(token) {
            token.to_string()
        } else {
            token.bytes().map(|b| spelling[b as usize]).collect()
        };
        vocab.insert(key, json!(id));
    }
    let mut merge_pairs = Vec::with_capacity(merges.len());
    for (i, merge) in merges.iter().enumerate() {
        let (a, b) = merge.split_once(' ').ok_or_else(|| {
            bad(
                "tokenizer.ggml.merges",
                format!("entry {i} ({merge:?}) is not two tokens"),
            )
        })?;
        merge_pairs.push(json!([a, b]));
    }
    // Control tokens stay whole and are special; one spelled outside the byte alphabet
    // is a mislabel in some files (it is no real token of a byte-level vocabulary).
    let mut added = Vec::new();
    for (id, (token, &kind)) in tokens.iter().zip(&types).enumerate() {
        let special = match kind {
            TOKEN_CONTROL if spelled(token) => true,
            TOKEN_USER_DEFINED => false,
            _ => continue,
        };
        added.push(json!({
            "id": id, "content": token, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": special,
        }));
    }
    let pre = file
        .get("tokenizer.ggml.pre")
        .and_then(GgufValue::as_str)
        .unwrap_or("default");
    let pre_tokenizer = match split_pattern(pre) {
        Some(pattern) => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false},
        ]}),
        None => {
            json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true})
        }
    };
    let add_bos = matches!(
        file.get("tokenizer.ggml.add_bos_token"),
        Some(GgufValue::Bool(true))
    );
    let post_processor = match file
        .get("tokenizer.ggml.bos_token_id")
        .and_then(GgufValue::as_u64)
    {
        Some(bos) if add_bos => {
            let token = tokens.get(bos as usize).ok_or_else(|| {
                bad(
                    "tokenizer.ggml.bos_token_id",
                    format!("{bos} is not a token id"),
                )
            })?;
            let mut special = Map::new();
            special.insert(
                token.to_string(),
                json!({"id": token, "ids": [bos], "tokens": [token]}),
            );
            json!({
                "type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": token, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": token, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                         {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": special,
            })
        }
        _ => Value::Null,
    };
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": post_processor,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": merge_pairs,
        },
    }))
}

/// A SentencePiece BPE vocabulary (`tokenizer.ggml.model = llama`) as `tokenizer.json`,
/// the way transformers builds one from a GGUF file: text is spaced with `▁` (one before
/// the first word), unknown characters fall back to byte tokens (`<0x41>`), and the
/// merges are the file's, or recovered from the vocabulary — every split of a token into
/// two tokens, best token score first (then longer left and right parts), ties in
/// vocabulary order.
fn sentencepiece_json(
    tokens: &[&str],
    types: &[u64],
    scores: &[f32],
    merges: Option<&[&str]>,
) -> Value {
    let mut vocab = Map::with_capacity(tokens.len());
    let mut index = std::collections::HashMap::with_capacity(tokens.len());
    for (id, token) in tokens.iter().enumerate() {
        vocab.insert(token.to_string(), json!(id));
        index.insert(*token, id);
    }
    let merge_pairs: Vec<Value> = match merges {
        Some(merges) => merges
            .iter()
            .filter_map(|m| m.split_once(' '))
            .map(|(a, b)| json!([a, b]))
            .collect(),
        None => {
            // (left, right, score of the merged token), per token in file order; a token
            // listed twice is split once (its first place, its last score).
            let mut score_of = std::collections::HashMap::with_capacity(tokens.len());
            for (token, &score) in tokens.iter().zip(scores) {
                score_of.insert(*token, score);
            }
            let mut seen = std::collections::HashSet::with_capacity(tokens.len());
            let mut found: Vec<(&str, &str, f32)> = Vec::new();
            for token in tokens {
                if !seen.insert(*token) {
                    continue;
                }
                let mut local: Vec<(&str, &str, f32)> = token
                    .char_indices()
                    .skip(1)
                    .map(|(at, _)| token.split_at(at))
                    .filter(|(l, r)| index.contains_key(l) && index.contains_key(r))
                    .map(|(l, r)| (l, r, score_of[token]))
                    .collect();
                local.sort_by_key(|(l, r, _)| (index[l], index[r]));
                found.extend(local);
            }
            // Best first; a stable sort keeps vocabulary order among equals.
            found.sort_by(|a, b| {
                let key = |m: &(&str, &str, f32)| (m.0.chars().count(), m.1.chars().count());
                b.2.total_cmp(&a.2).then_with(|| key(b).cmp(&key(a)))
            });
            found.into_iter().map(|(l, r, _)| json!([l, r])).collect()
        }
    };
    let added: Vec<Value> = tokens
        .iter()
        .zip(types)
        .enumerate()
        .filter_map(|(id, (token, &kind))| {
            let special = match kind {
                TOKEN_UNKNOWN | TOKEN_CONTROL => true,
                TOKEN_USER_DEFINED => false,
                _ => return None,
            };
            Some(json!({
                "id": id, "content": token, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": special,
            }))
        })
        .collect();
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": "first", "split": false},
        "post_processor": null,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0},
        ]},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
            "vocab": vocab, "merges": merge_pairs,
        },
    })
}

/// The `tokenizers` tokenizer of a GGUF file.
pub fn tokenizer(file: &GgufFile) -> Result<tokenizers::Tokenizer> {
    let json = tokenizer_json(file)?.to_string();
    json.parse::<tokenizers::Tokenizer>()
        .map_err(|e| ModelError::Tokenizer {
            path: file.path().to_path_buf(),
            reason: format!("the tokenizer built from tokenizer.ggml.* does not load: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_has_one_visible_spelling() {
        let table = byte_spelling();
        let distinct: std::collections::HashSet<char> = table.iter().copied().collect();
        assert_eq!(distinct.len(), 256);
        assert_eq!(table[b' ' as usize], 'Ġ');
        assert_eq!(table[b'\n' as usize], 'Ċ');
        assert_eq!(table[b'a' as usize], 'a');
        assert!(table.iter().all(|c| !c.is_whitespace() && !c.is_control()));
    }

    #[test]
    fn the_qwen2_split_keeps_digits_apart_and_llama3_groups_three() {
        let qwen = regex_split(split_pattern("qwen2").unwrap(), "abc 12345");
        assert_eq!(qwen, ["abc", " ", "1", "2", "3", "4", "5"]);
        let llama = regex_split(split_pattern("llama-bpe").unwrap(), "abc 12345");
        assert_eq!(llama, ["abc", " ", "123", "45"]);
        assert!(split_pattern("smollm").is_none(), "GPT-2's split");
    }

    /// The pieces a `Split` pre-tokenizer with `pattern` cuts `text` into.
    fn regex_split(pattern: &str, text: &str) -> Vec<String> {
        use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
        use tokenizers::{PreTokenizedString, PreTokenizer, SplitDelimiterBehavior};
        let split = Split::new(
            SplitPattern::Regex(pattern.into()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .unwrap();
        let mut pre = PreTokenizedString::from(text);
        split.pre_tokenize(&mut pre).unwrap();
        pre.get_splits(
            tokenizers::OffsetReferential::Original,
            tokenizers::OffsetType::Byte,
        )
        .into_iter()
        .map(|(s, _, _)| s.to_string())
        .collect()
    }
}
