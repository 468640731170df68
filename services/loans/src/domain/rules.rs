//! The decisions of a loan's life: who may apply with what, the terms a lender may propose, who
//! may approve them, and what each state allows.

use super::{LenderStatus, LoanStatus, Officer, Refusal};

/// A product's limits as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductTerms {
    pub rate_min_bp: u32,
    pub rate_max_bp: u32,
    pub max_ratio_bp: u32,
    pub sme_only: bool,
    /// Empty: every centre of the province.
    pub centres: Vec<String>,
    /// Empty: both regimes.
    pub regimes: Vec<String>,
}

/// The contract facts an application rests on, as the contract service states them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractFacts {
    pub centre_id: String,
    pub contract_id: String,
    pub supplier_uscc: String,
    pub amount_fen: i64,
    /// `procurement` or `engineering`.
    pub regime: String,
    pub sme: bool,
    pub terminated: bool,
}

/// The most a product lends against `contract_amount_fen`: its ratio, rounded down to the fen.
pub fn max_amount(product: &ProductTerms, contract_amount_fen: i64) -> i64 {
    i64::try_from(i128::from(contract_amount_fen) * i128::from(product.max_ratio_bp) / 10_000).unwrap_or(i64::MAX)
}

/// Whether `supplier` may apply to a lender in `lender` status for `requested_fen` under
/// `product` against `contract`.
pub fn may_apply(
    supplier: &str,
    lender: LenderStatus,
    lender_id: &str,
    product: &ProductTerms,
    contract: &ContractFacts,
    requested_fen: i64,
) -> Result<(), Refusal> {
    if contract.supplier_uscc != supplier {
        return Err(Refusal::NotTheSupplier);
    }
    if lender != LenderStatus::Active {
        return Err(Refusal::LenderNotActive { lender_id: lender_id.to_owned(), status: lender.code() });
    }
    if contract.terminated {
        return Err(Refusal::ContractTerminated { contract_id: contract.contract_id.clone() });
    }
    if product.sme_only && !contract.sme {
        return Err(Refusal::ProductNotEligible { why: "for SMEs only".into() });
    }
    if !product.centres.is_empty() && !product.centres.contains(&contract.centre_id) {
        return Err(Refusal::ProductNotEligible { why: format!("not offered in centre {}", contract.centre_id) });
    }
    if !product.regimes.is_empty() && !product.regimes.contains(&contract.regime) {
        return Err(Refusal::ProductNotEligible { why: format!("not for {} contracts", contract.regime) });
    }
    let max_fen = max_amount(product, contract.amount_fen);
    if requested_fen > max_fen {
        return Err(Refusal::AmountAboveRatio { requested_fen, max_fen });
    }
    Ok(())
}

/// Whether `amount_fen` at `rate_bp` may be proposed for a loan that asked for `requested_fen`.
pub fn may_propose(status: LoanStatus, product: &ProductTerms, requested_fen: i64, amount_fen: i64, rate_bp: u32) -> Result<(), Refusal> {
    expect(status, LoanStatus::Submitted, "proposing terms")?;
    if amount_fen > requested_fen {
        return Err(Refusal::AmountAboveLimit { amount_fen, limit_fen: requested_fen });
    }
    if !(product.rate_min_bp..=product.rate_max_bp).contains(&rate_bp) {
        return Err(Refusal::RateOutOfRange { rate_bp, min_bp: product.rate_min_bp, max_bp: product.rate_max_bp });
    }
    Ok(())
}

/// Whether `checker` may approve terms `maker` proposed (maker ≠ checker, the same lender).
pub fn may_approve(status: LoanStatus, lender: LenderStatus, maker: Option<&str>, checker: &Officer) -> Result<(), Refusal> {
    expect(status, LoanStatus::Submitted, "an approval")?;
    if lender != LenderStatus::Active {
        return Err(Refusal::LenderNotActive { lender_id: checker.lender_id.clone(), status: lender.code() });
    }
    match maker {
        None => Err(Refusal::NoTerms),
        Some(maker) if maker == checker.party => Err(Refusal::MakerIsChecker),
        Some(_) => Ok(()),
    }
}

/// Whether a lender in `current` may move to `next` (exit is final; exit needs no open loan).
pub fn may_change_lender(lender_id: &str, current: LenderStatus, next: LenderStatus, open_loans: i64) -> Result<(), Refusal> {
    if current == LenderStatus::Exited && next != LenderStatus::Exited {
        return Err(Refusal::LenderExited { lender_id: lender_id.to_owned() });
    }
    if next == LenderStatus::Exited && open_loans > 0 {
        return Err(Refusal::OpenLoans { lender_id: lender_id.to_owned(), open: open_loans });
    }
    Ok(())
}

