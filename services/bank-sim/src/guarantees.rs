//! The demo's e-guarantees (电子保函), through the guarantee service's gRPC API: three issuers
//! of the province (a bank, an insurer, a guarantee company) onboarded with their public keys,
//! one bid product each; a share of the bidders buy a bid guarantee instead of paying a cash
//! deposit (each lists the eligible products and chooses one itself: the platform never
//! chooses), the issuers' systems issue them signed over the canonical guarantee text, and a
//! forged issuance is refused. Around bid opening: the section listing is sealed before, open
//! after, and deposits and guarantees are summarised side by side per centre.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{Datelike, NaiveDate, Utc};
use futures::stream::{self, StreamExt, TryStreamExt};
use jinfu_ledger::Fen;
use jinfu_platform::auth::{Role, TokenKeys};
use jinfu_platform::signing::{Scheme, SigningKey};
use jinfu_proto::guarantee::v1 as g;
use jinfu_proto::guarantee::v1::guarantee_service_client::GuaranteeServiceClient;
use jinfu_proto::guarantee_terms::{GuaranteeTerms, GuaranteeType};
use jinfu_proto::ledger::v1 as pb;
use jinfu_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use rand::rngs::StdRng;
use rand::Rng;
use sha2::{Digest, Sha256};
use tonic::Code;

/// Issuers and products are province-wide: the province centre onboards them.
pub const PROVINCE: &str = "520000";

/// Calls in flight at once while bidders apply and issuers issue.
const CONCURRENCY: usize = 8;

/// One issuer of the demo province and its bid product.
pub struct IssuerSpec {
    pub code: &'static str,
    pub name: &'static str,
    pub kind: g::IssuerKind,
    pub kind_label: &'static str,
    pub scheme: Scheme,
    pub product_id: &'static str,
    pub product_name: &'static str,
    pub premium_rate: &'static str,
    /// The same rate for people.
    pub premium_percent: &'static str,
    pub minimum_premium_fen: i64,
    /// Empty: both regimes.
    pub regimes: &'static [&'static str],
}

/// The demo's issuers: the cheapest depends on the amount and the regime (the guarantee company
/// serves engineering tenders only), so bidders' choices differ.
pub const ISSUERS: [IssuerSpec; 3] = [
    IssuerSpec {
        code: "CCBG",
        name: "中国建设银行股份有限公司贵州省分行",
        kind: g::IssuerKind::Bank,
        kind_label: "bank",
        scheme: Scheme::Sm2Sm3,
        product_id: "CCBG-BID-01",
        product_name: "建行电子投标保函",
        premium_rate: "0.0005",
        premium_percent: "0.05 %",
        minimum_premium_fen: 30_000,
        regimes: &[],
    },
    IssuerSpec {
        code: "PICC",
        name: "中国人民财产保险股份有限公司贵州省分公司",
        kind: g::IssuerKind::Insurer,
        kind_label: "insurer",
        scheme: Scheme::Ed25519,
        product_id: "PICC-TBBX-01",
        product_name: "投标保证保险",
        premium_rate: "0.0010",
        premium_percent: "0.10 %",
        minimum_premium_fen: 15_000,
        regimes: &[],
    },
    IssuerSpec {
        code: "GZDB",
        name: "贵州省融资担保有限责任公司",
        kind: g::IssuerKind::Guarantor,
        kind_label: "guarantee company",
        scheme: Scheme::Sm2Sm3,
        product_id: "GZDB-GCTB-01",
        product_name: "工程投标保函",
        premium_rate: "0.0020",
        premium_percent: "0.20 %",
        minimum_premium_fen: 3_000,
        regimes: &["engineering"],
    },
];

/// An issuer's signing key (its system signs what it issues; the platform holds the public half).
pub struct DemoIssuer {
    pub spec: &'static IssuerSpec,
    pub signing_key: SigningKey,
}

