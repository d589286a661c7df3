//! A target model and an optional draft, loaded together, with what run logs say about
//! them worked out once at load time (file hashes are not free).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tandem_model::{LoadOptions, Precision};

use crate::error::Result;
use crate::model::{BackendKind, LoadedModel, ModelSpec};
use crate::provenance::{device_description, ModelProvenance};
use crate::run::check_draft;

/// What to load, as plain data the desktop app can send over IPC.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairSpec {
    pub target: PathBuf,
    /// The draft's folder; the target's own folder with `draft_layers` is a self-draft.
    #[serde(default)]
    pub draft: Option<PathBuf>,
    #[serde(default)]
    pub backend: BackendKind,
    #[serde(default, with = "precision_text")]
    pub target_precision: Precision,
    #[serde(default, with = "precision_text")]
    pub draft_precision: Precision,
    /// Load only the draft's first N decoder layers.
    #[serde(default)]
    pub draft_layers: Option<usize>,
    /// Draft logits for the first N token ids and the special tokens only (see
    /// [`LoadOptions::vocab_limit`]).
    #[serde(default)]
    pub draft_vocab: Option<usize>,
    /// KV cache capacity of each model, in positions.
    #[serde(default)]
    pub context_len: Option<usize>,
}

impl PairSpec {
    pub fn new(target: impl Into<PathBuf>) -> Self {
        Self {
            target: target.into(),
            draft: None,
            backend: BackendKind::default(),
            target_precision: Precision::F32,
            draft_precision: Precision::F32,
            draft_layers: None,
            draft_vocab: None,
            context_len: None,
        }
    }

    pub fn with_draft(mut self, draft: impl Into<PathBuf>) -> Self {
        self.draft = Some(draft.into());
        self
    }

    pub fn target_spec(&self) -> ModelSpec {
        ModelSpec {
            dir: self.target.clone(),
            backend: self.backend,
            options: LoadOptions {
                context_len: self.context_len,
                layer_limit: None,
                vocab_limit: None,
                precision: self.target_precision,
            },
        }
    }

    pub fn draft_spec(&self) -> Option<ModelSpec> {
        Some(ModelSpec {
            dir: self.draft.clone()?,
            backend: self.backend,
            options: LoadOptions {
                context_len: self.context_len,
                layer_limit: self.draft_layers,
                vocab_limit: self.draft_vocab,
                precision: self.draft_precision,
            },
        })
    }
}

/// Serializes a [`Precision`] as its name (`"f32"`, `"int8"`).
mod precision_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use tandem_model::Precision;

    pub fn serialize<S: Serializer>(precision: &Precision, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&precision.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Precision, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// What the UI shows about a loaded pair.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairInfo {
    pub target: ModelProvenance,
    pub draft: Option<ModelProvenance>,
    pub backend: BackendKind,
    pub device: String,
    pub load_ms: f64,
}

/// The loaded models.
pub struct LoadedPair {
    pub target: LoadedModel,
    pub draft: Option<LoadedModel>,
    pub target_provenance: ModelProvenance,
    pub draft_provenance: Option<ModelProvenance>,
    pub device: String,
}

impl LoadedPair {
    /// Loads both models and checks that the draft can draft for the target.
    pub fn load(spec: &PairSpec) -> Result<Self> {
        let target = LoadedModel::load(&spec.target_spec())?;
        let draft = spec
            .draft_spec()
            .map(|s| LoadedModel::load(&s))
            .transpose()?;
        Self::new(target, draft)
    }

    pub fn new(target: LoadedModel, draft: Option<LoadedModel>) -> Result<Self> {
        if let Some(draft) = &draft {
            check_draft(&target, draft)?;
        }
        Ok(Self {
            target_provenance: ModelProvenance::of(&target),
            draft_provenance: draft.as_ref().map(ModelProvenance::of),
            device: device_description(target.backend),
            target,
            draft,
        })
    }

    pub fn info(&self) -> PairInfo {
        PairInfo {
            target: self.target_provenance.clone(),
            draft: self.draft_provenance.clone(),
            backend: self.target.backend,
            device: self.device.clone(),
            load_ms: self.target.load_ms + self.draft.as_ref().map_or(0.0, |d| d.load_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip_with_precision_names() {
        let mut spec = PairSpec::new("/m/t").with_draft("/m/t");
        spec.draft_precision = Precision::Int8;
        spec.draft_layers = Some(10);
        let json = serde_json::to_string(&spec).unwrap();
        assert!(json.contains(r#""draft_precision":"int8""#), "{json}");
        assert_eq!(serde_json::from_str::<PairSpec>(&json).unwrap(), spec);
        let minimal: PairSpec = serde_json::from_str(r#"{"target":"/m/t"}"#).unwrap();
        assert_eq!(minimal, PairSpec::new("/m/t"));
        assert_eq!(spec.draft_spec().unwrap().options.layer_limit, Some(10));
        assert_eq!(spec.target_spec().options.layer_limit, None);
    }
}
