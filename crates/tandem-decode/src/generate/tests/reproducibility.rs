//! Same settings and seed, same output, for every strategy; another seed,
//! another output. Also: results survive a JSON round trip (the log format).

use super::support::{run_checked, Strategy};
use crate::gamma::GammaPolicy;
use crate::generate::{GenerationConfig, GenerationResult};
use crate::sampling::SamplingConfig;
use crate::testing::RandomNgramLm;

const PROMPT: [u32; 8] = [1, 2, 3, 4, 1, 2, 3, 4];

fn target() -> RandomNgramLm {
    RandomNgramLm::new(11, 12, 2, 2.0)
}

type NamedStrategy = (&'static str, fn() -> Strategy);

fn strategies() -> Vec<NamedStrategy> {
    vec![
        ("plain", || Strategy::Plain),
        ("speculative", || {
            Strategy::Speculative(Box::new(target().with_noise(5, 2.0)))
        }),
        ("nasd", || Strategy::Nasd {
            n: 3,
            filler: Some(2),
        }),
    ]
}

fn samplings(seed: u64) -> Vec<SamplingConfig> {
    vec![
        SamplingConfig::random(1.0, seed),
        SamplingConfig::random(0.7, seed).with_top_k(5),
        SamplingConfig::random(1.3, seed).with_top_p(0.9),
        SamplingConfig::random(0.9, seed)
            .with_top_k(6)
            .with_top_p(0.8),
    ]
}

fn run(strategy: Strategy, sampling: SamplingConfig) -> GenerationResult {
    let config = GenerationConfig {
        sampling,
        max_new_tokens: 40,
        gamma: GammaPolicy::Heuristic {
            start: 3,
            min: 1,
            max: 6,
        },
        ..GenerationConfig::default()
    };
    run_checked(target(), strategy, &PROMPT, &config, None).result
}

#[test]
fn same_seed_same_output_for_every_strategy() {
    for (name, strategy) in strategies() {
        for (a, b) in samplings(7).into_iter().zip(samplings(7)) {
            let first = run(strategy(), a.clone());
            let second = run(strategy(), b);
            assert_eq!(first.tokens, second.tokens, "{name} {a:?}");
            assert_eq!(first.origins, second.origins, "{name} {a:?}");
        }
    }
}

#[test]
fn different_seeds_differ_for_every_strategy() {
    for (name, strategy) in strategies() {
        for (a, b) in samplings(7).into_iter().zip(samplings(8)) {
            let first = run(strategy(), a.clone());
            let second = run(strategy(), b);
            assert_ne!(first.tokens, second.tokens, "{name} {a:?}");
        }
    }
}

#[test]
fn results_round_trip_through_json() {
    let mut result = run(strategies()[2].1(), SamplingConfig::random(1.0, 3));
    // Timings are arbitrary floats; the point is the structure.
    for step in &mut result.steps {
        step.draft_ms = 1.5;
        step.verify_ms = 2.5;
    }
    result.summary.wall_ms = 10.0;
    result.summary.tokens_per_second = 4000.0;
    result.summary.time_to_first_token_ms = Some(1.0);
    result.summary.draft_ms = 0.25;
    result.summary.verify_ms = 0.75;
    let json = serde_json::to_string(&result).unwrap();
    let back: GenerationResult = serde_json::from_str(&json).unwrap();
    assert_eq!(back, result);
}

/// Sleeps after every forward, so a run's wall-clock costs are what a test sets.
struct SlowLm<M> {
    inner: M,
    delay: std::time::Duration,
}

impl<M: crate::model::CausalLm> crate::model::CausalLm for SlowLm<M> {
    fn forward(
        &mut self,
        tokens: &[u32],
    ) -> Result<crate::model::Logits, crate::model::ModelError> {
        let logits = self.inner.forward(tokens);
        std::thread::sleep(self.delay);
        logits
    }
    fn cached_len(&self) -> usize {
        self.inner.cached_len()
    }
    fn truncate(&mut self, len: usize) {
        self.inner.truncate(len)
    }
    fn reset(&mut self) {
        self.inner.reset()
    }
    fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }
}

#[test]
fn goodput_gamma_gives_the_same_tokens_for_a_seed_whatever_the_timings() {
    // The same seed twice, with a draft that costs nothing in one run and twice the
    // target in the other. Were γ steered by the clock, the two runs would draft
    // different numbers of tokens, draw from the RNG differently, and part.
    let run = |draft_ms: u64, cost_ratio: Option<f64>| {
        let slow = |inner, ms| SlowLm {
            inner,
            delay: std::time::Duration::from_millis(ms),
        };
        let config = GenerationConfig {
            sampling: SamplingConfig::random(1.0, 5),
            max_new_tokens: 30,
            gamma: GammaPolicy::Goodput { max: 8 },
            draft_cost_ratio: cost_ratio,
            ..GenerationConfig::default()
        };
        let draft = slow(target().with_noise(5, 2.0), draft_ms);
        let strategy = Strategy::Speculative(Box::new(draft));
        run_checked(slow(target(), 2), strategy, &PROMPT, &config, None).result
    };
    let gammas = |r: &GenerationResult| r.steps.iter().map(|s| s.gamma.gamma).collect::<Vec<_>>();
    for cost_ratio in [None, Some(0.05)] {
        let (cheap, dear) = (run(0, cost_ratio), run(4, cost_ratio));
        assert_eq!(gammas(&cheap), gammas(&dear), "{cost_ratio:?}");
        assert_eq!(cheap.tokens, dear.tokens, "{cost_ratio:?}");
        let used = cheap.steps[0].gamma.cost_ratio;
        assert_eq!(
            used,
            Some(cost_ratio.unwrap_or(crate::gamma::MODEL_COST_RATIO_PRIOR))
        );
        assert!(cheap.steps.iter().all(|s| s.gamma.cost_ratio == used));
    }
}