/// Refuses anything but `wanted` for `what`.
pub fn expect(status: LoanStatus, wanted: LoanStatus, what: &'static str) -> Result<(), Refusal> {
    if status == wanted {
        Ok(())
    } else {
        Err(Refusal::WrongStatus { status: status.code(), what })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUPPLIER: &str = "91520100MA6DT1XX0B";

    fn product() -> ProductTerms {
        ProductTerms { rate_min_bp: 300, rate_max_bp: 450, max_ratio_bp: 8000, sme_only: true, centres: vec![], regimes: vec!["procurement".into()] }
    }

    fn contract() -> ContractFacts {
        ContractFacts {
            centre_id: "520100".into(),
            contract_id: "HT-1".into(),
            supplier_uscc: SUPPLIER.into(),
            amount_fen: 1_000_000,
            regime: "procurement".into(),
            sme: true,
            terminated: false,
        }
    }

    fn refusal(result: Result<(), Refusal>) -> &'static str {
        result.unwrap_err().code()
    }

    #[test]
    fn an_application_rests_on_the_suppliers_own_contract_within_the_products_ratio() {
        assert_eq!(may_apply(SUPPLIER, LenderStatus::Active, "L", &product(), &contract(), 800_000), Ok(()));
        assert_eq!(refusal(may_apply(SUPPLIER, LenderStatus::Active, "L", &product(), &contract(), 800_001)), "amount_above_ratio");
        assert_eq!(refusal(may_apply("91520100MA6DT1YY0B", LenderStatus::Active, "L", &product(), &contract(), 1)), "not_the_supplier");
        assert_eq!(refusal(may_apply(SUPPLIER, LenderStatus::Suspended, "L", &product(), &contract(), 1)), "lender_not_active");
        let large = ContractFacts { sme: false, ..contract() };
        assert_eq!(refusal(may_apply(SUPPLIER, LenderStatus::Active, "L", &product(), &large, 1)), "product_not_eligible");
        let works = ContractFacts { regime: "engineering".into(), ..contract() };
        assert_eq!(refusal(may_apply(SUPPLIER, LenderStatus::Active, "L", &product(), &works, 1)), "product_not_eligible");
        let elsewhere = ProductTerms { centres: vec!["520300".into()], ..product() };
        assert_eq!(refusal(may_apply(SUPPLIER, LenderStatus::Active, "L", &elsewhere, &contract(), 1)), "product_not_eligible");
        let ended = ContractFacts { terminated: true, ..contract() };
        assert_eq!(refusal(may_apply(SUPPLIER, LenderStatus::Active, "L", &product(), &ended, 1)), "contract_terminated");
    }

    #[test]
    fn terms_stay_within_the_request_and_the_rate_range() {
        assert_eq!(may_propose(LoanStatus::Submitted, &product(), 800_000, 800_000, 450), Ok(()));
        assert_eq!(refusal(may_propose(LoanStatus::Submitted, &product(), 800_000, 800_001, 450)), "amount_above_limit");
        assert_eq!(refusal(may_propose(LoanStatus::Submitted, &product(), 800_000, 1, 451)), "rate_out_of_range");
        assert_eq!(refusal(may_propose(LoanStatus::Approved, &product(), 800_000, 1, 400)), "wrong_status");
    }

    #[test]
    fn the_maker_never_checks_its_own_terms() {
        let wang = Officer::parse("L:wang").unwrap();
        let li = Officer::parse("L:li").unwrap();
        assert_eq!(refusal(may_approve(LoanStatus::Submitted, LenderStatus::Active, Some("L:wang"), &wang)), "maker_is_checker");
        assert_eq!(may_approve(LoanStatus::Submitted, LenderStatus::Active, Some("L:wang"), &li), Ok(()));
        assert_eq!(refusal(may_approve(LoanStatus::Submitted, LenderStatus::Active, None, &li)), "no_terms");
        assert_eq!(refusal(may_approve(LoanStatus::Submitted, LenderStatus::Suspended, Some("L:wang"), &li)), "lender_not_active");
    }

    #[test]
    fn exit_is_final_and_waits_for_open_loans() {
        assert_eq!(refusal(may_change_lender("L", LenderStatus::Exited, LenderStatus::Active, 0)), "lender_exited");
        assert_eq!(refusal(may_change_lender("L", LenderStatus::Active, LenderStatus::Exited, 2)), "open_loans");
        assert_eq!(may_change_lender("L", LenderStatus::Suspended, LenderStatus::Exited, 0), Ok(()));
        assert_eq!(may_change_lender("L", LenderStatus::Suspended, LenderStatus::Active, 5), Ok(()));
    }

    #[test]
    fn the_ratio_rounds_down_to_the_fen() {
        let product = ProductTerms { max_ratio_bp: 3333, ..product() };
        assert_eq!(max_amount(&product, 100), 33);
    }
}