/// The guarantee part of the demo.
pub struct GuaranteeDemo {
    /// The guarantee service's gRPC endpoint.
    pub url: String,
    pub issuers: Vec<DemoIssuer>,
    /// Bidders per hundred, in each open section, who buy a bid guarantee instead of paying cash.
    pub share_percent: u32,
}

impl GuaranteeDemo {
    /// The issuers' keys from `--issuer <code>:<scheme>:<private key hex>` (repeated); an issuer
    /// not named gets a fresh key (its earlier guarantees then no longer verify).
    pub fn new(url: String, given: &[String], share_percent: u32) -> anyhow::Result<GuaranteeDemo> {
        let mut keys: BTreeMap<String, SigningKey> = BTreeMap::new();
        for text in given {
            let parts: Vec<&str> = text.split(':').collect();
            let [code, scheme, private_key] = parts.as_slice() else {
                anyhow::bail!("--issuer must be <code>:<scheme>:<private key hex>");
            };
            let spec = ISSUERS
                .iter()
                .find(|spec| spec.code == *code)
                .ok_or_else(|| anyhow::anyhow!("--issuer {code}: the demo knows only {}", ISSUERS.map(|s| s.code).join(", ")))?;
            let scheme: Scheme = scheme.parse()?;
            anyhow::ensure!(scheme == spec.scheme, "--issuer {code}: the demo's {code} signs with {}", spec.scheme);
            keys.insert((*code).to_owned(), SigningKey::from_hex(scheme, private_key)?);
        }
        let issuers =
            ISSUERS.iter().map(|spec| DemoIssuer { spec, signing_key: keys.remove(spec.code).unwrap_or_else(|| SigningKey::generate(spec.scheme)) }).collect();
        Ok(GuaranteeDemo { url, issuers, share_percent: share_percent.min(100) })
    }

    /// Whether a bidder of an open section buys a guarantee instead of paying cash.
    pub fn chooses_guarantee(&self, rng: &mut StdRng) -> bool {
        rng.gen_ratio(self.share_percent, 100)
    }
}

/// A bidder that buys a bid guarantee instead of paying its deposit.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub centre: String,
    pub section_id: String,
    pub bidder_uscc: String,
}

/// What the guarantee part of the demo issued.
#[derive(Debug, Default)]
pub struct Issued {
    /// Guarantees issued in this run, by (centre, section).
    pub by_section: BTreeMap<(String, String), usize>,
    /// One guarantee of the run (centre, number), for verification by number.
    pub sample: Option<(String, String)>,
}

fn authorized<T>(tokens: &TokenKeys, role: Role, centre: &str, party: &str, message: T) -> anyhow::Result<tonic::Request<T>> {
    Ok(tokens.request(role, centre, party, 600, message)?)
}

/// A stable private address per firm (10.x.y.z), as the ingress would report it.
fn office_ip(uscc: &str) -> String {
    let hash = uscc.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3));
    format!("10.{}.{}.{}", (hash >> 16) & 0xff, (hash >> 8) & 0xff, (hash & 0xfd) + 1)
}

fn yuan(fen: i64) -> String {
    Fen::from_fen(fen).to_string()
}

/// Beijing's calendar date today.
fn china_today() -> NaiveDate {
    jinfu_ledger::beijing::date(Utc::now())
}

