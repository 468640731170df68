//! The loans service against a real PostgreSQL and broker, beside the contract and credit
//! services: no consent, no visibility; a barred supplier refused with the receipt kept;
//! maker ≠ checker; disbursement locks the contract's collection account; the purchaser's
//! payments repay the loan (exactly once, a bad record dead-lettered) and closing unlocks it;
//! a default becomes a proposal to the credit service.

use chrono::{DateTime, Duration, Utc};
use jinfu_e2e::contracts::{beijing, draft_request, spawn_contracts, Parties, TestContracts};
use jinfu_e2e::credit::{spawn_credit, TestCredit, CREDIT_KEY_REF};
use jinfu_e2e::loans::{spawn_loans, TestLoans};
use jinfu_e2e::{publish_contract_event, wait_until, TestApp, CENTRE};
use jinfu_platform::auth::Role;
use jinfu_platform::signing::{Scheme, VerifyingKey};
use jinfu_proto::contract::v1 as contract_pb;
use jinfu_proto::credit::v1 as credit_pb;
use jinfu_proto::loan::v1 as pb;
use tonic::Code;

/// The four services and one signed contract of 100,000.00 yuan to finance.
struct World {
    app: TestApp,
    contracts: TestContracts,
    credit: TestCredit,
    loans: TestLoans,
    parties: Parties,
    contract: contract_pb::Contract,
}

impl World {
    async fn new(section: &str, supplier: u32, term_days: u32) -> anyhow::Result<World> {
        let now = beijing("2026-03-02T10:00");
        let app = TestApp::spawn().await?;
        let contracts = spawn_contracts(&app, now).await?;
        let credit = spawn_credit(&app, now).await?;
        let loans = spawn_loans(&app, &contracts, &credit, now).await?;
        let parties = Parties::new(990, supplier);
        contracts.register(&parties).await?;
        let draft = draft_request(section, &format!("HT-{section}"), &parties, Some(beijing("2026-03-01T10:00")));
        let contract = contracts.draft(draft).await?;
        let contract = contracts.sign_both(&contract, &parties, Duration::minutes(10)).await?;
        for lender in ["BANK-A", "BANK-B"] {
            loans.onboard(lender, term_days).await?;
        }
        let world = World { app, contracts, credit, loans, parties, contract };
        let id = world.contract.contract_id.clone();
        wait_until("the loans service to learn of the signed contract", || async {
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM loans.contracts WHERE contract_id = $1").bind(&id).fetch_optional(&world.loans.pool).await?;
            Ok(status.as_deref() == Some("active"))
        })
        .await?;
        Ok(world)
    }

    fn supplier(&self) -> &str {
        &self.parties.supplier.uscc
    }

    /// Both services' clocks to `at`.
    fn set_time(&self, at: DateTime<Utc>) {
        self.contracts.clock.set(at);
        self.loans.clock.set(at);
        self.credit.clock.set(at);
    }

    async fn opportunities(&self, lender: &str) -> anyhow::Result<Vec<pb::Opportunity>> {
        let request = pb::ListOpportunitiesRequest { centre_id: CENTRE.into() };
        Ok(self.loans.grpc.clone().list_opportunities(self.loans.lender(lender, "wang", request)).await?.into_inner().opportunities)
    }

    async fn consent(&self, lender: &str, grant: bool) -> anyhow::Result<pb::Consent> {
        let request = pb::ConsentRequest { centre_id: CENTRE.into(), lender_id: lender.into() };
        let request = self.loans.as_role(Role::Supplier, self.supplier(), request);
        Ok(if grant { self.loans.grpc.clone().grant_consent(request).await? } else { self.loans.grpc.clone().revoke_consent(request).await? }.into_inner())
    }

    /// An active loan of `amount_fen` at `rate_bp` from BANK-A, applied for and disbursed on `on`.
    async fn active_loan(&self, loan_id: &str, amount_fen: i64, rate_bp: u32, on: &str) -> anyhow::Result<pb::Loan> {
        self.set_time(beijing(&format!("{on}T11:00")));
        self.loans.apply(self.supplier(), loan_id, "BANK-A", &self.contract.contract_id, amount_fen).await?;
        self.loans.approve("BANK-A", loan_id, amount_fen, rate_bp).await?;
        Ok(self.loans.disburse("BANK-A", loan_id, on).await?)
    }

