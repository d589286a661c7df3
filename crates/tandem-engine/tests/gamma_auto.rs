//! γ auto (the goodput rule) with sampling: the draft/target cost ratio is measured once
//! before the run, kept for the whole run and recorded in the log header, so that a
//! rerun with the recorded ratio and the same seed gives the same tokens. Read from the
//! clock step by step, γ (and with it the random draws) would change from run to run.

use tandem_engine::record::{run_recorded, RunContext, RunRecord};
use tandem_engine::{
    GammaPolicy, GenerateRequest, LoadedModel, LoadedPair, ModelSpec, RunMode, SamplingConfig,
};
use tandem_model::test_models::fixture_dir;

fn pair() -> LoadedPair {
    let load = |name: &str| LoadedModel::load(&ModelSpec::new(fixture_dir(name))).unwrap();
    LoadedPair::new(load("qwen2-bias"), Some(load("llama-gqa"))).unwrap()
}

fn request(gamma: GammaPolicy) -> GenerateRequest {
    let mut request = GenerateRequest::new(
        "The model reads 42 tokens, then writes! The model reads",
        RunMode::Speculative,
    );
    request.sampling = SamplingConfig::random(1.0, 11);
    request.max_new_tokens = 24;
    request.ignore_eos = true;
    request.gamma = gamma;
    request
}

fn run(pair: &mut LoadedPair, request: &GenerateRequest) -> RunRecord {
    let context = RunContext::new(&request.mode);
    run_recorded(pair, request, context, &mut |_, _| {}, None).unwrap()
}

fn gammas(record: &RunRecord) -> Vec<usize> {
    record.steps.iter().map(|s| s.trace.gamma.gamma).collect()
}

#[test]
fn gamma_auto_fixes_its_cost_ratio_and_a_seed_fixes_the_tokens() {
    let mut pair = pair();
    let mut request = request(GammaPolicy::Goodput { max: 6 });
    let first = run(&mut pair, &request);
    let measured = first
        .header
        .gamma_cost_ratio
        .expect("γ auto records the cost ratio it used");
    assert!(measured.is_finite() && measured > 0.0, "{measured}");
    assert!(first
        .steps
        .iter()
        .all(|s| s.trace.gamma.cost_ratio == Some(measured)));

    // Rerun with the recorded ratio: the same γ every step, the same tokens.
    request.gamma_cost_ratio = Some(measured);
    let again = run(&mut pair, &request);
    assert_eq!(again.header.gamma_cost_ratio, Some(measured));
    assert_eq!(gammas(&again), gammas(&first));
    assert_eq!(again.outcome.tokens, first.outcome.tokens);

    // The ratio is what steers γ: drafts dearer than the target leave γ at 1.
    request.gamma_cost_ratio = Some(5.0);
    let dear = run(&mut pair, &request);
    assert!(gammas(&dear).iter().all(|&g| g <= 1), "{:?}", gammas(&dear));

    // Other policies measure nothing.
    let fixed = run(&mut pair, &self::request(GammaPolicy::Fixed(3)));
    assert_eq!(fixed.header.gamma_cost_ratio, None);
}
