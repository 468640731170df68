//! The demo's contracts (contract service): for each awarded section the purchaser drafts the
//! contract and both parties sign it with their registered keys, most within the centre's
//! signing period and some late; prepayment and acceptance invoices follow, a few are objected
//! to in part, most are paid on time, some late and some not at all. Simulated time: the contract
//! service reads "now" from a clock file (`JINFU_CLOCK_FILE`, demos only) that this module moves
//! day by day, so weeks of legal clocks run in seconds. Prints one summary line.

use std::path::PathBuf;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use jinfu_ledger::ids::CentreCode;
use jinfu_platform::auth::{Role, TokenKeys};
use jinfu_platform::signing::{Scheme, SigningKey};
use jinfu_proto::contract::v1 as pb;
use jinfu_proto::contract::v1::contract_service_client::ContractServiceClient;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tonic::transport::Channel;

/// Where the contract service is and the file its clock reads.
pub struct ContractDemo {
    pub url: String,
    pub clock_file: PathBuf,
}

/// What happened, for the summary line, and a few overdue invoices' interest laid out day run by
/// day run so that a reader can check it by hand.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ContractFigures {
    pub examples: Vec<String>,
    pub signed: usize,
    pub late: usize,
    pub invoices: usize,
    pub objected: usize,
    pub paid_on_time: usize,
    pub overdue: usize,
    pub interest_fen: i64,
}

impl std::fmt::Display for ContractFigures {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "contracts: {} signed ({} late), {} invoices ({} objected), {} paid on time, {} overdue, overdue interest {} yuan{}",
            self.signed,
            self.late,
            self.invoices,
            self.objected,
            self.paid_on_time,
            self.overdue,
            jinfu_ledger::Fen::from_fen(self.interest_fen),
            self.examples.iter().map(|example| format!("\n{example}")).collect::<String>()
        )
    }
}

struct Demo {
    grpc: ContractServiceClient<Channel>,
    tokens: TokenKeys,
    clock_file: PathBuf,
    start: DateTime<Utc>,
}

/// One contract of the demo and its parties.
struct Deal {
    centre: String,
    contract: pb::Contract,
    purchaser: (String, SigningKey),
    supplier: (String, SigningKey),
    late: bool,
    invoices: Vec<String>,
}

impl Demo {
    fn request<T>(&self, role: Role, centre: &str, party: &str, message: T) -> anyhow::Result<tonic::Request<T>> {
        let token = self.tokens.issue(role, &CentreCode::parse(centre)?, party, 600)?;
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert("authorization", format!("Bearer {token}").parse()?);
        Ok(request)
    }

    /// Moves the contract service's clock to 10:00 Beijing time `days` after the start.
    fn day(&self, days: i64) -> anyhow::Result<NaiveDate> {
        let date = jinfu_ledger::beijing::date(self.start) + Duration::days(days);
        let at = jinfu_ledger::beijing::instant(date.and_hms_opt(10, 0, 0).ok_or_else(|| anyhow::anyhow!("no 10:00"))?);
        std::fs::write(&self.clock_file, jinfu_ledger::beijing::rfc3339(at))?;
        Ok(date)
    }

    async fn sign(&self, deal: &Deal, role: Role, (party, key): &(String, SigningKey)) -> anyhow::Result<pb::Contract> {
        let request = pb::SignContractRequest {
            centre_id: deal.centre.clone(),
            contract_id: deal.contract.contract_id.clone(),
            key_ref: "demo_contract_key".into(),
            signature: key.sign(deal.contract.canonical_text.as_bytes()),
        };
        Ok(self.grpc.clone().sign_contract(self.request(role, &deal.centre, party, request)?).await?.into_inner())
    }

    async fn register(&self, centre: &str, party: &str, key: &SigningKey) -> anyhow::Result<()> {
        let scheme = if key.scheme() == Scheme::Sm2Sm3 { pb::SignatureScheme::Sm2Sm3 } else { pb::SignatureScheme::Ed25519 };
        let request = pb::PartyKey {
            centre_id: centre.into(),
            party_uscc: party.into(),
            key_ref: "demo_contract_key".into(),
            scheme: scheme as i32,
            public_key: key.public_key_hex(),
        };
        self.grpc.clone().register_party_key(self.request(Role::Operator, centre, "demo-operator", request)?).await?;
        Ok(())
    }