    async fn change_account(&self, account_no: &str) -> Result<contract_pb::Contract, tonic::Status> {
        let request = contract_pb::ChangeCollectionAccountRequest {
            centre_id: CENTRE.into(),
            contract_id: self.contract.contract_id.clone(),
            account: Some(contract_pb::CollectionAccount {
                bank_name: "中国银行贵阳分行".into(),
                account_no: account_no.into(),
                account_name: "供应商".into(),
            }),
            reason: "补充协议 2026-001".into(),
        };
        Ok(self.contracts.grpc.clone().change_collection_account(self.contracts.as_role(Role::Supplier, self.supplier(), request)).await?.into_inner())
    }

    /// The purchaser's invoice of 30,000.00 yuan (the prepayment milestone).
    async fn invoice(&self) -> anyhow::Result<()> {
        self.contracts.invoice(&self.contract, "26522000000000000101", 1, 3_000_000).await?;
        Ok(())
    }

    async fn pay(&self, payment_id: &str, on: &str, amount_fen: i64) -> anyhow::Result<()> {
        self.contracts.pay(&self.contract, payment_id, on, &[("26522000000000000101", amount_fen)]).await?;
        Ok(())
    }
}

#[tokio::test]
async fn a_lender_sees_nothing_of_a_supplier_that_did_not_consent() -> anyhow::Result<()> {
    let world = World::new("LN-1", 401, 180).await?;
    assert!(world.opportunities("BANK-A").await?.is_empty(), "no consent, no opportunity");
    world.consent("BANK-A", true).await?;
    let seen = world.opportunities("BANK-A").await?;
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].contract_id.as_str(), seen[0].basis.as_str(), seen[0].amount_fen), (world.contract.contract_id.as_str(), "contract", 10_000_000));
    assert!(world.opportunities("BANK-B").await?.is_empty(), "a consent names its lender");
    let line = pb::CreditLineRequest { centre_id: CENTRE.into(), supplier_uscc: world.supplier().into() };
    let refused = world.loans.grpc.clone().credit_line(world.loans.lender("BANK-B", "wang", line.clone())).await.unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);
    world.loans.grpc.clone().credit_line(world.loans.lender("BANK-A", "wang", line)).await?;

    let loan = world.loans.apply(world.supplier(), "L-1", "BANK-A", &world.contract.contract_id, 5_000_000).await?;
    assert_eq!((loan.status, loan.basis.as_str()), (pb::LoanStatus::Submitted as i32, "contract"));
    let other = pb::LoanRef { centre_id: CENTRE.into(), loan_id: "L-1".into() };
    assert_eq!(world.loans.grpc.clone().get_loan(world.loans.lender("BANK-B", "wang", other.clone())).await.unwrap_err().code(), Code::NotFound);
    let listed =
        world.loans.grpc.clone().list_loans(world.loans.lender("BANK-B", "wang", pb::ListLoansRequest { centre_id: CENTRE.into(), status: 0 })).await?;
    assert!(listed.into_inner().loans.is_empty());

    world.consent("BANK-A", false).await?;
    assert!(world.opportunities("BANK-A").await?.is_empty(), "a revoked consent shows nothing more");
    world.loans.grpc.clone().get_loan(world.loans.lender("BANK-A", "wang", other)).await?;
    world.consent("*", true).await?;
    assert_eq!(world.opportunities("BANK-B").await?.len(), 1, "an intent published to every lender of the province");
    world.loans.assert_events_match_schema().await?;
    Ok(())
}

