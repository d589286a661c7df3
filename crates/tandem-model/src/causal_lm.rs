//! The burn model as the decoding crate's [`CausalLm`]: logits come back to the host
//! as plain rows, errors keep their type inside the decoder's boxed error.

use tandem_decode::{CausalLm, Logits, ModelError as DecodeModelError};

use crate::backends::TandemBackend;
use crate::error::ModelError;
use crate::families::llama::Llama;

fn host_logits<B: TandemBackend>(
    logits: burn::tensor::Tensor<B, 2>,
) -> Result<Logits, DecodeModelError> {
    let [rows, vocab] = logits.dims();
    let data = logits.into_data().to_vec::<f32>().map_err(|e| {
        DecodeModelError::new(ModelError::InvalidArgument(format!(
            "reading logits: {e:?}"
        )))
    })?;
    Ok(Logits::new(rows, vocab, data))
}

impl<B: TandemBackend> CausalLm for Llama<B> {
    fn forward(&mut self, tokens: &[u32]) -> Result<Logits, DecodeModelError> {
        host_logits(Llama::forward(self, tokens).map_err(DecodeModelError::new)?)
    }

    fn forward_last(&mut self, tokens: &[u32], rows: usize) -> Result<Logits, DecodeModelError> {
        host_logits(
            self.forward_tail(tokens, rows)
                .map_err(DecodeModelError::new)?,
        )
    }

    fn cached_len(&self) -> usize {
        Llama::cached_len(self)
    }

    fn truncate(&mut self, len: usize) {
        Llama::truncate(self, len)
    }

    fn reset(&mut self) {
        Llama::reset(self)
    }

    fn vocab_size(&self) -> usize {
        self.config().vocab_size
    }
}
