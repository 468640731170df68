//! Sub-accounts (子账号): one per bidder and section, numbered from a sequence.

use std::collections::{HashMap, HashSet};

use jinfu_ledger::ids::{sub_account_number, CentreCode, Uscc};
use sqlx::{PgPool, Postgres, Transaction};

use crate::domain::sections::{accepts_sub_accounts, NotAccepting};

/// A sub-account to open.
pub struct NewSubAccount<'a> {
    pub centre: CentreCode,
    pub section_id: String,
    pub bidder: Uscc,
    pub bidder_name: &'a str,
    pub basic_account: &'a str,
}

/// What opening sub-accounts did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// Per requested account, in order: its number and whether it was created now.
    Accounts(Vec<(String, bool)>),
    /// The request at this index names a section that takes no sub-accounts; nothing changed.
    NotAccepting(usize, NotAccepting),
    /// A concurrent request opened some of them; nothing changed, a retry reads them.
    Raced,
}

type Key = (String, String, String);

fn key_of(account: &NewSubAccount<'_>) -> Key {
    (account.centre.as_str().to_owned(), account.section_id.clone(), account.bidder.as_str().to_owned())
}

/// Opens the sub-accounts (existing ones are returned as they are), in one transaction.
pub async fn open(pool: &PgPool, accounts: &[NewSubAccount<'_>]) -> Result<Opened, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    let centres: Vec<&str> = accounts.iter().map(|account| account.centre.as_str()).collect();
    let sections: Vec<&str> = accounts.iter().map(|account| account.section_id.as_str()).collect();
    let open: HashMap<(String, String), bool> = sqlx::query_as::<_, (String, String, bool)>(
        "SELECT s.centre_id, s.section_id, s.open FROM sections s JOIN UNNEST($1::text[], $2::text[]) AS k(centre_id, section_id)
           ON s.centre_id = k.centre_id AND s.section_id = k.section_id",
    )
    .bind(&centres)
    .bind(&sections)
    .fetch_all(&mut *transaction)
    .await?
    .into_iter()
    .map(|(centre_id, section_id, open)| ((centre_id, section_id), open))
    .collect();
    for (index, account) in accounts.iter().enumerate() {
        if let Err(refusal) = accepts_sub_accounts(open.get(&(account.centre.as_str().to_owned(), account.section_id.clone())).copied()) {
            return Ok(Opened::NotAccepting(index, refusal));
        }
    }
    let mut numbers = existing_numbers(&mut transaction, accounts, &centres, &sections).await?;
    let fresh: Vec<&NewSubAccount<'_>> = {
        let mut seen: HashSet<Key> = HashSet::new();
        accounts.iter().filter(|account| !numbers.contains_key(&key_of(account)) && seen.insert(key_of(account))).collect()
    };
    let mut sequences = sqlx::query_scalar::<_, i64>("SELECT nextval('sub_account_sequence') FROM generate_series(1, $1)")
        .bind(i32::try_from(fresh.len()).unwrap_or(0))
        .fetch_all(&mut *transaction)
        .await?
        .into_iter();
    let mut rows: [Vec<String>; 6] = Default::default();
    for account in fresh {
        let sequence = sequences.next().ok_or_else(|| sqlx::Error::Protocol("sequence values ran out".into()))?;
        let sequence = u64::try_from(sequence).map_err(|_| sqlx::Error::Protocol("sequence out of range".into()))?;
        let number = sub_account_number(&account.centre, sequence);
        let values = [number.as_str(), account.centre.as_str(), &account.section_id, account.bidder.as_str(), account.bidder_name, account.basic_account];
        for (column, value) in rows.iter_mut().zip(values) {
            column.push(value.to_owned());
        }
        numbers.insert(key_of(account), (number, true));
    }
    if insert(&mut transaction, &rows).await? != rows[0].len() as u64 {
        return Ok(Opened::Raced);
    }
    transaction.commit().await?;
    Ok(Opened::Accounts(accounts.iter().map(|account| numbers[&key_of(account)].clone()).collect()))
}

async fn existing_numbers(
    transaction: &mut Transaction<'_, Postgres>,
    accounts: &[NewSubAccount<'_>],
    centres: &[&str],
    sections: &[&str],
) -> Result<HashMap<Key, (String, bool)>, sqlx::Error> {
    let bidders: Vec<&str> = accounts.iter().map(|account| account.bidder.as_str()).collect();
    let rows = sqlx::query_as::<_, (String, String, String, String)>(
        "SELECT s.centre_id, s.section_id, s.bidder_uscc, s.sub_account_number FROM sub_accounts s
         JOIN UNNEST($1::text[], $2::text[], $3::text[]) AS k(centre_id, section_id, bidder_uscc)
           ON s.centre_id = k.centre_id AND s.section_id = k.section_id AND s.bidder_uscc = k.bidder_uscc",
    )
    .bind(centres)
    .bind(sections)
    .bind(&bidders)
    .fetch_all(&mut **transaction)
    .await?;
    Ok(rows.into_iter().map(|(centre_id, section_id, uscc, number)| ((centre_id, section_id, uscc), (number, false))).collect())
}

async fn insert(transaction: &mut Transaction<'_, Postgres>, rows: &[Vec<String>; 6]) -> Result<u64, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO sub_accounts (sub_account_number, centre_id, section_id, bidder_uscc, bidder_name, basic_account)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
         ON CONFLICT (centre_id, section_id, bidder_uscc) DO NOTHING",
    )
    .bind(&rows[0])
    .bind(&rows[1])
    .bind(&rows[2])
    .bind(&rows[3])
    .bind(&rows[4])
    .bind(&rows[5])
    .execute(&mut **transaction)
    .await?;
    Ok(inserted.rows_affected())
}
