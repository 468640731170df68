//! Payments recorded by the purchaser and allocated to a contract's invoices
//! (`crate::payments`, shared with the signed payment records of `contract.payments`).

use jinfu_platform::auth::Role;
use jinfu_platform::fields::invalid;
use jinfu_proto::contract::v1 as pb;
use tonic::{Request, Response, Status};

use super::{failed, fen, parse_date, ContractApi};
use crate::payments::{self, NotRecorded, PaymentInput};

pub(super) async fn record(api: &ContractApi, request: Request<pb::RecordPaymentRequest>) -> Result<Response<pb::Payment>, Status> {
    let (caller, centre) = ContractApi::caller(&request, &[Role::Purchaser], &request.get_ref().centre_id)?;
    let body = request.get_ref();
    let mut allocations = Vec::with_capacity(body.allocations.len());
    for (index, allocation) in body.allocations.iter().enumerate() {
        allocations.push((allocation.invoice_no.clone(), fen(&format!("allocations[{index}].amount_fen"), allocation.amount_fen)?));
    }
    let payment = PaymentInput {
        payment_id: body.payment_id.clone(),
        contract_id: body.contract_id.clone(),
        paid_on: parse_date("paid_on", &body.paid_on)?,
        allocations,
    };
    payment.check(api.today()).map_err(invalid)?;
    let mut transaction = api.begin().await?;
    let contract = api.lock_visible(&mut transaction, &caller, &centre, &body.contract_id).await?;
    if caller.party != contract.purchaser_uscc {
        return Err(Status::permission_denied("only the contract's purchaser records its payments"));
    }
    match payments::record(&mut transaction, &api.events_topic, &contract, &payment, &caller.party, api.clock.now())
        .await
        .map_err(failed("recording a payment"))?
    {
        Ok(_) => transaction.commit().await.map_err(failed("committing"))?,
        Err(NotRecorded::Refused(refusal)) => return Err(refusal.into()),
        Err(NotRecorded::IdReused) => return Err(Status::already_exists(format!("payment {} was recorded with other content", body.payment_id))),
    }
    Ok(Response::new(pb::Payment {
        centre_id: centre.to_string(),
        payment_id: body.payment_id.clone(),
        contract_id: body.contract_id.clone(),
        paid_on: body.paid_on.clone(),
        allocations: body.allocations.clone(),
        amount_fen: payment.total().fen(),
    }))
}
