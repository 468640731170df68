//! The demo province: Guizhou's province centre and two city centres, their collection
//! accounts at two banks (one signing with SM2/SM3, one with Ed25519), sections and bidders set
//! up over the ledger's gRPC API, then a stream of signed credit notices with a realistic mix
//! of clean and bad cases, and a summary read back from the ledger.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use jinfu_ledger::ids::{sub_account_number, CentreCode, Uscc};
use jinfu_platform::auth::{Role, TokenKeys};
use jinfu_platform::kafka::KafkaSettings;
use jinfu_platform::signing::SigningKey;
use jinfu_proto::ledger::v1 as pb;
use jinfu_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tonic::transport::Channel;

use crate::guarantees::{Candidate, GuaranteeDemo, Issued};
use crate::{produce_all, signed_record, BankRecord, NoticeFields};

/// One simulated bank's collection account and signing key.
pub struct DemoBank {
    pub code: String,
    pub account_number: String,
    pub key_ref: String,
    pub signing_key: SigningKey,
    pub centre: String,
}

pub struct DemoSettings {
    pub ledger_url: String,
    pub tokens: TokenKeys,
    pub kafka: KafkaSettings,
    pub banks: Vec<DemoBank>,
    /// Notices to send in all.
    pub count: usize,
    /// Notices per second.
    pub rate: usize,
    pub seed: u64,
    /// The e-guarantee part of the demo (`--guarantee-url`); none: every bidder pays cash.
    pub guarantees: Option<GuaranteeDemo>,
    /// The notification part (`--notification-url`): bidders register their contacts first.
    pub notifications: Option<crate::notifications::NotificationDemo>,
}

/// What the stream contained, by the case the simulator meant to create.
#[derive(Debug, Default)]
pub struct SentMix {
    pub cases: BTreeMap<&'static str, usize>,
    /// Records the ledger should apply as new notices.
    pub new_notices: usize,
    pub conflicts: usize,
    /// Open sections: (centre, section, bidders' codes), for the tender events that follow.
    pub sections: Vec<(String, String, Vec<String>)>,
    /// Notices and conflicts the ledger had already applied before this run (a reused database).
    pub applied_before: i64,
    pub conflicts_before: i64,
    /// Bid guarantees bought instead of cash deposits.
    pub guarantees: Issued,
}

struct Bidder {
    uscc: String,
    name: String,
    basic_account: String,
    sub_account: String,
}

struct Section {
    id: String,
    required_fen: i64,
    bidders: Vec<Bidder>,
    /// Indexes of the bidders that pay cash (the others bought a bid guarantee).
    cash: Vec<usize>,
    kind: SectionKind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SectionKind {
    Open,
    PastDeadline,
    Closed,
}

/// A gRPC client of the ledger that mints its own tokens.
pub struct Client {
    pub grpc: LedgerServiceClient<Channel>,
    pub tokens: TokenKeys,
}

impl Client {
    pub async fn connect(url: &str, tokens: &TokenKeys) -> anyhow::Result<Client> {
        Ok(Client { grpc: LedgerServiceClient::connect(url.to_owned()).await?, tokens: tokens.clone() })
    }

    /// A request carrying a token for `role` in `centre`, acting as `party`.
    pub fn request<T>(&self, role: Role, centre: &str, party: &str, message: T) -> anyhow::Result<tonic::Request<T>> {
        let token = self.tokens.issue(role, &CentreCode::parse(centre)?, party, 600)?;
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert("authorization", format!("Bearer {token}").parse()?);
        Ok(request)
    }
}

const COMPANY_WORDS: [&str; 12] = ["黔城", "筑达", "遵义红", "乌江", "云岭", "花溪", "赤水", "梵净", "苗岭", "娄山", "凤冈", "湄潭"];
const COMPANY_KINDS: [&str; 4] = ["建设工程有限公司", "（集团）有限公司", "科技有限公司", "市政工程有限公司"];

fn timestamp(time: chrono::DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: time.timestamp(), nanos: 0 }
}

/// The demo province's centres (code, name, parent).
pub const CENTRES: [(&str, &str, &str); 3] =
    [("520000", "贵州省公共资源交易中心", ""), ("520100", "贵阳市公共资源交易中心", "520000"), ("520300", "遵义市公共资源交易中心", "520000")];

