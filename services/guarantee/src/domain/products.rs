//! Guarantee products: what an issuer offers, for which centres and regimes, at what premium.

use jinfu_ledger::Fen;
use rust_decimal::Decimal;

use super::{GuaranteeType, IssuerKind};

/// The regimes a section can be tendered under.
pub const REGIMES: [&str; 2] = ["engineering", "procurement"];

/// A product of an issuer, province-wide.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    /// The province centre.
    pub centre_id: String,
    pub issuer_code: String,
    pub product_id: String,
    pub name: String,
    pub kind: GuaranteeType,
    pub premium_rate: Decimal,
    pub limits: Limits,
    /// Centres served; empty: every centre of the province.
    pub centres: Vec<String>,
    /// Regimes served; empty: both.
    pub regimes: Vec<String>,
}

/// The premium floor and the amounts a product covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub minimum_premium_fen: i64,
    pub minimum_amount_fen: i64,
    pub maximum_amount_fen: i64,
}

/// A product as offered for one amount.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    pub product: Product,
    pub issuer_name: String,
    pub issuer_kind: IssuerKind,
    pub amount_fen: i64,
    pub premium_fen: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductRefusal {
    #[error("limits must satisfy 0 ≤ minimum_premium_fen and 0 < minimum_amount_fen ≤ maximum_amount_fen")]
    Limits,
    #[error("unknown regime {0:?}: engineering or procurement")]
    UnknownRegime(String),
    #[error("centre {centre} is not in province {province}")]
    CentreOutsideProvince { centre: String, province: String },
    #[error("product {product_id} is a {kind} guarantee, not {requested}")]
    OtherType { product_id: String, kind: &'static str, requested: &'static str },
    #[error("product {product_id} does not serve centre {centre}")]
    CentreNotServed { product_id: String, centre: String },
    #[error("product {product_id} does not serve {regime} sections")]
    RegimeNotServed { product_id: String, regime: String },
    #[error("amount {0} is outside the product's limits")]
    AmountOutsideLimits(Fen),
    #[error("the premium of {0} overflows")]
    PremiumOverflow(Fen),
}

impl Limits {
    pub fn new(minimum_premium_fen: i64, minimum_amount_fen: i64, maximum_amount_fen: i64) -> Result<Limits, ProductRefusal> {
        if minimum_premium_fen < 0 || minimum_amount_fen <= 0 || maximum_amount_fen < minimum_amount_fen {
            return Err(ProductRefusal::Limits);
        }
        Ok(Limits { minimum_premium_fen, minimum_amount_fen, maximum_amount_fen })
    }

    pub fn covers(&self, amount_fen: i64) -> bool {
        self.minimum_amount_fen <= amount_fen && amount_fen <= self.maximum_amount_fen
    }
}

/// The regimes a product declares, each known.
pub fn check_regimes(regimes: &[String]) -> Result<(), ProductRefusal> {
    match regimes.iter().find(|regime| !REGIMES.contains(&regime.as_str())) {
        Some(unknown) => Err(ProductRefusal::UnknownRegime(unknown.clone())),
        None => Ok(()),
    }
}

impl Product {
    /// The premium for `amount_fen`: amount × rate, at least the floor.
    pub fn premium(&self, amount_fen: i64) -> Result<Fen, ProductRefusal> {
        let amount = Fen::from_fen(amount_fen);
        super::premium(amount, self.premium_rate, Fen::from_fen(self.limits.minimum_premium_fen)).ok_or(ProductRefusal::PremiumOverflow(amount))
    }

    /// Whether the product covers a `requested` guarantee of `amount_fen` for a section of
    /// `centre` tendered under `regime`.
    pub fn fits(&self, requested: GuaranteeType, centre: &str, regime: &str, amount_fen: i64) -> Result<(), ProductRefusal> {
        if self.kind != requested {
            return Err(ProductRefusal::OtherType { product_id: self.product_id.clone(), kind: self.kind.code(), requested: requested.code() });
        }
        if !self.centres.is_empty() && !self.centres.iter().any(|served| served == centre) {
            return Err(ProductRefusal::CentreNotServed { product_id: self.product_id.clone(), centre: centre.to_owned() });
        }
        if !self.regimes.is_empty() && !self.regimes.iter().any(|served| served == regime) {
            return Err(ProductRefusal::RegimeNotServed { product_id: self.product_id.clone(), regime: regime.to_owned() });
        }
        if !self.limits.covers(amount_fen) {
            return Err(ProductRefusal::AmountOutsideLimits(Fen::from_fen(amount_fen)));
        }
        Ok(())
    }
}

