//! The reference data credit notices are validated against: registered collection accounts
//! (with their centre and signing key) and registered centres.

use std::collections::{HashMap, HashSet};

use jinfu_platform::retry::{self, Failure};
use sqlx::PgPool;
use tokio::sync::watch;

use crate::notice::CollectionAccount;
use crate::store::ingest_reads;

/// Collection accounts by (bank, account number), and registered centres.
pub type RegistryData = (HashMap<(String, String), CollectionAccount>, HashSet<String>);

/// The collection accounts and centres registered now; waits while the database is unavailable
/// (until `shutdown`: [`Failure::Transient`]).
pub(super) async fn load_registry_with_retry(pool: &PgPool, shutdown: &mut watch::Receiver<bool>) -> Result<RegistryData, Failure> {
    retry::until_ok("loading collection accounts and centres", shutdown, || async { Ok(load_registry(&mut *pool.acquire().await?).await?) }).await
}

pub(super) async fn load_registry(connection: &mut sqlx::PgConnection) -> Result<RegistryData, sqlx::Error> {
    let accounts = ingest_reads::collection_accounts(&mut *connection)
        .await?
        .into_iter()
        .map(|row| ((row.bank, row.account_number), CollectionAccount { centre_id: row.centre_id, signing_key_ref: row.signing_key_ref }))
        .collect();
    let centres = ingest_reads::centres(&mut *connection).await?;
    Ok((accounts, centres))
}
