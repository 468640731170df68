//! Live figures of a centre or province: firms served, guarantees issued, cash a bid guarantee
//! released from deposits, premiums. Premiums are summed, never listed per bidder; a bid
//! guarantee counts only once its section's bids are opened (the store selects accordingly).

use std::collections::{BTreeMap, HashSet};

use jinfu_ledger::ids::CentreCode;

use super::guarantees::replaces_deposit;
use super::GuaranteeType;

/// One guarantee as the figures count it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    pub centre_id: String,
    /// The bidder's tag: firms are counted without being named.
    pub bidder_tag: Vec<u8>,
    pub kind: GuaranteeType,
    pub amount_fen: i64,
    pub premium_fen: i64,
}

/// The figures of one centre (or a total).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CentreFigures {
    pub centre_id: String,
    pub firms_served: i64,
    pub guarantees_issued: i64,
    pub cash_released_fen: i64,
    pub premiums_fen: i64,
}

/// The centres a request covers: a province centre's figures cover every centre of the
/// province (the two-digit prefix), a city's only itself.
pub fn centre_prefix(centre: &CentreCode) -> String {
    if centre.is_province() {
        centre.as_str()[..2].to_owned()
    } else {
        centre.as_str().to_owned()
    }
}

/// Per centre (ordered by code) and the total under `centre_id`. Firms are counted per centre
/// and the total is the sum of the centres' counts.
pub fn summarise(centre_id: &str, counted: &[Counted]) -> (Vec<CentreFigures>, CentreFigures) {
    let mut by_centre: BTreeMap<&str, (HashSet<&[u8]>, CentreFigures)> = BTreeMap::new();
    for guarantee in counted {
        let (firms, figures) = by_centre
            .entry(guarantee.centre_id.as_str())
            .or_insert_with(|| (HashSet::new(), CentreFigures { centre_id: guarantee.centre_id.clone(), ..CentreFigures::default() }));
        firms.insert(guarantee.bidder_tag.as_slice());
        figures.guarantees_issued += 1;
        if replaces_deposit(guarantee.kind) {
            figures.cash_released_fen += guarantee.amount_fen;
        }
        figures.premiums_fen += guarantee.premium_fen;
    }
    let mut total = CentreFigures { centre_id: centre_id.to_owned(), ..CentreFigures::default() };
    let mut centres = Vec::with_capacity(by_centre.len());
    for (firms, mut figures) in by_centre.into_values() {
        figures.firms_served = i64::try_from(firms.len()).unwrap_or(i64::MAX);
        total.firms_served += figures.firms_served;
        total.guarantees_issued += figures.guarantees_issued;
        total.cash_released_fen += figures.cash_released_fen;
        total.premiums_fen += figures.premiums_fen;
        centres.push(figures);
    }
    (centres, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(centre_id: &str, bidder: u8, kind: GuaranteeType, amount_fen: i64, premium_fen: i64) -> Counted {
        Counted { centre_id: centre_id.into(), bidder_tag: vec![bidder], kind, amount_fen, premium_fen }
    }

    #[test]
    fn firms_are_counted_once_per_centre_and_only_bid_guarantees_release_cash() {
        let (centres, total) = summarise(
            "520000",
            &[
                counted("520300", 1, GuaranteeType::Bid, 100, 1),
                counted("520100", 1, GuaranteeType::Bid, 5_000_000, 5_000),
                counted("520100", 1, GuaranteeType::Performance, 4_000_000, 4_000),
                counted("520100", 2, GuaranteeType::Bid, 5_000_000, 7_500),
            ],
        );
        let codes: Vec<&str> = centres.iter().map(|figures| figures.centre_id.as_str()).collect();
        assert_eq!(codes, ["520100", "520300"]);
        assert_eq!(
            centres[0],
            CentreFigures { centre_id: "520100".into(), firms_served: 2, guarantees_issued: 3, cash_released_fen: 10_000_000, premiums_fen: 16_500 }
        );
        assert_eq!(
            total,
            CentreFigures { centre_id: "520000".into(), firms_served: 3, guarantees_issued: 4, cash_released_fen: 10_000_100, premiums_fen: 16_501 }
        );
    }

    #[test]
    fn a_province_covers_its_cities_and_a_city_itself() {
        assert_eq!(centre_prefix(&CentreCode::parse("520000").expect("code")), "52");
        assert_eq!(centre_prefix(&CentreCode::parse("520100").expect("code")), "520100");
    }
}