/// Registers the province's centres and the banks' collection accounts (idempotent).
pub async fn register_province(client: &mut Client, banks: &[DemoBank]) -> anyhow::Result<[(&'static str, &'static str, &'static str); 3]> {
    for (code, name, parent) in CENTRES {
        // The demo orders refunds at once (no forfeiture hold) so the whole cycle shows.
        let request = pb::RegisterCentreRequest {
            centre_id: code.into(),
            name: name.into(),
            parent_centre_id: parent.into(),
            refund_period_days: Some(5),
            refund_hold_working_days: Some(0),
            refund_periods: Vec::new(),
        };
        client.grpc.register_centre(client.request(Role::Admin, code, "demo-admin", request)?).await?;
    }
    for bank in banks {
        let request = pb::RegisterBankAccountRequest {
            centre_id: bank.centre.clone(),
            bank: bank.code.clone(),
            account_number: bank.account_number.clone(),
            signing_key_ref: bank.key_ref.clone(),
            demand_deposit_rate: "0.0010".into(),
        };
        client.grpc.register_bank_account(client.request(Role::Admin, &bank.centre, "demo-admin", request)?).await?;
    }
    Ok(CENTRES)
}

/// Sets up the province and streams notices; returns what was sent.
pub async fn run(settings: &DemoSettings) -> anyhow::Result<SentMix> {
    let mut client = Client::connect(&settings.ledger_url, &settings.tokens).await?;
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let run_id = Utc::now().format("%m%d%H%M%S").to_string();

    let centres = register_province(&mut client, &settings.banks).await?;

    // Enough bidders that most notices are a first, clean payment.
    let bidders_per_section = 60;
    let open_sections_per_bank = (settings.count * 3 / 4 / settings.banks.len().max(1) / bidders_per_section).max(1);
    let mut sections_by_bank: Vec<Vec<Section>> = Vec::new();
    let mut bidder_number: u64 = 0;
    for (bank_index, bank) in settings.banks.iter().enumerate() {
        let mut sections = Vec::new();
        let kinds = std::iter::repeat_n(SectionKind::Open, open_sections_per_bank).chain([SectionKind::PastDeadline, SectionKind::Closed]);
        for (section_index, kind) in kinds.enumerate() {
            let id = format!("GZ{run_id}-{bank_index}-{section_index:03}");
            let now = Utc::now();
            let (deadline, opening) = match kind {
                SectionKind::PastDeadline => (now - chrono::Duration::hours(2), now - chrono::Duration::hours(1)),
                _ => (now + chrono::Duration::days(2), now + chrono::Duration::days(2)),
            };
            let required_fen = 1_000_000 * rng.gen_range(1..=20);
            let request = pb::CreateSectionRequest {
                centre_id: bank.centre.clone(),
                section_id: id.clone(),
                name: format!("演示标段 {id}"),
                regime: if section_index % 2 == 0 { pb::Regime::Engineering as i32 } else { pb::Regime::Procurement as i32 },
                required_deposit_fen: required_fen,
                deposit_deadline: Some(timestamp(deadline)),
                bid_opening_time: Some(timestamp(opening)),
                bank: bank.code.clone(),
                account_number: bank.account_number.clone(),
                basic_account_required: section_index % 3 == 0,
            };
            client.grpc.create_section(client.request(Role::Operator, &bank.centre, "demo-operator", request)?).await?;
            let mut bidders = Vec::new();
            for _ in 0..bidders_per_section {
                bidder_number += 1;
                let uscc = Uscc::with_check_character(&format!("91{}{:09}", bank.centre, bidder_number))?;
                let name = format!(
                    "贵州{}{}{}",
                    COMPANY_WORDS[(bidder_number as usize) % COMPANY_WORDS.len()],
                    bidder_number,
                    COMPANY_KINDS[(bidder_number as usize / 7) % COMPANY_KINDS.len()]
                );
                let basic_account = format!("6222{:012}", bidder_number);
                let request = pb::OpenSubAccountRequest {
                    centre_id: bank.centre.clone(),
                    section_id: id.clone(),
                    bidder_uscc: uscc.to_string(),
                    bidder_name: name.replace('（', "(").replace('）', ")"),
                    basic_account: basic_account.clone(),
                };
                let response = client.grpc.open_sub_account(client.request(Role::Bidder, &bank.centre, uscc.as_str(), request)?).await?.into_inner();
                bidders.push(Bidder { uscc: uscc.to_string(), name, basic_account, sub_account: response.sub_account_number });
            }
            if kind == SectionKind::Closed {
                let request = pb::CloseSectionRequest { centre_id: bank.centre.clone(), section_id: id.clone(), reason: "招标终止（演示）".into() };
                client.grpc.close_section(client.request(Role::Operator, &bank.centre, "demo-operator", request)?).await?;
            }
            // A share of an open section's bidders buy a bid guarantee instead of paying cash.
            let mut cash: Vec<usize> = (0..bidders.len())
                .filter(|_| kind != SectionKind::Open || !settings.guarantees.as_ref().is_some_and(|demo| demo.chooses_guarantee(&mut rng)))
                .collect();
            if cash.is_empty() {
                cash = (0..bidders.len()).collect();
            }
            sections.push(Section { id, required_fen, bidders, cash, kind });
        }
        sections_by_bank.push(sections);
    }
    println!(
        "set up {} centres, {} collection accounts, {} sections, {} bidders",
        centres.len(),
        settings.banks.len(),
        sections_by_bank.iter().map(Vec::len).sum::<usize>(),
        bidder_number
    );
    if let Some(demo) = &settings.notifications {
        let by_bank = settings.banks.iter().zip(&sections_by_bank);
        let bidders =
            by_bank.flat_map(|(bank, sections)| sections.iter().flat_map(|section| &section.bidders).map(|bidder| (bank.centre.clone(), bidder.uscc.clone())));
        crate::notifications::register(demo, &settings.tokens, &bidders.collect::<Vec<_>>()).await?;
    }

    let mut issued = Issued::default();
    if let Some(demo) = &settings.guarantees {
        let candidates: Vec<Candidate> = sections_by_bank
            .iter()
            .zip(&settings.banks)
            .flat_map(|(sections, bank)| {
                sections.iter().flat_map(move |section| {
                    (0..section.bidders.len()).filter(|index| !section.cash.contains(index)).map(move |index| Candidate {
                        centre: bank.centre.clone(),
                        section_id: section.id.clone(),
                        bidder_uscc: section.bidders[index].uscc.clone(),
                    })
                })
            })
            .collect();
        // Bid validity (投标有效期): 90 days after the opening.
        let bid_validity_to = (Utc::now() + chrono::Duration::days(92)).with_timezone(&jinfu_ledger::beijing::offset()).date_naive();
        issued = crate::guarantees::apply_and_issue(demo, &settings.tokens, &run_id, &candidates, bid_validity_to, &mut rng).await?;
    }

    let (records, mix) = generate(settings, &sections_by_bank, &run_id, &mut rng);
    let plan: Vec<(String, String, Vec<String>)> = sections_by_bank
        .iter()
        .zip(&settings.banks)
        .flat_map(|(sections, bank)| {
            sections
                .iter()
                .filter(|section| section.kind == SectionKind::Open)
                .map(|section| (bank.centre.clone(), section.id.clone(), section.bidders.iter().map(|b| b.uscc.clone()).collect()))
                .collect::<Vec<_>>()
        })
        .collect();
    let (applied_before, conflicts_before) = applied_so_far(&client, settings).await?;
    let producer = settings.kafka.producer()?;
    let topic = settings.kafka.topic(jinfu_platform::topics::BANK_CREDIT_NOTICES);
    let chunk = (settings.rate / 10).max(1);
    let started = std::time::Instant::now();
    for (index, records) in records.chunks(chunk).enumerate() {
        produce_all(&producer, &topic, records).await?;
        let due = Duration::from_millis(100 * (index as u64 + 1));
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    println!("sent {} notices in {:.1} s to {topic}", records.len(), started.elapsed().as_secs_f64());
    Ok(SentMix { sections: plan, applied_before, conflicts_before, guarantees: issued, ..mix })
}

/// Notices and conflicts the ledger has applied so far, over the demo's centres.
async fn applied_so_far(client: &Client, settings: &DemoSettings) -> anyhow::Result<(i64, i64)> {
    let mut centres: Vec<String> = settings.banks.iter().map(|b| b.centre.clone()).collect();
    centres.sort();
    centres.dedup();
    let (mut applied, mut conflicts) = (0, 0);
    for centre in centres {
        let request = client.request(Role::Supervisor, "520000", "demo-supervisor", pb::GetIngestSummaryRequest { centre_id: centre })?;
        let summary = client.grpc.clone().get_ingest_summary(request).await?.into_inner();
        applied += summary.outcomes.iter().map(|o| o.notices).sum::<i64>();
        conflicts += summary.conflicts;
    }
    Ok((applied, conflicts))
}

fn generate(settings: &DemoSettings, sections_by_bank: &[Vec<Section>], run_id: &str, rng: &mut StdRng) -> (Vec<BankRecord>, SentMix) {
    let mut mix = SentMix::default();
    let mut records: Vec<BankRecord> = Vec::with_capacity(settings.count);
    let mut fields_sent: Vec<(usize, NoticeFields)> = Vec::new();
    let mut next_bidder: Vec<Vec<usize>> = sections_by_bank.iter().map(|sections| vec![0; sections.len()]).collect();
    let offset = jinfu_ledger::beijing::offset();
    let mut serial: u64 = 0;
    while records.len() < settings.count {
        let bank_index = rng.gen_range(0..settings.banks.len());
        let bank = &settings.banks[bank_index];
        let sections = &sections_by_bank[bank_index];
        let open_count = sections.iter().filter(|s| s.kind == SectionKind::Open).count();
        serial += 1;
        let roll: u32 = rng.gen_range(0..1000);
        let section_index = match roll {
            850..=879 => sections.iter().position(|s| s.kind == SectionKind::PastDeadline).unwrap_or(0),
            880..=899 => sections.iter().position(|s| s.kind == SectionKind::Closed).unwrap_or(0),
            _ => rng.gen_range(0..open_count),
        };
        let section = &sections[section_index];
        let cursor = &mut next_bidder[bank_index][section_index];
        // Only the bidders that pay cash pay (a bidder with a bid guarantee pays no deposit).
        let payers = &section.cash;
        let bidder = &section.bidders[payers[*cursor % payers.len()]];
        *cursor += 1;
        let mut fields = NoticeFields {
            event_id: uuid::Uuid::new_v4().to_string(),
            centre_id: bank.centre.clone(),
            bank: bank.code.clone(),
            bank_serial: format!("{}{run_id}{serial:08}", bank.code),
            account_number: bank.account_number.clone(),
            sub_account_number: bidder.sub_account.clone(),
            amount: jinfu_ledger::Fen::from_fen(section.required_fen).to_yuan_string(),
            payer_name: bidder.name.clone(),
            payer_account: bidder.basic_account.clone(),
            value_time: (Utc::now() - chrono::Duration::hours(rng.gen_range(0..720))).with_timezone(&offset),
        };
        let case: &'static str = match roll {
            0..=699 => "clean",
            700..=739 => {
                fields.amount = jinfu_ledger::Fen::from_fen(section.required_fen / 2).to_yuan_string();
                "short"
            }
            740..=769 => {
                fields.amount = jinfu_ledger::Fen::from_fen(section.required_fen + 100_000).to_yuan_string();
                "over"
            }
            770..=799 => {
                let centre = CentreCode::parse(&bank.centre).expect("demo centres are valid");
                fields.sub_account_number = sub_account_number(&centre, 9_000_000_000 + serial);
                "unknown sub-account"
            }
            800..=829 => {
                fields.payer_name = "贵州某某商贸有限公司".into();
                fields.payer_account = format!("6217{serial:012}");
                "wrong payer"
            }
            830..=849 => {
                // Collusion: the previous bidder's account also pays this bidder's deposit.
                let other = &section.bidders[payers[(*cursor + 1) % payers.len()]];
                fields.payer_name = other.name.clone();
                fields.payer_account = other.basic_account.clone();
                "collusion (one account, two bidders)"
            }
            850..=879 => "late",
            880..=899 => "section closed",
            900..=939 => "redelivered duplicate",
            940..=949 => "same serial, different content",
            _ => "bad input",
        };
        let record = match case {
            "redelivered duplicate" if !records.is_empty() => {
                let previous = rng.gen_range(0..records.len());
                records[previous].clone()
            }
            "same serial, different content" if !fields_sent.is_empty() => {
                let (bank_of_previous, mut previous) = fields_sent[rng.gen_range(0..fields_sent.len())].clone();
                previous.amount = "1.00".into();
                let previous_bank = &settings.banks[bank_of_previous];
                mix.conflicts += 1;
                signed_record(&previous.sub_account_number.clone(), previous.to_json(), &previous_bank.key_ref, &previous_bank.signing_key)
            }
            "bad input" => bad_input(&fields, bank, serial),
            "redelivered duplicate" | "same serial, different content" => {
                mix.new_notices += 1;
                fields_sent.push((bank_index, fields.clone()));
                signed_record(&fields.sub_account_number, fields.to_json(), &bank.key_ref, &bank.signing_key)
            }
            _ => {
                mix.new_notices += 1;
                fields_sent.push((bank_index, fields.clone()));
                signed_record(&fields.sub_account_number, fields.to_json(), &bank.key_ref, &bank.signing_key)
            }
        };
        *mix.cases.entry(case).or_default() += 1;
        records.push(record);
    }
    (records, mix)
}

/// One of the refused inputs of docs/bank-integration.md, rotating through them.
fn bad_input(fields: &NoticeFields, bank: &DemoBank, serial: u64) -> BankRecord {
    let mut fields = fields.clone();
    match serial % 7 {
        0 => {
            let mut record = signed_record(&fields.sub_account_number, fields.to_json(), &bank.key_ref, &bank.signing_key);
            record.value = String::from_utf8_lossy(&record.value).replace(&fields.amount, "9999999.00").into_bytes();
            record
        }
        1 => BankRecord { key: fields.sub_account_number.clone(), value: fields.to_json(), headers: vec![] },
        2 => signed_record(&fields.sub_account_number, b"{\"schema_version\":1,\"amount\":".to_vec(), &bank.key_ref, &bank.signing_key),
        3 => {
            fields.amount = "100.001".into();
            signed_record(&fields.sub_account_number, fields.to_json(), &bank.key_ref, &bank.signing_key)
        }
        4 => {
            fields.amount = "0.00".into();
            signed_record(&fields.sub_account_number, fields.to_json(), &bank.key_ref, &bank.signing_key)
        }
        5 => {
            fields.centre_id = "990100".into();
            signed_record(&fields.sub_account_number, fields.to_json(), &bank.key_ref, &bank.signing_key)
        }
        _ => {
            fields.payer_name = "长".repeat(6000);
            signed_record(&fields.sub_account_number, fields.to_json(), &bank.key_ref, &bank.signing_key)
        }
    }
}

/// Waits until the ledger has applied every new notice the stream contained, then prints the
/// per-centre summary. Returns false on timeout.
pub async fn wait_and_summarise(settings: &DemoSettings, mix: &SentMix, timeout: Duration) -> anyhow::Result<bool> {
    let client = Client::connect(&settings.ledger_url, &settings.tokens).await?;
    let centres: Vec<String> = {
        let mut centres: Vec<String> = settings.banks.iter().map(|b| b.centre.clone()).collect();
        centres.sort();
        centres.dedup();
        centres
    };
    let started = std::time::Instant::now();
    let summaries = loop {
        let mut summaries = Vec::new();
        for centre in &centres {
            let request = client.request(Role::Supervisor, "520000", "demo-supervisor", pb::GetIngestSummaryRequest { centre_id: centre.clone() })?;
            summaries.push((centre.clone(), client.grpc.clone().get_ingest_summary(request).await?.into_inner()));
        }
        let applied: i64 = summaries.iter().flat_map(|(_, s)| s.outcomes.iter()).map(|o| o.notices).sum::<i64>() - mix.applied_before;
        let conflicts: i64 = summaries.iter().map(|(_, s)| s.conflicts).sum::<i64>() - mix.conflicts_before;
        if applied >= mix.new_notices as i64 && conflicts >= mix.conflicts as i64 {
            break summaries;
        }
        if started.elapsed() > timeout {
            println!("timed out: the ledger applied {applied} of {} notices", mix.new_notices);
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!();
    println!("what the simulated banks sent:");
    for (case, count) in &mix.cases {
        println!("  {case:<40} {count:>7}");
    }
    for (centre, summary) in summaries {
        println!();
        println!("ledger summary for centre {centre}:");
        for outcome in &summary.outcomes {
            let label = match outcome.outcome.as_str() {
                "matched" | "short" | "over" => format!("deposit {}", outcome.outcome),
                reason => format!("suspense: {reason}"),
            };
            println!("  {label:<40} {:>7} notices {:>18} yuan", outcome.notices, jinfu_ledger::Fen::from_fen(outcome.amount_fen));
        }
        println!("  {:<40} {:>7}", "conflicting serials (alerted, no money)", summary.conflicts);
        println!("  {:<40} {:>7}", "collusion leads (shown after bid opening)", summary.collusion_leads.len());
        for lead in summary.collusion_leads.iter().take(3) {
            println!("    section {} payer account {} funded {}", lead.section_id, lead.payer_account, lead.bidder_usccs.join(", "));
        }
    }
    println!();
    println!("bad input sent to bank.credit-notices.dlq: {}", mix.cases.get("bad input").copied().unwrap_or(0));
    Ok(true)
}

/// The simulated banks' answer to payment orders: each order is paid, or (`failures_per_thousand`
/// of them) refused as if the payee account were closed, after `delay`.
pub async fn answer_payment_orders(
    settings: &DemoSettings,
    failures_per_thousand: u32,
    delay: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<usize> {
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::Message;
    // No consumer group: the simulator reads every partition from the beginning (answering an
    // order again is harmless: the ledger applies the first result per order), so a slow group
    // coordinator or an earlier interrupted demo can never leave orders unanswered.
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &settings.kafka.brokers)
        .set("group.id", "bank-sim-unused")
        .set("enable.auto.commit", "false")
        .create()?;
    let orders_topic = settings.kafka.topic(jinfu_platform::topics::BANK_PAYMENT_ORDERS);
    let metadata = consumer.fetch_metadata(Some(&orders_topic), Duration::from_secs(10))?;
    let mut assignment = rdkafka::TopicPartitionList::new();
    for topic in metadata.topics() {
        for partition in topic.partitions() {
            assignment.add_partition_offset(&orders_topic, partition.id(), rdkafka::Offset::Beginning)?;
        }
    }
    consumer.assign(&assignment)?;
    let producer = settings.kafka.producer()?;
    let results_topic = settings.kafka.topic(jinfu_platform::topics::BANK_PAYMENT_RESULTS);
    let mut rng = StdRng::seed_from_u64(settings.seed ^ 0x5eed);
    let mut answered = 0;
    let mut stop = stop;
    let mut pending: Vec<BankRecord> = Vec::new();
    loop {
        // Gather what has arrived (up to 500 orders, or 50 ms of quiet), then answer together.
        let received = tokio::select! {
            _ = stop.changed() => break,
            received = tokio::time::timeout(Duration::from_millis(50), consumer.recv()) => received,
        };
        if let Ok(message) = received {
            let message = message?;
            let order: serde_json::Value = serde_json::from_slice(message.payload().unwrap_or_default())?;
            let Some(bank) = settings.banks.iter().find(|bank| order["bank"] == bank.code.as_str()) else { continue };
            let failed = rng.gen_ratio(failures_per_thousand, 1000);
            let order_id = order["order_id"].as_str().unwrap_or_default().to_owned();
            let value = serde_json::to_vec(&serde_json::json!({
                "schema_version": 1,
                "order_id": order_id,
                "bank": bank.code,
                "bank_serial": format!("{}P{}", bank.code, uuid::Uuid::new_v4().simple()),
                "status": if failed { "failed" } else { "succeeded" },
                "failure_reason": if failed { Some("收款账户已销户") } else { None },
                "settled_at": jinfu_ledger::beijing::rfc3339(Utc::now()),
            }))?;
            pending.push(signed_record(&order_id, value, &bank.key_ref, &bank.signing_key));
            if pending.len() < 500 {
                continue;
            }
        }
        if !pending.is_empty() {
            tokio::time::sleep(delay).await;
            produce_all(&producer, &results_topic, &pending).await?;
            answered += pending.len();
            pending.clear();
        }
    }
    Ok(answered)
}

/// Bid opening of every open section: the demo's clock jumps to it, so the e-trading system
/// moves each section's deposit deadline and bid-opening time to now (`section.changed`; in
/// China the deadline for bids is the opening) and opens the bids (`bids.opened`), on
/// trading.events keyed by section so the two stay in order. Returns the (centre, section)
/// pairs opened.
pub async fn open_bids(settings: &DemoSettings, mix: &SentMix) -> anyhow::Result<Vec<(String, String)>> {
    let producer = settings.kafka.producer()?;
    let topic = settings.kafka.topic(jinfu_platform::topics::TRADING_EVENTS);
    let now = jinfu_ledger::beijing::rfc3339(Utc::now());
    let mut events = Vec::new();
    for (centre, section, _) in &mix.sections {
        for (kind, data) in
            [("section.changed", serde_json::json!({ "deposit_deadline": now, "bid_opening_time": now })), ("bids.opened", serde_json::json!({}))]
        {
            let value = serde_json::to_vec(&serde_json::json!({
                "schema_version": 1, "event_id": uuid::Uuid::new_v4(), "centre_id": centre, "section_id": section,
                "type": kind, "occurred_at": now, "data": data,
            }))?;
            events.push(BankRecord { key: section.clone(), value, headers: vec![] });
        }
    }
    produce_all(&producer, &topic, &events).await?;
    println!();
    println!("bid opening: {} open sections' deadline and opening moved to now (section.changed), bids opened (bids.opened) on {topic}", mix.sections.len());
    Ok(mix.sections.iter().map(|(centre, section, _)| (centre.clone(), section.clone())).collect())
}

/// Announces awards for every open section (the first bidder wins) and signs the contract of
/// the first one, then waits until no refund is scheduled or ordered, and prints the refunds.
pub async fn refund_cycle(settings: &DemoSettings, mix: &SentMix, timeout: Duration) -> anyhow::Result<bool> {
    let client = Client::connect(&settings.ledger_url, &settings.tokens).await?;
    let mut centres: Vec<String> = settings.banks.iter().map(|b| b.centre.clone()).collect();
    centres.sort();
    centres.dedup();
    // Refunds the ledger knew before this run's awards (a reused database).
    let before = refunds_known(&client, &centres).await?;
    let producer = settings.kafka.producer()?;
    let topic = settings.kafka.topic(jinfu_platform::topics::TRADING_EVENTS);
    let now = jinfu_ledger::beijing::rfc3339(Utc::now());
    let mut events = Vec::new();
    for (index, (centre, section, bidders)) in mix.sections.iter().enumerate() {
        let Some(winner) = bidders.first() else { continue };
        let mut kinds = vec![("award.announced", serde_json::json!({ "winner_uscc": winner }))];
        if index == 0 {
            kinds.push(("contract.signed", serde_json::json!({ "winner_uscc": winner })));
        }
        for (kind, data) in kinds {
            let value = serde_json::to_vec(&serde_json::json!({
                "schema_version": 1, "event_id": uuid::Uuid::new_v4(), "centre_id": centre, "section_id": section,
                "type": kind, "occurred_at": now, "data": data,
            }))?;
            events.push(BankRecord { key: section.clone(), value, headers: vec![] });
        }
    }
    produce_all(&producer, &topic, &events).await?;
    println!("announced awards for {} sections (and one signed contract) on {topic}", mix.sections.len());

    let started = std::time::Instant::now();
    let mut corrected = false;
    loop {
        let mut summaries = Vec::new();
        for centre in &centres {
            let request = client.request(Role::Supervisor, "520000", "demo-supervisor", pb::GetIngestSummaryRequest { centre_id: centre.clone() })?;
            summaries.push((centre.clone(), client.grpc.clone().get_ingest_summary(request).await?.into_inner()));
        }
        // This run's refunds still to settle (an earlier run's contracts may have scheduled
        // refunds that fall due only later).
        let ours = summaries.iter().flat_map(|(_, s)| s.refunds.iter()).map(|r| r.notices).sum::<i64>() - before;
        let pending = pending_refunds(&client, &centres, mix).await?;
        let failed: i64 = summaries.iter().flat_map(|(_, s)| s.refunds.iter()).filter(|r| r.outcome == "failed").map(|r| r.notices).sum();
        if ours > 0 && pending == 0 && failed > 0 && !corrected {
            corrected = true;
            let count = second_refunds(&client, &centres).await?;
            println!("{count} failed refunds went through the second-refund flow (bidder corrects, operator verifies, supervisor approves)");
            continue;
        }
        if ours > 0 && pending == 0 {
            println!();
            println!("refunds (免申即退), by status: count, principal + interest paid or ordered");
            for (centre, summary) in &summaries {
                for refund in &summary.refunds {
                    println!("  {centre} {:<14} {:>6} {:>18} yuan", refund.outcome, refund.notices, jinfu_ledger::Fen::from_fen(refund.amount_fen));
                }
                let request = client.request(Role::Operator, centre, "demo-operator", pb::ListStaleDepositsRequest { centre_id: centre.clone() })?;
                let stale = client.grpc.clone().list_stale_deposits(request).await?.into_inner().deposits;
                println!("  {centre} {:<14} {:>6}", "stale", stale.len());
            }
            return Ok(true);
        }
        if started.elapsed() > timeout {
            println!("timed out: {pending} refunds still scheduled or ordered");
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Refunds the ledger has, in every status, across `centres`.
async fn refunds_known(client: &Client, centres: &[String]) -> anyhow::Result<i64> {
    let mut total = 0;
    for centre in centres {
        let request = client.request(Role::Supervisor, "520000", "demo-supervisor", pb::GetIngestSummaryRequest { centre_id: centre.clone() })?;
        total += client.grpc.clone().get_ingest_summary(request).await?.into_inner().refunds.iter().map(|refund| refund.notices).sum::<i64>();
    }
    Ok(total)
}

/// This run's sections' refunds still scheduled or ordered (an earlier run's contracts may have
/// scheduled refunds that fall due only later; they are not waited for).
async fn pending_refunds(client: &Client, centres: &[String], mix: &SentMix) -> anyhow::Result<i64> {
    let sections: std::collections::BTreeSet<(&str, &str)> = mix.sections.iter().map(|(centre, section, _)| (centre.as_str(), section.as_str())).collect();
    let mut pending = 0;
    for centre in centres {
        for status in ["scheduled", "ordered"] {
            let request =
                client.request(Role::Operator, centre, "demo-operator", pb::ListRefundsRequest { centre_id: centre.clone(), status: status.into() })?;
            let refunds = client.grpc.clone().list_refunds(request).await?.into_inner().refunds;
            pending +=
                i64::try_from(refunds.iter().filter(|refund| sections.contains(&(centre.as_str(), refund.section_id.as_str()))).count()).unwrap_or(i64::MAX);
        }
    }
    Ok(pending)
}

/// Every failed refund: the bidder gives a corrected account, an operator verifies it, a
/// supervisor approves it. Returns how many.
async fn second_refunds(client: &Client, centres: &[String]) -> anyhow::Result<usize> {
    let mut count = 0;
    for centre in centres {
        let request = client.request(Role::Operator, centre, "demo-operator", pb::ListRefundsRequest { centre_id: centre.clone(), status: "failed".into() })?;
        for refund in client.grpc.clone().list_refunds(request).await?.into_inner().refunds {
            let correction = pb::SubmitRefundCorrectionRequest {
                centre_id: centre.clone(),
                section_id: refund.section_id.clone(),
                bidder_uscc: refund.bidder_uscc.clone(),
                payee_account: format!("6217{}", &refund.bidder_uscc[6..18]),
                payee_name: "更正后的账户名".into(),
            };
            let submitted =
                client.grpc.clone().submit_refund_correction(client.request(Role::Bidder, centre, &refund.bidder_uscc, correction)?).await?.into_inner();
            let decision = pb::RefundCorrectionDecision { centre_id: centre.clone(), correction_id: submitted.correction_id };
            client.grpc.clone().verify_refund_correction(client.request(Role::Operator, centre, "demo-operator", decision.clone())?).await?;
            client.grpc.clone().approve_refund_correction(client.request(Role::Supervisor, centre, "demo-supervisor", decision)?).await?;
            count += 1;
        }
    }
    Ok(count)
}