    async fn invoice(&self, deal: &mut Deal, milestone: u32, number: u64) -> anyhow::Result<()> {
        let Some(stage) = deal.contract.milestones.iter().find(|stage| stage.sequence == milestone) else { return Ok(()) };
        let amount = stage.amount_fen;
        let without_tax = amount * 100 / 113;
        let invoice_no = format!("2652{:016}", number);
        let request = pb::SubmitInvoiceRequest {
            centre_id: deal.centre.clone(),
            contract_id: deal.contract.contract_id.clone(),
            milestone,
            invoice_no: invoice_no.clone(),
            r#type: pb::InvoiceType::SpecialVat as i32,
            issue_date: jinfu_ledger::beijing::date(Utc::now().min(self.now())).to_string(),
            amount_without_tax_fen: without_tax,
            tax_fen: amount - without_tax,
            amount_with_tax_fen: amount,
            buyer_uscc: deal.contract.purchaser_uscc.clone(),
            seller_uscc: deal.contract.supplier_uscc.clone(),
        };
        self.grpc.clone().submit_invoice(self.request(Role::Supplier, &deal.centre, &deal.supplier.0, request)?).await?;
        deal.invoices.push(invoice_no);
        Ok(())
    }

    fn now(&self) -> DateTime<Utc> {
        std::fs::read_to_string(&self.clock_file)
            .ok()
            .and_then(|text| DateTime::parse_from_rfc3339(text.trim()).ok())
            .map_or_else(Utc::now, |t| t.with_timezone(&Utc))
    }

    async fn get_invoice(&self, deal: &Deal, invoice_no: &str) -> anyhow::Result<pb::Invoice> {
        let request = pb::InvoiceRef { centre_id: deal.centre.clone(), invoice_no: invoice_no.into() };
        Ok(self.grpc.clone().get_invoice(self.request(Role::Supplier, &deal.centre, &deal.supplier.0, request)?).await?.into_inner())
    }

    /// The purchaser pays what is payable on `invoice_no`, with value date `paid_on`; returns
    /// the amount paid.
    async fn pay(&self, deal: &Deal, invoice_no: &str, paid_on: NaiveDate) -> anyhow::Result<i64> {
        let invoice = self.get_invoice(deal, invoice_no).await?;
        let outstanding = invoice.payable_fen - invoice.paid_fen;
        if outstanding <= 0 {
            return Ok(0);
        }
        let request = pb::RecordPaymentRequest {
            centre_id: deal.centre.clone(),
            payment_id: format!("PAY-{invoice_no}"),
            contract_id: deal.contract.contract_id.clone(),
            paid_on: paid_on.to_string(),
            allocations: vec![pb::Allocation { invoice_no: invoice_no.into(), amount_fen: outstanding }],
        };
        self.grpc.clone().record_payment(self.request(Role::Purchaser, &deal.centre, &deal.purchaser.0, request)?).await?;
        Ok(outstanding)
    }
}

/// The centres' clocks: Guiyang (520100) as Xuchang's notice sets them, the others the law's with
/// payment within 10 working days of the invoice (Chongqing, Shanxi).
async fn set_rules(demo: &Demo, centres: &[String]) -> anyhow::Result<()> {
    for centre in centres {
        let rules = if centre == "520100" {
            pb::CentreRules {
                centre_id: centre.clone(),
                sign_days: 2,
                sign_in_working_days: true,
                publish_working_days: 1,
                file_working_days: 1,
                acceptance_working_days: 1,
                invoice_payment_working_days: 2,
                ..Default::default()
            }
        } else {
            pb::CentreRules { centre_id: centre.clone(), invoice_payment_working_days: 10, ..Default::default() }
        };
        demo.grpc.clone().set_centre_rules(demo.request(Role::Operator, centre, "demo-operator", rules)?).await?;
    }
    Ok(())
}

