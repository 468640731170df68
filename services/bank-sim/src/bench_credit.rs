//! The credit benchmark's client side (`scripts/bench-credit.sh`): the subjects it loads, and
//! CheckEligibility calls over gRPC from concurrent clients at a fixed total rate, with the
//! latency of each call.

// Rates and durations are measurements, not money: floating point is right here (the workspace
// lint `float_arithmetic` guards amounts).
#![allow(clippy::float_arithmetic)]

use std::time::{Duration, Instant};

use jinfu_ledger::ids::{CentreCode, Uscc};
use jinfu_platform::auth::{Role, TokenKeys};
use jinfu_proto::credit::v1 as pb;
use jinfu_proto::credit::v1::credit_service_client::CreditServiceClient;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The `index`-th subject of the benchmark (a valid USCC).
pub fn subject(index: u64) -> anyhow::Result<String> {
    Ok(Uscc::with_check_character(&format!("9152{:013}", index))?.to_string())
}

/// What a run measured.
#[derive(Debug, Clone, Copy)]
pub struct CheckFigures {
    pub calls: usize,
    pub errors: usize,
    pub barred: usize,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// `rate` checks a second for `seconds`, spread over `clients` connections, each asking about a
/// random one of `subjects` subjects (twice as many as were loaded: half have records).
pub async fn run(url: &str, tokens: &TokenKeys, centre: &str, subjects: u64, rate: u64, seconds: u64, clients: u64) -> anyhow::Result<CheckFigures> {
    let token = tokens.issue(Role::Admin, &CentreCode::parse(centre)?, "bench", 900)?;
    let mut tasks = Vec::new();
    let started = Instant::now();
    for client in 0..clients.max(1) {
        let mut grpc = CreditServiceClient::connect(url.to_owned()).await?;
        let (token, centre) = (token.clone(), centre.to_owned());
        let every = Duration::from_secs_f64(clients.max(1) as f64 / rate.max(1) as f64);
        let until = started + Duration::from_secs(seconds);
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(client);
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let (mut latencies, mut errors, mut barred) = (Vec::new(), 0_usize, 0_usize);
            while Instant::now() < until {
                ticks.tick().await;
                let asked =
                    pb::CheckEligibilityRequest { centre_id: centre.clone(), subject_uscc: subject(rng.gen_range(0..subjects * 2))?, regime: 0, at: None };
                let mut request = tonic::Request::new(asked);
                request.metadata_mut().insert("authorization", format!("Bearer {token}").parse()?);
                let sent = Instant::now();
                match grpc.check_eligibility(request).await {
                    Ok(answer) => {
                        latencies.push(sent.elapsed());
                        barred += usize::from(!answer.into_inner().eligible);
                    }
                    Err(_) => errors += 1,
                }
            }
            anyhow::Ok((latencies, errors, barred))
        }));
    }
    let (mut latencies, mut errors, mut barred) = (Vec::new(), 0, 0);
    for task in tasks {
        let (mut some, failed, refused) = task.await??;
        latencies.append(&mut some);
        errors += failed;
        barred += refused;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let at = |fraction: f64| {
        latencies.get(((latencies.len() as f64 * fraction) as usize).min(latencies.len().saturating_sub(1))).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    Ok(CheckFigures { calls: latencies.len(), errors, barred, per_second: latencies.len() as f64 / elapsed, p50_ms: at(0.50), p99_ms: at(0.99) })
}