#[tokio::test]
async fn a_barred_supplier_is_refused_and_the_credit_services_receipt_is_kept() -> anyhow::Result<()> {
    let world = World::new("LN-2", 402, 180).await?;
    let proposal = credit_pb::ProposeRequest {
        centre_id: CENTRE.into(),
        proposal_id: "fraud-402".into(),
        subject_uscc: world.supplier().into(),
        behaviour: credit_pb::Behaviour::FalseMaterials as i32,
        source: "guarantee:forged_issuance".into(),
        evidence_refs: vec!["GZ-2026-17".into()],
        summary: "提供虚假材料".into(),
        regime: credit_pb::Regime::Unspecified as i32,
    };
    world.credit.grpc.clone().propose(world.credit.as_role(Role::Operator, CENTRE, "operator-1", proposal)).await?;
    let confirm = credit_pb::ConfirmRequest {
        centre_id: CENTRE.into(),
        proposal_id: "fraud-402".into(),
        legal_basis: "政府采购法 art. 77".into(),
        authority: "贵阳市财政局".into(),
        decided_on: "2026-03-01".into(),
        debarment_months: 12,
        debarred_from: None,
        fine_fen: 0,
        province_wide: false,
    };
    world.credit.grpc.clone().confirm(world.credit.as_role(Role::Supervisor, CENTRE, "supervisor-1", confirm)).await?;

    let loan = world.loans.apply(world.supplier(), "L-2", "BANK-A", &world.contract.contract_id, 5_000_000).await?;
    assert_eq!((loan.status, loan.rejection_code.as_str()), (pb::LoanStatus::Rejected as i32, "supplier_barred"));
    assert!(loan.eligibility_receipt.contains("eligible=false\n"), "{}", loan.eligibility_receipt);
    assert_eq!(loan.eligibility_key_ref, CREDIT_KEY_REF);
    let key = VerifyingKey::from_hex(Scheme::Ed25519, &world.credit.key.public_key_hex())?;
    assert!(key.verify(loan.eligibility_receipt.as_bytes(), &loan.eligibility_signature).is_ok(), "the receipt is the credit service's, signed");
    let kept = world.loans.get("L-2").await?;
    assert_eq!((kept.eligibility_receipt, kept.eligibility_signature), (loan.eligibility_receipt, loan.eligibility_signature));
    let rejected = world.loans.events("loan.rejected").await?;
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["data"]["rejection_code"], "supplier_barred");
    // A rejected application holds nothing: the lender cannot move it on.
    let terms = pb::ProposeTermsRequest { centre_id: CENTRE.into(), loan_id: "L-2".into(), amount_fen: 1, rate_bp: 400 };
    let refused = world.loans.grpc.clone().propose_terms(world.loans.lender("BANK-A", "wang", terms)).await.unwrap_err();
    assert!(refused.message().starts_with("wrong_status:"), "{}", refused.message());
    world.loans.assert_events_match_schema().await?;
    Ok(())
}

#[tokio::test]
async fn the_officer_who_proposed_the_terms_cannot_approve_them() -> anyhow::Result<()> {
    let world = World::new("LN-3", 403, 180).await?;
    world.loans.apply(world.supplier(), "L-3", "BANK-A", &world.contract.contract_id, 8_000_000).await?;
    let over = world.loans.apply(world.supplier(), "L-3b", "BANK-B", &world.contract.contract_id, 8_000_001).await.unwrap_err();
    assert!(over.message().starts_with("amount_above_ratio:"), "{}", over.message());
    let terms = pb::ProposeTermsRequest { centre_id: CENTRE.into(), loan_id: "L-3".into(), amount_fen: 6_000_000, rate_bp: 385 };
    world.loans.grpc.clone().propose_terms(world.loans.lender("BANK-A", "wang", terms)).await?;
    let loan = pb::LoanRef { centre_id: CENTRE.into(), loan_id: "L-3".into() };
    let refused = world.loans.grpc.clone().approve(world.loans.lender("BANK-A", "wang", loan.clone())).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(refused.message().starts_with("maker_is_checker:"), "{}", refused.message());
    assert_eq!(world.loans.get("L-3").await?.status, pb::LoanStatus::Submitted as i32);
    let other_lender = world.loans.grpc.clone().approve(world.loans.lender("BANK-B", "li", loan.clone())).await.unwrap_err();
    assert_eq!(other_lender.code(), Code::NotFound, "another lender's officer does not see the loan");
    let approved = world.loans.grpc.clone().approve(world.loans.lender("BANK-A", "li", loan)).await?.into_inner();
    assert_eq!((approved.status, approved.terms_proposed_by.as_str(), approved.approved_by.as_str()), (200, "BANK-A:wang", "BANK-A:li"));
    let second = world.loans.apply(world.supplier(), "L-3c", "BANK-B", &world.contract.contract_id, 1_000_000).await.unwrap_err();
    assert!(second.message().starts_with("loan_open:"), "one open loan per contract: {}", second.message());
    world.loans.assert_events_match_schema().await?;
    Ok(())
}