fn draft(centre: &str, section: &str, purchaser: &str, supplier: &str, index: usize) -> pb::DraftContractRequest {
    let amount_fen = 50_000_000 + i64::try_from(index % 17).unwrap_or(0) * 3_000_000;
    pb::DraftContractRequest {
        centre_id: centre.into(),
        contract_id: format!("HT-{section}"),
        section_id: section.into(),
        regime: pb::Regime::Procurement as i32,
        purchaser_uscc: purchaser.into(),
        purchaser_name: format!("{centre} 采购人"),
        supplier_uscc: supplier.into(),
        supplier_name: format!("供应商 {}", &supplier[supplier.len().saturating_sub(6)..]),
        supplier_scale: if index % 5 == 4 { pb::Scale::Medium } else { pb::Scale::Small } as i32,
        amount_fen,
        awarded_at: None,
        milestones: vec![
            pb::Milestone { kind: pb::MilestoneKind::Prepayment as i32, percent_bp: 3_000, period_days: 10, working_days: true, ..Default::default() },
            pb::Milestone { kind: pb::MilestoneKind::Acceptance as i32, percent_bp: 7_000, period_days: 30, working_days: false, ..Default::default() },
        ],
        payment_days: 30,
        collection_account: Some(pb::CollectionAccount {
            bank_name: "中国工商银行贵州省分行".into(),
            account_no: format!("2402{index:012}"),
            account_name: format!("供应商 {supplier}"),
        }),
        performance_security: Some(pb::Security { form: pb::SecurityForm::Guarantee as i32, amount_fen: amount_fen / 20 }),
        quality_retention: None,
        overdue_rate: (index % 4 == 0).then(|| pb::OverdueRate { kind: pb::overdue_rate::Kind::LprPlus as i32, annual_percent: "0.50".into() }),
    }
}

/// One invoice's overdue interest as a reader checks it: the rate in force, each run of days.
fn worked(contract: &pb::Contract, invoice: &pb::Invoice) -> String {
    let yuan = |fen: i64| jinfu_ledger::Fen::from_fen(fen).to_yuan_string();
    let rate = contract.overdue_rate_in_force.as_ref().map_or_else(String::new, |rate| match pb::overdue_rate::Kind::try_from(rate.kind) {
        Ok(pb::overdue_rate::Kind::LprPlus) => format!("one-year LPR + {} % a year, / 365", rate.annual_percent),
        Ok(pb::overdue_rate::Kind::Fixed) => format!("{} % a year, / 365", rate.annual_percent),
        _ => "0.05 % a day (万分之五)".to_owned(),
    });
    let mut text = format!(
        "  worked: invoice {} of {} ({}; scale {}), payable {} yuan, due {} ({}), paid {} yuan; rate {rate}:",
        invoice.invoice_no,
        contract.contract_id,
        contract.centre_id,
        pb::Scale::try_from(contract.supplier_scale).map_or("?", |scale| scale.as_str_name()),
        yuan(invoice.payable_fen),
        invoice.due_on,
        invoice.due_by,
        yuan(invoice.paid_fen)
    );
    for segment in &invoice.interest {
        text.push_str(&format!(
            "\n    {}..{}: {} days x {} yuan x {} = {} fen",
            segment.from,
            segment.to,
            segment.days,
            yuan(segment.unpaid_fen),
            segment.daily_rate,
            segment.exact_fen
        ));
    }
    text.push_str(&format!("\n    total, rounded half up once: {} yuan", yuan(invoice.overdue_interest_fen)));
    text
}