/// Onboards the issuers and their products, lets every candidate apply for a product of its
/// choice, and has the issuers' systems issue every application (after one forged attempt, which
/// must be refused). `bid_validity_to` is the last day of bid validity the bidders ask for.
pub async fn apply_and_issue(
    demo: &GuaranteeDemo,
    tokens: &TokenKeys,
    run_id: &str,
    candidates: &[Candidate],
    bid_validity_to: NaiveDate,
    rng: &mut StdRng,
) -> anyhow::Result<Issued> {
    let started = std::time::Instant::now();
    let grpc = GuaranteeServiceClient::connect(demo.url.clone()).await?;
    for issuer in &demo.issuers {
        let spec = issuer.spec;
        let onboard = g::RegisterIssuerRequest {
            centre_id: PROVINCE.into(),
            issuer_code: spec.code.into(),
            name: spec.name.into(),
            kind: spec.kind as i32,
            scheme: if spec.scheme == Scheme::Sm2Sm3 { g::SignatureScheme::Sm2Sm3 } else { g::SignatureScheme::Ed25519 } as i32,
            public_key: issuer.signing_key.public_key_hex(),
        };
        grpc.clone().register_issuer(authorized(tokens, Role::Admin, PROVINCE, "demo-admin", onboard)?).await?;
        let product = g::Product {
            centre_id: PROVINCE.into(),
            issuer_code: spec.code.into(),
            product_id: spec.product_id.into(),
            name: spec.product_name.into(),
            r#type: g::GuaranteeType::Bid as i32,
            premium_rate: spec.premium_rate.into(),
            minimum_premium_fen: spec.minimum_premium_fen,
            minimum_amount_fen: 100_000,
            maximum_amount_fen: 1_000_000_000,
            centres: vec![],
            regimes: spec.regimes.iter().map(|regime| (*regime).to_owned()).collect(),
        };
        // The issuer's own system registers its product.
        grpc.clone().register_product(authorized(tokens, Role::Issuer, PROVINCE, spec.code, product)?).await?;
    }
    println!("onboarded {} guarantee issuers for province {PROVINCE}, one bid product each:", demo.issuers.len());
    for issuer in &demo.issuers {
        let spec = issuer.spec;
        println!(
            "  {:<5} {:<18} {:<8} {:<13} premium {} of the amount, at least {} yuan, {}",
            spec.code,
            spec.kind_label,
            spec.scheme,
            spec.product_id,
            spec.premium_percent,
            yuan(spec.minimum_premium_fen),
            if spec.regimes.is_empty() { "all tenders".to_owned() } else { format!("{} tenders only", spec.regimes.join("+")) }
        );
    }

    // Each bidder lists what it may buy and chooses: mostly the cheapest premium, one in four
    // another product (say, of the bank it already works with). The draws are made up front so
    // the concurrent calls below stay reproducible.
    let picks: Vec<Option<u32>> = candidates.iter().map(|_| if rng.gen_ratio(1, 4) { Some(rng.gen()) } else { None }).collect();
    let applications: Vec<Option<(g::Application, bool)>> = stream::iter(candidates.iter().zip(picks).map(|(candidate, pick)| {
        let mut grpc = grpc.clone();
        async move {
            let listing = g::ListEligibleProductsRequest {
                centre_id: candidate.centre.clone(),
                section_id: candidate.section_id.clone(),
                r#type: g::GuaranteeType::Bid as i32,
                ..Default::default()
            };
            let products =
                grpc.list_eligible_products(authorized(tokens, Role::Bidder, &candidate.centre, &candidate.bidder_uscc, listing)?).await?.into_inner().products;
            if products.is_empty() {
                return anyhow::Ok(None);
            }
            // The listing is ordered by premium: the first is the cheapest.
            let index = pick.map_or(0, |pick| pick as usize % products.len());
            let chosen = products[index].product.clone().ok_or_else(|| anyhow::anyhow!("an eligible product without its product"))?;
            let apply = g::ApplyRequest {
                centre_id: candidate.centre.clone(),
                section_id: candidate.section_id.clone(),
                issuer_code: chosen.issuer_code,
                product_id: chosen.product_id,
                beneficiary: format!("{} 招标人（演示）", candidate.section_id),
                valid_to: bid_validity_to.format("%Y-%m-%d").to_string(),
                amount_fen: 0,
                r#type: g::GuaranteeType::Bid as i32,
                ..Default::default()
            };
            let mut request = authorized(tokens, Role::Bidder, &candidate.centre, &candidate.bidder_uscc, apply)?;
            // Each firm applies from its own office (the ingress sets x-forwarded-for).
            request.metadata_mut().insert("x-forwarded-for", office_ip(&candidate.bidder_uscc).parse()?);
            let application = grpc.apply(request).await?.into_inner();
            Ok(Some((application, index == 0)))
        }
    }))
    .buffer_unordered(CONCURRENCY)
    .try_collect()
    .await?;
    let applications: Vec<(g::Application, bool)> = applications.into_iter().flatten().collect();
    let cheapest = applications.iter().filter(|(_, cheapest)| *cheapest).count();
    let premiums: i64 = applications.iter().map(|(application, _)| application.premium_fen).sum();
    println!(
        "{} bidders (about {} % of the open sections' bidders) applied for a bid guarantee instead of paying cash: {} chose the cheapest premium, {} another product; premiums {} yuan",
        applications.len(),
        demo.share_percent,
        cheapest,
        applications.len() - cheapest,
        yuan(premiums)
    );
    let ours: BTreeSet<String> = applications.iter().map(|(application, _)| application.application_id.clone()).collect();

    // Each issuer's system takes its pending applications (this run's) and issues them.
    let year = china_today().year();
    let mut issued = Issued::default();
    let mut forged_tried = false;
    for issuer in &demo.issuers {
        let code = issuer.spec.code;
        let pending = g::ListApplicationsRequest { centre_id: PROVINCE.into(), status: "pending".into() };
        let pending: Vec<g::Application> = grpc
            .clone()
            .list_applications(authorized(tokens, Role::Issuer, PROVINCE, code, pending)?)
            .await?
            .into_inner()
            .applications
            .into_iter()
            .filter(|application| ours.contains(&application.application_id))
            .collect();
        let numbered: Vec<(String, g::Application)> =
            pending.into_iter().enumerate().map(|(index, application)| (format!("{code}-{year}-{run_id}-{:04}", index + 1), application)).collect();
        if let (false, Some((number, application))) = (forged_tried, numbered.first()) {
            forged_tried = true;
            // Someone who is not the issuer (or the issuer with a key it never registered).
            let forger = SigningKey::generate(issuer.spec.scheme);
            let forged = issuance(application, number, &forger)?;
            match grpc.clone().issue_guarantee(authorized(tokens, Role::Issuer, PROVINCE, code, forged)?).await {
                Err(status) if status.code() == Code::InvalidArgument => {
                    println!(
                        "a forged issuance of {number} (signed with a key {code} never registered) was refused: {:?}: {}",
                        status.code(),
                        status.message()
                    );
                }
                Err(status) => anyhow::bail!("a forged issuance of {number} was refused for the wrong reason: {status}"),
                Ok(_) => anyhow::bail!("a forged issuance of {number} was accepted: the guarantee service must verify issuers' signatures"),
            }
        }
        let guarantees: Vec<g::Guarantee> = stream::iter(numbered.iter().map(|(number, application)| {
            let mut grpc = grpc.clone();
            async move {
                let request = issuance(application, number, &issuer.signing_key)?;
                anyhow::Ok(grpc.issue_guarantee(authorized(tokens, Role::Issuer, PROVINCE, code, request)?).await?.into_inner())
            }
        }))
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
        for guarantee in &guarantees {
            *issued.by_section.entry((guarantee.centre_id.clone(), guarantee.section_id.clone())).or_default() += 1;
        }
        if issued.sample.is_none() {
            issued.sample = guarantees.first().map(|guarantee| (guarantee.centre_id.clone(), guarantee.guarantee_no.clone()));
        }
    }
    let count: usize = issued.by_section.values().sum();
    println!(
        "the issuers' systems issued {count} bid guarantees, each signed over its canonical text ({}, …), in {:.1} s",
        issued.sample.as_ref().map_or("none", |(_, number)| number.as_str()),
        started.elapsed().as_secs_f64()
    );
    anyhow::ensure!(count == applications.len(), "{} applications but {count} guarantees issued", applications.len());
    Ok(issued)
}