#[tokio::test]
async fn disbursement_locks_the_collection_account_and_the_supplier_cannot_change_it_back() -> anyhow::Result<()> {
    let world = World::new("LN-4", 404, 180).await?;
    let loan = world.active_loan("L-4", 2_000_000, 365, "2026-03-02").await?;
    assert_eq!((loan.status, loan.principal_outstanding_fen, loan.maturity_on.as_str()), (300, 2_000_000, "2026-08-29"));
    let lock = format!("loan:{CENTRE}:L-4");
    assert_eq!(loan.lock_ref, lock);
    let contract = world.contracts.get_contract(&world.contract.contract_id).await?;
    let account = contract.collection_account.clone().unwrap_or_default();
    assert_eq!((account.account_no.as_str(), contract.collection_account_locked_by.as_str()), ("BANK-A-LOAN-0001", lock.as_str()));
    assert_eq!(contract.account_changes.len(), 1);
    assert!(contract.account_changes[0].contains(&format!(" lock BANK-A-LOAN-0001 lock {lock}: ")), "{:?}", contract.account_changes);

    let refused = world.change_account("SUPPLIER-OWN-01").await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().starts_with("collection_account_locked:"), "{}", refused.message());
    let repeated = world.loans.disburse("BANK-A", "L-4", "2026-03-02").await?;
    assert_eq!(repeated.status, 300, "a repeated disbursement report changes nothing");

    let undo = pb::DecisionRequest { centre_id: CENTRE.into(), loan_id: "L-4".into(), reason: "放款指令重复".into() };
    let undone = world.loans.grpc.clone().undo_disbursement(world.loans.lender("BANK-A", "li", undo)).await?.into_inner();
    assert_eq!((undone.status, undone.lock_ref.as_str()), (200, ""));
    let changed = world.change_account("SUPPLIER-OWN-01").await?;
    assert_eq!((changed.collection_account.unwrap_or_default().account_no.as_str(), changed.collection_account_locked_by.as_str()), ("SUPPLIER-OWN-01", ""));
    let changes = world.contracts.events("contract.account_changed").await?;
    let actions: Vec<&str> = changes.iter().map(|event| event["data"]["action"].as_str().unwrap_or_default()).collect();
    assert_eq!(actions, ["lock", "unlock", "change"]);
    world.contracts.assert_events_match_schema().await?;
    world.loans.assert_events_match_schema().await?;
    Ok(())
}