/// Runs the contracts of `sections` (centre, section, bidders with the winner first; the first
/// section is skipped: the e-trading system reported its contract signed) and returns the
/// figures. `seed` makes the choices repeatable.
pub async fn run(
    settings: &ContractDemo,
    tokens: &TokenKeys,
    sections: &[(String, String, Vec<String>)],
    seed: u64,
    loans: Option<&crate::loans::LoanDemo>,
) -> anyhow::Result<(ContractFigures, Option<crate::loans::LoanFigures>)> {
    let demo = Demo {
        grpc: ContractServiceClient::connect(settings.url.clone()).await?,
        tokens: tokens.clone(),
        clock_file: settings.clock_file.clone(),
        start: Utc::now(),
    };
    let mut rng = StdRng::seed_from_u64(seed);
    let mut centres: Vec<String> = sections.iter().map(|(centre, _, _)| centre.clone()).collect();
    centres.sort();
    centres.dedup();
    set_rules(&demo, &centres).await?;
    // Day 1: drafts; most parties sign at once.
    demo.day(1)?;
    let mut deals = Vec::new();
    for (index, (centre, section, bidders)) in sections.iter().enumerate().skip(1) {
        let Some(winner) = bidders.first() else { continue };
        let purchaser = jinfu_ledger::ids::Uscc::with_check_character(&format!("11{}{:09}", &centre[..6], index))?.to_string();
        let (purchaser_key, supplier_key) = (SigningKey::generate(Scheme::Sm2Sm3), SigningKey::generate(Scheme::Ed25519));
        demo.register(centre, &purchaser, &purchaser_key).await?;
        demo.register(centre, winner, &supplier_key).await?;
        let contract = demo
            .grpc
            .clone()
            .draft_contract(demo.request(Role::Purchaser, centre, &purchaser, draft(centre, section, &purchaser, winner, index))?)
            .await?
            .into_inner();
        let late = rng.gen_ratio(1, 8);
        deals.push(Deal {
            centre: centre.clone(),
            contract,
            purchaser: (purchaser, purchaser_key),
            supplier: (winner.clone(), supplier_key),
            late,
            invoices: Vec::new(),
        });
    }
    for deal in deals.iter_mut().filter(|deal| !deal.late) {
        demo.sign(deal, Role::Purchaser, &deal.purchaser).await?;
        deal.contract = demo.sign(deal, Role::Supplier, &deal.supplier).await?;
    }
    // Day 2: published and filed; day 5: prepayment invoices.
    demo.day(2)?;
    for deal in deals.iter().filter(|deal| !deal.late) {
        for kind in [pb::record_disclosure_request::Kind::Publication, pb::record_disclosure_request::Kind::Filing] {
            let request = pb::RecordDisclosureRequest {
                centre_id: deal.centre.clone(),
                contract_id: deal.contract.contract_id.clone(),
                kind: kind as i32,
                reference: format!("公告-{}", deal.contract.contract_id),
            };
            demo.grpc.clone().record_disclosure(demo.request(Role::Purchaser, &deal.centre, &deal.purchaser.0, request)?).await?;
        }
    }
    // Day 3: some winners finance their contracts (the collection account locked to the lender).
    let mut plan = None;
    if let Some(loans) = loans {
        let today = demo.day(3)?;
        let signed: Vec<_> = deals
            .iter()
            .filter(|deal| !deal.late)
            .map(|deal| (deal.centre.clone(), deal.contract.contract_id.clone(), deal.supplier.0.clone(), deal.contract.amount_fen))
            .collect();
        plan = Some(crate::loans::start(loans, tokens, &signed, today).await?);
    }
    demo.day(5)?;
    let mut number = u64::try_from(demo.start.timestamp()).unwrap_or(0) % 1_000_000 * 10_000;
    for deal in deals.iter_mut().filter(|deal| !deal.late) {
        number += 1;
        demo.invoice(deal, 1, number).await?;
    }
    // Day 6: a few prepayment invoices objected to in part (the undisputed part stays payable).
    demo.day(6)?;
    let mut objected = 0;
    for deal in deals.iter().filter(|deal| !deal.late) {
        if rng.gen_ratio(1, 10) {
            let Some(invoice_no) = deal.invoices.first() else { continue };
            let invoice = demo.get_invoice(deal, invoice_no).await?;
            let request = pb::ObjectToInvoiceRequest {
                centre_id: deal.centre.clone(),
                invoice_no: invoice_no.clone(),
                disputed_fen: invoice.amount_with_tax_fen / 10,
                reason: "预付款金额与合同约定比例不符".into(),
            };
            demo.grpc.clone().object_to_invoice(demo.request(Role::Purchaser, &deal.centre, &deal.purchaser.0, request)?).await?;
            objected += 1;
        }
    }
    // Day 20: delivered, acceptance asked; day 21: most accepted in time; day 22: invoices.
    demo.day(20)?;
    for deal in deals.iter().filter(|deal| !deal.late) {
        let request = pb::RequestAcceptanceRequest { centre_id: deal.centre.clone(), contract_id: deal.contract.contract_id.clone(), milestone: 2 };
        demo.grpc.clone().request_acceptance(demo.request(Role::Supplier, &deal.centre, &deal.supplier.0, request)?).await?;
    }
    demo.day(21)?;
    for deal in deals.iter().filter(|deal| !deal.late) {
        let request = pb::RecordAcceptanceRequest {
            centre_id: deal.centre.clone(),
            contract_id: deal.contract.contract_id.clone(),
            milestone: 2,
            passed: true,
            note: "验收合格".into(),
            settlement_amount_fen: 0,
        };
        demo.grpc.clone().record_acceptance(demo.request(Role::Purchaser, &deal.centre, &deal.purchaser.0, request)?).await?;
    }
    demo.day(22)?;
    for deal in deals.iter_mut().filter(|deal| !deal.late) {
        number += 1;
        demo.invoice(deal, 2, number).await?;
    }
    // Day 40: the late ones sign at last.
    demo.day(40)?;
    for deal in deals.iter_mut().filter(|deal| deal.late) {
        demo.sign(deal, Role::Purchaser, &deal.purchaser).await?;
        deal.contract = demo.sign(deal, Role::Supplier, &deal.supplier).await?;
    }
    // Day 60: payments: most on their due date, some late (value date 3-20 days after it),
    // some not at all.
    let today = demo.day(60)?;
    let unpaid = plan.as_ref().map(|plan| plan.unpaid_contracts.clone()).unwrap_or_default();
    let mut paid = std::collections::BTreeMap::<String, i64>::new();
    for deal in deals.iter().filter(|deal| !deal.late && !unpaid.contains(&deal.contract.contract_id)) {
        for invoice_no in &deal.invoices {
            let invoice = demo.get_invoice(deal, invoice_no).await?;
            let Ok(due) = NaiveDate::parse_from_str(&invoice.due_on, "%Y-%m-%d") else { continue };
            let roll = rng.gen_range(0..100);
            let paid_on = if roll < 75 {
                due
            } else if roll < 92 {
                due + Duration::days(rng.gen_range(3..=20))
            } else {
                continue;
            };
            *paid.entry(deal.contract.contract_id.clone()).or_default() += demo.pay(deal, invoice_no, paid_on.min(today)).await?;
        }
    }
    // Day 75: where things stand.
    demo.day(75)?;
    let mut figures = ContractFigures { objected, ..ContractFigures::default() };
    let mut kinds = Vec::new();
    for deal in &deals {
        let request = pb::ContractRef { centre_id: deal.centre.clone(), contract_id: deal.contract.contract_id.clone() };
        let contract = demo.grpc.clone().get_contract(demo.request(Role::Operator, &deal.centre, "demo-operator", request)?).await?.into_inner();
        if contract.status == pb::ContractStatus::Active as i32 {
            figures.signed += 1;
            figures.late += usize::from(contract.clocks.iter().any(|clock| clock.name == "signing" && clock.late));
        }
        for invoice_no in &deal.invoices {
            let invoice = demo.get_invoice(deal, invoice_no).await?;
            figures.invoices += 1;
            figures.interest_fen += invoice.overdue_interest_fen;
            if invoice.overdue_interest_fen > 0 || (invoice.paid_fen < invoice.payable_fen && !invoice.due_on.is_empty()) {
                figures.overdue += 1;
                // One of each kind where there is one: paid late, unpaid, at an agreed rate.
                let kind = (contract.overdue_rate_in_force.as_ref().map(|rate| rate.kind), invoice.paid_fen >= invoice.payable_fen);
                if figures.examples.len() < 3 && invoice.overdue_interest_fen > 0 && !kinds.contains(&kind) {
                    kinds.push(kind);
                    figures.examples.push(worked(&contract, &invoice));
                }
            } else if invoice.status == pb::InvoiceStatus::Paid as i32 {
                figures.paid_on_time += 1;
            }
        }
    }
    let loans = match plan.as_mut() {
        Some(plan) => Some(plan.summarise(&paid, std::time::Duration::from_secs(120)).await?),
        None => None,
    };
    Ok((figures, loans))
}
