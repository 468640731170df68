//! Products of issuers: registration and the products eligible for a section.

use jinfu_platform::auth::{Caller, Role};
use jinfu_platform::fields::{invalid, required_text};
use jinfu_platform::outbox::OutboxRows;
use jinfu_proto::guarantee::v1 as pb;
use tonic::{Request, Response, Status};

use super::issuers::locked_issuer;
use super::{centre, failed, guarantee_type, province, GuaranteeApi};
use crate::domain::products::{self, Limits, Offer, Product, ProductRefusal};
use crate::domain::{applications, issuers};
use crate::{domain, fraud, store};

impl TryFrom<pb::Product> for Product {
    type Error = Status;
    fn try_from(body: pb::Product) -> Result<Self, Status> {
        let province = province(&body.centre_id)?;
        let product_id = required_text("product_id", &body.product_id)?;
        let name = required_text("name", &body.name)?;
        let kind = guarantee_type(body.r#type)?;
        let premium_rate =
            domain::parse_rate(&body.premium_rate).ok_or_else(|| invalid("premium_rate must be a decimal fraction in [0, 0.1], e.g. \"0.0015\""))?;
        let limits = Limits::new(body.minimum_premium_fen, body.minimum_amount_fen, body.maximum_amount_fen)?;
        for code in &body.centres {
            let served = centre(code)?;
            if served.province() != province {
                return Err(ProductRefusal::CentreOutsideProvince { centre: served.to_string(), province: province.to_string() }.into());
            }
        }
        products::check_regimes(&body.regimes)?;
        Ok(Product {
            centre_id: province.as_str().to_owned(),
            issuer_code: body.issuer_code,
            product_id: product_id.to_owned(),
            name: name.to_owned(),
            kind,
            premium_rate,
            limits,
            centres: body.centres,
            regimes: body.regimes,
        })
    }
}

fn product_message(product: &Product, premium_rate: String) -> pb::Product {
    pb::Product {
        centre_id: product.centre_id.clone(),
        issuer_code: product.issuer_code.clone(),
        product_id: product.product_id.clone(),
        name: product.name.clone(),
        r#type: product.kind.into(),
        premium_rate,
        minimum_premium_fen: product.limits.minimum_premium_fen,
        minimum_amount_fen: product.limits.minimum_amount_fen,
        maximum_amount_fen: product.limits.maximum_amount_fen,
        centres: product.centres.clone(),
        regimes: product.regimes.clone(),
    }
}

fn offer_message(offer: &Offer) -> pb::EligibleProduct {
    pb::EligibleProduct {
        product: Some(product_message(&offer.product, offer.product.premium_rate.normalize().to_string())),
        issuer_name: offer.issuer_name.clone(),
        issuer_kind: offer.issuer_kind.into(),
        amount_fen: offer.amount_fen,
        premium_fen: offer.premium_fen,
    }
}

/// Only the issuer itself (of the province) or an admin of the province registers products.
fn may_register(caller: &Caller, product: &Product) -> Result<(), Status> {
    match caller.role {
        Role::Issuer if caller.party == product.issuer_code && caller.centre.province().as_str() == product.centre_id => Ok(()),
        Role::Admin => caller.authorize(&[Role::Admin], &product.centre_id),
        _ => Err(Status::permission_denied("only the issuer itself or an admin of the province may register its products")),
    }
}

pub(super) async fn register(api: &GuaranteeApi, request: Request<pb::Product>) -> Result<Response<pb::Product>, Status> {
    let caller = Caller::of(&request)?;
    let mut product = Product::try_from(request.into_inner())?;
    may_register(&caller, &product)?;
    let mut transaction = api.begin().await?;
    let issuer = locked_issuer(&mut transaction, &product.centre_id, &product.issuer_code).await?;
    issuers::may_offer_products(&issuer.issuer_code, issuer.state)?;
    product.issuer_code = issuer.issuer_code;
    let previous = store::products::lock_rate(&mut transaction, &product.centre_id, &product.issuer_code, &product.product_id)
        .await
        .map_err(failed("locking the product"))?;
    let mut outbox = OutboxRows::default();
    if let Some(previous) = previous {
        let swing = api.fraud.premium_swing_percent;
        if fraud::premium_swing(previous, product.premium_rate, swing) {
            let subject = format!("{}/{}", product.issuer_code, product.product_id);
            let detail =
                format!("premium rate of {subject} changed from {} to {} (more than {swing} %)", previous.normalize(), product.premium_rate.normalize());
            fraud::warn(&mut transaction, &mut outbox, &api.events_topic, &product.centre_id, "premium_swing", &subject, detail)
                .await
                .map_err(failed("raising a fraud warning"))?;
        }
    }
    store::products::upsert(&mut transaction, &product).await.map_err(failed("registering the product"))?;
    outbox.insert(&mut transaction).await.map_err(failed("writing the outbox"))?;
    transaction.commit().await.map_err(failed("committing"))?;
    Ok(Response::new(product_message(&product, product.premium_rate.to_string())))
}

pub(super) async fn list_eligible(
    api: &GuaranteeApi,
    request: Request<pb::ListEligibleProductsRequest>,
) -> Result<Response<pb::ListEligibleProductsResponse>, Status> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    let code = centre(&body.centre_id)?;
    let kind = guarantee_type(body.r#type)?;
    caller.authorize(&[Role::Bidder, Role::Operator], code.as_str())?;
    let section = api.sections.require(code.as_str(), &body.section_id).await?;
    let amount = applications::quoted_amount(kind, &section, body.amount_fen)?;
    let candidates = store::products::eligible(&api.pool, code.province().as_str(), kind, code.as_str(), &section.regime, amount)
        .await
        .map_err(failed("listing eligible products"))?;
    let offers = products::cheapest_first(amount, candidates)?;
    Ok(Response::new(pb::ListEligibleProductsResponse { products: offers.iter().map(offer_message).collect() }))
}