#[tokio::test]
async fn the_purchasers_payments_repay_the_loan_once_and_closing_it_unlocks_the_account() -> anyhow::Result<()> {
    let world = World::new("LN-5", 405, 180).await?;
    world.active_loan("L-5", 2_000_000, 365, "2026-03-03").await?;
    world.invoice().await?;
    world.set_time(beijing("2026-03-13T10:00"));
    world.pay("PAY-5-1", "2026-03-13", 1_000_000).await?;
    wait_until("the first repayment", || async { Ok(world.loans.get("L-5").await?.repayments.len() == 1) }).await?;
    let loan = world.loans.get("L-5").await?;
    // 2,000,000 fen × 3.65 % × 10 days / 365 = 2,000 fen of interest, paid first.
    let first = &loan.repayments[0];
    assert_eq!((first.interest_fen, first.principal_fen, first.surplus_fen), (2_000, 998_000, 0));
    assert_eq!((loan.status, loan.principal_outstanding_fen, loan.interest_due_fen), (300, 1_002_000, 0));

    // A record missing its amount is dead-lettered; the same payment told twice repays once.
    let payment = &world.contracts.events("payment.recorded").await?[0]["data"];
    let mut broken = payment.clone();
    broken.as_object_mut().map(|data| data.remove("amount"));
    publish_contract_event(&world.app, "payment.recorded", CENTRE, broken).await?;
    publish_contract_event(&world.app, "payment.recorded", CENTRE, payment.clone()).await?;
    world.set_time(beijing("2026-03-23T10:00"));
    world.pay("PAY-5-2", "2026-03-23", 2_000_000).await?;
    wait_until("the loan to close", || async { Ok(world.loans.get("L-5").await?.status == pb::LoanStatus::Closed as i32) }).await?;
    let loan = world.loans.get("L-5").await?;
    let ids: Vec<&str> = loan.repayments.iter().map(|repayment| repayment.payment_id.as_str()).collect();
    assert_eq!(ids, ["PAY-5-1", "PAY-5-2"], "the repeated payment is applied once");
    let last = &loan.repayments[1];
    // 1,002,000 fen for 10 more days: 1,002 fen; the rest of the payment is the supplier's.
    assert_eq!((last.interest_fen, last.principal_fen, last.surplus_fen), (1_002, 1_002_000, 996_998));
    let dead: Vec<String> = sqlx::query_scalar("SELECT reason FROM loans.dead_letters WHERE topic = $1")
        .bind(world.app.settings.kafka.topic(jinfu_platform::topics::CONTRACT_EVENTS))
        .fetch_all(&world.loans.pool)
        .await?;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0].starts_with("bad_field"), "{dead:?}");

    assert!(world.change_account("SUPPLIER-OWN-02").await.is_err(), "locked until the sweeper lifts the lock");
    world.loans.sweep().await?;
    let contract = world.contracts.get_contract(&world.contract.contract_id).await?;
    assert_eq!(contract.collection_account_locked_by, "");
    world.change_account("SUPPLIER-OWN-02").await?;
    let closed = world.loans.events("loan.closed").await?;
    assert_eq!((closed.len(), closed[0]["data"]["interest_paid"].as_str()), (1, Some("30.02")));
    assert_eq!(world.loans.events("loan.repaid").await?.len(), 2);
    world.loans.assert_events_match_schema().await?;
    world.contracts.assert_events_match_schema().await?;
    Ok(())
}

#[tokio::test]
async fn a_loan_past_its_grace_days_defaults_and_is_proposed_to_the_credit_service() -> anyhow::Result<()> {
    let world = World::new("LN-6", 406, 30).await?;
    let loan = world.active_loan("L-6", 3_000_000, 400, "2026-03-03").await?;
    assert_eq!(loan.maturity_on, "2026-04-02");
    world.set_time(beijing("2026-04-07T09:00"));
    world.loans.sweep().await?;
    let loan = world.loans.get("L-6").await?;
    assert_eq!((loan.days_past_due, loan.defaulted_at.is_none()), (5, true), "five days late is within the grace days");
    assert_eq!(world.loans.events("loan.delinquent").await?.len(), 1);
    world.set_time(beijing("2026-04-08T09:00"));
    world.loans.sweep().await?;
    world.loans.sweep().await?;
    assert!(world.loans.get("L-6").await?.defaulted_at.is_some());
    let defaulted = world.loans.events("loan.defaulted").await?;
    assert_eq!(defaulted.len(), 1, "once");
    assert_eq!(defaulted[0]["data"]["proposal_id"], "loans:default:L-6");
    let list = credit_pb::ListProposalsRequest { centre_id: CENTRE.into(), status: "pending".into() };
    let proposals =
        world.credit.grpc.clone().list_proposals(world.credit.as_role(Role::Supervisor, CENTRE, "supervisor-1", list)).await?.into_inner().proposals;
    assert_eq!(proposals.len(), 1);
    let proposal = &proposals[0];
    assert_eq!(
        (proposal.proposal_id.as_str(), proposal.subject_uscc.as_str(), proposal.behaviour),
        ("loans:default:L-6", world.supplier(), credit_pb::Behaviour::LoanDefault as i32)
    );
    assert_eq!(proposal.status, "pending", "a proposal, never a ban: a supervisor decides");
    let figures = pb::FiguresRequest { centre_id: CENTRE.into(), ..Default::default() };
    let figures = world.loans.grpc.clone().figures(world.loans.as_role(Role::Supervisor, "supervisor-1", figures)).await?.into_inner();
    assert_eq!((figures.applied, figures.disbursed, figures.disbursed_fen, figures.overdue, figures.defaulted), (1, 1, 3_000_000, 1, 1));
    assert_eq!(figures.average_rate_bp, 400);

    // The lender gives up: written off, and the account it held is given back.
    let write_off = pb::DecisionRequest { centre_id: CENTRE.into(), loan_id: "L-6".into(), reason: "催收无果，核销".into() };
    let written = world.loans.grpc.clone().write_off(world.loans.lender("BANK-A", "li", write_off)).await?.into_inner();
    assert_eq!((written.status, written.principal_outstanding_fen), (pb::LoanStatus::WrittenOff as i32, 3_000_000));
    world.loans.sweep().await?;
    assert_eq!(world.contracts.get_contract(&world.contract.contract_id).await?.collection_account_locked_by, "");
    world.loans.assert_events_match_schema().await?;
    Ok(())
}