/// Offers for `amount_fen`, cheapest first, then by issuer and product.
pub fn cheapest_first(amount_fen: i64, products: Vec<(Product, String, IssuerKind)>) -> Result<Vec<Offer>, ProductRefusal> {
    let mut offers = Vec::with_capacity(products.len());
    for (product, issuer_name, issuer_kind) in products {
        let premium_fen = product.premium(amount_fen)?.fen();
        offers.push(Offer { product, issuer_name, issuer_kind, amount_fen, premium_fen });
    }
    offers.sort_by(|a, b| {
        let key = |offer: &Offer| (offer.premium_fen, offer.product.issuer_code.clone(), offer.product.product_id.clone());
        key(a).cmp(&key(b))
    });
    Ok(offers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(issuer_code: &str, rate: &str, minimum_premium_fen: i64) -> Product {
        Product {
            centre_id: "520000".into(),
            issuer_code: issuer_code.into(),
            product_id: "BID-1".into(),
            name: "投标保函".into(),
            kind: GuaranteeType::Bid,
            premium_rate: rate.parse().expect("rate"),
            limits: Limits::new(minimum_premium_fen, 100_000, 10_000_000).expect("limits"),
            centres: vec!["520100".into()],
            regimes: vec!["engineering".into()],
        }
    }

    #[test]
    fn limits_need_a_positive_range_and_a_non_negative_floor() {
        assert!(Limits::new(0, 1, 1).is_ok());
        assert_eq!(Limits::new(-1, 1, 1), Err(ProductRefusal::Limits));
        assert_eq!(Limits::new(0, 0, 1), Err(ProductRefusal::Limits));
        assert_eq!(Limits::new(0, 2, 1), Err(ProductRefusal::Limits));
        assert!(check_regimes(&["procurement".into()]).is_ok());
        assert_eq!(check_regimes(&["works".into()]), Err(ProductRefusal::UnknownRegime("works".into())));
    }

    #[test]
    fn a_product_fits_only_its_type_centres_regimes_and_amounts() {
        let picc = product("PICC", "0.001", 0);
        assert_eq!(picc.fits(GuaranteeType::Bid, "520100", "engineering", 5_000_000), Ok(()));
        assert!(matches!(picc.fits(GuaranteeType::Performance, "520100", "engineering", 5_000_000), Err(ProductRefusal::OtherType { .. })));
        assert!(matches!(picc.fits(GuaranteeType::Bid, "520300", "engineering", 5_000_000), Err(ProductRefusal::CentreNotServed { .. })));
        assert!(matches!(picc.fits(GuaranteeType::Bid, "520100", "procurement", 5_000_000), Err(ProductRefusal::RegimeNotServed { .. })));
        assert!(matches!(picc.fits(GuaranteeType::Bid, "520100", "engineering", 10_000_001), Err(ProductRefusal::AmountOutsideLimits(_))));
        let everywhere = Product { centres: vec![], regimes: vec![], ..picc };
        assert_eq!(everywhere.fits(GuaranteeType::Bid, "520300", "procurement", 100_000), Ok(()));
    }

    #[test]
    fn offers_are_cheapest_first_with_the_floor_applied() {
        let offers = cheapest_first(
            5_000_000,
            vec![
                (product("ZETA", "0.001", 0), "Zeta".into(), IssuerKind::Guarantor),
                (product("PICC", "0.002", 0), "PICC".into(), IssuerKind::Insurer),
                (product("ICBCG", "0.0005", 8_000), "ICBC".into(), IssuerKind::Bank),
            ],
        )
        .expect("offers");
        let order: Vec<(&str, i64)> = offers.iter().map(|offer| (offer.product.issuer_code.as_str(), offer.premium_fen)).collect();
        assert_eq!(order, [("ZETA", 5_000), ("ICBCG", 8_000), ("PICC", 10_000)]);
    }
}