/// The issuer's issuance of `application` as `number`, signed with `key` over the canonical text.
fn issuance(application: &g::Application, number: &str, key: &SigningKey) -> anyhow::Result<g::IssueGuaranteeRequest> {
    let valid_from = china_today();
    let valid_to = NaiveDate::parse_from_str(&application.valid_to, "%Y-%m-%d")?;
    // The guarantee document (PDF/OFD in real life) the issuer hands the bidder.
    let document = format!(
        "投标保函 {number}\n被保证人 {}\n受益人 {}\n标段 {}\n担保金额 {} 元\n有效期 {valid_from} 至 {valid_to}\n",
        application.bidder_uscc,
        application.beneficiary,
        application.section_id,
        yuan(application.amount_fen)
    );
    let document_sha256: String = Sha256::digest(document.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect();
    let terms = GuaranteeTerms {
        guarantee_no: number.into(),
        application_id: application.application_id.clone(),
        centre_id: application.centre_id.clone(),
        section_id: application.section_id.clone(),
        kind: GuaranteeType::Bid,
        principal_uscc: application.bidder_uscc.clone(),
        beneficiary: application.beneficiary.clone(),
        amount_fen: application.amount_fen,
        valid_from,
        valid_to,
        document_sha256: document_sha256.clone(),
    };
    Ok(g::IssueGuaranteeRequest {
        centre_id: application.centre_id.clone(),
        application_id: application.application_id.clone(),
        guarantee_no: number.into(),
        valid_from: valid_from.to_string(),
        valid_to: valid_to.to_string(),
        document_sha256,
        signature: key.sign(terms.canonical_text().as_bytes()),
    })
}

/// Before bid opening: the operator's listing of a section's guarantees is refused, and
/// verification by number is answered as for an unknown number. Returns false when the
/// guarantees were not sealed.
pub async fn show_sealed(demo: &GuaranteeDemo, tokens: &TokenKeys, issued: &Issued) -> anyhow::Result<bool> {
    let Some((centre, section)) = issued.by_section.keys().next() else {
        println!("no guarantee was issued: nothing sealed to show");
        return Ok(true);
    };
    let mut grpc = GuaranteeServiceClient::connect(demo.url.clone()).await?;
    println!();
    let listing = g::ListSectionGuaranteesRequest { centre_id: centre.clone(), section_id: section.clone() };
    match grpc.list_section_guarantees(authorized(tokens, Role::Operator, centre, "demo-operator", listing)?).await {
        Err(status) if status.code() == Code::FailedPrecondition => {
            println!(
                "before bid opening, operator {centre}'s ListSectionGuarantees for section {section} is refused: {:?}: {}",
                status.code(),
                status.message()
            );
        }
        Err(status) => anyhow::bail!("ListSectionGuarantees before bid opening failed unexpectedly: {status}"),
        Ok(listed) => {
            println!("NOT SEALED: before bid opening the operator's ListSectionGuarantees listed {} guarantees", listed.into_inner().guarantees.len());
            return Ok(false);
        }
    }
    if let Some((centre, number)) = &issued.sample {
        let verify = g::VerifyGuaranteeRequest { centre_id: centre.clone(), guarantee_no: number.clone(), ..Default::default() };
        match grpc.verify_guarantee(authorized(tokens, Role::Operator, centre, "demo-operator", verify)?).await {
            Err(status) if status.code() == Code::NotFound => println!(
                "verification (验真) of {number} by operator {centre}, by number, before bid opening: {:?} (sealed: it is answered as for an unknown number)",
                status.code()
            ),
            Err(status) => anyhow::bail!("verification before bid opening failed unexpectedly: {status}"),
            Ok(checked) => {
                println!("NOT SEALED: before bid opening the operator's verification of {number} answered status {}", checked.into_inner().status);
                return Ok(false);
            }
        }
    }
    Ok(true)
}

#[derive(Default)]
struct CentreTally {
    sections: usize,
    bidders: usize,
    cash: (usize, i64),
    short: (usize, i64),
    nothing: usize,
    /// Bidders the ledger reports `satisfied_by_guarantee`.
    ledger_guaranteed: usize,
    /// Guarantees listed by the guarantee service: count, amount, premiums.
    guaranteed: (usize, i64, i64),
    by_issuer: BTreeMap<String, usize>,
}

/// After bid opening (`sections`: the run's open sections, by centre): waits until every
/// section is unsealed and the ledger counts every guarantee against its deposit, shows the
/// listing refused before, and prints deposits and guarantees side by side per centre. Returns
/// false on timeout or a mismatch.
pub async fn summarise_after_opening(
    demo: &GuaranteeDemo,
    ledger_url: &str,
    tokens: &TokenKeys,
    sections: &[(String, String)],
    issued: &Issued,
    timeout: Duration,
) -> anyhow::Result<bool> {
    let grpc = GuaranteeServiceClient::connect(demo.url.clone()).await?;
    let ledger = LedgerServiceClient::connect(ledger_url.to_owned()).await?;
    let started = std::time::Instant::now();
    let listings = loop {
        let mut listings: Vec<(String, String, Vec<pb::DepositStatus>, Vec<g::Guarantee>)> = Vec::new();
        let mut waiting: Option<String> = None;
        for (centre, section) in sections {
            let request = g::ListSectionGuaranteesRequest { centre_id: centre.clone(), section_id: section.clone() };
            let guarantees = match grpc.clone().list_section_guarantees(authorized(tokens, Role::Operator, centre, "demo-operator", request)?).await {
                Ok(response) => response.into_inner().guarantees,
                Err(status) if status.code() == Code::FailedPrecondition => {
                    waiting = Some(format!("section {section} still sealed: {}", status.message()));
                    break;
                }
                Err(status) => return Err(status.into()),
            };
            let request = pb::ListSectionDepositsRequest { centre_id: centre.clone(), section_id: section.clone() };
            let deposits = match ledger.clone().list_section_deposits(authorized(tokens, Role::Operator, centre, "demo-operator", request)?).await {
                Ok(response) => response.into_inner().deposits,
                Err(status) if status.code() == Code::FailedPrecondition => {
                    waiting = Some(format!("the ledger still keeps section {section}'s bidders confidential: {}", status.message()));
                    break;
                }
                Err(status) => return Err(status.into()),
            };
            let expected = issued.by_section.get(&(centre.clone(), section.clone())).copied().unwrap_or(0);
            let seen = deposits.iter().filter(|deposit| deposit.status == "satisfied_by_guarantee").count();
            if guarantees.len() < expected || seen < expected {
                waiting = Some(format!("section {section}: {} of {expected} guarantees listed, the ledger counts {seen}", guarantees.len()));
                break;
            }
            listings.push((centre.clone(), section.clone(), deposits, guarantees));
        }
        match waiting {
            None => break listings,
            Some(reason) if started.elapsed() > timeout => {
                println!("timed out after bid opening: {reason}");
                return Ok(false);
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };

    if let Some((centre, section)) = issued.by_section.keys().next() {
        if let Some((_, _, _, guarantees)) = listings.iter().find(|(c, s, _, _)| c == centre && s == section) {
            println!("after bid opening, the same ListSectionGuarantees for section {section} lists {} guarantees, e.g.:", guarantees.len());
            for guarantee in guarantees.iter().take(3) {
                println!(
                    "  {:<26} {} issuer {:<5} {:>14} yuan premium {:>9} yuan valid to {} {}",
                    guarantee.guarantee_no,
                    guarantee.bidder_uscc,
                    guarantee.issuer_code,
                    yuan(guarantee.amount_fen),
                    yuan(guarantee.premium_fen),
                    guarantee.valid_to,
                    guarantee.status
                );
            }
        }
    }

    let mut tallies: BTreeMap<String, CentreTally> = BTreeMap::new();
    for (centre, _, deposits, guarantees) in &listings {
        let tally = tallies.entry(centre.clone()).or_default();
        tally.sections += 1;
        tally.bidders += deposits.len();
        for deposit in deposits {
            match deposit.status.as_str() {
                "satisfied_by_guarantee" => tally.ledger_guaranteed += 1,
                "matched" | "over" => {
                    tally.cash.0 += 1;
                    tally.cash.1 += deposit.held_fen;
                }
                "short" => {
                    tally.short.0 += 1;
                    tally.short.1 += deposit.held_fen;
                }
                _ => tally.nothing += 1,
            }
        }
        for guarantee in guarantees {
            tally.guaranteed.0 += 1;
            tally.guaranteed.1 += guarantee.amount_fen;
            tally.guaranteed.2 += guarantee.premium_fen;
            *tally.by_issuer.entry(guarantee.issuer_code.clone()).or_default() += 1;
        }
    }
    println!();
    println!("deposits and guarantees after bid opening (the run's open sections), by centre:");
    let mut consistent = true;
    for (centre, tally) in &tallies {
        let name = crate::demo::CENTRES.iter().find(|(code, _, _)| code == centre).map_or("", |(_, name, _)| *name);
        println!("  {centre} {name}: {} sections, {} bidders", tally.sections, tally.bidders);
        println!("    {:<32} {:>5} bidders {:>16} yuan held", "secured by cash deposit", tally.cash.0, yuan(tally.cash.1));
        let issuers: Vec<String> = tally.by_issuer.iter().map(|(code, count)| format!("{code} {count}")).collect();
        println!(
            "    {:<32} {:>5} bidders {:>16} yuan covered, {} yuan premiums paid ({})",
            "secured by bid guarantee",
            tally.guaranteed.0,
            yuan(tally.guaranteed.1),
            yuan(tally.guaranteed.2),
            issuers.join(", ")
        );
        println!("    {:<32} {:>5} bidders {:>16} yuan held", "short payment", tally.short.0, yuan(tally.short.1));
        println!("    {:<32} {:>5} bidders", "nothing received", tally.nothing);
        if tally.ledger_guaranteed != tally.guaranteed.0 {
            consistent = false;
            println!(
                "    MISMATCH: the ledger reports {} deposits satisfied by guarantee, the guarantee service lists {}",
                tally.ledger_guaranteed, tally.guaranteed.0
            );
        }
    }
    if consistent {
        let total: usize = tallies.values().map(|tally| tally.ledger_guaranteed).sum();
        println!("  the ledger reports satisfied_by_guarantee for exactly the {total} guaranteed bidders");
    }

    // Now that bids are open, what the supervisors see for the run's sections.
    let opened: BTreeSet<&str> = sections.iter().map(|(_, section)| section.as_str()).collect();
    let mut leads = 0;
    let mut warnings: BTreeMap<String, usize> = BTreeMap::new();
    for centre in tallies.keys() {
        let request = pb::GetIngestSummaryRequest { centre_id: centre.clone() };
        let summary = ledger.clone().get_ingest_summary(authorized(tokens, Role::Supervisor, centre, "demo-supervisor", request)?).await?.into_inner();
        leads += summary.collusion_leads.iter().filter(|lead| opened.contains(lead.section_id.as_str())).count();
        let request = g::ListFraudWarningsRequest { centre_id: centre.clone() };
        for warning in grpc.clone().list_fraud_warnings(authorized(tokens, Role::Supervisor, centre, "demo-supervisor", request)?).await?.into_inner().warnings
        {
            if opened.iter().any(|section| warning.subject.ends_with(section)) {
                *warnings.entry(warning.rule).or_default() += 1;
            }
        }
    }
    let warnings: Vec<String> = warnings.iter().map(|(rule, count)| format!("{rule} {count}")).collect();
    println!(
        "  after opening, the supervisors see {leads} collusion leads (ledger) and guarantee fraud warnings: {}",
        if warnings.is_empty() { "none".to_owned() } else { warnings.join(", ") }
    );
    Ok(consistent)
}