#[tokio::test]
async fn an_unconfirmed_receivable_is_flagged_after_30_days_and_an_exiting_lender_frees_the_contract() -> anyhow::Result<()> {
    let world = World::new("LN-7", 407, 180).await?;
    world.loans.apply(world.supplier(), "L-7", "BANK-A", &world.contract.contract_id, 4_000_000).await?;
    let purchaser = world.parties.purchaser.uscc.clone();
    let reference = pb::LoanRef { centre_id: CENTRE.into(), loan_id: "L-7".into() };
    let hidden = world.loans.grpc.clone().get_loan(world.loans.as_role(Role::Purchaser, &purchaser, reference.clone())).await.unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound, "the purchaser sees a loan only once asked to confirm");
    let asked = world.loans.grpc.clone().request_confirmation(world.loans.lender("BANK-A", "wang", reference.clone())).await?.into_inner();
    assert_eq!((asked.confirmation.as_str(), asked.confirmation_due_on.as_str()), ("requested", "2026-04-01"));
    world.loans.grpc.clone().get_loan(world.loans.as_role(Role::Purchaser, &purchaser, reference.clone())).await?;
    world.set_time(beijing("2026-04-01T23:00"));
    world.loans.sweep().await?;
    assert!(world.loans.events("loan.confirmation_overdue").await?.is_empty(), "the 30th day is still in time");
    world.set_time(beijing("2026-04-02T09:00"));
    world.loans.sweep().await?;
    world.loans.sweep().await?;
    let overdue = world.loans.events("loan.confirmation_overdue").await?;
    assert_eq!(overdue.len(), 1, "flagged once");
    assert_eq!((overdue[0]["data"]["purchaser_uscc"].as_str(), overdue[0]["data"]["due_on"].as_str()), (Some(purchaser.as_str()), Some("2026-04-01")));
    let confirm = pb::ConfirmReceivableRequest { centre_id: CENTRE.into(), loan_id: "L-7".into(), confirmed: false, reason: String::new() };
    let refused = world.loans.grpc.clone().confirm_receivable(world.loans.as_role(Role::Purchaser, &purchaser, confirm.clone())).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "a dispute needs its reason");
    let disputed = pb::ConfirmReceivableRequest { reason: "验收未完成，应收账款金额待定".into(), ..confirm };
    let answered = world.loans.grpc.clone().confirm_receivable(world.loans.as_role(Role::Purchaser, &purchaser, disputed)).await?.into_inner();
    assert_eq!(answered.confirmation, "disputed");

    let exit =
        pb::SetLenderStatusRequest {
            province_id: "520000".into(), lender_id: "BANK-A".into(), status: "exited".into(), reason: "退出政采贷业务".into()
        };
    let admin = |message| world.loans.as_role_in(Role::Admin, "520000", "province-admin", message);
    world.loans.grpc.clone().set_lender_status(admin(exit.clone())).await?;
    let loan = world.loans.get("L-7").await?;
    assert_eq!((loan.status, loan.rejection_code.as_str()), (pb::LoanStatus::Rejected as i32, "lender_exited"));
    let back = pb::SetLenderStatusRequest { status: "active".into(), ..exit };
    let refused = world.loans.grpc.clone().set_lender_status(admin(back)).await.unwrap_err();
    assert!(refused.message().starts_with("lender_exited:"), "{}", refused.message());
    let next = world.loans.apply(world.supplier(), "L-7b", "BANK-B", &world.contract.contract_id, 4_000_000).await?;
    assert_eq!(next.status, pb::LoanStatus::Submitted as i32, "the contract is free for another lender");
    world.loans.assert_events_match_schema().await?;
    Ok(())
}
