//! The demo's contract loans (loans service): two lenders onboarded by the province publish
//! 政采贷 products; some winning suppliers consent and apply against their signed contracts; a
//! lender's maker proposes the terms and another officer approves (one application is
//! rejected); each loan is disbursed, which locks the contract's collection account to the
//! lender; the purchasers' payments then repay the loans through the contract service's
//! events, and one purchaser never pays: that loan passes its term and grace days, defaults and
//! is proposed to the credit service. Prints one summary line.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveDate;
use jinfu_ledger::ids::CentreCode;
use jinfu_platform::auth::{Role, TokenKeys};
use jinfu_proto::loan::v1 as pb;
use jinfu_proto::loan::v1::loan_service_client::LoanServiceClient;
use tonic::transport::Channel;

/// The lenders: (id, name, term in days). The second lends short: it rejects one application
/// and its one loan, never repaid, defaults within the demo's simulated weeks; the first lends
/// the rest for half a year, repaid by the purchasers' payments long before maturity.
const LENDERS: [(&str, &str, u32); 2] = [("GZBANK", "贵州银行", 180), ("ICBC-GZ", "工商银行贵州省分行", 30)];
/// Loans the demo applies for at most.
const LOANS_MAX: usize = 8;

/// Where the loans service is.
pub struct LoanDemo {
    pub url: String,
}

/// What happened, for the summary line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoanFigures {
    pub applied: u64,
    pub approved: u64,
    pub disbursed: u64,
    pub disbursed_fen: i64,
    pub repaid: usize,
    pub overdue: u64,
    pub defaulted: u64,
    /// The defaulted loans and their proposals to the credit service.
    pub proposals: Vec<String>,
}

impl std::fmt::Display for LoanFigures {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "loans: {} applied, {} approved, {} disbursed {} yuan, {} repaid, {} overdue, {} defaulted{}",
            self.applied,
            self.approved,
            self.disbursed,
            jinfu_ledger::Fen::from_fen(self.disbursed_fen),
            self.repaid,
            self.overdue,
            self.defaulted,
            self.proposals.iter().map(|line| format!("\n  {line}")).collect::<String>()
        )
    }
}

/// A loan of the demo: its centre, id, contract and amount.
#[derive(Debug, Clone)]
pub struct DemoLoan {
    pub centre: String,
    pub loan_id: String,
    pub contract_id: String,
    pub amount_fen: i64,
}

/// The loans started: which contracts' purchasers must not pay (the loan that defaults).
pub struct LoanPlan {
    grpc: LoanServiceClient<Channel>,
    tokens: TokenKeys,
    /// The loans disbursed.
    pub loans: Vec<DemoLoan>,
    pub unpaid_contracts: Vec<String>,
    applied: u64,
    approved: u64,
}

fn request<T>(tokens: &TokenKeys, role: Role, centre: &str, party: &str, message: T) -> anyhow::Result<tonic::Request<T>> {
    let token = tokens.issue(role, &CentreCode::parse(centre)?, party, 600)?;
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse()?);
    Ok(request)
}

async fn onboard(grpc: &mut LoanServiceClient<Channel>, tokens: &TokenKeys, province: &str) -> anyhow::Result<()> {
    for (index, (lender, name, term_days)) in LENDERS.iter().enumerate() {
        let onboarding = pb::Lender {
            lender_id: (*lender).into(),
            province_id: province.into(),
            name: (*name).into(),
            kind: "bank".into(),
            bank_name: (*name).into(),
            account_no: format!("5201{index:02}0000880001"),
            account_name: format!("{name} 政采贷回款专户"),
            ..Default::default()
        };
        grpc.onboard_lender(request(tokens, Role::Admin, province, "province-admin", onboarding)?).await?;
        let product = pb::Product {
            lender_id: (*lender).into(),
            product_id: "ZCD".into(),
            name: "政采贷".into(),
            kind: "contract_financing".into(),
            rate_min_bp: 300,
            rate_max_bp: 450,
            max_ratio_bp: 7_000,
            term_days: *term_days,
            grace_days: 5,
            sme_only: true,
            contact: format!("0851-8{index}66 6688"),
            ..Default::default()
        };
        grpc.publish_product(request(tokens, Role::Lender, province, &format!("{lender}:product-desk"), product)?).await?;
    }
    Ok(())
}

