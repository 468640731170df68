//! Live figures of a centre or province, and the fraud warnings raised there.

use jinfu_platform::auth::{Caller, Role};
use jinfu_platform::fields::timestamp;
use jinfu_proto::guarantee::v1 as pb;
use tonic::{Request, Response, Status};

use super::{centre, failed, GuaranteeApi};
use crate::domain::figures::{self, CentreFigures, Counted};
use crate::domain::SealedGuarantee;
use crate::store;

fn figures_message(figures: CentreFigures) -> pb::CentreFigures {
    pb::CentreFigures {
        centre_id: figures.centre_id,
        firms_served: figures.firms_served,
        guarantees_issued: figures.guarantees_issued,
        cash_released_fen: figures.cash_released_fen,
        premiums_fen: figures.premiums_fen,
    }
}

pub(super) async fn get(api: &GuaranteeApi, request: Request<pb::GetFiguresRequest>) -> Result<Response<pb::Figures>, Status> {
    let caller = Caller::of(&request)?;
    let code = centre(&request.get_ref().centre_id)?;
    if !caller.may_access(code.as_str()) && caller.centre.province() != code.province() {
        return Err(Status::permission_denied(format!("caller of centre {} may not read centre {code}", caller.centre)));
    }
    let rows = store::figures::counted(&api.pool, &figures::centre_prefix(&code)).await.map_err(failed("reading figures"))?;
    let mut counted = Vec::with_capacity(rows.len());
    for row in rows {
        // Premiums are sealed with each guarantee; summed here, never listed per bidder.
        let sealed: SealedGuarantee = api.open(&row.guarantee_no, &row.sealed)?;
        counted.push(Counted {
            centre_id: row.centre_id,
            bidder_tag: row.bidder_tag,
            kind: row.kind,
            amount_fen: row.amount_fen,
            premium_fen: sealed.premium_fen,
        });
    }
    let (centres, total) = figures::summarise(code.as_str(), &counted);
    Ok(Response::new(pb::Figures { centres: centres.into_iter().map(figures_message).collect(), total: Some(figures_message(total)) }))
}

pub(super) async fn list_fraud_warnings(
    api: &GuaranteeApi,
    request: Request<pb::ListFraudWarningsRequest>,
) -> Result<Response<pb::ListFraudWarningsResponse>, Status> {
    let caller = Caller::of(&request)?;
    let centre_id = &request.get_ref().centre_id;
    caller.authorize(&[Role::Supervisor, Role::Admin], centre_id)?;
    let warnings = store::fraud_warnings::list(&api.pool, centre_id).await.map_err(failed("listing fraud warnings"))?;
    let warnings = warnings
        .into_iter()
        .map(|warning| pb::FraudWarning {
            centre_id: warning.centre_id,
            rule: warning.rule,
            subject: warning.subject,
            detail: warning.detail,
            created_at: Some(timestamp(warning.created_at)),
        })
        .collect();
    Ok(Response::new(pb::ListFraudWarningsResponse { warnings }))
}
