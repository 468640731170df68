//! Generated gRPC types and services for every Jinfu API. The `.proto` files are the documented
//! contract; read them for field meanings.

pub mod ledger {
    pub mod v1 {
        tonic::include_proto!("jinfu.ledger.v1");
    }
}

pub mod guarantee {
    pub mod v1 {
        tonic::include_proto!("jinfu.guarantee.v1");
    }
}

pub mod credit {
    pub mod v1 {
        tonic::include_proto!("jinfu.credit.v1");
    }
}

pub mod notification {
    pub mod v1 {
        tonic::include_proto!("jinfu.notification.v1");
    }
}

pub mod contract {
    pub mod v1 {
        tonic::include_proto!("jinfu.contract.v1");
    }
}

pub mod loan {
    pub mod v1 {
        tonic::include_proto!("jinfu.loan.v1");
    }
}

/// The signed terms of an e-guarantee and its types: the contract with issuers and banks.
pub mod guarantee_terms;

/// Tender events' identity: the source an event id is unique in, and the content hash that tells
/// a replay from a reused id.
pub mod tender_events;

/// The encoded file descriptor set of every Jinfu API, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("jinfu_descriptor");