/// Onboards the lenders, and for some of `deals` (centre, contract id, supplier, contract amount)
/// the supplier consents and applies, the lender decides and disburses on `today`.
pub async fn start(demo: &LoanDemo, tokens: &TokenKeys, deals: &[(String, String, String, i64)], today: NaiveDate) -> anyhow::Result<LoanPlan> {
    let mut grpc = LoanServiceClient::connect(demo.url.clone()).await?;
    let province = deals.first().map_or_else(|| "520000".to_owned(), |deal| format!("{}0000", &deal.0[..2]));
    onboard(&mut grpc, tokens, &province).await?;
    let mut plan = LoanPlan { grpc, tokens: tokens.clone(), loans: Vec::new(), unpaid_contracts: Vec::new(), applied: 0, approved: 0 };
    let chosen: Vec<_> = deals.iter().step_by(2).take(LOANS_MAX).collect();
    for (index, (centre, contract_id, supplier, amount)) in chosen.iter().enumerate() {
        // The second application goes to the short-term lender, which rejects it; the last one
        // too, and that loan is never repaid.
        let (lender, ..) = if index == 1 || index + 1 == chosen.len() { LENDERS[1] } else { LENDERS[0] };
        let consent = pb::ConsentRequest { centre_id: centre.clone(), lender_id: lender.into() };
        plan.grpc.grant_consent(request(tokens, Role::Supplier, centre, supplier, consent)?).await?;
        let loan_id = format!("ZCD-{contract_id}");
        let amount_fen = amount / 2;
        let apply = pb::ApplyRequest {
            centre_id: centre.clone(),
            loan_id: loan_id.clone(),
            lender_id: lender.into(),
            product_id: "ZCD".into(),
            contract_id: contract_id.clone(),
            requested_fen: amount_fen,
        };
        let loan = plan.grpc.apply(request(tokens, Role::Supplier, centre, supplier, apply)?).await?.into_inner();
        plan.applied += 1;
        if loan.status != pb::LoanStatus::Submitted as i32 {
            continue;
        }
        let decide = |party: &str| format!("{lender}:{party}");
        if index == 1 {
            let reject = pb::DecisionRequest { centre_id: centre.clone(), loan_id, reason: "经营流水不足以覆盖还款".into() };
            plan.grpc.reject(request(tokens, Role::Lender, centre, &decide("li"), reject)?).await?;
            continue;
        }
        let terms =
            pb::ProposeTermsRequest { centre_id: centre.clone(), loan_id: loan_id.clone(), amount_fen, rate_bp: 345 + 10 * u32::try_from(index).unwrap_or(0) };
        plan.grpc.propose_terms(request(tokens, Role::Lender, centre, &decide("wang"), terms)?).await?;
        let loan_ref = pb::LoanRef { centre_id: centre.clone(), loan_id: loan_id.clone() };
        plan.grpc.approve(request(tokens, Role::Lender, centre, &decide("li"), loan_ref)?).await?;
        plan.approved += 1;
        let disburse =
            pb::DisburseRequest { centre_id: centre.clone(), loan_id: loan_id.clone(), disbursed_on: today.to_string(), reference: format!("FK-{loan_id}") };
        plan.grpc.disburse(request(tokens, Role::Lender, centre, &decide("li"), disburse)?).await?;
        if index + 1 == chosen.len() {
            plan.unpaid_contracts.push(contract_id.clone());
        }
        plan.loans.push(DemoLoan { centre: centre.clone(), loan_id, contract_id: contract_id.clone(), amount_fen });
    }
    Ok(plan)
}

impl LoanPlan {
    /// Waits until every loan whose contract was paid `paid` (contract id → fen) beyond what it
    /// owes is closed and the unpaid one has defaulted, then counts this run's loans as the
    /// loans service shows them.
    pub async fn summarise(&mut self, paid: &BTreeMap<String, i64>, wait: Duration) -> anyhow::Result<LoanFigures> {
        let expected: Vec<&str> = self
            .loans
            .iter()
            .filter(|loan| paid.get(&loan.contract_id).is_some_and(|fen| *fen > loan.amount_fen + loan.amount_fen / 50))
            .map(|loan| loan.loan_id.as_str())
            .collect();
        let unpaid = self.loans.iter().filter(|loan| self.unpaid_contracts.contains(&loan.contract_id)).count();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let mut figures = LoanFigures { applied: self.applied, approved: self.approved, ..LoanFigures::default() };
            let mut closed_expected = 0;
            for loan in &self.loans {
                let asked = pb::LoanRef { centre_id: loan.centre.clone(), loan_id: loan.loan_id.clone() };
                let found = self.grpc.get_loan(request(&self.tokens, Role::Operator, &loan.centre, "demo-operator", asked)?).await?.into_inner();
                let closed = found.status == pb::LoanStatus::Closed as i32;
                figures.disbursed += 1;
                figures.disbursed_fen += found.amount_fen;
                figures.repaid += usize::from(closed);
                closed_expected += usize::from(closed && expected.contains(&loan.loan_id.as_str()));
                figures.overdue += u64::from(found.days_past_due > 0);
                if found.defaulted_at.is_some() {
                    figures.defaulted += 1;
                    figures.proposals.push(format!(
                        "{} defaulted {} days past due: proposal loans:default:{} sent to the credit service",
                        found.loan_id, found.days_past_due, found.loan_id
                    ));
                }
            }
            if (closed_expected == expected.len() && figures.proposals.len() >= unpaid) || tokio::time::Instant::now() > deadline {
                return Ok(figures);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
