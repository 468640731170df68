//! The demo's credit records (credit service): the ledger's collusion leads, published once the
//! bids are opened, become the credit service's own proposals (never bans), a supervisor
//! confirms all but one of twelve with a one-year debarment and dismisses that one, and a
//! debarred bidder's next guarantee application is refused by the guarantee service's
//! eligibility check. Prints one summary line.

use std::collections::BTreeSet;

use jinfu_ledger::ids::CentreCode;
use jinfu_platform::auth::{Role, TokenKeys};
use jinfu_proto::credit::v1 as pb;
use jinfu_proto::credit::v1::credit_service_client::CreditServiceClient;
use jinfu_proto::guarantee::v1 as g;
use jinfu_proto::guarantee::v1::guarantee_service_client::GuaranteeServiceClient;
use jinfu_proto::ledger::v1 as ledger;
use jinfu_proto::ledger::v1::ledger_service_client::LedgerServiceClient;

/// Proposals the demo's supervisor decides at most.
const PROPOSALS_MAX: usize = 12;

/// What happened, for the summary line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CreditFigures {
    pub records: usize,
    pub proposals: usize,
    pub confirmed: usize,
    pub dismissed: usize,
    pub barred_now: usize,
    pub refused: usize,
}

impl std::fmt::Display for CreditFigures {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "credit: {} records, {} proposals ({} confirmed, {} dismissed), {} barred now, {} refused by a check",
            self.records, self.proposals, self.confirmed, self.dismissed, self.barred_now, self.refused
        )
    }
}

fn request<T>(tokens: &TokenKeys, role: Role, centre: &str, party: &str, message: T) -> anyhow::Result<tonic::Request<T>> {
    let token = tokens.issue(role, &CentreCode::parse(centre)?, party, 600)?;
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse()?);
    Ok(request)
}

/// The endpoints the credit part of the demo talks to.
pub struct CreditDemo<'a> {
    pub credit_url: &'a str,
    pub ledger_url: &'a str,
    pub guarantee_url: Option<&'a str>,
    pub centres: &'a [String],
}

/// Runs the credit part: the credit service's own proposals from the ledger's collusion leads
/// (published once bids are opened), decisions, a refused application.
pub async fn run(demo: &CreditDemo<'_>, tokens: &TokenKeys) -> anyhow::Result<CreditFigures> {
    let mut credit = CreditServiceClient::connect(demo.credit_url.to_owned()).await?;
    let mut ledger = LedgerServiceClient::connect(demo.ledger_url.to_owned()).await?;
    let mut figures = CreditFigures::default();
    let today = jinfu_ledger::beijing::date(chrono::Utc::now()).to_string();
    // One proposal per bidder a lead names, made by the credit service from ledger.events.
    let mut expected = 0;
    for centre in demo.centres {
        let summary = ledger
            .get_ingest_summary(request(tokens, Role::Supervisor, "520000", "demo-supervisor", ledger::GetIngestSummaryRequest { centre_id: centre.clone() })?)
            .await?
            .into_inner();
        expected += summary.collusion_leads.iter().map(|lead| lead.bidder_usccs.len()).sum::<usize>();
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut leads = Vec::new();
    loop {
        leads.clear();
        for centre in demo.centres {
            let list = pb::ListProposalsRequest { centre_id: centre.clone(), status: String::new() };
            let found = credit.list_proposals(request(tokens, Role::Supervisor, centre, "demo-supervisor", list)?).await?.into_inner();
            leads.extend(found.proposals.into_iter().filter(|proposal| proposal.source == "ledger:collusion_lead"));
        }
        if leads.len() >= expected || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    figures.proposals = leads.len();
    // (centre, proposal, bidder, section) of the pending ones the supervisor decides now.
    let section_of =
        |proposal: &pb::Proposal| proposal.evidence_refs.iter().find_map(|evidence| evidence.strip_prefix("section:")).unwrap_or_default().to_owned();
    let proposed: Vec<(String, String, String, String)> = leads
        .iter()
        .filter(|proposal| proposal.status == "pending")
        .take(PROPOSALS_MAX)
        .map(|proposal| (proposal.centre_id.clone(), proposal.proposal_id.clone(), proposal.subject_uscc.clone(), section_of(proposal)))
        .collect();

    let mut barred = BTreeSet::new();
    for (index, (centre, proposal_id, bidder, section)) in proposed.iter().enumerate() {
        if index == 0 {
            let dismiss =
                pb::DismissRequest {
                    centre_id: centre.clone(), proposal_id: proposal_id.clone(), reason: "付款账户为投标人集团财务公司，非串通".into()
                };
            credit.dismiss(request(tokens, Role::Supervisor, centre, "demo-supervisor", dismiss)?).await?;
            figures.dismissed += 1;
            continue;
        }
        let confirm = pb::ConfirmRequest {
            centre_id: centre.clone(),
            proposal_id: proposal_id.clone(),
            legal_basis: "政府采购法 art. 77".into(),
            authority: "贵州省财政厅".into(),
            decided_on: today.clone(),
            debarment_months: 12,
            debarred_from: None,
            fine_fen: 0,
            province_wide: false,
        };
        credit.confirm(request(tokens, Role::Supervisor, centre, "demo-supervisor", confirm)?).await?;
        figures.confirmed += 1;
        barred.insert((centre.clone(), bidder.clone(), section.clone()));
    }
    for centre in demo.centres {
        let records = credit
            .list_records(request(
                tokens,
                Role::Supervisor,
                centre,
                "demo-supervisor",
                pb::ListRecordsRequest { centre_id: centre.clone(), subject_uscc: String::new() },
            )?)
            .await?
            .into_inner();
        figures.records += records.records.len();
        figures.barred_now += records.records.iter().filter(|record| record.debarred_now).map(|record| &record.subject_uscc).collect::<BTreeSet<_>>().len();
    }
    if let (Some(url), Some((centre, bidder, section))) = (demo.guarantee_url, barred.iter().next()) {
        figures.refused += refused_application(url, tokens, centre, bidder, section).await?;
    }
    Ok(figures)
}

/// A debarred bidder applies for a bid guarantee in the section it was caught in: 1 when the
/// guarantee service refuses it as barred (its eligibility check comes before anything else).
async fn refused_application(url: &str, tokens: &TokenKeys, centre: &str, bidder: &str, section: &str) -> anyhow::Result<usize> {
    let mut guarantees = GuaranteeServiceClient::connect(url.to_owned()).await?;
    let spec = &crate::guarantees::ISSUERS[1];
    let apply = g::ApplyRequest {
        centre_id: centre.to_owned(),
        section_id: section.to_owned(),
        issuer_code: spec.code.into(),
        product_id: spec.product_id.into(),
        beneficiary: "采购人".into(),
        valid_to: (chrono::Utc::now() + chrono::Duration::days(90)).format("%Y-%m-%d").to_string(),
        ..Default::default()
    };
    match guarantees.apply(request(tokens, Role::Bidder, centre, bidder, apply)?).await {
        Err(status) if status.message().starts_with("barred:") => {
            println!("a debarred bidder's guarantee application was refused: {}", status.message());
            Ok(1)
        }
        Err(status) => {
            println!("a debarred bidder's guarantee application failed otherwise: {}", status.message());
            Ok(0)
        }
        Ok(_) => {
            println!("a debarred bidder's guarantee application was accepted (the guarantee service does not check credit)");
            Ok(0)
        }
    }
}
