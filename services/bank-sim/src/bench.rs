//! The bank side of the ingestion benchmark (`scripts/bench-ingest.sh` drives it):
//!
//! - `setup`: the demo province plus many sections and one sub-account per notice the run will
//!   send, opened over the ledger's gRPC API; the plan (sections, bidders) is written to a file.
//! - `produce`: signed notices with a realistic mix (about 90% clean), produced as fast as the
//!   broker takes them (`--rate 0`) or at a steady rate.
//! - `consume`: the broker's own limit, a consumer that reads the same records and does nothing
//!   else, so a slow broker and a slow ledger can be told apart.

// Rates, durations and sizes of a benchmark are measurements, not money: floating point is right
// here (the workspace lint `float_arithmetic` guards amounts).
#![allow(clippy::float_arithmetic)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use jinfu_ledger::ids::{sub_account_number, CentreCode, Uscc};
use jinfu_ledger::Fen;
use jinfu_platform::auth::Role;
use jinfu_platform::kafka::KafkaSettings;
use jinfu_platform::signing::{Scheme, SigningKey, VerifyingKey};
use jinfu_proto::ledger::v1 as pb;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::consumer::{Consumer, DefaultConsumerContext, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::demo::{register_province, Client, DemoBank};
use crate::{produce_all, signed_record, BankRecord, NoticeFields};

/// Bidders per open section of the benchmark province.
const BIDDERS_PER_SECTION: usize = 500;
/// Bidders of each bank's section whose deposit deadline has passed (late payments).
const LATE_BIDDERS: usize = 50;

/// What `setup` made: per bank, its open sections and the section past its deadline.
#[derive(Debug, Serialize, Deserialize)]
pub struct Plan {
    /// Value times of every stream are before this instant (so a statement can be rebuilt).
    pub created_at: chrono::DateTime<Utc>,
    pub banks: Vec<PlanBank>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PlanBank {
    pub code: String,
    pub centre: String,
    pub open: Vec<PlanSection>,
    pub late: PlanSection,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanSection {
    pub id: String,
    pub required_fen: i64,
    pub bidders: Vec<PlanBidder>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanBidder {
    pub sub_account: String,
    pub name: String,
    pub basic_account: String,
}

/// Percent of notices that go to the first bank's collection account: a deadline hour at one
/// city centre makes one collection account hot; the other banks share the rest evenly.
pub const HOT_SHARE_PERCENT: usize = 95;

/// How notice `index` maps to a bank and to that bank's own running count, in blocks of 100.
pub struct Shares {
    slot_bank: [usize; 100],
    slot_rank: [usize; 100],
    per_block: Vec<usize>,
}

impl Shares {
    pub fn new(banks: usize) -> Shares {
        let banks = banks.max(1);
        let mut shares = Shares { slot_bank: [0; 100], slot_rank: [0; 100], per_block: vec![0; banks] };
        for slot in 0..100 {
            let bank = if banks == 1 || slot < HOT_SHARE_PERCENT { 0 } else { 1 + (slot - HOT_SHARE_PERCENT) % (banks - 1) };
            shares.slot_bank[slot] = bank;
            shares.slot_rank[slot] = shares.per_block[bank];
            shares.per_block[bank] += 1;
        }
        shares
    }

    /// (bank, the bank's own index of this notice).
    pub fn of(&self, index: usize) -> (usize, usize) {
        let (block, slot) = (index / 100, index % 100);
        let bank = self.slot_bank[slot];
        (bank, block * self.per_block[bank] + self.slot_rank[slot])
    }

    /// Sub-accounts bank `bank` needs so that `notices` notices never run out of bidders.
    pub fn bidders_needed(&self, bank: usize, notices: usize) -> usize {
        (notices.div_ceil(100) * self.per_block[bank]).max(1)
    }
}

/// Sets up the province with at least `sub_accounts` open sub-accounts per bank's share,
/// sub-accounts opened in bulk, one call per section.
pub async fn setup(client: &mut Client, banks: &[DemoBank], sub_accounts: usize) -> anyhow::Result<Plan> {
    register_province(client, banks).await?;
    let run_id = Utc::now().format("%m%d%H%M%S").to_string();
    let shares = Shares::new(banks.len());
    let started = Instant::now();
    let mut plan = Plan { created_at: Utc::now(), banks: Vec::new() };
    let mut bidder_number: u64 = 0;
    for (bank_index, bank) in banks.iter().enumerate() {
        let per_bank = shares.bidders_needed(bank_index, sub_accounts);
        let sections = per_bank.div_ceil(BIDDERS_PER_SECTION);
        let mut open = Vec::new();
        for section_index in 0..sections {
            let id = format!("BENCH{run_id}-{bank_index}-{section_index:05}");
            // Every section full: notices are spread over sections round-robin.
            open.push(create_section(client, bank, &id, false, BIDDERS_PER_SECTION, &mut bidder_number).await?);
            if section_index % 20 == 19 {
                println!("[bench] bank {}: {} of {sections} sections set up ({:.0} s)", bank.code, section_index + 1, started.elapsed().as_secs_f64());
            }
        }
        let id = format!("BENCH{run_id}-{bank_index}-LATE");
        let late = create_section(client, bank, &id, true, LATE_BIDDERS, &mut bidder_number).await?;
        plan.banks.push(PlanBank { code: bank.code.clone(), centre: bank.centre.clone(), open, late });
    }
    println!("[bench] set up {bidder_number} sub-accounts in {:.1} s", started.elapsed().as_secs_f64());
    Ok(plan)
}

async fn create_section(
    client: &mut Client,
    bank: &DemoBank,
    id: &str,
    past_deadline: bool,
    bidders: usize,
    bidder_number: &mut u64,
) -> anyhow::Result<PlanSection> {
    let now = Utc::now();
    let (deadline, opening) = if past_deadline {
        (now - chrono::Duration::hours(2), now - chrono::Duration::hours(1))
    } else {
        (now + chrono::Duration::days(2), now + chrono::Duration::days(2))
    };
    let timestamp = |time: chrono::DateTime<Utc>| prost_types::Timestamp { seconds: time.timestamp(), nanos: 0 };
    let required_fen = 5_000_000;
    let request = pb::CreateSectionRequest {
        centre_id: bank.centre.clone(),
        section_id: id.to_owned(),
        name: format!("压测标段 {id}"),
        regime: pb::Regime::Engineering as i32,
        required_deposit_fen: required_fen,
        deposit_deadline: Some(timestamp(deadline)),
        bid_opening_time: Some(timestamp(opening)),
        bank: bank.code.clone(),
        account_number: bank.account_number.clone(),
        basic_account_required: false,
    };
    client.grpc.create_section(client.request(Role::Operator, &bank.centre, "bench-operator", request)?).await?;
    // One bulk call per section (as a trading system registers its bidders).
    let mut accounts = Vec::with_capacity(bidders);
    let mut people = Vec::with_capacity(bidders);
    for _ in 0..bidders {
        *bidder_number += 1;
        let uscc = Uscc::with_check_character(&format!("91{}{:09}", bank.centre, *bidder_number))?;
        let name = format!("贵州压测{}建设工程有限公司", *bidder_number);
        let basic_account = format!("6228{:012}", *bidder_number);
        accounts.push(pb::OpenSubAccountRequest {
            centre_id: bank.centre.clone(),
            section_id: id.to_owned(),
            bidder_uscc: uscc.to_string(),
            bidder_name: name.clone(),
            basic_account: basic_account.clone(),
        });
        people.push((name, basic_account));
    }
    let request = client.request(Role::Operator, &bank.centre, "bench-operator", pb::OpenSubAccountsRequest { accounts })?;
    let opened = client.grpc.open_sub_accounts(request).await?.into_inner().accounts;
    anyhow::ensure!(opened.len() == people.len(), "the ledger opened {} of {} sub-accounts", opened.len(), people.len());
    let bidders = opened
        .into_iter()
        .zip(people)
        .map(|(opened, (name, basic_account))| PlanBidder { sub_account: opened.sub_account_number, name, basic_account })
        .collect();
    Ok(PlanSection { id: id.to_owned(), required_fen, bidders })
}

/// The cases of the benchmark's mix, per thousand notices.
const MIX: [(&str, u32); 8] = [
    ("clean", 900),
    ("short", 20),
    ("over", 20),
    ("unknown sub-account", 15),
    ("wrong payer", 15),
    ("late", 10),
    ("redelivered duplicate", 18),
    ("bad signature (dead letter)", 2),
];

fn case_of(roll: u32) -> &'static str {
    let mut bound = 0;
    for (case, share) in MIX {
        bound += share;
        if roll < bound {
            return case;
        }
    }
    MIX[0].0
}

/// One generated notice before signing.
pub struct Planned<'a> {
    pub bank: &'a DemoBank,
    pub fields: NoticeFields,
    /// Sent with a signature that does not verify (the bank's money arrived all the same).
    pub forged: bool,
    /// A redelivery of an earlier notice (same serial, same bytes).
    pub duplicate: bool,
}

/// Generates notices `[first, first + count)` of a deterministic stream. Notice `i` uses open
/// bidder `bidder_offset + i` (each bidder pays at most once), so two streams with disjoint
/// bidder ranges never collide. `tag` makes the bank serials unique per stream.
pub struct Generator<'a> {
    plan: &'a Plan,
    banks: HashMap<&'a str, &'a DemoBank>,
    tag: String,
    bidder_offset: usize,
    rng: StdRng,
    shares: Shares,
    recent: Vec<(&'a DemoBank, NoticeFields)>,
    pub cases: std::collections::BTreeMap<&'static str, usize>,
}

impl<'a> Generator<'a> {
    pub fn new(plan: &'a Plan, banks: &'a [DemoBank], tag: &str, bidder_offset: usize, seed: u64) -> Generator<'a> {
        Generator {
            plan,
            banks: banks.iter().map(|bank| (bank.code.as_str(), bank)).collect(),
            tag: tag.to_owned(),
            bidder_offset,
            rng: StdRng::seed_from_u64(seed),
            shares: Shares::new(plan.banks.len()),
            recent: Vec::new(),
            cases: Default::default(),
        }
    }

    /// Open bidders available in all.
    pub fn bidders(plan: &Plan) -> usize {
        plan.banks.iter().flat_map(|bank| &bank.open).map(|section| section.bidders.len()).sum()
    }

    /// The notices with sequence numbers `range`, signed (signatures computed on every core).
    pub fn chunk(&mut self, range: std::ops::Range<usize>) -> anyhow::Result<Vec<BankRecord>> {
        let planned = self.fields(range)?;
        let threads = std::thread::available_parallelism().map(usize::from).unwrap_or(2);
        let per_thread = planned.len().div_ceil(threads).max(1);
        let mut records: Vec<BankRecord> = Vec::with_capacity(planned.len());
        std::thread::scope(|scope| {
            let handles: Vec<_> = planned
                .chunks(per_thread)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|notice| {
                                let mut record =
                                    signed_record(&notice.fields.sub_account_number, notice.fields.to_json(), &notice.bank.key_ref, &notice.bank.signing_key);
                                if notice.forged {
                                    // A signature that is not over these bytes: a dead letter.
                                    record.headers[0].1 = b"c2lnbmVkIG92ZXIgb3RoZXIgYnl0ZXM=".to_vec();
                                }
                                record
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for handle in handles {
                records.extend(handle.join().expect("a signing thread does not panic"));
            }
        });
        Ok(records)
    }

    /// The notices with sequence numbers `range`, unsigned. Deterministic for a given plan,
    /// seed and tag, so the bank's statement can be rebuilt from the same arguments.
    pub fn fields(&mut self, range: std::ops::Range<usize>) -> anyhow::Result<Vec<Planned<'a>>> {
        let offset = jinfu_ledger::beijing::offset();
        let mut planned: Vec<Planned<'a>> = Vec::with_capacity(range.len());
        for sequence in range {
            let case = case_of(self.rng.gen_range(0..1000));
            *self.cases.entry(case).or_default() += 1;
            if case == "redelivered duplicate" && !self.recent.is_empty() {
                let (bank, fields) = self.recent[self.rng.gen_range(0..self.recent.len())].clone();
                planned.push(Planned { bank, fields, forged: false, duplicate: true });
                continue;
            }
            let (bank, section, bidder) = self.open_bidder(self.bidder_offset + sequence)?;
            let demo_bank = *self.banks.get(bank.code.as_str()).ok_or_else(|| anyhow::anyhow!("no key given for bank {}", bank.code))?;
            let mut fields = NoticeFields {
                event_id: uuid::Uuid::from_u128(self.rng.gen()).to_string(),
                centre_id: bank.centre.clone(),
                bank: bank.code.clone(),
                bank_serial: format!("{}-{}-{sequence:010}", bank.code, self.tag),
                account_number: demo_bank.account_number.clone(),
                sub_account_number: bidder.sub_account.clone(),
                amount: Fen::from_fen(section.required_fen).to_yuan_string(),
                payer_name: bidder.name.clone(),
                payer_account: bidder.basic_account.clone(),
                value_time: (self.plan.created_at - chrono::Duration::seconds(self.rng.gen_range(1..36_000))).with_timezone(&offset),
            };
            match case {
                "short" => fields.amount = Fen::from_fen(section.required_fen / 2).to_yuan_string(),
                "over" => fields.amount = Fen::from_fen(section.required_fen + 100_000).to_yuan_string(),
                "unknown sub-account" => {
                    let centre = CentreCode::parse(&bank.centre)?;
                    fields.sub_account_number = sub_account_number(&centre, 8_000_000_000 + sequence as u64);
                }
                "wrong payer" => {
                    fields.payer_name = "贵州某某商贸有限公司".into();
                    fields.payer_account = format!("6217{sequence:012}");
                }
                "late" => {
                    let late = &bank.late.bidders[sequence % bank.late.bidders.len()];
                    fields.sub_account_number = late.sub_account.clone();
                    fields.payer_name = late.name.clone();
                    fields.payer_account = late.basic_account.clone();
                }
                _ => {}
            }
            self.recent.push((demo_bank, fields.clone()));
            if self.recent.len() > 5000 {
                self.recent.drain(..1000);
            }
            planned.push(Planned { bank: demo_bank, fields, forged: case == "bad signature (dead letter)", duplicate: false });
        }
        Ok(planned)
    }

    fn open_bidder(&self, index: usize) -> anyhow::Result<(&'a PlanBank, &'a PlanSection, &'a PlanBidder)> {
        // Spread consecutive notices over banks and sections, as a deadline hour does.
        let (bank_index, within) = self.shares.of(index);
        let bank = &self.plan.banks[bank_index];
        let sections = bank.open.len();
        let section = &bank.open[within % sections];
        let bidder = section
            .bidders
            .get(within / sections)
            .ok_or_else(|| anyhow::anyhow!("the plan has too few bidders for notice {index}: run setup with more sub-accounts"))?;
        Ok((bank, section, bidder))
    }
}

/// Produces notices `[0, count)` of the generator's stream at `rate` per second (0: as fast as
/// the broker acknowledges), printing progress. Returns the records produced.
pub async fn produce(kafka: &KafkaSettings, generator: &mut Generator<'_>, count: usize, rate: usize) -> anyhow::Result<usize> {
    let producer = kafka.producer()?;
    let topic = kafka.topic(jinfu_platform::topics::BANK_CREDIT_NOTICES);
    // Connect before the clock starts: a bank's producer is long-lived, and records created
    // while a new producer is still connecting would count its start-up as ledger latency.
    rdkafka::producer::Producer::client(&producer).fetch_metadata(Some(&topic), Duration::from_secs(30))?;
    if rate > 0 {
        // The idempotent producer obtains its producer id in the background after connecting.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let started = Instant::now();
    let chunk = if rate == 0 { 20_000 } else { (rate / 100).max(1) };
    let mut produced = 0;
    let mut last_report = Instant::now();
    // Paced: enqueue each tick's records and collect the acknowledgements as they come, so a
    // slow acknowledgement never holds back the next tick (produce-to-posted latency then
    // measures the ledger, not this loop).
    let mut pending = futures::stream::FuturesUnordered::new();
    while produced < count {
        let end = (produced + chunk).min(count);
        let records = generator.chunk(produced..end)?;
        if rate == 0 {
            produce_all(&producer, &topic, &records).await?;
        } else {
            for record in &records {
                let headers = jinfu_platform::kafka::with_trace_context(jinfu_platform::kafka::owned_headers(&record.headers));
                let delivery = producer
                    .send_result(rdkafka::producer::FutureRecord::to(&topic).key(&record.key).payload(&record.value).headers(headers))
                    .map_err(|(error, _)| anyhow::anyhow!("enqueueing a notice failed: {error}"))?;
                pending.push(delivery);
            }
            while let Some(Some(acknowledged)) = futures::FutureExt::now_or_never(futures::StreamExt::next(&mut pending)) {
                acknowledged?.map_err(|(error, _)| anyhow::anyhow!("producing a notice failed: {error}"))?;
            }
        }
        produced = end;
        if rate > 0 {
            let due = Duration::from_secs_f64(produced as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        if last_report.elapsed() >= Duration::from_secs(5) || produced == count {
            last_report = Instant::now();
            let seconds = started.elapsed().as_secs_f64();
            println!("[bench] produced {produced} of {count} notices in {seconds:.1} s ({:.0}/s)", produced as f64 / seconds);
        }
    }
    while let Some(acknowledged) = futures::StreamExt::next(&mut pending).await {
        acknowledged?.map_err(|(error, _)| anyhow::anyhow!("producing a notice failed: {error}"))?;
    }
    Ok(produced)
}

/// Reads every record of `bank.credit-notices` from the beginning up to the high watermarks
/// seen at start, with the ledger's consumer settings, and does nothing else with them.
/// Returns (records, seconds).
pub async fn consume(kafka: &KafkaSettings) -> anyhow::Result<(u64, f64)> {
    let topic = kafka.topic(jinfu_platform::topics::BANK_CREDIT_NOTICES);
    let group = format!("bench-broker-limit-{}", uuid::Uuid::new_v4());
    let consumer: StreamConsumer<DefaultConsumerContext> = kafka.consumer(&group, None, DefaultConsumerContext)?;
    let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(30))?;
    let mut assignment = TopicPartitionList::new();
    let mut remaining: HashMap<i32, i64> = HashMap::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        let (low, high) = consumer.fetch_watermarks(&topic, partition.id(), Duration::from_secs(30))?;
        if high > low {
            remaining.insert(partition.id(), high);
        }
        assignment.add_partition_offset(&topic, partition.id(), Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let started = Instant::now();
    let mut records: u64 = 0;
    let mut bytes: u64 = 0;
    let mut last_report = Instant::now();
    while !remaining.is_empty() {
        let message = consumer.recv().await?;
        records += 1;
        if last_report.elapsed() >= Duration::from_secs(5) {
            last_report = Instant::now();
            println!("[bench]   broker limit: {records} records read in {:.0} s", started.elapsed().as_secs_f64());
        }
        bytes += message.payload_len() as u64;
        let (partition, offset) = (message.partition(), message.offset());
        if remaining.get(&partition).is_some_and(|high| offset + 1 >= *high) {
            remaining.remove(&partition);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("[bench] broker limit: read {records} records ({:.0} MB) in {seconds:.1} s", bytes as f64 / 1e6);
    Ok((records, seconds))
}

/// Microseconds per signature and per verification of a 600-byte notice, per scheme, on one
/// core: the figure that bounds how many notices one core can accept.
pub fn signature_costs(samples: u32) -> anyhow::Result<Vec<(Scheme, f64, f64)>> {
    let message = vec![b'x'; 600];
    let mut costs = Vec::new();
    for scheme in [Scheme::Sm2Sm3, Scheme::Ed25519] {
        let key = SigningKey::generate(scheme);
        let verifying = VerifyingKey::from_hex(scheme, &key.public_key_hex())?;
        let started = Instant::now();
        let signatures: Vec<String> = (0..samples).map(|_| key.sign(&message)).collect();
        let sign_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(samples);
        let started = Instant::now();
        for signature in &signatures {
            verifying.verify(&message, signature)?;
        }
        let verify_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(samples);
        costs.push((scheme, sign_us, verify_us));
    }
    Ok(costs)
}

/// Rebuilds, from the streams a run produced (`(tag, bidder offset, count, seed)`), the
/// end-of-day statement of every bank: each distinct serial once, forged notices included (the
/// money arrived even though the notice was refused). Opening balance zero (a fresh ledger),
/// period from two days before the plan to its creation.
pub fn statements(plan: &Plan, banks: &[DemoBank], streams: &[(String, usize, usize, u64)]) -> anyhow::Result<Vec<(String, Vec<BankRecord>)>> {
    let mut lines: HashMap<&str, Vec<crate::StatementLine>> = HashMap::new();
    let mut totals: HashMap<&str, Fen> = HashMap::new();
    for (tag, bidder_offset, count, seed) in streams {
        let mut generator = Generator::new(plan, banks, tag, *bidder_offset, *seed);
        let mut start = 0;
        while start < *count {
            let end = (start + 50_000).min(*count);
            for notice in generator.fields(start..end)? {
                if notice.duplicate {
                    continue;
                }
                let amount = Fen::parse_positive_yuan(&notice.fields.amount)?;
                let total = totals.entry(notice.bank.code.as_str()).or_insert(Fen::ZERO);
                *total = *total + amount;
                lines.entry(notice.bank.code.as_str()).or_default().push(crate::StatementLine {
                    serial: notice.fields.bank_serial,
                    direction: "credit",
                    amount: notice.fields.amount,
                    counterparty_name: notice.fields.payer_name,
                    counterparty_account: notice.fields.payer_account,
                    sub_account_number: Some(notice.fields.sub_account_number),
                    value_time: notice.fields.value_time,
                });
            }
            start = end;
        }
    }
    let china = jinfu_ledger::beijing::offset();
    let cut_off = plan.created_at.with_timezone(&china);
    let mut statements = Vec::new();
    for bank in banks {
        let Some(bank_lines) = lines.get(bank.code.as_str()) else { continue };
        let header = crate::StatementHeader {
            statement_id: format!("{}-{}-{}", bank.code, bank.account_number, cut_off.format("%Y%m%d%H%M%S")),
            bank: bank.code.clone(),
            account_number: bank.account_number.clone(),
            centre_id: bank.centre.clone(),
            statement_date: cut_off.date_naive(),
            period_start: cut_off - chrono::Duration::days(2),
            cut_off,
            opening_balance: "0.00".into(),
            closing_balance: totals.get(bank.code.as_str()).copied().unwrap_or(Fen::ZERO).to_yuan_string(),
        };
        let records = crate::statement_records(&header, bank_lines, &bank.key_ref, &bank.signing_key);
        println!("[bench] statement {} : {} lines in {} parts", header.statement_id, bank_lines.len(), records.len());
        statements.push((header.statement_id, records));
    }
    Ok(statements)
}

/// Produces every statement's records to `bank.statements`.
pub async fn produce_statements(kafka: &KafkaSettings, statements: &[(String, Vec<BankRecord>)]) -> anyhow::Result<()> {
    let producer = kafka.producer()?;
    let topic = kafka.topic(jinfu_platform::topics::BANK_STATEMENTS);
    for (_, records) in statements {
        for chunk in records.chunks(50) {
            produce_all(&producer, &topic, chunk).await?;
        }
    }
    Ok(())
}

/// Records per second, for a report line.
pub fn per_second(records: u64, seconds: f64) -> f64 {
    records as f64 / seconds.max(f64::EPSILON)
}
